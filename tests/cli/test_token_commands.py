"""``grpcsec token mint|jwks|verify``, run in-process.

mint and jwks make a matching pair from a local key (ES256 for EC P-256, RS256 for RSA, EdDSA
for Ed25519); verify exits 0 for an accepted token, 1 with the stable reason for a rejected
one, 2 for input it cannot use. A JWKS URL is verified over real HTTPS against an explicit CA.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from typer.testing import CliRunner

from grpcsec.cli import app
from grpcsec.pki import private_key_pem
from tests.authn.conftest import JwksServer
from tests.cli.clirun import PASSWORD_ENV, assert_one_error_line, ok, plain, run
from tests.conftest import Pki


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (PASSWORD_ENV, "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ec_key(tmp_path: Path) -> Path:
    path = tmp_path / "signing.key"
    path.write_bytes(private_key_pem(ec.generate_private_key(ec.SECP256R1())))
    return path


@pytest.fixture
def jwks_file(tmp_path: Path, ec_key: Path) -> Path:
    result = ok(run("token", "jwks", "--key", ec_key))
    path = tmp_path / "jwks.json"
    path.write_text(result.stdout)
    return path


MINT = ("token", "mint", "--issuer", "https://iss.test", "--audience", "svc", "--subject", "alice")


def mint(key: Path, *extra: object) -> str:
    result = ok(run(*MINT, "--key", key, "--scope", "read", *extra))
    assert "development and tests only" in plain(result.stderr)
    token = result.stdout.strip()
    assert token.count(".") == 2
    return token


def verify(token: str, jwks: Path | str, *extra: object) -> Any:
    return run("token", "verify", token, "--jwks", jwks, "--audience", "svc", *extra)


def header_of(token: str) -> dict[str, Any]:
    part = token.split(".", 1)[0]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


def test_minted_token_verifies_against_the_printed_jwks(ec_key: Path, jwks_file: Path) -> None:
    token = mint(ec_key, "--claim", "tenant=acme", "--claim", "level=3")
    result = ok(verify(token, jwks_file, "--issuer", "https://iss.test", "--require-scope", "read"))
    text = plain(result.stdout)
    assert text.startswith("accepted")
    assert "alice" in text
    report = json.loads(ok(verify(token, jwks_file, "--json")).stdout)
    assert report["accepted"] is True
    assert report["claims"]["tenant"] == "acme"
    assert report["claims"]["level"] == 3
    assert header_of(token)["alg"] == "ES256"
    assert header_of(token)["kid"] == json.loads(jwks_file.read_text())["keys"][0]["kid"]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (("--audience", "other"), None),
        (("--issuer", "https://evil.test"), "invalid_issuer"),
        (("--require-scope", "write"), "insufficient_scope"),
        (("--algorithm", "RS256"), "algorithm_not_allowed"),
    ],
)
def test_rejected_token_exits_1_with_the_reason(
    ec_key: Path, jwks_file: Path, extra: tuple[str, ...], reason: str | None
) -> None:
    token = mint(ec_key)
    if extra[0] == "--audience":
        result = run("token", "verify", token, "--jwks", jwks_file, *extra, "--json")
        reason = "invalid_audience"
    else:
        result = verify(token, jwks_file, *extra, "--json")
    assert result.exit_code == 1, plain(result.output)
    report = json.loads(result.stdout)
    assert report["accepted"] is False
    assert report["reason"] == reason


def test_expired_token_and_verifying_at_another_time(ec_key: Path, jwks_file: Path) -> None:
    token = mint(ec_key, "--issued-at", "2020-01-01T00:00:00Z", "--ttl", "5m")
    result = verify(token, jwks_file)
    assert result.exit_code == 1
    text = plain(result.stdout)
    assert "rejected (expired)" in text
    assert "NOT verified" in text
    ok(verify(token, jwks_file, "--at", "2020-01-01T00:01:00Z"))


def test_token_from_stdin_and_with_bearer_prefix(ec_key: Path, jwks_file: Path) -> None:
    token = mint(ec_key)
    result = CliRunner().invoke(
        app,
        ["token", "verify", "-", "--jwks", str(jwks_file), "--audience", "svc"],
        input=f"Bearer {token}\n",
    )
    assert result.exit_code == 0, plain(result.output)


def test_malformed_and_foreign_tokens_are_rejected_not_errors(
    tmp_path: Path, ec_key: Path, jwks_file: Path
) -> None:
    result = verify("not-a-token", jwks_file, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["reason"] == "malformed_token"
    other = tmp_path / "other.key"
    other.write_bytes(private_key_pem(ec.generate_private_key(ec.SECP256R1())))
    result = verify(mint(other), jwks_file, "--json")
    assert json.loads(result.stdout)["reason"] == "unknown_kid"


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        (ed25519.Ed25519PrivateKey.generate, "EdDSA"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ES384"),
    ],
    ids=["rsa", "ed25519", "p384"],
)
def test_algorithm_follows_the_key(tmp_path: Path, key: Any, alg: str) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(private_key_pem(key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(ok(run("token", "jwks", "--key", path, "--kid", "k1")).stdout)
    token = mint(path, "--kid", "k1")
    assert header_of(token) == {"alg": alg, "kid": "k1", "typ": "JWT"}
    ok(verify(token, jwks, "--algorithm", alg))


def test_jwks_from_certificate_and_public_key_never_has_private_material(
    tmp_path: Path, pki: Pki
) -> None:
    cert = tmp_path / "client.crt"
    cert.write_bytes(pki.client.chain_pem())
    public = tmp_path / "client.pub"
    assert pki.client.key is not None
    public.write_bytes(
        pki.client.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    private = tmp_path / "client.key"
    private.write_bytes(pki.client.key_pem())
    documents = [
        json.loads(ok(run("token", "jwks", "--key", path)).stdout)
        for path in (cert, public, private)
    ]
    assert documents[0] == documents[1] == documents[2]
    assert "d" not in documents[0]["keys"][0]


def test_jwks_of_an_encrypted_key_asks_for_the_password_like_every_command(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a password source the one error line says how to give one (as issue and
    verify --key do); with GRPCSEC_KEY_PASSWORD the same command works."""
    assert pki.client.key is not None
    private = tmp_path / "client.key"
    private.write_bytes(pki.client.key_pem(b"pw"))
    assert_one_error_line(run("token", "jwks", "--key", private), "client.key", PASSWORD_ENV)
    monkeypatch.setenv(PASSWORD_ENV, "pw")
    document = json.loads(ok(run("token", "jwks", "--key", private)).stdout)
    assert "d" not in document["keys"][0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("token", "verify", "x.y.z", "--jwks", "missing.json", "--audience", "a"), "no such file"),
        (
            (
                "token",
                "verify",
                "x.y.z",
                "--jwks",
                "JWKS",
                "--audience",
                "a",
                "--algorithm",
                "none",
            ),
            "never allowed",
        ),
        (("token", "verify", "", "--jwks", "JWKS", "--audience", "a"), "empty"),
        (
            (
                "token",
                "mint",
                "--key",
                "KEY",
                "--issuer",
                "i",
                "--audience",
                "a",
                "--subject",
                "s",
                "--claim",
                "nonsense",
            ),
            "NAME=VALUE",
        ),
        (
            (
                "token",
                "mint",
                "--key",
                "KEY",
                "--issuer",
                "i",
                "--audience",
                "a",
                "--subject",
                "s",
                "--claim",
                "exp=1",
            ),
            "own option",
        ),
        (
            (
                "token",
                "mint",
                "--key",
                "KEY",
                "--issuer",
                "i",
                "--audience",
                "a",
                "--subject",
                "s",
                "--ttl",
                "forever",
            ),
            "--ttl",
        ),
        (("token", "jwks", "--key", "KEY", "--kid", "a", "--kid", "b"), "one --kid per --key"),
        (("token", "jwks", "--key", "JWKS"), "PEM public key, certificate or private key"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    ec_key: Path, jwks_file: Path, args: tuple[str, ...], needle: str
) -> None:
    replaced = [str(ec_key) if a == "KEY" else str(jwks_file) if a == "JWKS" else a for a in args]
    assert_one_error_line(run(*replaced), needle)


def test_verify_against_a_jwks_url_over_https(
    tmp_path: Path, pki: Pki, ec_key: Path, jwks_file: Path
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(pki.ca.certificate_pem())
    with JwksServer(pki.ca, tmp_path) as server:
        server.document = json.loads(jwks_file.read_text())
        ok(verify(mint(ec_key), server.url, "--ca", ca))
        server.status = 503
        assert_one_error_line(verify(mint(ec_key), server.url, "--ca", ca), "HTTP 503")
    other = tmp_path / "other-ca.crt"
    other.write_bytes(pki.other_ca.certificate_pem())
    with JwksServer(pki.ca, tmp_path) as server:
        server.document = json.loads(jwks_file.read_text())
        assert_one_error_line(
            verify(mint(ec_key), server.url, "--ca", other), "CERTIFICATE_VERIFY_FAILED"
        )
