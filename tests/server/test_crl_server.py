"""CRLs enforced by secure_server and aio_secure_server on real grpcio servers over real mTLS.

A root CA with an intermediate; CRLs as files in a directory, watched every 100 ms. Revoked
clients (a leaf of the root, a leaf of the intermediate, a leaf under a revoked intermediate)
get UNAUTHENTICATED with reason ``revoked``; their controls (clients of the same CAs that are not
listed) are served. A revocation written while the server runs applies to an open connection
within a bounded wait; a garbage or forged replacement is refused and the last good CRLs stay;
an expired CRL makes calls ``revocation_undetermined`` unless ``allow_undetermined``; a missing,
garbage, forged or namesake CRL at start is a one-line error before anything binds.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from grpcsec.errors import ConfigurationError, GrpcsecError
from grpcsec.pki import IssuedCertificate
from grpcsec.server import SecurityConfig, secure_server
from tests.conftest import TIMEOUT, WHOAMI, call_error, whoami
from tests.revocation.material import (
    DAY,
    Material,
    crl_bytes,
    forged_crl_bytes,
    make_material,
    write,
)
from tests.server.test_secure_server import run, scrape_until

WAIT = 10.0


@pytest.fixture
def m(tmp_path: Path) -> Material:
    material = make_material(tmp_path)
    (tmp_path / "crls").mkdir()
    write(
        tmp_path / "crls" / "root.crl",
        crl_bytes(material.root, material.revoked.certificate, material.inter2.certificate),
    )
    write(
        tmp_path / "crls" / "inter.crl",
        crl_bytes(material.inter, material.inter_revoked.certificate),
    )
    return material


def config(m: Material, *, crl: str = '["crls"]', extra: str = "") -> SecurityConfig:
    path = m.dir / "grpcsec.toml"
    path.write_text(
        f"""
listen = "127.0.0.1:0"
shutdown_grace = "1s"
[tls]
cert = "server.crt"
key = "server.key"
client_ca = "ca.crt"
reload_interval = "100ms"
crl = {crl}
{extra}
[authn]
allow_any_client = true
[metrics]
listen = "127.0.0.1:0"
"""
    )
    return SecurityConfig.load(path)


def creds(m: Material, client: IssuedCertificate) -> Any:
    return grpc.ssl_channel_credentials(
        m.root.certificate_pem(), client.key_pem(), client.chain_pem()
    )


def unauthenticated(target: str, credentials: Any) -> bool:
    return call_error(target, credentials).code() is grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_revoked_clients_are_refused_and_the_others_served(
    m: Material, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="grpcsec")
    with run(config(m), kind) as running:
        for name in ("good", "inter_good"):
            assert whoami(running.target, creds(m, m.clients()[name]))["client_cert_presented"]
        for name in ("revoked", "inter_revoked", "under_inter2"):
            assert unauthenticated(running.target, creds(m, m.clients()[name])), name
        status = running.status()
        assert status["calls"]["allowed"] == 2
        assert status["calls"]["denied"]["unauthenticated"] == {"revoked": 3}
        crls = {c["issuer"]: c for c in status["crl"]["crls"]}
        root = crls[m.root.certificate.subject.rfc4514_string()]
        assert root["revoked"] == 2 and root["number"] == 1 and root["next_update"]
        assert root["source"].endswith("root.crl")
        assert status["crl"]["reload"]["last_result"] in {"loaded", "unchanged"}
        assert status["crl"]["reload"]["reload_failures"] == 0
        series = 'grpcsec_calls_denied_total{code="unauthenticated",reason="revoked"} 3.0'
        metrics = scrape_until(running.metrics_port, series)
        assert series in metrics
        # the CRLs in service are monitored like certificates (issue 14 item 5)
        root_name = m.root.certificate.subject.rfc4514_string()
        entries = (
            f'grpcsec_crl_revoked_entries{{issuer="{root_name}",source="{root["source"]}"}} 2.0'
        )
        assert entries in metrics
        assert f'grpcsec_crl_next_update_timestamp_seconds{{issuer="{root_name}"' in metrics
    serial = format(m.revoked.certificate.serial_number, "x")
    lines = [r.getMessage() for r in caplog.records if f"serial {serial} " in r.getMessage()]
    assert lines and "was revoked on" in lines[0] and "for key_compromise" in lines[0]
    assert "root.crl" in lines[0] and "reason=revoked" in lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_revocation_written_while_running_applies_to_an_open_connection(
    m: Material, kind: str
) -> None:
    write(m.path("crls") / "root.crl", crl_bytes(m.root, number=1))
    with run(config(m), kind) as running:
        with grpc.secure_channel(running.target, creds(m, m.good)) as channel:
            call = channel.unary_unary(WHOAMI)
            call(b"", timeout=TIMEOUT)  # served, and the connection stays open
            write(m.path("crls") / "root.crl", crl_bytes(m.root, m.good.certificate, number=2))
            deadline = time.monotonic() + WAIT
            code = grpc.StatusCode.OK
            while time.monotonic() < deadline:
                try:
                    call(b"", timeout=TIMEOUT)
                except grpc.RpcError as exc:
                    code = exc.code()
                    break
                time.sleep(0.05)
            assert code is grpc.StatusCode.UNAUTHENTICATED
            assert time.monotonic() < deadline
        # control: another client of the same CA is still served
        assert whoami(running.target, creds(m, m.inter_good))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_bad_replacement_is_refused_and_the_last_good_crls_stay(m: Material, kind: str) -> None:
    root_crl = m.path("crls") / "root.crl"
    with run(config(m), kind) as running:
        for bad in (b"garbage", forged_crl_bytes(m.root, m.namesake)):
            write(root_crl, bad)
            assert running.reload()["crl"] == "refused"
            assert unauthenticated(running.target, creds(m, m.revoked))  # still revoked
            assert whoami(running.target, creds(m, m.good))  # still served
        root_crl.unlink()  # a missing CRL: the root's revocations must not be dropped
        assert running.reload()["crl"] == "refused"
        assert unauthenticated(running.target, creds(m, m.revoked))
        reload = running.status()["crl"]["reload"]
        assert reload["reload_failures"] >= 3
        assert "no CRL of" in reload["last_failure"]["message"]
        assert reload["last_failure"]["message"].startswith("CRLs not reloaded")
        assert running.status()["crl"]["generation"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_an_expired_crl_is_undetermined_unless_allowed(
    m: Material, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="grpcsec")
    long_ago = m.now - 3 * DAY
    write(
        m.path("crls") / "root.crl",
        crl_bytes(m.root, this_update=long_ago, next_update=long_ago + DAY),
    )
    with run(config(m), kind) as running:
        assert unauthenticated(running.target, creds(m, m.good))
        denied = running.status()["calls"]["denied"]["unauthenticated"]
        assert denied == {"revocation_undetermined": 1}
    said = [r.getMessage() for r in caplog.records if "undetermined" in r.getMessage()]
    assert said and "root.crl" in said[0] and "expired at its next update" in said[0]
    with run(config(m, extra="allow_undetermined = true"), kind) as running:
        assert whoami(running.target, creds(m, m.good))
        assert unauthenticated(running.target, creds(m, m.inter_revoked))  # decidable: refused


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "missing.crl"),
        (b"garbage", "not a valid CRL"),
        ("forged", "not signed by that CA"),
        ("namesake", "not signed by that CA"),
    ],
)
def test_a_bad_crl_at_start_is_one_line_before_binding(
    m: Material, content: bytes | str | None, words: str
) -> None:
    if content == "forged":
        write(m.path("missing.crl"), forged_crl_bytes(m.root, m.namesake))
    elif content == "namesake":
        write(m.path("missing.crl"), crl_bytes(m.namesake, m.good.certificate))
    elif isinstance(content, bytes):
        write(m.path("missing.crl"), content)
    with pytest.raises(GrpcsecError) as caught:
        secure_server(config(m, crl='["missing.crl"]'))
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("tls", "words"),
    [
        ("crl = 3", "tls.crl: expected a list of strings"),
        ('crl = ["a.crl", ""]', "tls.crl[1]: expected a non-empty string"),
        ('allow_undetermined = "yes"', "tls.allow_undetermined: expected true or false"),
        ("allow_undetermind = true", "did you mean tls.allow_undetermined?"),
    ],
)
def test_config_errors_name_the_dotted_key(m: Material, tls: str, words: str) -> None:
    path = m.dir / "bad.toml"
    path.write_text(
        f'[tls]\ncert = "server.crt"\nkey = "server.key"\nclient_ca = "ca.crt"\n{tls}\n'
    )
    with pytest.raises(ConfigurationError, match=re.escape(words)):
        SecurityConfig.load(path)


def test_crl_needs_mtls_and_allow_undetermined_needs_crl(m: Material) -> None:
    base = {"tls": {"cert": "server.crt", "key": "server.key"}}
    with pytest.raises(ConfigurationError, match=r"set tls\.client_ca"):
        SecurityConfig.from_mapping({"tls": {**base["tls"], "crl": ["x.crl"]}}, base=m.dir)
    with pytest.raises(ConfigurationError, match=r"needs tls.crl \(--crl\)"):
        SecurityConfig.from_mapping(
            {"tls": {**base["tls"], "client_ca": "ca.crt", "allow_undetermined": True}},
            base=m.dir,
        )
    good = config(m)
    assert SecurityConfig.from_mapping(good.to_mapping(), source=good.source) == good


def test_serve_with_a_garbage_crl_is_one_line_and_exit_2(m: Material) -> None:
    write(m.path("bad.crl"), b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
    args = ["--cert", "server.crt", "--key", "server.key", "--client-ca", "ca.crt"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpcsec.cli",
            "serve",
            "--listen",
            "127.0.0.1:0",
            *args,
            "--allow-any-client",
            "--crl",
            "crls",
            "--crl",
            "bad.crl",
        ],
        cwd=m.dir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "bad.crl" in lines[0] and "not a valid CRL" in lines[0]
    assert "Traceback" not in done.stderr
    assert "listening on" not in done.stdout
