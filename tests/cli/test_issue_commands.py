"""``grpcsec issue`` and ``grpcsec sign``, run in-process: names, profiles and windows, the
chain and key written all or nothing (0644, 0600), broken CA directories and CSRs as one error
line with exit code 2 and no new file; each positive case has a negative control next to it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.cli.clirun import (
    PASSWORD_ENV,
    assert_one_error_line,
    certs,
    eku,
    is_ca,
    make_ca,
    make_init,
    mode,
    ok,
    plain_environment,  # noqa: F401 (autouse fixture)
    run,
    san_strings,
    snapshot,
    verify,
)


# -- grpcsec issue ---------------------------------------------------------------------------------
@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    return make_ca(tmp_path / "ca", "--name", "Test CA")


def test_issue_server_with_every_kind_of_name(tmp_path: Path, ca_dir: Path) -> None:
    prefix = tmp_path / "out" / "orders"
    result = ok(
        run("issue", "server", "--ca-dir", ca_dir, "--out", prefix,
            "--dns", "orders.internal", "--ip", "10.0.0.7", "--uri", "https://acme.org/orders",
            "--email", "ops@acme.org", "--host", "orders", "--cn", "Orders", "--json")
    )  # fmt: skip
    assert snapshot(tmp_path / "out") == ["orders.crt", "orders.key"]
    assert mode(prefix.with_name("orders.key")) == 0o600
    assert mode(prefix.with_name("orders.crt")) == 0o644
    leaf = certs(prefix.with_name("orders.crt"))[0]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Orders"
    assert san_strings(leaf) == [
        "orders",
        "orders.internal",
        "10.0.0.7",
        "https://acme.org/orders",
        "ops@acme.org",
    ]
    data = json.loads(result.stdout)
    assert data["profile"] == "server"
    assert data["files"][1] == {"path": str(prefix) + ".key", "mode": "0600"}
    assert data["certificates"][0]["certificate"]["extended_key_usage"] == ["serverAuth"]
    assert "PRIVATE KEY" not in result.stdout


@pytest.mark.parametrize(
    ("profile", "server_ok", "client_ok"),
    [("server", True, False), ("client", False, True), ("peer", True, True)],
)
def test_issue_profiles_decide_the_usable_roles(
    tmp_path: Path, ca_dir: Path, profile: str, server_ok: bool, client_ok: bool
) -> None:
    prefix = tmp_path / profile
    ok(run("issue", profile, "--ca-dir", ca_dir, "--out", prefix, "--host", "localhost",
           "--spiffe-id", "spiffe://acme.org/ns/prod/sa/orders"))  # fmt: skip
    leaf = certs(prefix.with_name(f"{profile}.crt"))[0]
    assert not is_ca(leaf)
    assert "spiffe://acme.org/ns/prod/sa/orders" in san_strings(leaf)
    ca = ca_dir / "ca.crt"
    as_server = verify(f"{prefix}.crt", "--ca", ca, "--role", "server")
    as_client = verify(f"{prefix}.crt", "--ca", ca, "--role", "client")
    assert as_server["ok"] is server_ok
    assert as_client["ok"] is client_ok
    for failed in (r for r in (as_server, as_client) if not r["ok"]):
        assert failed["reason"] == "wrong_eku"


def test_issue_explicit_window_can_issue_an_expired_test_certificate(
    tmp_path: Path, ca_dir: Path
) -> None:
    ok(run("issue", "server", "--ca-dir", ca_dir, "--out", tmp_path / "old", "--host", "h",
           "--not-before", "2020-01-01", "--not-after", "2020-01-02T00:00:00Z"))  # fmt: skip
    leaf = certs(tmp_path / "old.crt")[0]
    assert leaf.not_valid_after_utc.isoformat() == "2020-01-02T00:00:00+00:00"
    assert verify(tmp_path / "old.crt", "--ca", ca_dir / "ca.crt")["reason"] == "expired"
    # Control: the default window verifies now.
    ok(run("issue", "server", "--ca-dir", ca_dir, "--out", tmp_path / "new", "--host", "h"))
    assert verify(tmp_path / "new.crt", "--ca", ca_dir / "ca.crt")["ok"] is True


def test_issue_valid_sets_the_lifetime(tmp_path: Path, ca_dir: Path) -> None:
    ok(run("issue", "client", "--ca-dir", ca_dir, "--out", tmp_path / "c", "--host", "c",
           "--valid", "24h"))  # fmt: skip
    leaf = certs(tmp_path / "c.crt")[0]
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime.total_seconds() == 24 * 3600 + 60  # plus the one-minute backdate


@pytest.mark.parametrize(
    ("window", "needle"),
    [
        (["--not-before", "2030-01-02", "--not-after", "2030-01-01"], "impossible validity"),
        (["--not-after", "2020-01-01", "--valid", "1d"], "--valid"),
        (["--not-before", "yesterday"], "yesterday"),
        (["--valid", "forever"], "forever"),
        (["--valid", "20y"], "outlive"),
    ],
)
def test_issue_impossible_validity_writes_nothing(
    tmp_path: Path, ca_dir: Path, window: list[str], needle: str
) -> None:
    before = snapshot(tmp_path)
    result = run("issue", "server", "--ca-dir", ca_dir, "--out", tmp_path / "s", "--host", "h",
                 *window)  # fmt: skip
    assert_one_error_line(result, needle)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--ip", "300.1.1.1"),
        ("--host", "300.1.1.1"),
        ("--spiffe-id", "spiffe://Bad/ID"),
        ("--spiffe-id", "spiffe://td"),
        ("--spiffe-id", "https://not-spiffe/x"),
        ("--uri", "spiffe://td"),
        ("--host", "spiffe://Bad/ID"),
        ("--dns", "bad-.example"),
        ("--dns", "*.com"),
        ("--email", "nobody"),
    ],
)
def test_issue_malformed_names_write_nothing(
    tmp_path: Path, ca_dir: Path, option: str, value: str
) -> None:
    before = snapshot(tmp_path)
    result = run("issue", "server", "--ca-dir", ca_dir, "--out", tmp_path / "s", option, value)
    assert_one_error_line(result, value)
    assert snapshot(tmp_path) == before


def test_issue_without_any_name_is_refused(tmp_path: Path, ca_dir: Path) -> None:
    result = run("issue", "server", "--ca-dir", ca_dir, "--out", tmp_path / "s", "--cn", "x")
    assert_one_error_line(result, "subject alternative name")
    assert not (tmp_path / "s.crt").exists()


def test_issue_out_is_a_prefix(tmp_path: Path, ca_dir: Path) -> None:
    result = run("issue", "server", "--ca-dir", ca_dir, "--out", tmp_path / "s.crt", "--host", "h")
    assert_one_error_line(result, "prefix")
    assert not (tmp_path / "s.crt").exists()


def test_issue_ed25519_leaf_needs_allow_unsupported_key(tmp_path: Path, ca_dir: Path) -> None:
    args = ("issue", "peer", "--ca-dir", ca_dir, "--host", "h", "--key-type", "ed25519")
    assert_one_error_line(run(*args, "--out", tmp_path / "a"), "--allow-unsupported-key")
    assert not (tmp_path / "a.key").exists()
    ok(run(*args, "--out", tmp_path / "b", "--allow-unsupported-key"))
    assert b"PRIVATE KEY" in (tmp_path / "b.key").read_bytes()


@pytest.mark.parametrize("key_type", ["ecdsa-p384", "rsa-2048"])
def test_issue_other_key_types(tmp_path: Path, ca_dir: Path, key_type: str) -> None:
    result = ok(run("issue", "server", "--ca-dir", ca_dir, "--out", tmp_path / "s",
                    "--host", "h", "--key-type", key_type, "--json"))  # fmt: skip
    key = json.loads(result.stdout)["certificates"][0]["certificate"]["key"]
    assert key["size"] == {"ecdsa-p384": 384, "rsa-2048": 2048}[key_type]


def test_issue_refuses_to_overwrite_and_force_replaces(tmp_path: Path, ca_dir: Path) -> None:
    (tmp_path / "s.key").write_bytes(b"keep")
    args = ("issue", "server", "--ca-dir", ca_dir, "--out", tmp_path / "s", "--host", "h")
    assert_one_error_line(run(*args), "s.key", "--force")
    assert not (tmp_path / "s.crt").exists()
    assert (tmp_path / "s.key").read_bytes() == b"keep"
    ok(run(*args, "--force"))
    assert (tmp_path / "s.key").read_bytes() != b"keep"
    assert mode(tmp_path / "s.key") == 0o600


def test_issue_with_an_encrypted_ca_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "pw-for-ca")
    ca = make_ca(tmp_path / "ca", "--encrypt-key")
    ok(run("issue", "server", "--ca-dir", ca, "--out", tmp_path / "s", "--host", "h"))
    monkeypatch.setenv(PASSWORD_ENV, "not-it")
    wrong = run("issue", "server", "--ca-dir", ca, "--out", tmp_path / "t", "--host", "h")
    assert_one_error_line(wrong, "ca.key", "does not decrypt")
    assert not (tmp_path / "t.crt").exists()


# -- bad CA directories ----------------------------------------------------------------------------
def _break_ca(tmp_path: Path, how: str) -> tuple[Path, str]:
    """A CA directory broken in one way, and the file name the error must mention."""
    good = make_init(tmp_path / "good")
    bad = tmp_path / "bad"
    bad.mkdir()
    cert, key = bad / "ca.crt", bad / "ca.key"
    pem = (good / "ca.crt").read_bytes()
    if how != "missing ca.crt":
        cert.write_bytes(pem)
        key.write_bytes((good / "ca.key").read_bytes())
    if how == "garbage ca.crt":
        cert.write_bytes(b"this is not a certificate\n")
    elif how == "truncated ca.crt":
        cert.write_bytes(pem[: len(pem) // 2])
    elif how == "key as ca.crt":
        cert.write_bytes(key.read_bytes())
    elif how == "directory as ca.crt":
        cert.unlink()
        cert.mkdir()
    elif how == "DER ca.key":
        der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
        key.write_bytes(der)
        return bad, "ca.key"
    elif how == "garbage ca.key":
        key.write_bytes(
            b"-----BEGIN " + b"PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"
        )
        return bad, "ca.key"
    elif how == "missing ca.key":
        key.unlink()
        return bad, "ca.key"
    elif how == "mismatched key":
        key.write_bytes((good / "server.key").read_bytes())
    elif how == "non-CA certificate":
        cert.write_bytes((good / "server.crt").read_bytes())
        key.write_bytes((good / "server.key").read_bytes())
    return bad, "ca.crt"


@pytest.mark.parametrize(
    "how",
    [
        "missing ca.crt",
        "garbage ca.crt",
        "truncated ca.crt",
        "key as ca.crt",
        "directory as ca.crt",
        "DER ca.key",
        "garbage ca.key",
        "missing ca.key",
        "mismatched key",
        "non-CA certificate",
    ],
)
@pytest.mark.parametrize("command", ["issue", "sign", "intermediate"])
def test_a_broken_ca_dir_is_one_line_and_writes_nothing(
    tmp_path: Path, how: str, command: str
) -> None:
    bad, name = _break_ca(tmp_path, how)
    work = tmp_path / "work"
    work.mkdir()
    csr = work / "req.csr"
    csr.write_bytes(make_csr(["svc.internal"]))
    before = snapshot(tmp_path)
    if command == "issue":
        args: Sequence[object] = ("issue", "server", "--ca-dir", bad, "--out", work / "s",
                                  "--host", "h")  # fmt: skip
    elif command == "sign":
        args = ("sign", csr, "--ca-dir", bad, "--profile", "server", "--out", work / "s.crt")
    else:
        args = ("ca", "intermediate", "--ca-dir", bad, "--out-dir", work / "inter")
    assert_one_error_line(run(*args), str(bad / name))
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_ca_key_is_one_line(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    (ca / "ca.key").chmod(0)
    result = run("issue", "server", "--ca-dir", ca, "--out", tmp_path / "s", "--host", "h")
    assert_one_error_line(result, "ca.key", "permission denied")


def test_issuing_from_the_good_ca_dir_of_the_broken_cases_works(tmp_path: Path) -> None:
    """Control for the broken-CA cases: the same files, unbroken, issue fine."""
    good = make_init(tmp_path / "good")
    ok(run("issue", "server", "--ca-dir", good, "--out", tmp_path / "s", "--host", "h"))


# -- grpcsec sign ----------------------------------------------------------------------------------
def make_csr(
    dns: list[str],
    *,
    ca: bool = False,
    uris: Sequence[str] = (),
    der: bool = False,
) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "requested")])
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER if der else serialization.Encoding.PEM)


def test_sign_uses_the_profile_not_the_csrs_ca_request(tmp_path: Path, ca_dir: Path) -> None:
    csr = tmp_path / "req.csr"
    csr.write_bytes(make_csr(["svc.internal"], ca=True))
    result = ok(run("sign", csr, "--ca-dir", ca_dir, "--profile", "server",
                    "--out", tmp_path / "svc.crt", "--json"))  # fmt: skip
    assert snapshot(tmp_path / "ca") == ["ca.crt", "ca.key", "issued.jsonl"]
    leaf = certs(tmp_path / "svc.crt")[0]
    assert not is_ca(leaf)  # the CSR asked for CA:true
    assert eku(leaf) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert san_strings(leaf) == ["svc.internal"]
    assert leaf.subject.rfc4514_string() == "CN=requested"
    assert mode(tmp_path / "svc.crt") == 0o644
    data = json.loads(result.stdout)
    assert data["profile"] == "server"
    assert data["certificates"][0]["key_file"] is None
    assert verify(tmp_path / "svc.crt", "--ca", ca_dir / "ca.crt", "--host", "svc.internal")["ok"]


def test_sign_host_replaces_the_csr_names_and_accepts_der(tmp_path: Path, ca_dir: Path) -> None:
    csr = tmp_path / "req.der"
    csr.write_bytes(make_csr(["asked.example"], der=True))
    ok(run("sign", csr, "--ca-dir", ca_dir, "--profile", "client", "--out", tmp_path / "c.crt",
           "--host", "given.example", "--valid", "1h"))  # fmt: skip
    leaf = certs(tmp_path / "c.crt")[0]
    assert san_strings(leaf) == ["given.example"]
    assert eku(leaf) == [ExtendedKeyUsageOID.CLIENT_AUTH]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"garbage\n", "req.csr"),
        (b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", "req.csr"),
        (None, "no such file"),
    ],
)
def test_sign_bad_csr_is_one_line(
    tmp_path: Path, ca_dir: Path, content: bytes | None, needle: str
) -> None:
    csr = tmp_path / "req.csr"
    if content is not None:
        csr.write_bytes(content)
    before = snapshot(tmp_path)
    result = run("sign", csr, "--ca-dir", ca_dir, "--profile", "server", "--out", tmp_path / "x")
    assert_one_error_line(result, "req.csr", needle)
    assert snapshot(tmp_path) == before


def test_sign_revalidates_the_csr_names(tmp_path: Path, ca_dir: Path) -> None:
    csr = tmp_path / "req.csr"
    csr.write_bytes(make_csr([], uris=["spiffe://Bad/ID"]))
    result = run("sign", csr, "--ca-dir", ca_dir, "--profile", "peer", "--out", tmp_path / "x")
    assert_one_error_line(result, "req.csr", "spiffe://Bad/ID")
    assert not (tmp_path / "x").exists()


def test_sign_refuses_to_overwrite_without_force(tmp_path: Path, ca_dir: Path) -> None:
    csr = tmp_path / "req.csr"
    csr.write_bytes(make_csr(["svc"]))
    out = tmp_path / "svc.crt"
    out.write_bytes(b"old")
    args = ("sign", csr, "--ca-dir", ca_dir, "--profile", "server", "--out", out)
    assert_one_error_line(run(*args), "svc.crt", "--force")
    assert out.read_bytes() == b"old"
    ok(run(*args, "--force"))
    assert certs(out)[0].subject.rfc4514_string() == "CN=requested"


def test_issue_and_sign_record_what_they_issued_and_a_refusal_records_nothing(
    tmp_path: Path, ca_dir: Path
) -> None:
    ok(run("issue", "server", "--ca-dir", ca_dir, "--out", tmp_path / "svc", "--host", "svc"))
    csr = tmp_path / "req.csr"
    csr.write_bytes(make_csr(["signed.internal"]))
    ok(run("sign", csr, "--ca-dir", ca_dir, "--profile", "client", "--out", tmp_path / "s.crt"))
    refused = run("issue", "server", "--ca-dir", ca_dir, "--out", tmp_path / "svc", "--host", "x")
    assert_one_error_line(refused, "--force")
    lines = [json.loads(x) for x in (ca_dir / "issued.jsonl").read_text().splitlines()]
    assert [(line["subject"], line["role"]) for line in lines] == [
        ("CN=svc", "server certificate"),
        ("CN=requested", "client certificate"),
    ]
    assert lines[0]["serial"] == format(certs(tmp_path / "svc.crt")[0].serial_number, "x")
    assert lines[1]["file"] == str((tmp_path / "s.crt").absolute())
