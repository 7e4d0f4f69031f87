"""``grpcsec doctor``: exit codes, the readable report, ``--json``, usage errors, secrets kept."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner

from grpcsec.cli import app
from grpcsec.doctor import DIAGNOSES
from grpcsec.pki import KEY_MODE, PendingFile, load_private_key, private_key_pem, write_files
from tests.doctor.conftest import (
    Files,
    grpcio_server,
    grpcsec_server,
    make_files,
    server_credentials,
    serving,
    silent_listener,
)

pytestmark = pytest.mark.slow

TOKEN = "cli-secret-token-7f3a9c"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    return make_files(tmp_path_factory.mktemp("doctor-cli"))


def doctor(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["doctor", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_healthy_server_exits_0_with_a_readable_report(files: Files) -> None:
    with grpcsec_server(files, client_ca="ca.crt") as server:
        address = str(server.address)
        code, out, _ = doctor(
            address, "--ca", files("ca.crt"), "--cert", files("client.crt"), "--key",
            files("client.key"),
        )  # fmt: skip
    assert code == 0, out
    assert f"grpcsec doctor {address}" in out
    assert "PASS grpc_health" in out
    assert "diagnosis: ok" in out


def test_json_report_shape(files: Files) -> None:
    with grpcsec_server(files) as server:
        code, out, _ = doctor(str(server.address), "--ca", files("ca.crt"), "--json")
    assert code == 0
    document = json.loads(out)
    assert list(document) == ["schema", "target", "ok", "diagnosis", "checks", "server"]
    assert document["schema"] == "grpcsec.doctor/1"
    assert document["ok"] is True
    assert document["diagnosis"] == "ok"
    assert document["target"] == str(server.address)
    for check in document["checks"]:
        assert list(check) == ["name", "status", "code", "message", "fix"]
    server_facts = document["server"]
    assert server_facts["alpn"] == "h2"
    assert server_facts["tls_versions"]["TLSv1.3"] == "accepted"
    assert server_facts["roots"]["origin"] == "explicit"
    assert server_facts["chain"][0]["san"]["ip"] == ["127.0.0.1", "::1"]


def test_problem_exits_1_and_names_cause_and_fix(files: Files) -> None:
    with grpcsec_server(files, client_ca="ca.crt") as server:
        code, out, _ = doctor(str(server.address), "--ca", files("ca.crt"))
        json_code, json_out, _ = doctor(str(server.address), "--ca", files("ca.crt"), "--json")
    assert code == 1
    assert "FAIL client_auth" in out
    assert "diagnosis: client_cert_required" in out
    assert "fix: pass --cert FILE --key FILE" in out
    assert json_code == 1
    document = json.loads(json_out)
    assert document["ok"] is False
    assert document["diagnosis"] == "client_cert_required"
    assert document["diagnosis"] in DIAGNOSES


def test_token_is_used_but_never_printed(files: Files) -> None:
    def check(request: Any, context: Any) -> Any:
        if dict(context.invocation_metadata()).get("authorization") != f"Bearer {TOKEN}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "no")
        return serving(request, context)

    credentials = server_credentials(files, "server.crt", "server.key")
    with grpcio_server(credentials, check) as target:
        outputs = [
            doctor(str(target), "--ca", files("ca.crt"), "--token", TOKEN, *extra)
            for extra in ((), ("--json",))
        ]
        refused = doctor(str(target), "--ca", files("ca.crt"), "--token", TOKEN + "x")
    for code, out, err in outputs:
        assert code == 0, out
        assert TOKEN not in out + err
    code, out, err = refused
    assert code == 1
    assert "unauthenticated" in out
    assert TOKEN not in out + err


def test_black_hole_ends_within_the_timeout(files: Files) -> None:
    with silent_listener() as target:
        start = time.monotonic()
        code, out, _ = doctor(str(target), "--ca", files("ca.crt"), "--timeout", "1", "--json")
        took = time.monotonic() - start
    assert code == 1
    assert json.loads(out)["diagnosis"] == "timeout"
    assert took < 3.0


def test_plaintext_server_with_insecure(files: Files) -> None:
    with grpcsec_server(files, cert=None) as server:
        code, out, _ = doctor(str(server.address), "--insecure")
    assert code == 0
    assert "(plaintext)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give a TARGET"),
        (("--cert", "x.crt"), "give a TARGET"),
        (("127.0.0.1:1", "--insecure", "--ca", "ca.crt"), "--insecure checks a plaintext"),
        (("127.0.0.1:1", "--insecure", "--token", TOKEN), "clear text"),
        (("127.0.0.1:1", "--cert", "c.crt"), "both --cert and --key"),
        (("127.0.0.1:1", "--role", "client"), "--role and --host"),
        (("--cert", "c.crt", "--key", "c.key", "--token", TOKEN), "need a TARGET"),
        (("no-port",), "use HOST:PORT"),
        (("::1:443",), "brackets"),
        (("127.0.0.1:1", "--timeout", "0"), "positive"),
        (("127.0.0.1:1", "--ca", "/nonexistent/ca.crt"), "/nonexistent/ca.crt"),
        (("127.0.0.1:1", "--token", "two words"), "without spaces"),
    ],
)
def test_bad_usage_exits_2_with_one_line(args: tuple[str, ...], message: str) -> None:
    code, out, err = doctor(*args)
    assert code == 2, out + err
    assert message in err
    assert "Traceback" not in err
    assert TOKEN not in out + err


def test_local_files_mode(files: Files) -> None:
    code, out, _ = doctor("--cert", files("server.crt"), "--key", files("server.key"))
    assert code == 0
    assert "PASS key_pair" in out
    code, out, _ = doctor(
        "--cert", files("client.crt"), "--key", files("client.key"), "--role", "client", "--json"
    )
    assert code == 0
    document = json.loads(out)
    assert document["target"] is None
    assert document["files"]["role"] == "client"
    code, out, _ = doctor(
        "--cert", files("server.crt"), "--key", files("server.key"), "--host", "api.example"
    )
    assert code == 1
    assert "diagnosis: hostname_mismatch" in out


def test_encrypted_key_password_comes_from_the_environment(
    files: Files, tmp_path_factory: pytest.TempPathFactory
) -> None:
    key = load_private_key(Path(files("server.key")).read_bytes())
    locked = tmp_path_factory.mktemp("locked") / "server.key"
    write_files([PendingFile(locked, private_key_pem(key, b"env-pass"), KEY_MODE)])
    args = ("--cert", files("server.crt"), "--key", str(locked))
    code, _, err = doctor(*args, env={"GRPCSEC_KEY_PASSWORD": ""})
    assert code == 2
    code, out, err = doctor(*args, env={"GRPCSEC_KEY_PASSWORD": "env-pass"})
    assert code == 0, err
    assert "env-pass" not in out + err
