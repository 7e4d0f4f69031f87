"""Real misconfigured servers on 127.0.0.1 for the doctor's scenario tests, and their files.

Servers: grpcsec's own (``start_sync``), plain grpcio with a custom health handler, a Python
``ssl`` server (TLS versions and ALPN grpcio cannot be made to get wrong), ``openssl s_server``,
the grpc-go Greeter built by interop/install.sh (skipped when it is not built, unless
GRPCSEC_REQUIRE_INTEROP=1), and two black holes: a listener whose accept queue is full (the TCP
connect times out) and one that never reads (TCP connects, TLS gets no answer). Every wait is
bounded; every socket, thread, process and server is closed at the end of its block.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2

from grpcsec.credentials import ServerTLS
from grpcsec.doctor import DoctorReport, DoctorRequest, Status, diagnose
from grpcsec.material import KeyPair, TrustBundle
from grpcsec.pki import (
    CERT_MODE,
    KEY_MODE,
    CertificateAuthority,
    IssuedCertificate,
    PendingFile,
    PrivateKey,
    Profile,
    SubjectAltNames,
    Validity,
    certificates_pem,
    generate_key,
    private_key_pem,
    utcnow,
    write_files,
)
from grpcsec.target import Target
from tests.peers import missing
from tests.servers import RunningServer, ServeConfig, start_sync

REPO = Path(__file__).resolve().parents[2]
GO_SERVER = REPO / "interop" / "build" / "bin" / "greeter-server"
STOP_TIMEOUT = 10.0
START_TIMEOUT = 20.0
TIMEOUT = 5.0


# -- certificates ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Files:
    """Certificate and key files. Server leaves name DNS:localhost, IP:127.0.0.1, IP:::1."""

    dir: Path

    def __call__(self, name: str) -> str:
        path = self.dir / name
        assert path.exists(), path
        return str(path)


def _server_names(*extra: str) -> SubjectAltNames:
    return SubjectAltNames.build(dns=["localhost", *extra], ips=["127.0.0.1", "::1"])


def _pair(directory: Path, stem: str, issued: IssuedCertificate) -> list[PendingFile]:
    return [
        PendingFile(directory / f"{stem}.crt", issued.chain_pem(), CERT_MODE),
        PendingFile(directory / f"{stem}.key", issued.key_pem(), KEY_MODE),
    ]


def make_files(directory: Path) -> Files:
    """The doctor's PKI: root ``ca``, an unrelated ``other-ca``, an ``issuing`` intermediate
    under ``ca``, and one server or client pair per misconfiguration."""
    now = utcnow()
    day = dt.timedelta(days=1)
    ca = CertificateAuthority.create("doctor root", now=now)
    other = CertificateAuthority.create("doctor other root", now=now)
    issuing = ca.create_intermediate("doctor issuing", now=now)
    client_names = SubjectAltNames.build(dns=["client.test"])
    via_intermediate = issuing.issue(Profile.SERVER, _server_names(), now=now)
    assert via_intermediate.key is not None
    mismatched_key = generate_key()
    pending = [
        PendingFile(directory / "ca.crt", ca.certificate_pem(), CERT_MODE),
        PendingFile(directory / "other-ca.crt", other.certificate_pem(), CERT_MODE),
        # issuing.certificate_pem() is the intermediate followed by the root
        PendingFile(directory / "ca-and-intermediate.crt", issuing.certificate_pem(), CERT_MODE),
        *_pair(directory, "server", ca.issue(Profile.SERVER, _server_names(), now=now)),
        *_pair(directory, "server-full-chain", via_intermediate),
        PendingFile(
            directory / "server-leaf-only.crt",
            certificates_pem([via_intermediate.certificate]),
            CERT_MODE,
        ),
        *_pair(
            directory,
            "server-other-name",
            ca.issue(Profile.SERVER, SubjectAltNames.build(dns=["other.example"]), now=now),
        ),
        *_pair(
            directory,
            "server-uri-only",
            ca.issue(
                Profile.SERVER,
                SubjectAltNames.build(uris=["spiffe://doctor.test/ns/prod/sa/api"]),
                now=now,
            ),
        ),
        *_pair(
            directory,
            "server-expired",
            ca.issue(
                Profile.SERVER,
                _server_names(),
                validity=Validity(not_before=now - 30 * day, not_after=now - day),
                now=now,
            ),
        ),
        *_pair(
            directory,
            "server-future",
            ca.issue(
                Profile.SERVER,
                _server_names(),
                validity=Validity(not_before=now + day, not_after=now + 30 * day),
                now=now,
            ),
        ),
        *_pair(directory, "server-client-eku", ca.issue(Profile.CLIENT, _server_names(), now=now)),
        *_pair(directory, "client", ca.issue(Profile.CLIENT, client_names, now=now)),
        *_pair(
            directory,
            "client-other-ca",
            other.issue(Profile.CLIENT, SubjectAltNames.build(dns=["mallory.test"]), now=now),
        ),
        *_pair(
            directory,
            "client-expired",
            ca.issue(
                Profile.CLIENT,
                client_names,
                validity=Validity(not_before=now - 30 * day, not_after=now - day),
                now=now,
            ),
        ),
        PendingFile(directory / "wrong.key", private_key_pem(mismatched_key), KEY_MODE),
    ]
    write_files(pending)
    return Files(directory)


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    return make_files(tmp_path_factory.mktemp("doctor-pki"))


# -- doctor ---------------------------------------------------------------------------------
def run_doctor(target: Target | str, **options: Any) -> DoctorReport:
    """The doctor through the library, with default-roots lookups kept out of the shell's
    environment (tests pass --ca, or an explicit environ)."""
    address = Target.parse(target) if isinstance(target, str) else target
    options.setdefault("timeout", TIMEOUT)
    options.setdefault("environ", {})
    return diagnose(DoctorRequest(target=address, **options), now=utcnow())


def statuses(report: DoctorReport) -> dict[str, str]:
    return {c.name: c.status.value for c in report.checks}


def root_fix(report: DoctorReport) -> str:
    cause = report.root_cause
    assert cause is not None, report.to_json()
    assert cause.fix
    return cause.fix


def assert_healthy(report: DoctorReport) -> None:
    """``ok``, and every check passed (no warning, nothing skipped)."""
    assert report.diagnosis == "ok", report.to_json()
    assert all(c.status is Status.PASS for c in report.checks), statuses(report)


# -- grpcsec and grpcio servers -------------------------------------------------------------
@contextlib.contextmanager
def grpcsec_server(
    files: Files,
    cert: str | None = "server.crt",
    key: str = "server.key",
    *,
    client_ca: str | None = None,
    require_host_san: bool = True,
    host: str = "127.0.0.1",
) -> Iterator[RunningServer]:
    """grpcsec's own server (Greeter, health SERVING, reflection); ``cert=None``: plaintext."""
    tls = None
    if cert is not None:
        tls = ServerTLS(
            identity=KeyPair.from_files(files(cert), files(key)),
            client_ca=TrustBundle.from_file(files(client_ca)) if client_ca else None,
            require_host_san=require_host_san,
        )
    running = start_sync(
        ServeConfig(listen=Target(host, 0), tls=tls, insecure=tls is None, workers=4)
    )
    try:
        yield running
    finally:
        running.stop(grace=0)


@contextlib.contextmanager
def grpcio_server(
    credentials: grpc.ServerCredentials, check: Callable[[Any, Any], Any]
) -> Iterator[Target]:
    """A plain grpcio server whose only method is ``grpc.health.v1.Health/Check``, answered
    by ``check(request, context)``."""
    handler = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                check,
                request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
            )
        },
    )
    executor = ThreadPoolExecutor(max_workers=2)
    server = grpc.server(executor, options=[("grpc.so_reuseport", 0)])
    try:
        server.add_generic_rpc_handlers((handler,))
        port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        yield Target("127.0.0.1", port)
    finally:
        server.stop(grace=None).wait(STOP_TIMEOUT)
        executor.shutdown(wait=True, cancel_futures=True)


def serving(_request: Any, _context: Any) -> Any:
    return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def server_credentials(files: Files, cert: str, key: str) -> grpc.ServerCredentials:
    """grpcio TLS credentials straight from files, with none of grpcsec's checks."""
    return grpc.ssl_server_credentials(
        [(Path(files(key)).read_bytes(), Path(files(cert)).read_bytes())]
    )


# -- a Python ssl server ---------------------------------------------------------------------
@contextlib.contextmanager
def python_tls_server(
    files: Files,
    *,
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
    alpn: Sequence[str] | None = None,
) -> Iterator[Target]:
    """A TLS server (not gRPC) that completes handshakes with ``server.crt`` and closes. TLS
    1.0/1.1 need ``@SECLEVEL=0`` in OpenSSL 3, and Python warns that they are deprecated."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = minimum
        context.maximum_version = maximum
    if minimum < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_cert_chain(files("server.crt"), files("server.key"))
    if alpn is not None:
        context.set_alpn_protocols(list(alpn))
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([listener], [], [], 0.05)
            if not ready:
                continue
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(2.0)
                try:
                    with context.wrap_socket(connection, server_side=True) as tls:
                        tls.recv(64)
                except (OSError, ValueError):
                    continue

    thread = threading.Thread(target=serve, name="python-tls-server", daemon=True)
    thread.start()
    try:
        yield Target("127.0.0.1", listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(STOP_TIMEOUT)
        listener.close()


@contextlib.contextmanager
def http1_server() -> Iterator[Target]:
    """A plaintext HTTP/1.1 server that answers anything with 400 and closes."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([listener], [], [], 0.05)
            if not ready:
                continue
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(2.0)
                with contextlib.suppress(OSError):
                    connection.recv(1024)
                    connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, name="http1-server", daemon=True)
    thread.start()
    try:
        yield Target("127.0.0.1", listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(STOP_TIMEOUT)
        listener.close()


# -- processes: openssl s_server and the grpc-go server ----------------------------------------
def _read_line(process: subprocess.Popen[bytes], pattern: str) -> re.Match[bytes]:
    """The first output line matching ``pattern``, reading the raw descriptor (no buffering
    that select cannot see) for at most START_TIMEOUT seconds."""
    assert process.stdout is not None
    descriptor = process.stdout.fileno()
    deadline = time.monotonic() + START_TIMEOUT
    seen = b""
    while (remaining := deadline - time.monotonic()) > 0:
        for line in seen.split(b"\n")[:-1]:
            match = re.search(pattern.encode(), line)
            if match:
                return match
        ready, _, _ = select.select([descriptor], [], [], remaining)
        if ready:
            chunk = os.read(descriptor, 4096)
            if not chunk:
                break
            seen += chunk
    pytest.fail(f"{process.args!r} did not print {pattern!r}: {seen!r}")


@contextlib.contextmanager
def server_process(argv: Sequence[str], ready: str, **kwargs: Any) -> Iterator[int]:
    """Start a process, wait for the line ``ready`` (its group 1 is the port), stop it."""
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        **kwargs,
    )
    try:
        yield int(_read_line(process, ready).group(1))
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


def go_server_binary() -> Path:
    """The grpc-go Greeter; a skip (or, with GRPCSEC_REQUIRE_INTEROP=1, a failure) without it."""
    if not GO_SERVER.is_file():
        missing(f"the grpc-go server is not built ({GO_SERVER}); run interop/install.sh")
    return GO_SERVER


@contextlib.contextmanager
def go_server(files: Files, cert: str, key: str, client_ca: str) -> Iterator[Target]:
    """grpc-go: requires and verifies a client certificate, TLS 1.2+, ALPN h2, no health."""
    argv = [str(go_server_binary()), "--listen", "127.0.0.1:0", "--cert", files(cert)]
    argv += ["--key", files(key), "--client-ca", files(client_ca)]
    with server_process(argv, r"listening on 127\.0\.0\.1:(\d+)") as port:
        yield Target("127.0.0.1", port)


def openssl_binary() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("openssl is not installed")
    return path


# -- black holes ----------------------------------------------------------------------------
@contextlib.contextmanager
def full_backlog() -> Iterator[Target]:
    """A listener that never accepts, with its accept queue filled: further SYNs are dropped,
    so a TCP connect times out."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(3):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            fillers.append(filler)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        time.sleep(0.1)
        yield Target("127.0.0.1", port)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@contextlib.contextmanager
def silent_listener() -> Iterator[Target]:
    """A listener the kernel completes TCP handshakes for, but that never reads or writes."""
    with socket.create_server(("127.0.0.1", 0), backlog=32) as listener:
        yield Target("127.0.0.1", listener.getsockname()[1])


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- certificates grpcsec would refuse to issue ------------------------------------------------
def forge(
    issuer: CertificateAuthority | None,
    *,
    common_name: str,
    names: SubjectAltNames | None = None,
    key: PrivateKey | None = None,
    usage: Sequence[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.SERVER_AUTH,),
    digest: hashes.HashAlgorithm | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """A leaf signed by ``issuer`` (or self-signed) with exactly what is asked: no SAN
    extension when ``names`` is None, any key, any digest."""
    key = key or generate_key()
    now = utcnow()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=1))
        .not_valid_after(not_after or now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usage)), critical=False)
    )
    if names is not None:
        builder = builder.add_extension(names.to_extension(), critical=False)
    signer = issuer.key if issuer else key
    return builder.sign(signer, digest or hashes.SHA256()), key
