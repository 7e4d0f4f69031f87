"""Hostile client-certificate names on real servers: logs stay one escaped line, and an
ambiguous subject (two CNs, or a CN in a multi-valued RDN) never satisfies a CN allow-list.

In-process sync and aio servers (logs via ``caplog``) and a ``grpcsec serve`` subprocess (its
stderr read line by line) are called by clients whose certificates carry ESC sequences,
newlines, bidi overrides and Rich markup. Each refusal has its one-CN ``alice`` control, which
the same server allows.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from grpcsec.authn import ClientCertAllowList, RequireClientCert
from grpcsec.authz import Request, compile_policy, parse_policy
from grpcsec.cli import app
from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.identity import Peer
from grpcsec.interceptors import Guard
from grpcsec.material import KeyPair
from grpcsec.pki import CERT_MODE, KEY_MODE, PendingFile, write_files
from tests.authn.conftest import UNARY, invoke, invoke_error, serve_guarded
from tests.conftest import Pki
from tests.hostile_names import (
    BIDI_CN,
    ESCAPE_CN,
    HOSTILE_URI,
    MARKUP_CN,
    assert_inert,
    build_client,
    cn,
)

ORG = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme")
AMBIGUOUS = {
    "alice-then-mallory": [cn("alice"), cn("mallory")],
    "mallory-then-alice": [cn("mallory"), cn("alice")],
    "multi-valued-rdn": [x509.RelativeDistinguishedName([cn("alice"), ORG])],
    "two-cns-in-one-rdn": [x509.RelativeDistinguishedName([cn("alice"), cn("mallory")])],
}


def peer_of(chain_pem: bytes) -> Peer:
    return Peer.from_auth_context(
        {"transport_security_type": [b"ssl"], "x509_pem_cert": [chain_pem]}, address="ipv4:1.2:3"
    )


@pytest.mark.parametrize("subject", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
def test_an_ambiguous_subject_has_no_common_name(pki: Pki, subject: list[object]) -> None:
    cert, _ = build_client(pki.ca, subject)  # type: ignore[arg-type]
    seen = peer_of(cert)
    assert seen.common_name is None
    assert seen.common_name_ambiguous
    assert "alice" in (seen.subject or "")  # the full subject still shows every attribute
    assert seen.principal is None
    assert seen.display.startswith(f"{seen.subject} (")  # logs name the whole subject
    assert ClientCertAllowList(common_names=["alice"]).match(seen) is None
    assert ClientCertAllowList(common_names=["mallory"]).match(seen) is None
    control = peer_of(build_client(pki.ca, [cn("alice"), ORG])[0])
    assert control.common_name == "alice"
    assert not control.common_name_ambiguous
    assert ClientCertAllowList(common_names=["alice"]).match(control) == "cn=alice"


@pytest.mark.parametrize("subject", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
def test_a43_principal_patterns_see_the_whole_ambiguous_subject(
    pki: Pki, subject: list[object]
) -> None:
    """A43 matches the subject DN in RFC 4514 form, which shows every CN: an exact
    ``CN=alice`` principal is not satisfied by a subject that also names someone else."""
    policy = {
        "name": "p",
        "allow_rules": [{"name": "alice", "source": {"principals": ["CN=alice", "CN=mallory"]}}],
    }
    engine = compile_policy(parse_policy(policy))
    ambiguous = peer_of(build_client(pki.ca, subject)[0])  # type: ignore[arg-type]
    assert not engine.evaluate(Request(method="/a.B/C", peer=ambiguous)).allowed
    alice = peer_of(build_client(pki.ca, [cn("alice")])[0])
    assert engine.evaluate(Request(method="/a.B/C", peer=alice)).allowed  # the control


def pair(pki: Pki, subject: list[object], **names: list[str]) -> KeyPair:
    cert, key = build_client(pki.ca, subject, **names)  # type: ignore[arg-type]
    return KeyPair.from_pem(cert, key)


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_in_process_server_logs_hostile_names_as_one_escaped_line(
    kind: str, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """A CN allow-list for ``alice`` on a real server: the hostile clients are refused and each
    refusal is logged as one line with the escapes visible; the two-CN client is refused
    while the one-CN ``alice`` is allowed."""
    caplog.set_level(logging.INFO, logger="grpcsec")
    check = RequireClientCert(ClientCertAllowList(common_names=["alice"]))
    hostile = {
        "escape": pair(pki, [cn(ESCAPE_CN)]),
        "markup": pair(pki, [cn(MARKUP_CN)]),
        "bidi": pair(pki, [cn(BIDI_CN)]),
        "uri": pair(pki, [cn("uri")], uris=[HOSTILE_URI]),
        "two-cns": pair(pki, [cn("alice"), cn("mallory")]),
    }
    with serve_guarded(kind, server_credentials(pki.server, client_ca=pki.ca), Guard(check)) as s:
        for name, identity in hostile.items():
            with grpc.secure_channel(
                s.target, channel_credentials(ca=pki.ca, identity=identity)
            ) as channel:
                error = invoke_error(channel, UNARY)
            assert error.code() is grpc.StatusCode.PERMISSION_DENIED, name
        alice = pair(pki, [cn("alice")])
        with grpc.secure_channel(s.target, channel_credentials(ca=pki.ca, identity=alice)) as ch:
            assert invoke(ch, UNARY)  # the control: same server, one CN "alice"
    denials = [r.getMessage() for r in caplog.records if "PERMISSION_DENIED" in r.getMessage()]
    assert len(denials) == len(hostile)
    text = "\n".join(denials)
    assert_inert(text)
    assert "client certificate alice\\x1b[31m\\nINJECTED (" in text
    assert "\\u202eabc" in text
    assert "[bold red]x[/] :smile:" in text  # markup is only text in a log
    assert "CN=mallory,CN=alice" in text  # the ambiguous subject, shown whole
    for record in caplog.records:
        assert "\n" not in record.getMessage()


# -- grpcsec serve in a subprocess -----------------------------------------------------------------
def start_serve(argv: list[str]) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if k != "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"}
    process = subprocess.Popen(
        [sys.executable, "-m", "grpcsec.cli", "serve", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on 127.0.0.1:" in line, line
    return process, int(line.split("127.0.0.1:")[1].split()[0])


def stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    return err


@pytest.fixture
def files(pki: Pki, tmp_path: Path) -> Path:
    clients = {
        "hostile": build_client(pki.ca, [cn(ESCAPE_CN)], uris=[]),
        "markup": build_client(pki.ca, [cn(MARKUP_CN)]),
        "twocn": build_client(pki.ca, [cn("alice"), cn("mallory")]),
        "twocn-rev": build_client(pki.ca, [cn("mallory"), cn("alice")]),
        "alice": build_client(pki.ca, [cn("alice")]),
    }
    pending = [
        PendingFile(tmp_path / "ca.crt", pki.ca.certificate_pem(), CERT_MODE),
        PendingFile(tmp_path / "server.crt", pki.server.chain_pem(), CERT_MODE),
        PendingFile(tmp_path / "server.key", pki.server.key_pem(), KEY_MODE),
    ]
    for name, (cert, key) in clients.items():
        pending.append(PendingFile(tmp_path / f"{name}.crt", cert, CERT_MODE))
        pending.append(PendingFile(tmp_path / f"{name}.key", key, KEY_MODE))
    write_files(pending)
    return tmp_path


def call(files: Path, port: int, client: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["call", f"127.0.0.1:{port}", "--name", "x", "--ca", str(files / "ca.crt"),
         "--cert", str(files / f"{client}.crt"), "--key", str(files / f"{client}.key")],
    )  # fmt: skip
    return result.exit_code, result.stdout


@pytest.fixture
def serving(files: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    process, port = start_serve(
        ["--listen", "127.0.0.1:0", "--cert", str(files / "server.crt"),
         "--key", str(files / "server.key"), "--client-ca", str(files / "ca.crt"),
         "--allow-cn", "alice", "--allow-cn", ESCAPE_CN, "--allow-cn", MARKUP_CN]
    )  # fmt: skip
    try:
        yield process, port
    finally:
        stop(process)


@pytest.mark.slow
def test_grpcsec_serve_logs_stay_one_line_and_two_cns_are_refused(
    files: Path, serving: tuple[subprocess.Popen[str], int]
) -> None:
    process, port = serving
    code, out = call(files, port, "hostile")
    assert code == 0
    assert_inert(out)  # the reply names the caller; `grpcsec call` prints it inert
    assert "(from alice\\x1b[31m\\nINJECTED)" in out
    code, out = call(files, port, "markup")
    assert code == 0
    assert "[bold red]x[/] :smile:" in out  # printed literally, not styled or replaced
    assert "😄" not in out
    assert call(files, port, "twocn")[0] == 1
    assert call(files, port, "twocn-rev")[0] == 1
    assert call(files, port, "alice")[0] == 0  # the one-CN control
    time.sleep(0.2)
    err = stop(process)
    assert_inert(err)
    lines = err.splitlines()
    hellos = [line for line in lines if "SayHello from" in line]
    assert any("SayHello from alice\\x1b[31m\\nINJECTED (" in line for line in hellos), err
    assert any("[bold red]x[/] :smile:" in line for line in hellos), err
    denied = [line for line in lines if "PERMISSION_DENIED" in line]
    assert len(denied) == 2, err
    assert any("CN=mallory,CN=alice" in line for line in denied), err
    assert any("CN=alice,CN=mallory" in line for line in denied), err
