"""Fixtures for the interoperability tests: certificates, the helloworld messages, servers and
clients written by others (grpc-go, @grpc/grpc-js, openssl).

The Go programs and the Node.js client are built by ``interop/install.sh``; tests that need one
that is missing are skipped with the reason. Every process runs on 127.0.0.1 with a timeout, and
every wait is bounded.

``greeter_server`` is the server that the Go and Node clients and ``openssl s_client`` talk to.
It is ``grpcsec serve`` in its own process: a helloworld Greeter that requires client
certificates issued by ``pki.client_ca`` and answers ``Hello <name> (from <SPIFFE ID>)``.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from grpcsec.pki import (
    CERT_MODE,
    KEY_MODE,
    CertificateAuthority,
    IssuedCertificate,
    PendingFile,
    Profile,
    SubjectAltNames,
    write_files,
)
from tests.peers import missing

REPO = Path(__file__).resolve().parents[2]
INTEROP = REPO / "interop"
GO_CLIENT = INTEROP / "build" / "bin" / "greeter-client"
GO_SERVER = INTEROP / "build" / "bin" / "greeter-server"
NODE_CLIENT = INTEROP / "node" / "client.js"
NODE_MODULES = INTEROP / "node" / "node_modules"
INSTALL_HINT = "run interop/install.sh first"


SERVER_NAME = "greeter.test"
CLIENT_CN = "alice"
WORKLOAD_URI = "spiffe://grpcsec.test/ns/interop/sa/workload"
CLIENT_SPIFFE_ID = "spiffe://grpcsec.test/ns/interop/sa/alice"

PROCESS_TIMEOUT = 30.0  # any one client run, openssl run or shutdown
STARTUP_TIMEOUT = 20.0  # until a server says it is listening


# -- certificates ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Pki:
    """Files under one directory. ``client_ca`` is the root that issued (through an
    intermediate) the server and client certificates; ``other_ca`` is an unrelated root."""

    client_ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path  # CN alice, plus a SPIFFE URI SAN
    client_key: Path
    workload_cert: Path  # no subject at all, only a SPIFFE URI SAN
    workload_key: Path
    rogue_cert: Path  # a client certificate from other_ca
    rogue_key: Path
    server_name: str = SERVER_NAME
    client_cn: str = CLIENT_CN
    client_spiffe_id: str = CLIENT_SPIFFE_ID
    workload_uri: str = WORKLOAD_URI


def _pair(directory: Path, stem: str, issued: IssuedCertificate) -> list[PendingFile]:
    return [
        PendingFile(directory / f"{stem}.crt", issued.chain_pem(), CERT_MODE),
        PendingFile(directory / f"{stem}.key", issued.key_pem(), KEY_MODE),
    ]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("interop-pki")
    root = CertificateAuthority.create("grpcsec interop root")
    issuing = root.create_intermediate("grpcsec interop issuing")
    other = CertificateAuthority.create("unrelated root")
    server = issuing.issue(
        Profile.SERVER, SubjectAltNames.build(dns=[SERVER_NAME], ips=["127.0.0.1"])
    )
    client = issuing.issue(
        Profile.CLIENT,
        SubjectAltNames.build(uris=[CLIENT_SPIFFE_ID]),
        common_name=CLIENT_CN,
    )
    workload = issuing.issue(
        Profile.CLIENT, SubjectAltNames.build(uris=[WORKLOAD_URI]), common_name=""
    )
    rogue = other.issue(Profile.CLIENT, SubjectAltNames.build(dns=["mallory.test"]))
    write_files(
        [
            PendingFile(directory / "ca.crt", root.certificate_pem(), CERT_MODE),
            PendingFile(directory / "other-ca.crt", other.certificate_pem(), CERT_MODE),
            *_pair(directory, "server", server),
            *_pair(directory, "client", client),
            *_pair(directory, "workload", workload),
            *_pair(directory, "rogue", rogue),
        ]
    )
    return Pki(
        client_ca=directory / "ca.crt",
        other_ca=directory / "other-ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
        workload_cert=directory / "workload.crt",
        workload_key=directory / "workload.key",
        rogue_cert=directory / "rogue.crt",
        rogue_key=directory / "rogue.key",
    )


# -- helloworld messages, from a descriptor built here (no generated code, no hand encoding) --
@dataclass(frozen=True)
class HelloWorld:
    request: Any  # message classes made at run time by message_factory
    reply: Any


def _helloworld_file() -> descriptor_pb2.FileDescriptorProto:
    string = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    file = descriptor_pb2.FileDescriptorProto(
        name="grpcsec_interop/helloworld.proto", package="helloworld", syntax="proto3"
    )
    for message, field in (("HelloRequest", "name"), ("HelloReply", "message")):
        file.message_type.add(name=message).field.add(
            name=field, json_name=field, number=1, type=string, label=optional
        )
    file.service.add(name="Greeter").method.add(
        name="SayHello", input_type=".helloworld.HelloRequest", output_type=".helloworld.HelloReply"
    )
    return file


@pytest.fixture(scope="session")
def helloworld() -> HelloWorld:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(_helloworld_file().SerializeToString())
    return HelloWorld(
        request=message_factory.GetMessageClass(
            pool.FindMessageTypeByName("helloworld.HelloRequest")
        ),
        reply=message_factory.GetMessageClass(pool.FindMessageTypeByName("helloworld.HelloReply")),
    )


# -- servers --------------------------------------------------------------------------------
@dataclass(frozen=True)
class GreeterServer:
    """A running helloworld Greeter on 127.0.0.1 that requires client certificates."""

    implementation: str
    port: int
    server_name: str  # a DNS SAN of its certificate
    trust: Path  # the CA file that clients verify it with
    client_identity: str  # how its reply names the ``pki.client_cert`` caller

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def _wait_for_line(process: subprocess.Popen[bytes], pattern: str, timeout: float) -> re.Match[str]:
    """The first stdout line of ``process`` that matches ``pattern``, waiting at most
    ``timeout`` seconds; raises TimeoutError (with what it printed) otherwise."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        for line in data.split(b"\n")[:-1]:  # complete lines only
            match = re.fullmatch(pattern, line.decode("utf-8", "replace").rstrip("\r"))
            if match is not None:
                return match
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no line matching {pattern!r} within {timeout} s: {data!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise TimeoutError(f"it exited without a line matching {pattern!r}: {data!r}")
            data += chunk


def stop_process(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, bounded wait, then SIGKILL; returns the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=PROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=PROCESS_TIMEOUT)


@contextlib.contextmanager
def server_process(
    argv: Sequence[str | Path],
    ready: str,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    hold_stdin: bool = False,
) -> Iterator[tuple[subprocess.Popen[bytes], re.Match[str]]]:
    """Start a server, wait (bounded) for a stdout line matching ``ready``, and stop it on
    exit. Its stderr goes to ``log``, shown when it fails to start. ``hold_stdin`` keeps its
    standard input open (a pipe) for servers that stop at end of input."""
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.PIPE if hold_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
    try:
        try:
            match = _wait_for_line(process, ready, STARTUP_TIMEOUT)
        except TimeoutError as exc:
            pytest.fail(f"{argv[0]} did not start: {exc}; stderr: {log.read_text()!r}")
        yield process, match
    finally:
        if process.stdin is not None:
            process.stdin.close()
        stop_process(process)
        assert process.stdout is not None
        process.stdout.close()


@pytest.fixture(scope="session")
def go_server_binary() -> Path:
    if not GO_SERVER.is_file():
        missing(f"the grpc-go server is not built ({GO_SERVER}); {INSTALL_HINT}")
    return GO_SERVER


@contextlib.contextmanager
def go_greeter(
    binary: Path, pki: Pki, log: Path
) -> Iterator[tuple[GreeterServer, subprocess.Popen[bytes]]]:
    argv = [binary, "--listen", "127.0.0.1:0", "--cert", pki.server_cert, "--key", pki.server_key]
    argv += ["--client-ca", pki.client_ca]
    with server_process(argv, r"listening on 127\.0\.0\.1:(\d+)", log) as (process, match):
        yield (
            GreeterServer("grpc-go", int(match[1]), pki.server_name, pki.client_ca, CLIENT_CN),
            process,
        )


@pytest.fixture(scope="module")
def go_server(
    go_server_binary: Path, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GreeterServer]:
    """The grpc-go Greeter (interop/go/server), mTLS with ``pki``."""
    log = tmp_path_factory.mktemp("go-server") / "stderr.log"
    with go_greeter(go_server_binary, pki, log) as (server, _):
        yield server


@pytest.fixture
def own_go_server(
    go_server_binary: Path, pki: Pki, tmp_path: Path
) -> Iterator[tuple[GreeterServer, subprocess.Popen[bytes], Path]]:
    """A grpc-go Greeter for one test, with its process and its stderr log."""
    log = tmp_path / "go-server-stderr.log"
    with go_greeter(go_server_binary, pki, log) as (server, process):
        yield server, process, log


@pytest.fixture(scope="module")
def greeter_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GreeterServer]:
    """The server under test for the Go and Node clients and openssl: ``grpcsec serve`` in its
    own process, mTLS with ``pki``. It names a caller by its SPIFFE ID when it has one."""
    log = tmp_path_factory.mktemp("grpcsec-serve") / "stderr.log"
    argv = [sys.executable, "-m", "grpcsec.cli", "serve", "--listen", "127.0.0.1:0"]
    argv += ["--cert", pki.server_cert, "--key", pki.server_key, "--client-ca", pki.client_ca]
    env = {k: v for k, v in os.environ.items() if k != "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"}
    ready = r"listening on 127\.0\.0\.1:(\d+) \(mtls\)"
    with server_process(argv, ready, log, env=env) as (_, match):
        yield GreeterServer(
            "grpcsec serve", int(match[1]), pki.server_name, pki.client_ca, pki.client_spiffe_id
        )


# -- clients --------------------------------------------------------------------------------
@dataclass(frozen=True)
class GreeterClient:
    """A command-line helloworld client (Go or Node) with the interop/README.md flag contract."""

    implementation: str
    command: tuple[str, ...]

    def call(
        self,
        server: GreeterServer,
        *,
        name: str = "interop",
        cert: Path | None = None,
        key: Path | None = None,
        trust: Path | None = None,
        server_name: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = [*self.command, "--addr", server.address, "--ca", str(trust or server.trust)]
        argv += ["--server-name", server_name or server.server_name, "--name", name]
        if cert is not None and key is not None:
            argv += ["--cert", str(cert), "--key", str(key)]
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT,
            check=False,
        )


def _go_client() -> GreeterClient:
    if not GO_CLIENT.is_file():
        missing(f"the grpc-go client is not built ({GO_CLIENT}); {INSTALL_HINT}")
    return GreeterClient("grpc-go", (str(GO_CLIENT),))


def _node_client() -> GreeterClient:
    node = shutil.which("node")
    if node is None:
        missing("node is not on PATH; " + INSTALL_HINT)
    if not (NODE_MODULES / "@grpc" / "grpc-js").is_dir():
        missing(f"@grpc/grpc-js is not installed in {NODE_MODULES}; {INSTALL_HINT}")
    return GreeterClient("grpc-js", (node, str(NODE_CLIENT)))


CLIENTS: dict[str, Callable[[], GreeterClient]] = {"go": _go_client, "node": _node_client}


@pytest.fixture(params=sorted(CLIENTS))
def greeter_client(request: pytest.FixtureRequest) -> GreeterClient:
    """Each command-line client in turn (skipped when it is not installed)."""
    return CLIENTS[request.param]()


# -- openssl ------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpenSsl:
    """The openssl command with an empty OPENSSL_CONF, so no system-wide MinProtocol or
    CipherString narrows what it offers or accepts: the peer under test decides."""

    path: str
    env: dict[str, str]

    def s_client(
        self,
        server: GreeterServer,
        *options: str,
        cert: Path | None,
        key: Path | None,
        wait_for_server: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """One handshake; stdout and stderr together. ``cert`` is sent with its chain
        (``-cert_chain``: ``-cert`` alone sends the leaf). Standard input is empty, so the
        client closes right after the handshake; with ``wait_for_server`` it is held open, so
        the client runs until the server closes the connection (or the timeout)."""
        argv = [self.path, "s_client", "-connect", server.address]
        argv += ["-servername", server.server_name, "-verify_hostname", server.server_name]
        argv += ["-CAfile", str(server.trust), "-verify_return_error"]
        if cert is not None and key is not None:
            argv += ["-cert", str(cert), "-cert_chain", str(cert), "-key", str(key)]
        read_end, write_end = os.pipe() if wait_for_server else (subprocess.DEVNULL, -1)
        try:
            return subprocess.run(
                [*argv, *options],
                stdin=read_end,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                encoding="utf-8",
                errors="replace",  # after the handshake, HTTP/2 frames are printed raw
                timeout=PROCESS_TIMEOUT,
                check=False,
                env=self.env,
            )
        finally:
            if wait_for_server:
                os.close(read_end)
                os.close(write_end)


@pytest.fixture
def openssl(tmp_path: Path) -> OpenSsl:
    path = shutil.which("openssl")
    if path is None:
        missing("openssl is not on PATH; " + INSTALL_HINT)
    config = tmp_path / "empty-openssl.cnf"
    config.write_text("")
    return OpenSsl(
        path, {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OPENSSL_CONF": str(config)}
    )


@pytest.fixture
def openssl_server(
    openssl: OpenSsl, pki: Pki, tmp_path: Path
) -> Iterator[Callable[..., GreeterServer]]:
    """Starts ``openssl s_server`` (one connection, no client certificate requested) with the
    server certificate and the given options: a TLS server, not a Greeter, for controls."""
    with contextlib.ExitStack() as stack:

        def start(*options: str) -> GreeterServer:
            argv = [openssl.path, "s_server", "-accept", "127.0.0.1:0", "-naccept", "1"]
            argv += ["-cert", str(pki.server_cert), "-cert_chain", str(pki.server_cert)]
            argv += ["-key", str(pki.server_key), *options]
            _, match = stack.enter_context(
                server_process(
                    argv,
                    r"ACCEPT 127\.0\.0\.1:(\d+)",
                    tmp_path / "s_server.log",
                    env=openssl.env,
                    hold_stdin=True,
                )
            )
            return GreeterServer(
                "openssl s_server", int(match[1]), pki.server_name, pki.client_ca, pki.client_cn
            )

        yield start
