"""``grpcsec init``, ``ca init``, ``ca intermediate``, ``issue`` and ``sign``, run in-process.

Every write is all or nothing with exact modes (keys 0600, CA keys 0400, certificates 0644);
bad input is exit code 2 with one error line naming the file or value, no traceback and no new
file. Each positive case has a negative control next to it.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner, Result

from grpcsec.cli import app

PASSWORD_ENV = "GRPCSEC_KEY_PASSWORD"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No password in the environment and no forced colours unless a test sets them."""
    for name in (PASSWORD_ENV, "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)


# -- helpers shared with test_inspect_commands -----------------------------------------------------
def run(*args: object) -> Result:
    """Run the CLI in-process with string arguments."""
    return CliRunner().invoke(app, [str(a) for a in args])


def plain(text: str) -> str:
    return _ANSI.sub("", text)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, plain(result.output)
    return result


def assert_one_error_line(result: Result, *needles: str, code: int = 2) -> str:
    """Exit ``code``, nothing on stdout, exactly one stderr line containing every needle."""
    assert result.exit_code == code, plain(result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = plain(result.stderr).strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def make_ca(root: Path, *extra: object) -> Path:
    ok(run("ca", "init", "--dir", root, *extra))
    return root


def make_init(directory: Path, *extra: object) -> Path:
    ok(run("init", "--dir", directory, *extra))
    return directory


def verify(*args: object) -> dict[str, object]:
    result = run("verify", *args, "--json")
    assert result.exit_code in {0, 1}, plain(result.output)
    data: dict[str, object] = json.loads(result.stdout)
    return data


def eku(certificate: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def san_strings(certificate: x509.Certificate) -> list[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(getattr(name, "value", name)) for name in san]


def is_ca(certificate: x509.Certificate) -> bool:
    return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


# -- grpcsec init ----------------------------------------------------------------------------------
def test_init_writes_ca_server_and_client_with_exact_modes(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    result = ok(run("init", "--dir", out))
    assert snapshot(out) == [
        "ca.crt",
        "ca.key",
        "client.crt",
        "client.key",
        "server.crt",
        "server.key",
    ]
    assert mode(out / "ca.key") == 0o400
    assert mode(out / "server.key") == 0o600
    assert mode(out / "client.key") == 0o600
    for name in ("ca.crt", "server.crt", "client.crt"):
        assert mode(out / name) == 0o644
    server = certs(out / "server.crt")
    assert len(server) == 1  # issued by the root: no intermediate, never the root itself
    assert san_strings(server[0]) == ["localhost", "127.0.0.1", "::1"]
    assert eku(server[0]) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert eku(certs(out / "client.crt")[0]) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert "server.crt" in result.stdout
    assert "PRIVATE KEY" not in result.output
    # The set works together: the server verifies for localhost with its key...
    assert verify(out / "server.crt", "--ca", out / "ca.crt", "--host", "localhost",
                  "--key", out / "server.key")["ok"] is True  # fmt: skip
    # ...and, as a negative control, the client certificate does not serve.
    assert (
        verify(out / "client.crt", "--ca", out / "ca.crt", "--host", "localhost")["reason"]
        == "wrong_eku"
    )


def test_init_json_reports_files_and_certificates_without_key_material(tmp_path: Path) -> None:
    result = ok(run("init", "--dir", tmp_path / "pki", "--json"))
    data = json.loads(result.stdout)
    assert data["directory"] == str(tmp_path / "pki")
    modes = {Path(f["path"]).name: f["mode"] for f in data["files"]}
    assert modes == {
        "ca.crt": "0644",
        "ca.key": "0400",
        "server.crt": "0644",
        "server.key": "0600",
        "client.crt": "0644",
        "client.key": "0600",
    }
    roles = [c["role"] for c in data["certificates"]]
    assert roles == ["CA", "server", "client"]
    server = data["certificates"][1]
    assert server["certificate"]["san"]["ip"] == ["127.0.0.1", "::1"]
    assert server["certificate"]["status"] == "valid"
    assert "PRIVATE KEY" not in result.stdout


def test_init_hosts_and_several_clients(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    make_init(
        out,
        "--host", "orders.internal", "--host", "10.0.0.7",
        "--client", "alice", "--client", "spiffe://acme.org/ns/prod/sa/bob",
        "--client", "carol@acme.org",
    )  # fmt: skip
    assert san_strings(certs(out / "server.crt")[0]) == ["orders.internal", "10.0.0.7"]
    assert san_strings(certs(out / "client.crt")[0]) == ["alice"]
    bob = out / "client-acme.org-ns-prod-sa-bob.crt"
    assert san_strings(certs(bob)[0]) == ["spiffe://acme.org/ns/prod/sa/bob"]
    assert mode(bob.with_suffix(".key")) == 0o600
    assert san_strings(certs(out / "client-carol@acme.org.crt")[0]) == ["carol@acme.org"]
    # The default host list is replaced, not extended.
    assert "localhost" not in san_strings(certs(out / "server.crt")[0])


def test_init_refuses_duplicate_client_names(tmp_path: Path) -> None:
    result = run("init", "--dir", tmp_path / "pki", "--client", "alice", "--client", "alice")
    assert_one_error_line(result, "alice")
    assert snapshot(tmp_path) == []


def test_init_refuses_to_overwrite_and_leaves_nothing_partial(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    out.mkdir()
    (out / "server.key").write_bytes(b"keep me")
    assert_one_error_line(run("init", "--dir", out), "server.key", "--force")
    assert snapshot(out) == ["server.key"]
    assert (out / "server.key").read_bytes() == b"keep me"
    # --force replaces it, with the right mode.
    ok(run("init", "--dir", out, "--force"))
    assert (out / "server.key").read_bytes().startswith(b"-----BEGIN " + b"PRIVATE KEY-----")
    assert mode(out / "server.key") == 0o600
    assert len(snapshot(out)) == 6


def test_init_force_replaces_a_previous_set(tmp_path: Path) -> None:
    out = make_init(tmp_path / "pki")
    before = (out / "ca.crt").read_bytes()
    assert_one_error_line(run("init", "--dir", out), "ca.crt", "--force")
    assert (out / "ca.crt").read_bytes() == before
    ok(run("init", "--dir", out, "--force"))
    assert (out / "ca.crt").read_bytes() != before
    assert mode(out / "ca.key") == 0o400


@pytest.mark.parametrize(
    ("option", "value"),
    [("--host", "300.1.1.1"), ("--client", "spiffe://Bad/ID"), ("--valid", "0d")],
)
def test_init_bad_values_write_nothing(tmp_path: Path, option: str, value: str) -> None:
    assert_one_error_line(run("init", "--dir", tmp_path / "pki", option, value), value)
    assert snapshot(tmp_path) == []


def test_init_ed25519_needs_allow_unsupported_key(tmp_path: Path) -> None:
    refused = run("init", "--dir", tmp_path / "a", "--key-type", "ed25519")
    assert_one_error_line(refused, "--allow-unsupported-key")
    assert snapshot(tmp_path) == []
    allowed = ok(run("init", "--dir", tmp_path / "b", "--key-type", "ed25519",
                     "--allow-unsupported-key"))  # fmt: skip
    assert "Ed25519 CA" in plain(allowed.stderr)
    assert len(snapshot(tmp_path / "b")) == 6


# -- grpcsec ca init -------------------------------------------------------------------------------
def test_ca_init_writes_a_root_with_a_0400_key(tmp_path: Path) -> None:
    result = ok(
        run("ca", "init", "--dir", tmp_path / "ca", "--name", "Acme Root", "--org", "Acme",
            "--path-length", "1", "--valid", "2y", "--json")
    )  # fmt: skip
    assert snapshot(tmp_path / "ca") == ["ca.crt", "ca.key"]
    assert mode(tmp_path / "ca" / "ca.key") == 0o400
    assert mode(tmp_path / "ca" / "ca.crt") == 0o644
    data = json.loads(result.stdout)
    info = data["certificates"][0]["certificate"]
    assert info["subject"] == "CN=Acme Root,O=Acme"
    assert info["is_ca"] is True
    assert info["path_length"] == 1
    assert info["self_signed"] is True
    assert data["encrypted"] is False
    key = (tmp_path / "ca" / "ca.key").read_bytes()
    assert key.startswith(b"-----BEGIN " + b"PRIVATE KEY-----")  # control for the encrypted case
    assert "PRIVATE KEY" not in result.stdout


def test_ca_init_encrypts_the_key_with_the_environment_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "correct horse")
    result = ok(run("ca", "init", "--dir", tmp_path / "ca", "--encrypt-key"))
    key = tmp_path / "ca" / "ca.key"
    assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED " + b"PRIVATE KEY-----")
    assert mode(key) == 0o400
    assert "correct horse" not in result.output
    serialization.load_pem_private_key(key.read_bytes(), password=b"correct horse")
    with pytest.raises(ValueError, match=r"Bad decrypt|Incorrect password"):
        serialization.load_pem_private_key(key.read_bytes(), password=b"wrong")


def test_ca_init_encrypt_key_without_a_password_source_fails(tmp_path: Path) -> None:
    result = run("ca", "init", "--dir", tmp_path / "ca", "--encrypt-key")
    assert_one_error_line(result, PASSWORD_ENV)
    assert snapshot(tmp_path) == []


def test_ca_init_has_no_password_argument(tmp_path: Path) -> None:
    result = run("ca", "init", "--dir", tmp_path / "ca", "--password", "x")
    assert result.exit_code == 2
    assert snapshot(tmp_path) == []


def test_ca_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    before = (ca / "ca.key").read_bytes()
    assert_one_error_line(run("ca", "init", "--dir", ca), "ca.crt", "--force")
    assert (ca / "ca.key").read_bytes() == before
    ok(run("ca", "init", "--dir", ca, "--force"))
    assert (ca / "ca.key").read_bytes() != before
    assert mode(ca / "ca.key") == 0o400


def test_ed25519_ca_prints_a_warning(tmp_path: Path) -> None:
    result = ok(run("ca", "init", "--dir", tmp_path / "ed", "--key-type", "ed25519"))
    assert "warning" in plain(result.stderr)
    assert "Ed25519 CA" in plain(result.stderr)
    control = ok(run("ca", "init", "--dir", tmp_path / "ec"))
    assert control.stderr == ""
    issued = ok(run("issue", "server", "--ca-dir", tmp_path / "ed", "--out", tmp_path / "s",
                    "--host", "localhost"))  # fmt: skip
    assert "Ed25519 CA" in plain(issued.stderr)
    # What the warning is about: cryptography's verifier rejects the chain.
    assert verify(tmp_path / "s.crt", "--ca", tmp_path / "ed" / "ca.crt")["reason"] == (
        "invalid_chain"
    )
    below = ok(run("ca", "intermediate", "--ca-dir", tmp_path / "ed", "--out-dir", tmp_path / "i"))
    assert "Ed25519 CA" in plain(below.stderr)


# -- grpcsec ca intermediate -----------------------------------------------------------------------
def test_intermediate_writes_its_chain_and_issues_leaves(tmp_path: Path) -> None:
    root = make_ca(tmp_path / "root", "--name", "Root")
    inter = tmp_path / "inter"
    ok(run("ca", "intermediate", "--ca-dir", root, "--out-dir", inter, "--name", "Issuing"))
    assert snapshot(inter) == ["ca.crt", "ca.key"]
    assert mode(inter / "ca.key") == 0o400
    chain = certs(inter / "ca.crt")
    assert [c.subject.rfc4514_string() for c in chain] == ["CN=Issuing", "CN=Root"]
    assert chain[0].extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    # The out directory works as --ca-dir: the leaf file carries the intermediate, not the root.
    ok(run("issue", "server", "--ca-dir", inter, "--out", tmp_path / "srv", "--host", "svc"))
    served = certs(tmp_path / "srv.crt")
    assert [c.subject.rfc4514_string() for c in served] == ["CN=svc", "CN=Issuing"]
    good = verify(tmp_path / "srv.crt", "--ca", root / "ca.crt", "--host", "svc")
    assert good["ok"] is True
    assert good["chain"] == ["CN=svc", "CN=Issuing", "CN=Root"]
    other = make_ca(tmp_path / "other")
    bad = verify(tmp_path / "srv.crt", "--ca", other / "ca.crt", "--host", "svc")
    assert bad["reason"] == "unknown_authority"


def test_intermediate_loads_an_encrypted_parent_key_with_the_environment_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-pass")
    root = make_ca(tmp_path / "root", "--encrypt-key")
    ok(run("ca", "intermediate", "--ca-dir", root, "--out-dir", tmp_path / "inter"))
    # Without --encrypt-key the intermediate's own key is written in the clear.
    assert (tmp_path / "inter" / "ca.key").read_bytes().startswith(b"-----BEGIN " + b"PRIVATE KEY")
    monkeypatch.setenv(PASSWORD_ENV, "wrong password")
    wrong = run("ca", "intermediate", "--ca-dir", root, "--out-dir", tmp_path / "inter2")
    line = assert_one_error_line(wrong, "ca.key", "password")
    assert "wrong password" not in line
    monkeypatch.delenv(PASSWORD_ENV)
    missing = run("ca", "intermediate", "--ca-dir", root, "--out-dir", tmp_path / "inter3")
    assert_one_error_line(missing, "ca.key", PASSWORD_ENV)
    assert snapshot(tmp_path) == [
        "inter",
        "inter/ca.crt",
        "inter/ca.key",
        "root",
        "root/ca.crt",
        "root/ca.key",
    ]


def test_intermediate_out_dir_must_differ_from_the_parent(tmp_path: Path) -> None:
    root = make_ca(tmp_path / "root")
    before = (root / "ca.crt").read_bytes()
    result = run("ca", "intermediate", "--ca-dir", root, "--out-dir", root, "--force")
    assert_one_error_line(result, "--out-dir")
    assert (root / "ca.crt").read_bytes() == before


def test_intermediate_refused_under_path_length_zero(tmp_path: Path) -> None:
    root = make_ca(tmp_path / "root", "--path-length", "0")
    result = run("ca", "intermediate", "--ca-dir", root, "--out-dir", tmp_path / "inter")
    assert_one_error_line(result, "path length 0")
    assert not (tmp_path / "inter").exists()
    make_ca(tmp_path / "root1", "--path-length", "1")  # control: one level is allowed
    ok(run("ca", "intermediate", "--ca-dir", tmp_path / "root1", "--out-dir", tmp_path / "i1"))


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
    assert snapshot(tmp_path / "ca") == ["ca.crt", "ca.key"]
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
