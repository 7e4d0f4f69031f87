"""``grpcsec init``, run in-process: a CA, a server and client certificates written all or
nothing with exact modes (keys 0600, the CA key 0400, certificates 0644); bad input is exit code
2 with one error line and no new file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.cli.clirun import (
    assert_one_error_line,
    certs,
    eku,
    make_init,
    mode,
    ok,
    plain,
    plain_environment,  # noqa: F401 (autouse fixture)
    run,
    san_strings,
    snapshot,
    verify,
)


# -- grpcsec init ----------------------------------------------------------------------------------
def test_init_writes_ca_server_and_client_with_exact_modes(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    result = ok(run("init", "--dir", out))
    assert snapshot(out) == [
        "ca.crt",
        "ca.key",
        "client.crt",
        "client.key",
        "issued.jsonl",
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
    assert len(snapshot(out)) == 7  # with issued.jsonl


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
    assert len(snapshot(tmp_path / "b")) == 7  # with issued.jsonl


def test_init_records_the_server_and_client_it_issued(tmp_path: Path) -> None:
    out = make_init(tmp_path / "pki", "--client", "alice", "--client", "bob")
    lines = [json.loads(line) for line in (out / "issued.jsonl").read_text().splitlines()]
    files = {Path(str(line["file"])).name: line for line in lines}
    assert sorted(files) == ["client-bob.crt", "client.crt", "server.crt"]  # never the CA
    for name, line in files.items():
        leaf = certs(out / name)[0]
        assert line["serial"] == format(leaf.serial_number, "x")
        assert line["subject"] == leaf.subject.rfc4514_string()
        assert line["not_after"] == leaf.not_valid_after_utc.isoformat()
