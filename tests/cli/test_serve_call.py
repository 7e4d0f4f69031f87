"""``grpcsec serve`` in a real subprocess and ``grpcsec call`` against it (sync and aio).

Each positive call has negative controls that must fail: no client certificate, a certificate
from another CA, an expired client certificate, the wrong CA, a name the server certificate does
not carry, plaintext against TLS. Bad input must give exit 2 with one line and no traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from typer.testing import CliRunner

from grpcsec.cli import app
from grpcsec.pki import (
    CERT_MODE,
    KEY_MODE,
    PendingFile,
    Validity,
    private_key_pem,
    utcnow,
    write_files,
)
from tests.conftest import CLIENT_SPIFFE_ID, Pki, issue_client

pytestmark = pytest.mark.slow

GRPCSEC = [sys.executable, "-m", "grpcsec.cli"]
LISTENING = re.compile(r"listening on (\S+):(\d+) \((\S+?)[,)]")


@dataclass(frozen=True)
class Files:
    dir: Path

    def __getattr__(self, name: str) -> str:
        return str(self.dir / name.replace("_", ".", 1))


@pytest.fixture(scope="module")
def files(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("serve")
    now = utcnow()
    expired = issue_client(
        pki.ca,
        common_name="expired",
        validity=Validity(
            not_before=now - dt.timedelta(days=3), not_after=now - dt.timedelta(days=1)
        ),
        now=now,
    )
    pending = [
        PendingFile(root / "ca.crt", pki.ca.certificate_pem(), CERT_MODE),
        PendingFile(root / "other.crt", pki.other_ca.certificate_pem(), CERT_MODE),
        PendingFile(root / "server.crt", pki.server.chain_pem(), CERT_MODE),
        PendingFile(root / "server.key", pki.server.key_pem(), KEY_MODE),
        PendingFile(root / "client.crt", pki.client.chain_pem(), CERT_MODE),
        PendingFile(root / "client.key", pki.client.key_pem(), KEY_MODE),
        PendingFile(root / "intruder.crt", pki.other_client.chain_pem(), CERT_MODE),
        PendingFile(root / "intruder.key", pki.other_client.key_pem(), KEY_MODE),
        PendingFile(root / "expired.crt", expired.chain_pem(), CERT_MODE),
        PendingFile(root / "expired.key", expired.key_pem(), KEY_MODE),
    ]
    assert pki.client.key is not None
    pending.append(
        PendingFile(root / "locked.key", private_key_pem(pki.client.key, b"pw"), KEY_MODE)
    )
    write_files(pending)
    return Files(root)


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int
    mode: str

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", None)
    return env


@pytest.fixture
def start_server() -> Iterator[object]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> Served:
        process = subprocess.Popen(
            [*GRPCSEC, "serve", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        started.append(process)
        assert process.stdout is not None
        deadline = time.monotonic() + 20
        line = process.stdout.readline()
        while not LISTENING.search(line) and time.monotonic() < deadline and line:
            line = process.stdout.readline()
        match = LISTENING.search(line)
        assert match, (
            f"no 'listening on' line; stderr: {process.stderr.read() if process.stderr else ''}"
        )
        return Served(process, int(match.group(2)), match.group(3))

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)  # also closes the pipes


def call(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["call", *args])
    return result.exit_code, result.stdout, result.stderr


def stop_gracefully(served: Served) -> str:
    served.process.send_signal(signal.SIGTERM)
    _, err = served.process.communicate(timeout=20)
    assert served.process.returncode == 0
    return err


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "aio"])
def test_mtls_serve_and_call_with_negative_controls(
    files: Files, start_server: object, aio: bool
) -> None:
    served = start_server(  # type: ignore[operator]
        "--cert",
        files.server_crt,
        "--key",
        files.server_key,
        "--client-ca",
        files.ca_crt,
        *(["--aio"] if aio else []),
    )
    assert served.mode == "mtls"
    mtls = ["--ca", files.ca_crt, "--cert", files.client_crt, "--key", files.client_key]
    code, out, _ = call(served.target, "--name", "Ann", *mtls)
    assert code == 0
    assert out.strip() == f"Hello Ann (from {CLIENT_SPIFFE_ID})"

    code, out, _ = call(served.target, "--health", "--json", *mtls)
    assert code == 0
    assert json.loads(out)["health"] == "SERVING"

    code, _, err = call(served.target, "--ca", files.ca_crt)
    assert code == 1
    assert "client_cert_required" in err
    code, _, err = call(
        served.target,
        "--ca",
        files.ca_crt,
        "--cert",
        files.intruder_crt,
        "--key",
        files.intruder_key,
    )
    assert code == 1
    assert "client_cert_rejected" in err
    code, _, err = call(
        served.target, "--ca", files.ca_crt, "--cert", files.expired_crt, "--key", files.expired_key
    )
    assert code == 1
    assert "client_cert_rejected" in err
    code, out, _ = call(
        served.target,
        "--json",
        "--ca",
        files.other_crt,
        "--cert",
        files.client_crt,
        "--key",
        files.client_key,
    )
    assert code == 1
    assert json.loads(out)["diagnosis"] == "unknown_authority"
    code, _, err = call(served.target, "--server-name", "elsewhere.example", *mtls)
    assert code == 1
    assert "hostname_mismatch" in err
    code, _, err = call(served.target, "--insecure")
    assert code == 1
    assert "server_requires_tls" in err

    log = stop_gracefully(served)
    assert f"SayHello from {CLIENT_SPIFFE_ID}" in log
    assert "PRIVATE KEY" not in log


@pytest.mark.parametrize("listen", ["127.0.0.1:0", ":0"], ids=["loopback", "every-interface"])
def test_tls_only_server_serves_clients_without_certificates(
    files: Files, start_server: object, listen: str
) -> None:
    """``--listen :0`` binds every interface (``[::]``), as grpc-go reads ``:PORT``; a loopback
    client reaches it either way."""
    served = start_server(  # type: ignore[operator]
        "--listen", listen, "--cert", files.server_crt, "--key", files.server_key, "--reflection"
    )
    assert served.mode == "tls"
    code, out, _ = call(served.target, "--name", "Bo", "--ca", files.ca_crt)
    assert code == 0
    assert out.strip() == "Hello Bo"
    code, _, err = call(served.target, "--ca", files.other_crt)
    assert code == 1
    assert "unknown_authority" in err
    assert set(reflected_services(served, files)) >= {
        "helloworld.Greeter",
        "grpc.health.v1.Health",
    }
    stop_gracefully(served)


def reflected_services(served: Served, files: Files) -> list[str]:
    """What server reflection lists, asked over the same TLS a client would use."""
    credentials = grpc.ssl_channel_credentials(Path(files.ca_crt).read_bytes())
    with grpc.secure_channel(served.target, credentials) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = list(database.get_services())
        method = (
            descriptor_pool.DescriptorPool(database)
            .FindServiceByName("helloworld.Greeter")
            .FindMethodByName("SayHello")
        )
        assert method.input_type.full_name == "helloworld.HelloRequest"
        return services


def test_plaintext_only_by_name(files: Files, start_server: object) -> None:
    served = start_server("--insecure")  # type: ignore[operator]
    assert served.mode == "plaintext"
    code, out, _ = call(served.target, "--insecure", "--name", "Cy")
    assert code == 0
    assert out.strip() == "Hello Cy"
    code, _, err = call(served.target, "--ca", files.ca_crt)
    assert code == 1
    assert "plaintext_server" in err
    stop_gracefully(served)


def test_encrypted_server_key_with_password_from_environment(
    files: Files, tmp_path: Path, pki: Pki
) -> None:
    """The key is decrypted in memory; without the password the server refuses to start."""
    args = [
        *GRPCSEC,
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--cert",
        files.client_crt,
        "--key",
        files.locked_key,
    ]
    env = _env()
    env.pop("GRPCSEC_KEY_PASSWORD", None)
    refused = subprocess.run(args, capture_output=True, text=True, env=env, timeout=30, check=False)
    assert refused.returncode == 2
    assert "encrypted" in refused.stderr
    assert "Traceback" not in refused.stderr


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    env = _env()
    env.pop("GRPCSEC_KEY_PASSWORD", None)
    return subprocess.run(
        [*GRPCSEC, "serve", *args], capture_output=True, text=True, env=env, timeout=30, check=False
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--cert", "{server_crt}"], "without its key"),
        (["--key", "{server_key}"], "without its certificate"),
        (["--cert", "{server_crt}", "--key", "{client_key}"], "does not belong"),
        (["--cert", "{ca_crt}", "--key", "{server_key}"], "CA certificate"),
        (["--cert", "{client_crt}", "--key", "{client_key}"], "serverAuth"),
        (
            ["--cert", "{server_crt}", "--key", "{server_key}", "--client-ca", "{client_crt}"],
            "not a CA",
        ),
        (["--cert", "{server_key}", "--key", "{server_key}"], "private key"),
        (["--cert", "{server_crt}", "--key", "{server_crt}"], "expected a PEM private key"),
        (["--cert", "{server_crt}", "--key", "{dir}/missing.key"], "no such file"),
        (["--insecure", "--cert", "{server_crt}"], "--insecure"),
        ([], "--insecure"),
        (["--listen", "127.0.0.1:99999", "--insecure"], "port"),
        (["--listen", "::1:5000", "--insecure"], "brackets"),
    ],
)
def test_bad_serve_input_is_one_line_exit_2(files: Files, args: list[str], needle: str) -> None:
    values = {
        name: getattr(files, name)
        for name in ("server_crt", "server_key", "client_crt", "client_key", "ca_crt")
    }
    values["dir"] = str(files.dir)
    argv = [a.format(**values) for a in args]
    if "--listen" not in argv:
        argv = ["--listen", "127.0.0.1:0", *argv]
    result = run_serve(*argv)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stdout


def test_port_in_use_says_so(files: Files, start_server: object) -> None:
    served = start_server("--insecure")  # type: ignore[operator]
    result = run_serve("--listen", served.target, "--insecure")
    assert result.returncode == 2
    # one line: grpc core's own "add_port.cc ... Address already in use" never comes first
    assert result.stderr.splitlines() == [
        f"error: cannot listen on {served.target}: the port is already in use"
    ], result.stderr
    stop_gracefully(served)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "--ca FILE"),
        (["--insecure", "--ca", "{ca_crt}"], "--insecure"),
        (["--ca", "{ca_crt}", "--cert", "{client_crt}"], "without its key"),
        (["--ca", "{client_crt}"], "not a CA"),
        (["--ca", "{dir}/nope.crt"], "no such file"),
    ],
)
def test_bad_call_input_is_exit_2(files: Files, args: list[str], needle: str) -> None:
    values = {"ca_crt": files.ca_crt, "client_crt": files.client_crt, "dir": str(files.dir)}
    code, out, err = call("127.0.0.1:1", *[a.format(**values) for a in args])
    assert code == 2
    assert needle in err
    assert out == ""


def test_call_refused_connection_is_explained(files: Files) -> None:
    code, out, _ = call("127.0.0.1:1", "--ca", files.ca_crt, "--json", "--timeout", "3")
    assert code == 1
    assert json.loads(out)["diagnosis"] == "connection_refused"
