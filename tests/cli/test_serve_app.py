"""``grpcsec serve --config FILE --app module:function`` and ``grpcsec config check FILE``.

A real ``serve`` subprocess imports a module from its working directory (uvicorn style), calls
its function with the server, and serves what it registered; the flags override the file. Bad
references, bad files and a raising function are one line and exit 2 before any port binds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from grpcsec.pki import CERT_MODE, KEY_MODE, PendingFile, write_files
from tests.conftest import Pki

pytestmark = pytest.mark.slow

GRPCSEC = [sys.executable, "-m", "grpcsec.cli"]

APP = """
import grpc

def _ping(request, context):
    return b"pong:" + request

def register(server):
    handler = grpc.unary_unary_rpc_method_handler(_ping)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("shop.Ping", {"Ping": handler}),)
    )

async def _aping(request, context):
    return b"apong:" + request

async def register_aio(server):
    handler = grpc.unary_unary_rpc_method_handler(_aping)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("shop.Ping", {"Ping": handler}),)
    )

def explode(server):
    raise RuntimeError("the database is down")

not_a_function = 42
"""


@pytest.fixture
def project(pki: Pki, tmp_path: Path) -> Path:
    write_files(
        [
            PendingFile(tmp_path / "ca.crt", pki.ca.certificate_pem(), CERT_MODE),
            PendingFile(tmp_path / "server.crt", pki.server.chain_pem(), CERT_MODE),
            PendingFile(tmp_path / "server.key", pki.server.key_pem(), KEY_MODE),
        ]
    )
    (tmp_path / "shop.py").write_text(APP)
    (tmp_path / "grpcsec.toml").write_text(
        'listen = "127.0.0.1:1"\n[tls]\ncert = "server.crt"\nkey = "server.key"\n'
        'client_ca = "ca.crt"\n'
    )
    return tmp_path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"}


def _grpcsec(cwd: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``grpcsec ARGV`` run to completion in ``cwd`` (bounded)."""
    return subprocess.run(
        [*GRPCSEC, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ping(pki: Pki, port: int, *, with_cert: bool = True) -> bytes:
    root = pki.ca.certificate_pem()
    credentials = (
        grpc.ssl_channel_credentials(root, pki.client.key_pem(), pki.client.chain_pem())
        if with_cert
        else grpc.ssl_channel_credentials(root)
    )
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        reply: bytes = channel.unary_unary("/shop.Ping/Ping")(b"x", timeout=5)
    return reply


@pytest.mark.parametrize(
    ("aio", "function", "answer"),
    [(False, "register", b"pong:x"), (True, "register_aio", b"apong:x")],
)
def test_serve_runs_the_users_app_with_the_file_and_flags(
    project: Path, pki: Pki, aio: bool, function: str, answer: bytes
) -> None:
    port = _free_port()  # the file says port 1 (not bindable): the flag must win
    argv = [*GRPCSEC, "serve", "--config", "grpcsec.toml", "--app", f"shop:{function}"]
    argv += ["--listen", f"127.0.0.1:{port}", *(["--aio"] if aio else [])]
    process = subprocess.Popen(
        argv, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"listening on 127.0.0.1:{port} (mtls" in line, process.stderr
        assert _ping(pki, port) == answer
        with pytest.raises(grpc.RpcError) as caught:  # the file's client CA still applies
            _ping(pki, port, with_cert=False)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("reference", "needle"),
    [
        ("nope:register", "no module named 'nope'"),
        ("shop:missing", "shop has no attribute 'missing'"),
        ("shop:not_a_function", "not a function"),
        ("shop:explode", "RuntimeError: the database is down"),
        ("shop", "use module:function"),
        ("../etc:x", "use module:function"),
    ],
)
def test_a_bad_app_is_one_line_and_nothing_binds(
    project: Path, reference: str, needle: str
) -> None:
    port = _free_port()
    result = _grpcsec(
        project,
        [
            "serve",
            "--config",
            "grpcsec.toml",
            "--app",
            reference,
            "--listen",
            f"127.0.0.1:{port}",
        ],
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert needle in errors[0]
    assert "Traceback" not in result.stderr
    assert "listening on" not in result.stdout


def test_config_check_prints_the_effective_configuration(project: Path) -> None:
    result = _grpcsec(project, ["config", "check", "grpcsec.toml"])
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["valid"] is True
    assert shown["files_checked"] is True
    assert shown["config"]["mode"] == "mtls"
    assert shown["config"]["tls"]["cert"] == str(project / "server.crt")
    assert shown["config"]["reflection"] is False


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            lambda d: (d / "grpcsec.toml").write_text("[tls]\ncert='a'\nkey='b'\nrelaod=1"),
            "did you mean tls.reload?",
        ),
        (lambda d: (d / "server.key").write_text("junk"), "server.key"),
        (lambda d: (d / "ca.crt").write_bytes((d / "server.crt").read_bytes()), "not a CA"),
    ],
)
def test_config_check_refuses_a_bad_configuration(
    project: Path, change: object, needle: str
) -> None:
    change(project)  # type: ignore[operator]
    result = _grpcsec(project, ["config", "check", "grpcsec.toml"])
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert result.stdout == ""
