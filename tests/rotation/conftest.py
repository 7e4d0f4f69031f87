"""Rotation fixtures: three CAs, certificate directories in three on-disk layouts, real grpcio
servers (sync and aio) whose handler reports the caller's certificate, a raw TLS probe that
reads the certificate a server serves to a *new* connection, and a load generator.

Everything runs on 127.0.0.1 with port 0. Every loop here is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import enum
import json
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509

from grpcsec.identity import peer
from grpcsec.pki import (
    CertificateAuthority,
    IssuedCertificate,
    Profile,
    SubjectAltNames,
    Validity,
    certificates_pem,
    utcnow,
)

SERVICE = "grpcsec.test.Rotation"
WHO = f"/{SERVICE}/Who"
STREAM = f"/{SERVICE}/Stream"
TIMEOUT = 5.0
STOP_TIMEOUT = 10.0
SWAP_DEADLINE = 2.0  # new connections must see a swapped certificate within this


# -- PKI ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RotPki:
    """Three unrelated CAs: ``ca`` (in service), ``new_ca`` (for rollovers), ``other_ca``."""

    ca: CertificateAuthority
    new_ca: CertificateAuthority
    other_ca: CertificateAuthority


@pytest.fixture(scope="session")
def rot_pki() -> RotPki:
    now = utcnow()
    return RotPki(
        ca=CertificateAuthority.create("rotation CA A", now=now),
        new_ca=CertificateAuthority.create("rotation CA B", now=now),
        other_ca=CertificateAuthority.create("rotation other CA", now=now),
    )


def server_leaf(
    ca: CertificateAuthority, *, validity: Validity | None = None, now: Any = None
) -> IssuedCertificate:
    names = SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"])
    return ca.issue(Profile.SERVER, names, validity=validity, now=now or utcnow())


def client_leaf(
    ca: CertificateAuthority, name: str = "client-1", *, validity: Validity | None = None
) -> IssuedCertificate:
    names = SubjectAltNames.build(dns=[f"{name}.internal"])
    return ca.issue(Profile.CLIENT, names, common_name=name, validity=validity, now=utcnow())


def bundle(*cas: CertificateAuthority) -> bytes:
    return certificates_pem([ca.certificate for ca in cas])


def serial_of(issued: IssuedCertificate) -> str:
    return f"{issued.certificate.serial_number:x}"


# -- certificate directories ----------------------------------------------------------------------
class Layout(enum.Enum):
    """How new files land on disk."""

    RENAME = "rename"  # temp file + rename per file (pki.write_files, most agents)
    IN_PLACE = "in_place"  # truncate and rewrite the same inode
    DATA_SYMLINK = "data_symlink"  # Kubernetes AtomicWriter: ..data -> ..<timestamp>/


@dataclass
class CertDir:
    """``tls.crt``, ``tls.key`` and ``ca.crt`` in ``root``, written in ``layout``."""

    root: Path
    layout: Layout
    _generation: int = 0
    _files: dict[str, bytes] = field(default_factory=dict)

    @property
    def cert(self) -> Path:
        return self.root / "tls.crt"

    @property
    def key(self) -> Path:
        return self.root / "tls.key"

    @property
    def ca(self) -> Path:
        return self.root / "ca.crt"

    def write(self, identity: IssuedCertificate | None = None, *, ca: bytes | None = None) -> None:
        """Write a complete new set (parts not given keep their current content)."""
        files = dict(self._files)
        if identity is not None:
            files["tls.crt"] = identity.chain_pem()
            files["tls.key"] = identity.key_pem()
        if ca is not None:
            files["ca.crt"] = ca
        self._files = files
        if self.layout is Layout.DATA_SYMLINK:
            self._swap_data_dir(files)
        else:
            # The key first, then the certificate: a reader in between sees a torn pair.
            for name in ("tls.key", "tls.crt", "ca.crt"):
                if name in files:
                    self.write_raw(name, files[name])

    def write_raw(self, name: str, data: bytes) -> None:
        """Replace one file as this layout would (the ``..data`` layout swaps one file)."""
        if self.layout is Layout.DATA_SYMLINK:
            self._files[name] = data
            self._swap_data_dir(self._files)
        elif self.layout is Layout.IN_PLACE:
            with (self.root / name).open("wb") as handle:
                handle.write(data)
        else:
            # A temporary file renamed over the target, without pki.write_files' fsync: the
            # torn window between two renames stays short and these tests stay deterministic
            # (test_renew drives a server through the Renewer, which does fsync).
            temp = self.root / f".{name}.tmp"
            temp.write_bytes(data)
            temp.chmod(0o600 if name.endswith(".key") else 0o644)
            temp.replace(self.root / name)

    def delete(self, *names: str) -> None:
        for name in names:
            self._files.pop(name, None)
            if self.layout is Layout.DATA_SYMLINK:
                self._swap_data_dir(self._files)
            else:
                (self.root / name).unlink()

    def _swap_data_dir(self, files: dict[str, bytes]) -> None:
        self._generation += 1
        new_dir = self.root / f"..2026_11_21_{self._generation:04d}"
        new_dir.mkdir(mode=0o700)
        for name, data in files.items():
            (new_dir / name).write_bytes(data)
        data_link = self.root / "..data"
        old_target = data_link.readlink() if data_link.is_symlink() else None
        temp_link = self.root / "..data_tmp"
        temp_link.symlink_to(new_dir.name)
        temp_link.replace(data_link)  # the atomic switch
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(Path("..data") / name)
        if old_target is not None:
            shutil.rmtree(self.root / old_target)


@pytest.fixture
def make_dir(tmp_path: Path) -> Callable[[Layout], CertDir]:
    counter = iter(range(100))

    def make(layout: Layout) -> CertDir:
        root = tmp_path / f"certs-{layout.value}-{next(counter)}"
        root.mkdir()
        return CertDir(root, layout)

    return make


# -- servers --------------------------------------------------------------------------------------
def _who(observe: Callable[[Any], None] | None) -> Callable[[bytes, Any], bytes]:
    def who(_request: bytes, context: Any) -> bytes:
        if observe is not None:
            observe(context)
        caller = peer(context)
        return json.dumps({"serial": caller.serial, "cn": caller.common_name}).encode()

    return who


def _stream(request: bytes, _context: Any) -> Iterator[bytes]:
    count, delay_ms = json.loads(request or b"[3, 100]")
    for index in range(min(int(count), 100)):
        time.sleep(min(float(delay_ms), 1000.0) / 1000)
        yield str(index).encode()


def handlers(observe: Callable[[Any], None] | None, *, aio: bool) -> grpc.GenericRpcHandler:
    who = _who(observe)
    if aio:

        async def who_async(request: bytes, context: Any) -> bytes:
            return who(request, context)

        async def stream_async(request: bytes, context: Any) -> Any:
            count, delay_ms = json.loads(request or b"[3, 100]")
            for index in range(min(int(count), 100)):
                await asyncio.sleep(min(float(delay_ms), 1000.0) / 1000)
                yield str(index).encode()

        methods = {
            "Who": grpc.unary_unary_rpc_method_handler(who_async),
            "Stream": grpc.unary_stream_rpc_method_handler(stream_async),
        }
    else:
        methods = {
            "Who": grpc.unary_unary_rpc_method_handler(who),
            "Stream": grpc.unary_stream_rpc_method_handler(_stream),
        }
    return grpc.method_handlers_generic_handler(SERVICE, methods)


@dataclass(frozen=True)
class Served:
    kind: str
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def serve(
    kind: str,
    credentials: Callable[[], grpc.ServerCredentials],
    *,
    observe: Callable[[Any], None] | None = None,
    options: tuple[tuple[str, Any], ...] = (),
) -> Iterator[Served]:
    """A ``sync`` or ``aio`` server on 127.0.0.1:0 (``credentials`` is called once, inside)."""
    if kind == "sync":
        executor = ThreadPoolExecutor(max_workers=8)
        server = grpc.server(executor, options=list(options))
        try:
            server.add_generic_rpc_handlers((handlers(observe, aio=False),))
            port = server.add_secure_port("127.0.0.1:0", credentials())
            server.start()
            yield Served("sync", port)
        finally:
            server.stop(grace=None).wait(STOP_TIMEOUT)
            executor.shutdown(wait=True, cancel_futures=True)
        return
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="aio-rotation-server", daemon=True)
    thread.start()
    holder: dict[str, Any] = {}

    async def start() -> int:
        server = grpc.aio.server(options=list(options))
        holder["server"] = server
        server.add_generic_rpc_handlers((handlers(observe, aio=True),))
        port = server.add_secure_port("127.0.0.1:0", credentials())
        await server.start()
        return int(port)

    async def stop() -> None:
        if "server" in holder:
            await holder["server"].stop(None)
        await loop.shutdown_default_executor()

    try:
        yield Served("aio", asyncio.run_coroutine_threadsafe(start(), loop).result(STOP_TIMEOUT))
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(STOP_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT)
        loop.close()


# -- clients --------------------------------------------------------------------------------------
def channel_credentials(trust: bytes, client: IssuedCertificate | None) -> grpc.ChannelCredentials:
    if client is None:
        return grpc.ssl_channel_credentials(root_certificates=trust)
    return grpc.ssl_channel_credentials(
        root_certificates=trust, private_key=client.key_pem(), certificate_chain=client.chain_pem()
    )


FRESH = (("grpc.use_local_subchannel_pool", 1),)


def call_who(target: str, credentials: grpc.ChannelCredentials) -> dict[str, Any]:
    """One call on a fresh channel and connection (raises RpcError)."""
    with grpc.secure_channel(target, credentials, options=list(FRESH)) as channel:
        reply = channel.unary_unary(WHO)(b"", timeout=TIMEOUT)
    result: dict[str, Any] = json.loads(reply)
    return result


def refused(target: str, credentials: grpc.ChannelCredentials) -> grpc.RpcError:
    """The error of a call that must be refused; fails the test if it succeeds."""
    try:
        seen = call_who(target, credentials)
    except grpc.RpcError as exc:
        return exc
    pytest.fail(f"the call succeeded but must be refused; the server saw {seen}")


class Prober:
    """Reads the serial a server presents to a new TLS connection (Python ``ssl``, ALPN h2).

    grpcio gives clients no way to see the server certificate, so this is a raw handshake.
    """

    def __init__(self, directory: Path, trust: bytes, client: IssuedCertificate | None) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._context.load_verify_locations(cadata=trust.decode())
        self._context.set_alpn_protocols(["h2"])
        if client is not None:
            directory.mkdir(parents=True, exist_ok=True)
            cert, key = directory / "probe.crt", directory / "probe.key"
            cert.write_bytes(client.chain_pem())
            key.write_bytes(client.key_pem())
            self._context.load_cert_chain(cert, key)

    def serial(self, port: int) -> str:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
            self._context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return f"{x509.load_der_x509_certificate(der).serial_number:x}"

    def wait_for(self, port: int, serial: str, *, deadline: float = SWAP_DEADLINE) -> float:
        """Seconds until a new connection is served ``serial``; fails after ``deadline``."""
        start = time.monotonic()
        seen = ""
        for _ in range(10_000):
            seen = self.serial(port)
            if seen == serial:
                return time.monotonic() - start
            if time.monotonic() - start > deadline:
                break
            time.sleep(0.01)
        pytest.fail(f"new connections still get serial {seen}, not {serial}, after {deadline}s")


def wait_until(predicate: Callable[[], bool], *, timeout: float = 3.0, what: str = "") -> None:
    """Poll ``predicate`` every 10 ms for at most ``timeout`` seconds."""
    end = time.monotonic() + timeout
    for _ in range(100_000):
        if predicate():
            return
        if time.monotonic() > end:
            break
        time.sleep(0.01)
    pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")


@dataclass
class LoadReport:
    calls: int
    failures: list[str]
    serials: set[str]


class Load:
    """Client threads calling ``Who`` back to back until stopped (at most ``max_seconds``).

    ``persistent`` threads each keep one channel (re-created when the credentials change);
    ``fresh`` threads open a new connection per call, so every call of theirs is a handshake
    that goes through the server's fetcher. Every error is recorded.
    """

    def __init__(
        self,
        target: str,
        credentials: grpc.ChannelCredentials,
        *,
        persistent: int = 2,
        fresh: int = 2,
        max_seconds: float = 60.0,
    ) -> None:
        self._target = target
        self._credentials = credentials
        self._version = 0
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._lock = threading.Lock()
        self.calls = 0
        self.failures: list[str] = []
        self.serials: set[str] = set()
        self._threads = [
            threading.Thread(target=self._persistent, name=f"load-p{i}", daemon=True)
            for i in range(persistent)
        ] + [
            threading.Thread(target=self._fresh, name=f"load-f{i}", daemon=True)
            for i in range(fresh)
        ]

    def set_credentials(self, credentials: grpc.ChannelCredentials) -> None:
        with self._lock:
            self._credentials = credentials
            self._version += 1

    def _record(self, reply: bytes | None, error: Exception | None) -> None:
        with self._lock:
            self.calls += 1
            if error is not None:
                self.failures.append(f"{type(error).__name__}: {error}")
            elif reply is not None:
                self.serials.add(json.loads(reply)["serial"])

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _persistent(self) -> None:
        channel: grpc.Channel | None = None
        version = -1
        try:
            while self._running():
                if version != self._version:
                    if channel is not None:
                        channel.close()
                    with self._lock:
                        version, credentials = self._version, self._credentials
                    channel = grpc.secure_channel(self._target, credentials, options=list(FRESH))
                try:
                    reply = channel.unary_unary(WHO)(b"", timeout=TIMEOUT)
                except grpc.RpcError as exc:
                    self._record(None, exc)
                else:
                    self._record(reply, None)
        finally:
            if channel is not None:
                channel.close()

    def _fresh(self) -> None:
        while self._running():
            with self._lock:
                credentials = self._credentials
            try:
                with grpc.secure_channel(self._target, credentials, options=list(FRESH)) as ch:
                    reply = ch.unary_unary(WHO)(b"", timeout=TIMEOUT)
            except grpc.RpcError as exc:
                self._record(None, exc)
            else:
                self._record(reply, None)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> LoadReport:
        self._stop.set()
        for thread in self._threads:
            thread.join(STOP_TIMEOUT)
        return LoadReport(self.calls, list(self.failures), set(self.serials))
