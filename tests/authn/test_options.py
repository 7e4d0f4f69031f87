"""AuthnOptions: command-line style settings become checks, and conflicts fail before a
server starts. One test serves the result on a real server (health exempt, Greeter-like
methods guarded)."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from grpcsec.authn import RequireBearerToken, RequireClientCert, public_jwks
from grpcsec.authn.options import AuthnOptions
from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.errors import ConfigurationError, MaterialError
from grpcsec.interceptors import Guard
from tests.authn.conftest import (
    AUDIENCE,
    EC_KID,
    ISSUER,
    SCOPE,
    SERVICE,
    UNARY,
    JwksServer,
    Keys,
    Minter,
    bearer,
    invoke,
    invoke_error,
    serve_guarded,
)
from tests.conftest import CLIENT_SPIFFE_ID, Pki


@pytest.fixture
def jwks_path(tmp_path: Path, keys: Keys) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(public_jwks([(keys.ec, EC_KID)])))
    return path


def test_no_options_no_checks() -> None:
    assert AuthnOptions().checks(mutual=False) == []


def test_allow_list_and_token_checks_in_order(jwks_path: Path) -> None:
    options = AuthnOptions(
        allow_spiffe_ids=(CLIENT_SPIFFE_ID,),
        jwks=str(jwks_path),
        audiences=(AUDIENCE,),
        issuers=(ISSUER,),
        required_scopes=(SCOPE,),
    )
    cert, token = options.checks(mutual=True)
    assert isinstance(cert, RequireClientCert)
    assert isinstance(token, RequireBearerToken)
    assert token.requirement_for("/grpc.health.v1.Health/Check") is None
    assert cert.allow_list_for("/grpc.health.v1.Health/Check") is None


@pytest.mark.parametrize(
    ("options", "mutual", "message"),
    [
        (AuthnOptions(allow_spiffe_ids=(CLIENT_SPIFFE_ID,)), False, "need mTLS"),
        (AuthnOptions(allow_any_client=True, allow_common_names=("a",)), True, "already allows"),
        (AuthnOptions(audiences=("a",)), True, "add --jwks"),
        (AuthnOptions(jwks="jwks.json"), True, "needs --audience"),
    ],
)
def test_conflicts_fail_before_the_server_starts(
    options: AuthnOptions, mutual: bool, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        options.checks(mutual=mutual)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"allow_trust_domains": ("Bad Domain",)}, "trust domain"),
        ({"allow_spiffe_ids": ("spiffe://a.test",)}, "needs a path"),
        ({"allow_spiffe_prefixes": ("spiffe://a.test/ns/",)}, "empty path segment"),
        ({"allow_spiffe_prefixes": ("spiffe://a.test/ns/../x",)}, "'.' and '..'"),
        ({"trust_bundles": (("a.test/x", Path("a.pem")),)}, "trust domain"),
    ],
)
def test_bad_spiffe_entries_fail_when_the_options_are_built(
    kwargs: dict[str, object], message: str
) -> None:
    """SPIFFE entries are checked when the configuration is read, not at the first call."""
    with pytest.raises(ConfigurationError, match=message):
        AuthnOptions(**kwargs)  # type: ignore[arg-type]


def test_unreachable_jwks_url_fails_at_start(pki: Pki, tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(pki.ca.certificate_pem())
    with JwksServer(pki.ca, tmp_path) as server:
        server.status = 404
        options = AuthnOptions(jwks=server.url, jwks_ca=ca, audiences=(AUDIENCE,))
        with pytest.raises(MaterialError, match="HTTP 404"):
            options.checks(mutual=False)


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_options_on_a_real_server(kind: str, pki: Pki, mint: Minter, jwks_path: Path) -> None:
    """Health-like exempt method without a token; guarded methods with one; none: refused."""
    options = AuthnOptions(
        allow_trust_domains=("example.org",),
        jwks=str(jwks_path),
        audiences=(AUDIENCE,),
        required_scopes=(SCOPE,),
        exempt=(f"/{SERVICE}/Unary",),
    )
    guard = Guard(*options.checks(mutual=True))
    credentials = server_credentials(pki.server, client_ca=pki.ca)
    with (
        serve_guarded(kind, credentials, guard) as server,
        grpc.secure_channel(
            server.target, channel_credentials(ca=pki.ca, identity=pki.client)
        ) as channel,
    ):
        assert invoke(channel, UNARY)[0]["checked"] is True  # exempt: no token needed
        assert invoke(channel, "bidi", metadata=bearer(mint()))[0]["sub"] == "alice"
        error = invoke_error(channel, "bidi")
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
