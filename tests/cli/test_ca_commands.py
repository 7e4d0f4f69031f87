"""``grpcsec ca init`` and ``ca intermediate``, run in-process: roots and intermediates with a
0400 key (encrypted only with a password from the environment), never overwritten without
--force; each positive case has a negative control next to it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.cli.clirun import (
    PASSWORD_ENV,
    assert_one_error_line,
    certs,
    make_ca,
    mode,
    ok,
    plain,
    plain_environment,  # noqa: F401 (autouse fixture)
    run,
    snapshot,
    verify,
)


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
        "root/issued.jsonl",  # the intermediate, recorded by its parent
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


# -- grpcsec ca revoke / ca crl --------------------------------------------------------------------
def _serial(path: Path) -> str:
    return format(certs(path)[0].serial_number, "x")


def _issued(ca_dir: Path) -> list[dict[str, object]]:
    lines = (ca_dir / "issued.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_intermediate_is_recorded_by_its_parent(tmp_path: Path) -> None:
    root = make_ca(tmp_path / "root")
    ok(run("ca", "intermediate", "--ca-dir", root, "--out-dir", tmp_path / "inter"))
    [record] = _issued(root)
    assert record["serial"] == _serial(tmp_path / "inter" / "ca.crt")
    assert record["subject"] == "CN=grpcsec intermediate CA"
    assert record["file"] == str((tmp_path / "inter" / "ca.crt").absolute())
    assert record["role"] == "intermediate CA"


def test_revoke_json_then_revoking_again_is_a_no_op(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    ok(run("issue", "client", "--ca-dir", ca, "--out", tmp_path / "alice", "--host", "alice"))
    first = json.loads(ok(run("ca", "revoke", tmp_path / "alice.crt", "--ca-dir", ca,
                              "--reason", "KEY_COMPROMISE", "--json")).stdout)  # fmt: skip
    assert first["serial"] == _serial(tmp_path / "alice.crt")
    assert first["reason"] == "key_compromise"
    assert first["subject"] == "CN=alice"
    assert (first["already_revoked"], first["recorded"]) == (False, True)
    again = ok(run("ca", "revoke", "--serial", first["serial"].upper(), "--ca-dir", ca))
    assert "already revoked" in plain(again.stdout)
    assert "key_compromise" in plain(again.stdout)  # the first reason stands
    state = json.loads((ca / "revoked.json").read_text())
    assert [e["serial"] for e in state["revoked"]] == [first["serial"]]
    assert mode(ca / "revoked.json") == 0o644


def test_revoke_does_not_need_the_ca_key_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-pass")
    ca = make_ca(tmp_path / "ca", "--encrypt-key")
    ok(run("issue", "client", "--ca-dir", ca, "--out", tmp_path / "bob", "--host", "bob"))
    monkeypatch.delenv(PASSWORD_ENV)
    ok(run("ca", "revoke", tmp_path / "bob.crt", "--ca-dir", ca))
    # Signing the CRL does need it (the control): one line naming the variable.
    assert_one_error_line(run("ca", "crl", "--ca-dir", ca, "--out", tmp_path / "x.crl"),
                          PASSWORD_ENV)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--serial", "abc123"], ["unknown serial abc123", "issued.jsonl"]),
        (["--serial", "xyz"], ["--serial", "not a serial"]),
        (["--serial", "0"], ["--serial"]),
        ([], ["--serial HEX"]),
    ],
)
def test_revoke_bad_input_is_one_line(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    ca = make_ca(tmp_path / "ca")
    assert_one_error_line(run("ca", "revoke", "--ca-dir", ca, *args), *needles)
    assert not (ca / "revoked.json").exists()


def test_revoke_reason_is_one_of_rfc_5280s(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    ok(run("issue", "client", "--ca-dir", ca, "--out", tmp_path / "a", "--host", "a"))
    bad = run("ca", "revoke", tmp_path / "a.crt", "--ca-dir", ca, "--reason", "lost")
    assert bad.exit_code == 2  # Typer's usage error lists the accepted names
    assert "cessation_of_operation" in plain(bad.output)
    assert not (ca / "revoked.json").exists()
    ok(run("ca", "revoke", tmp_path / "a.crt", "--ca-dir", ca, "--reason", "superseded"))


def test_revoke_refuses_a_certificate_of_another_ca_and_the_ca_itself(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca", "--name", "Twin")
    twin = make_ca(tmp_path / "twin", "--name", "Twin")
    ok(run("issue", "client", "--ca-dir", twin, "--out", tmp_path / "m", "--host", "m"))
    assert_one_error_line(run("ca", "revoke", tmp_path / "m.crt", "--ca-dir", ca),
                          "m.crt", "another CA named CN=Twin")  # fmt: skip
    assert_one_error_line(run("ca", "revoke", ca / "ca.crt", "--ca-dir", ca), "own certificate")
    assert_one_error_line(run("ca", "revoke", ca / "ca.key", "--ca-dir", ca), "private key")
    assert not (ca / "revoked.json").exists()
    ok(run("ca", "revoke", tmp_path / "m.crt", "--ca-dir", twin))  # the control


def test_crl_publishes_with_increasing_numbers_and_replaces_the_file(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    ok(run("issue", "client", "--ca-dir", ca, "--out", tmp_path / "a", "--host", "a"))
    out = tmp_path / "pub" / "ca.crl"
    first = json.loads(ok(run("ca", "crl", "--ca-dir", ca, "--out", out, "--json")).stdout)
    assert (first["number"], first["revoked"]) == (1, 0)
    ok(run("ca", "revoke", tmp_path / "a.crt", "--ca-dir", ca))
    text = ok(run("ca", "crl", "--ca-dir", ca, "--out", out, "--next-update", "36h"))
    assert "CRL number 2, 1 revoked" in plain(text.stdout)
    crl = x509.load_pem_x509_crl(out.read_bytes())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(hours=36)
    assert crl.get_revoked_certificate_by_serial_number(certs(tmp_path / "a.crt")[0].serial_number)
    assert mode(out) == 0o644


def test_crl_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    assert_one_error_line(run("ca", "crl", "--ca-dir", ca, "--out", tmp_path / "x.crl",
                              "--next-update", "soon"), "--next-update")  # fmt: skip
    assert_one_error_line(run("ca", "crl", "--ca-dir", ca, "--out", ca / "ca.crt"), "ca.crt")
    (ca / "revoked.json").write_text("{not json")
    assert_one_error_line(run("ca", "crl", "--ca-dir", ca, "--out", tmp_path / "x.crl"),
                          "revoked.json", "not a grpcsec revocation record")  # fmt: skip
    assert not (tmp_path / "x.crl").exists()
    assert certs(ca / "ca.crt")  # untouched
