"""JWKS over real HTTPS.

The tests run a real ``http.server`` + ``ssl`` server on 127.0.0.1:0 with a certificate from the
session CA; the verifier trusts that CA explicitly (and a negative control trusts another CA).
Rotation, the unknown-``kid`` rate limit and stale keys are driven with ``now``; one test per
server kind rotates keys under a running gRPC server.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from grpcsec.authn import (
    JWKSUrl,
    JWTVerifier,
    RequireBearerToken,
)
from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.errors import ConfigurationError, MaterialError
from grpcsec.interceptors import UNAUTHENTICATED_DETAILS, Guard
from tests.authn.conftest import (
    AUDIENCE,
    EC_KID,
    UNARY,
    JwksServer,
    Keys,
    Minter,
    bearer,
    invoke,
    invoke_error,
    jwk,
    refused,
    serve_guarded,
    wait_for,
)
from tests.conftest import Pki

NOW = 1_900_000_000.0
HOUR = dt.timedelta(hours=1)


# -- HTTPS -----------------------------------------------------------------------------------------
def url_source(server: JwksServer, pki: Pki, **options: Any) -> JWKSUrl:
    options.setdefault("min_refresh_interval", 10.0)
    return JWKSUrl(server.url, ca=pki.ca, **options)


def test_rotation_new_key_is_fetched_on_unknown_kid(
    jwks_server: JwksServer, pki: Pki, keys: Keys, mint: Minter
) -> None:
    """The JWKS gains a key; a token signed with it is accepted without restarting anything."""
    jwks_server.document = {"keys": [jwk(keys.ec, EC_KID)]}
    source = url_source(jwks_server, pki)
    verifier = JWTVerifier(source, audience=AUDIENCE)
    verifier.verify(mint(now=NOW), now=NOW)
    assert jwks_server.hits == 1

    jwks_server.document = {"keys": [jwk(keys.ec, EC_KID), jwk(keys.foreign, "rotated")]}
    verifier.verify(mint(key=keys.foreign, kid="rotated", now=NOW), now=NOW + 11)
    assert jwks_server.hits == 2
    assert source.status(NOW + 11)["kids"] == [EC_KID, "rotated"]


def test_unknown_kid_fetches_are_rate_limited(
    jwks_server: JwksServer, pki: Pki, keys: Keys, mint: Minter
) -> None:
    """Random kids cannot make the server hammer the JWKS endpoint: one fetch per
    min_refresh_interval at most."""
    jwks_server.document = {"keys": [jwk(keys.ec, EC_KID)]}
    verifier = JWTVerifier(url_source(jwks_server, pki), audience=AUDIENCE)
    verifier.verify(mint(now=NOW), now=NOW)
    for offset, kid in enumerate(["a", "b", "c", "d"], start=1):
        token = mint(key=keys.foreign, kid=kid, now=NOW)
        assert refused(verifier, token, NOW + offset) == "unknown_kid"
    assert jwks_server.hits == 1
    assert refused(verifier, mint(key=keys.foreign, kid="e", now=NOW), NOW + 10) == "unknown_kid"
    assert jwks_server.hits == 2


def test_stale_keys_are_served_for_a_bounded_time_then_refused(
    jwks_server: JwksServer, pki: Pki, keys: Keys, mint: Minter
) -> None:
    """When the JWKS endpoint fails, the last keys keep working until refresh_interval +
    max_stale, and every token is refused after that (cached ones too)."""
    jwks_server.document = {"keys": [jwk(keys.ec, EC_KID)]}
    source = url_source(jwks_server, pki, refresh_interval=60.0, max_stale=120.0)
    verifier = JWTVerifier(source, audience=AUDIENCE)
    cached = mint(now=NOW, ttl=HOUR)
    verifier.verify(cached, now=NOW)

    jwks_server.status = 500
    fresh = mint(now=NOW + 100, subject="bob", ttl=HOUR)
    verifier.verify(fresh, now=NOW + 100)  # due for refresh: the fetch fails, stale keys serve
    assert source.fetch_failures == 1
    assert "HTTP 500" in str(source.status(NOW + 100)["last_error"])
    verifier.verify(cached, now=NOW + 179)

    assert refused(verifier, cached, NOW + 181) == "keys_unavailable"
    assert refused(verifier, mint(now=NOW + 181, subject="carol"), NOW + 181) == "keys_unavailable"

    jwks_server.status = 200
    verifier.verify(cached, now=NOW + 200)  # the endpoint is back: keys fetched again
    assert source.fetches == 2


def test_routine_refresh_does_not_hold_up_other_calls(
    jwks_server: JwksServer, pki: Pki, keys: Keys, mint: Minter
) -> None:
    """When keys are due, one call fetches (here: a slow, 1 s endpoint) and the others verify
    with the current keys meanwhile."""
    jwks_server.document = {"keys": [jwk(keys.ec, EC_KID)]}
    source = url_source(jwks_server, pki, refresh_interval=60.0)
    verifier = JWTVerifier(source, audience=AUDIENCE, cache_size=0)
    token = mint(now=NOW, ttl=HOUR)
    verifier.verify(token, now=NOW)
    jwks_server.delay = 1.0
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(verifier.verify, token, now=NOW + 61)
        wait_for(lambda: jwks_server.hits == 2)
        started = time.monotonic()
        verifier.verify(token, now=NOW + 61.5)
        assert time.monotonic() - started < 0.5
        slow.result(timeout=10)
    assert source.fetches == 2


def test_jwks_server_from_an_untrusted_ca_is_refused(
    jwks_server: JwksServer, pki: Pki, keys: Keys, mint: Minter
) -> None:
    """Negative control for the explicit trust: a verifier trusting another CA fetches
    nothing, so every token is refused."""
    jwks_server.document = {"keys": [jwk(keys.ec, EC_KID)]}
    source = JWKSUrl(jwks_server.url, ca=pki.other_ca)
    verifier = JWTVerifier(source, audience=AUDIENCE)
    assert refused(verifier, mint(now=NOW), NOW) == "keys_unavailable"
    assert "CERTIFICATE_VERIFY_FAILED" in str(source.status(NOW)["last_error"])
    with pytest.raises(MaterialError):
        source.fetch(NOW)


def test_redirects_and_plain_http_are_refused(jwks_server: JwksServer, pki: Pki) -> None:
    jwks_server.redirect_to = "http://127.0.0.1:1/jwks.json"
    with pytest.raises(MaterialError, match="HTTP 302"):
        JWKSUrl(jwks_server.url, ca=pki.ca).fetch(NOW)
    with pytest.raises(ConfigurationError, match="https"):
        JWKSUrl("http://127.0.0.1/jwks.json", ca=pki.ca)


def test_oversized_jwks_is_refused(jwks_server: JwksServer, pki: Pki) -> None:
    jwks_server.document = b"{" + b" " * 5000 + b"}"
    with pytest.raises(MaterialError, match="larger than"):
        JWKSUrl(jwks_server.url, ca=pki.ca, max_bytes=1000).fetch(NOW)


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_rotation_under_a_running_grpc_server(
    kind: str, jwks_server: JwksServer, pki: Pki, keys: Keys, mint: Minter
) -> None:
    """End to end: a token signed with a key the JWKS does not have yet is UNAUTHENTICATED;
    once the JWKS publishes the key, the same server accepts it (on grpc.aio the fetch runs
    off the event loop)."""
    jwks_server.document = {"keys": [jwk(keys.ec, EC_KID)]}
    source = JWKSUrl(jwks_server.url, ca=pki.ca, min_refresh_interval=0.0)
    guard = Guard(RequireBearerToken(JWTVerifier(source, audience=AUDIENCE)))
    rotated = mint(key=keys.foreign, kid="rotated")
    with (
        serve_guarded(kind, server_credentials(pki.server, client_ca=pki.ca), guard) as server,
        grpc.secure_channel(
            server.target, channel_credentials(ca=pki.ca, identity=pki.client)
        ) as channel,
    ):
        assert invoke(channel, UNARY, metadata=bearer(mint()))[0]["sub"] == "alice"
        error = invoke_error(channel, UNARY, metadata=bearer(rotated))
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        assert error.details() == UNAUTHENTICATED_DETAILS
        jwks_server.document = {"keys": [jwk(keys.ec, EC_KID), jwk(keys.foreign, "rotated")]}
        assert invoke(channel, UNARY, metadata=bearer(rotated))[0]["sub"] == "alice"
    assert guard.stats.snapshot()["unauthenticated"] == {"unknown_kid": 1}
    assert source.fetches == 3
