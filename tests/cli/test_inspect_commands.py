"""``grpcsec inspect`` and ``grpcsec verify``, run in-process.

inspect: every field of every certificate, the chain-order verdict (a bundle of roots is a trust
bundle, not a broken chain) and one error line per unreadable file (exit 2). verify: exit 0 with
the chain, 1 with the specific reason, 2 for input that cannot be read.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from grpcsec.pki import CertificateAuthority, private_key_pem
from grpcsec.pki.crl import RevocationReason
from tests.cli.clirun import (
    PASSWORD_ENV,
    assert_one_error_line,
    make_ca,
    make_init,
    ok,
    plain,
    run,
)
from tests.crls import leaf_of, write_crl


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (PASSWORD_ENV, "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pki_dir(tmp_path: Path) -> Path:
    return make_init(tmp_path / "pki")


@pytest.fixture
def chain_dir(tmp_path: Path) -> Path:
    """root/ (CA "Root"), inter/ (CA "Issuing" under it) and srv.crt/.key issued by inter."""
    root = make_ca(tmp_path / "root", "--name", "Root")
    ok(run("ca", "intermediate", "--ca-dir", root, "--out-dir", tmp_path / "inter",
           "--name", "Issuing"))  # fmt: skip
    ok(run("issue", "server", "--ca-dir", tmp_path / "inter", "--out", tmp_path / "srv",
           "--host", "svc.internal"))  # fmt: skip
    return tmp_path


def inspect_json(*args: object) -> dict[str, object]:
    result = ok(run("inspect", *args, "--json"))
    data: dict[str, object] = json.loads(result.stdout)
    return data


def only_file(data: dict[str, object]) -> dict[str, object]:
    files = data["files"]
    assert isinstance(files, list)
    assert len(files) == 1
    entry: dict[str, object] = files[0]
    return entry


# -- inspect ---------------------------------------------------------------------------------------
def test_inspect_shows_every_field(pki_dir: Path) -> None:
    result = ok(run("inspect", pki_dir / "server.crt"))
    text = plain(result.stdout)
    for needle in (
        "subject     CN=localhost",
        "issuer      CN=grpcsec root CA",
        "serial",
        "not before",
        "not after",
        "left)",
        "DNS:localhost, IP:127.0.0.1, IP:::1",
        "ECDSA P-256 (256 bits)",
        "digitalSignature",
        "EKU         serverAuth",
        "CA          no",
        "SKI",
        "AKI",
        "SHA-256",
    ):
        assert needle in text, needle
    assert "PROBLEM" not in text
    assert result.stderr == ""


def test_inspect_json_shape(pki_dir: Path) -> None:
    entry = only_file(inspect_json(pki_dir / "server.crt"))
    assert entry["path"] == str(pki_dir / "server.crt")
    assert entry["kind"] == "certificate"
    assert entry["chain_ordered"] is True
    assert entry["problems"] == []
    certificates = entry["certificates"]
    assert isinstance(certificates, list)
    info = certificates[0]
    assert set(info) >= {
        "subject", "issuer", "serial", "not_before", "not_after", "status", "seconds_left",
        "time_left", "san", "spiffe_id", "key", "key_usage", "extended_key_usage", "is_ca",
        "path_length", "subject_key_id", "authority_key_id", "fingerprint_sha256",
    }  # fmt: skip
    assert info["status"] == "valid"
    assert info["san"]["dns"] == ["localhost"]
    assert info["is_ca"] is False
    assert "pem" not in info


def test_inspect_ca_certificate(pki_dir: Path) -> None:
    info = only_file(inspect_json(pki_dir / "ca.crt"))["certificates"][0]  # type: ignore[index]
    assert info["is_ca"] is True
    assert info["self_signed"] is True
    assert info["key_usage"] == ["keyCertSign", "cRLSign"]


def test_inspect_served_chain_is_in_order(chain_dir: Path) -> None:
    entry = only_file(inspect_json(chain_dir / "srv.crt"))
    assert entry["kind"] == "chain"
    assert entry["chain_ordered"] is True
    subjects = [c["subject"] for c in entry["certificates"]]  # type: ignore[attr-defined]
    assert subjects == ["CN=svc.internal", "CN=Issuing"]
    assert "chain order: OK" in plain(run("inspect", chain_dir / "srv.crt").stdout)


def test_inspect_flags_a_reversed_chain(chain_dir: Path) -> None:
    """Negative control for the ordered chain: the same two certificates, root-most first."""
    pems = x509.load_pem_x509_certificates((chain_dir / "srv.crt").read_bytes())
    reversed_file = chain_dir / "reversed.crt"
    reversed_file.write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in reversed(pems))
    )
    entry = only_file(inspect_json(reversed_file))
    assert entry["kind"] == "unordered"
    assert entry["chain_ordered"] is False
    assert entry["problems"]
    result = ok(run("inspect", reversed_file))  # informational: still exit 0
    assert "PROBLEM" in plain(result.stdout)


def test_a_bundle_of_roots_is_a_trust_bundle_not_a_broken_chain(tmp_path: Path) -> None:
    one, two = make_ca(tmp_path / "one"), make_ca(tmp_path / "two")
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes((one / "ca.crt").read_bytes() + (two / "ca.crt").read_bytes())
    entry = only_file(inspect_json(bundle))
    assert entry["kind"] == "trust_bundle"
    assert entry["problems"] == []
    text = plain(ok(run("inspect", bundle)).stdout)
    assert "trust bundle: 2 self-signed roots" in text
    assert "PROBLEM" not in text


def test_inspect_pem_prints_certificates_never_keys(pki_dir: Path) -> None:
    result = ok(run("inspect", pki_dir / "server.crt", "--pem"))
    assert "-----BEGIN CERTIFICATE-----" in result.stdout
    assert "PRIVATE KEY" not in result.stdout
    entry = only_file(inspect_json(pki_dir / "server.crt", "--pem"))
    pem = entry["certificates"][0]["pem"]  # type: ignore[index]
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    control = ok(run("inspect", pki_dir / "server.crt"))
    assert "BEGIN CERTIFICATE" not in control.stdout


def test_inspect_reads_der(pki_dir: Path, tmp_path: Path) -> None:
    certificate = x509.load_pem_x509_certificate((pki_dir / "server.crt").read_bytes())
    der = tmp_path / "server.der"
    der.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    entry = only_file(inspect_json(der))
    assert entry["certificates"][0]["subject"] == "CN=localhost"  # type: ignore[index]


def test_inspect_reports_an_expired_certificate(pki_dir: Path, tmp_path: Path) -> None:
    ok(run("issue", "client", "--ca-dir", pki_dir, "--out", tmp_path / "old", "--host", "old",
           "--not-before", "2020-01-01", "--not-after", "2020-02-01"))  # fmt: skip
    info = only_file(inspect_json(tmp_path / "old.crt"))["certificates"][0]  # type: ignore[index]
    assert info["status"] == "expired"
    assert info["seconds_left"] < 0
    assert "EXPIRED" in plain(ok(run("inspect", tmp_path / "old.crt")).stdout)


def _bad_file(tmp_path: Path, pki_dir: Path, how: str) -> Path:
    path = tmp_path / f"{how.replace(' ', '_')}.crt"
    pem = (pki_dir / "server.crt").read_bytes()
    if how == "garbage":
        path.write_bytes(b"hello, world\n")
    elif how == "truncated":
        path.write_bytes(pem[: len(pem) // 2])
    elif how == "corrupt base64":
        path.write_bytes(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
    elif how == "private key":
        path.write_bytes((pki_dir / "server.key").read_bytes())
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "directory":
        path.mkdir()
    return path  # "missing": never created


BAD_FILES = ["garbage", "truncated", "corrupt base64", "private key", "empty", "directory",
             "missing"]  # fmt: skip


@pytest.mark.parametrize("how", BAD_FILES)
def test_inspect_bad_file_is_one_line_and_exit_2(tmp_path: Path, pki_dir: Path, how: str) -> None:
    bad = _bad_file(tmp_path, pki_dir, how)
    assert_one_error_line(run("inspect", bad), str(bad))


def test_inspect_reports_good_files_next_to_bad_ones(tmp_path: Path, pki_dir: Path) -> None:
    bad1 = _bad_file(tmp_path, pki_dir, "garbage")
    bad2 = _bad_file(tmp_path, pki_dir, "missing")
    result = run("inspect", bad1, pki_dir / "server.crt", bad2, "--json")
    assert result.exit_code == 2
    lines = plain(result.stderr).strip().splitlines()
    assert len(lines) == 2
    assert str(bad1) in lines[0]
    assert str(bad2) in lines[1]
    files = json.loads(result.stdout)["files"]
    assert [f["path"] for f in files] == [str(bad1), str(pki_dir / "server.crt"), str(bad2)]
    assert "error" in files[0]
    assert files[1]["certificates"][0]["subject"] == "CN=localhost"
    human = run("inspect", bad1, pki_dir / "server.crt")
    assert human.exit_code == 2
    assert "CN=localhost" in plain(human.stdout)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_inspect_unreadable_file(tmp_path: Path, pki_dir: Path) -> None:
    (pki_dir / "server.crt").chmod(0)
    assert_one_error_line(run("inspect", pki_dir / "server.crt"), "permission denied")


# -- verify ----------------------------------------------------------------------------------------
def test_verify_ok_prints_the_chain(pki_dir: Path) -> None:
    result = ok(run("verify", pki_dir / "server.crt", "--ca", pki_dir / "ca.crt",
                    "--host", "127.0.0.1", "--key", pki_dir / "server.key"))  # fmt: skip
    line = plain(result.stdout).strip()
    assert line.startswith("OK: ")
    assert "key matches" in line
    assert re.search(r"chain: CN=localhost -> CN=grpcsec root CA [0-9a-f]{6}$", line)


def test_verify_json_shape(pki_dir: Path) -> None:
    result = ok(run("verify", pki_dir / "client.crt", "--ca", pki_dir / "ca.crt",
                    "--role", "client", "--json"))  # fmt: skip
    data = json.loads(result.stdout)
    assert data == {
        "schema": "grpcsec.verify/1",
        "ok": True,
        "reason": None,
        "message": data["message"],
        "chain": ["CN=client", data["chain"][1]],
    }
    assert re.fullmatch(r"CN=grpcsec root CA [0-9a-f]{6}", data["chain"][1])


def test_verify_intermediates_from_the_file_or_untrusted(chain_dir: Path) -> None:
    root = chain_dir / "root" / "ca.crt"
    ok(run("verify", chain_dir / "srv.crt", "--ca", root, "--host", "svc.internal"))
    leaf_only = chain_dir / "leaf.crt"
    leaf_only.write_bytes(
        x509.load_pem_x509_certificates((chain_dir / "srv.crt").read_bytes())[0].public_bytes(
            serialization.Encoding.PEM
        )
    )
    missing = run("verify", leaf_only, "--ca", root, "--json")
    assert missing.exit_code == 1
    assert json.loads(missing.stdout)["reason"] == "unknown_authority"
    ok(run("verify", leaf_only, "--ca", root, "--untrusted", chain_dir / "inter" / "ca.crt"))


def _failure(result_args: tuple[object, ...]) -> dict[str, object]:
    result = run("verify", *result_args, "--json")
    assert result.exit_code == 1, plain(result.output)
    data: dict[str, object] = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["chain"] == []
    human = run("verify", *result_args)
    assert human.exit_code == 1
    assert plain(human.stdout).startswith(f"FAILED ({data['reason']}): ")
    return data


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("expired", "expired"),
        ("not yet valid", "not_yet_valid"),
        ("wrong EKU", "wrong_eku"),
        ("wrong host", "hostname_mismatch"),
        ("wrong IP", "hostname_mismatch"),
        ("other CA", "unknown_authority"),
        ("CA as leaf", "not_a_leaf"),
        ("wrong key", "key_mismatch"),
    ],
)
def test_verify_failures_exit_1_with_the_reason(
    tmp_path: Path, pki_dir: Path, case: str, reason: str
) -> None:
    server, ca = pki_dir / "server.crt", pki_dir / "ca.crt"
    args: dict[str, tuple[object, ...]] = {
        "expired": (server, "--ca", ca, "--at", "2100-01-01T00:00:00Z"),
        "not yet valid": (server, "--ca", ca, "--at", "2000-01-01"),
        "wrong EKU": (pki_dir / "client.crt", "--ca", ca, "--role", "server"),
        "wrong host": (server, "--ca", ca, "--host", "example.com"),
        "wrong IP": (server, "--ca", ca, "--host", "10.1.2.3"),
        "other CA": (server, "--ca", make_ca(tmp_path / "other") / "ca.crt"),
        "CA as leaf": (ca, "--ca", ca),
        "wrong key": (server, "--ca", ca, "--key", pki_dir / "client.key"),
    }
    assert _failure(args[case])["reason"] == reason
    # Control: the certificate itself is fine with the right inputs.
    ok(run("verify", server, "--ca", ca, "--host", "localhost", "--key", pki_dir / "server.key"))


@pytest.mark.parametrize("how", BAD_FILES)
@pytest.mark.parametrize("which", ["cert", "ca", "untrusted"])
def test_verify_unreadable_input_is_exit_2(
    tmp_path: Path, pki_dir: Path, how: str, which: str
) -> None:
    bad = _bad_file(tmp_path, pki_dir, how)
    files = {"cert": pki_dir / "server.crt", "ca": pki_dir / "ca.crt", which: bad}
    args: list[object] = [files["cert"], "--ca", files["ca"]]
    if which == "untrusted":
        args += ["--untrusted", bad]
    assert_one_error_line(run("verify", *args), str(bad))
    assert_one_error_line(run("verify", *args, "--json"), str(bad))


@pytest.mark.parametrize(
    "how", ["DER certificate", "certificate", "garbage", "truncated", "missing", "directory"]
)
def test_verify_bad_key_file_is_exit_2(tmp_path: Path, pki_dir: Path, how: str) -> None:
    key = tmp_path / "bad.key"
    pem = (pki_dir / "server.key").read_bytes()
    if how == "DER certificate":
        certificate = x509.load_pem_x509_certificate((pki_dir / "server.crt").read_bytes())
        key.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    elif how == "certificate":
        key.write_bytes((pki_dir / "server.crt").read_bytes())
    elif how == "garbage":
        key.write_bytes(b"\x00\x01garbage")
    elif how == "truncated":
        key.write_bytes(pem[: len(pem) // 2])
    elif how == "directory":
        key.mkdir()
    result = run("verify", pki_dir / "server.crt", "--ca", pki_dir / "ca.crt", "--key", key)
    assert_one_error_line(result, str(key))


def test_verify_encrypted_key_uses_the_environment_password(
    tmp_path: Path, pki_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = serialization.load_pem_private_key((pki_dir / "server.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    encrypted = tmp_path / "enc.key"
    encrypted.write_bytes(private_key_pem(key, b"hunter2-pw"))
    args = ("verify", pki_dir / "server.crt", "--ca", pki_dir / "ca.crt", "--key", encrypted)
    no_password = run(*args)
    assert_one_error_line(no_password, "enc.key", PASSWORD_ENV)
    monkeypatch.setenv(PASSWORD_ENV, "wrong-pw")
    line = assert_one_error_line(run(*args), "enc.key", "does not decrypt")
    assert "wrong-pw" not in line
    monkeypatch.setenv(PASSWORD_ENV, "hunter2-pw")
    result = ok(run(*args))
    assert "hunter2-pw" not in result.output
    assert "key matches" in result.stdout


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--at", "next tuesday"), "next tuesday"),
        (("--host", "localhost", "--role", "client"), "--role client"),
    ],
)
def test_verify_bad_options_are_exit_2(pki_dir: Path, extra: tuple[str, ...], needle: str) -> None:
    result = run("verify", pki_dir / "server.crt", "--ca", pki_dir / "ca.crt", *extra)
    assert_one_error_line(result, needle)


# -- verify --crl ----------------------------------------------------------------------------------
def test_verify_crl_revoked_client_fails_with_date_and_reason(
    tmp_path: Path, pki_dir: Path
) -> None:
    client, ca = pki_dir / "client.crt", pki_dir / "ca.crt"
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    crl = write_crl(tmp_path / "ca.crl", pki_dir, leaf_of(client), revoked_at=moment,
                    reason=RevocationReason.KEY_COMPROMISE)  # fmt: skip
    data = _failure((client, "--ca", ca, "--crl", crl))
    assert data["reason"] == "revoked"
    message = str(data["message"])
    assert "2026-01-02 03:04:05Z" in message
    assert "key_compromise" in message
    assert f"{leaf_of(client).serial_number:x}" in message
    # Controls: the server certificate of the same CA is not on the list; no --crl: no check.
    result = ok(run("verify", pki_dir / "server.crt", "--ca", ca, "--crl", crl))
    assert "not revoked (1 CRL)" in plain(result.stdout)
    ok(run("verify", client, "--ca", ca))


def test_verify_crl_of_a_namesake_ca_or_expired_is_undetermined(
    tmp_path: Path, pki_dir: Path
) -> None:
    ca_cert = leaf_of(pki_dir / "ca.crt")
    namesake = CertificateAuthority.create(
        ca_cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value  # type: ignore[arg-type]
    )
    assert namesake.certificate.subject == ca_cert.subject
    forged = write_crl(tmp_path / "forged.crl", namesake)
    now = dt.datetime.now(dt.timezone.utc)
    expired = write_crl(tmp_path / "expired.crl", pki_dir, this_update=now - dt.timedelta(days=9),
                        next_update=now - dt.timedelta(days=2))  # fmt: skip
    client, ca = pki_dir / "client.crt", pki_dir / "ca.crt"
    for crl, words in (
        (forged, "not signed by the issuer's key"),
        (expired, "expired at its next update"),
    ):
        data = _failure((client, "--ca", ca, "--crl", crl))
        assert data["reason"] == "revocation_undetermined"
        assert words in str(data["message"])
        assert str(crl) in str(data["message"])
    # Control: a current CRL of the real CA next to the forged one lets the client through.
    good = write_crl(tmp_path / "good.crl", pki_dir)
    ok(run("verify", client, "--ca", ca, "--crl", forged, "--crl", good))


@pytest.mark.parametrize("how", ["garbage", "empty", "missing", "directory", "certificate"])
def test_verify_bad_crl_file_is_exit_2(tmp_path: Path, pki_dir: Path, how: str) -> None:
    bad = tmp_path / "bad.crl"
    if how == "garbage":
        bad.write_bytes(b"not a crl\n")
    elif how == "empty":
        bad.write_bytes(b"")
    elif how == "directory":
        bad.mkdir()
    elif how == "certificate":
        bad.write_bytes((pki_dir / "ca.crt").read_bytes())
    args = (pki_dir / "client.crt", "--ca", pki_dir / "ca.crt", "--crl", bad)
    assert_one_error_line(run("verify", *args), str(bad))
    assert_one_error_line(run("verify", *args, "--json"), str(bad))


def test_verify_crl_in_a_real_subprocess(tmp_path: Path, pki_dir: Path) -> None:
    """The installed entry point: exit 1 and the reason on stdout, as in-process."""
    client = pki_dir / "client.crt"
    crl = write_crl(tmp_path / "ca.crl", pki_dir, leaf_of(client))
    command = [sys.executable, "-m", "grpcsec.cli", "verify", str(client), "--ca",
               str(pki_dir / "ca.crt"), "--crl", str(crl), "--json"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["reason"] == "revoked"
