"""Verification keys: JWK parsing, JWKS files that change, and JWKS over real HTTPS.

The HTTPS tests run a real ``http.server`` + ``ssl`` server on 127.0.0.1:0 with a certificate
from the session CA; the verifier trusts that CA explicitly (and a negative control trusts
another CA). Rotation, the unknown-``kid`` rate limit and stale keys are driven with ``now``;
one test per server kind rotates keys under a running gRPC server.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from grpcsec.authn import (
    JWKSFile,
    JWKSUrl,
    JWTVerifier,
    KeySet,
    RequireBearerToken,
    StaticKeys,
    VerificationKey,
    public_jwks,
)
from grpcsec.authn.jwks import jwk_thumbprint, key_source
from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.errors import AuthenticationError, ConfigurationError, MaterialError
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
    serve_guarded,
    wait_for,
)
from tests.conftest import Pki
from tests.hostile import Hostile, bounded, put, replaced_by

NOW = 1_900_000_000.0
HOUR = dt.timedelta(hours=1)


def jwk(key: Any, kid: str, **extra: Any) -> dict[str, Any]:
    entry = VerificationKey.from_public_key(key, kid=kid).to_jwk()
    entry.update(extra)
    return entry


def refused(verifier: JWTVerifier, token: str, now: float) -> str:
    with pytest.raises(AuthenticationError) as caught:
        verifier.verify(token, now=now)
    return caught.value.reason


# -- parsing ---------------------------------------------------------------------------------------
def test_jwks_round_trip_and_thumbprint_kid(keys: Keys) -> None:
    document = public_jwks([(keys.ec, None), (keys.rsa, "r")])
    parsed = KeySet.from_jwks(json.dumps(document))
    assert parsed.kids() == [jwk_thumbprint(keys.ec.public_key()), "r"]
    assert parsed.keys[0].algorithms == frozenset({"ES256"})
    assert parsed.keys[1].algorithms == frozenset({"RS256"})
    assert all("d" not in entry for entry in document["keys"])


def test_unusable_keys_are_skipped_and_listed(keys: Keys) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (on purpose)
    small_jwk = {**RSAAlgorithm.to_jwk(small.public_key(), as_dict=True), "kid": "small"}
    document = {
        "keys": [
            jwk(keys.ec, "sig"),
            jwk(keys.foreign, "enc", use="enc"),
            small_jwk,
            jwk(keys.ec, "weird", kty="XYZ"),
            "not an object",
        ]
    }
    parsed = KeySet.from_jwks(document)
    assert parsed.kids() == ["sig"]
    assert len(parsed.skipped) == 4
    assert any("2048" in reason for reason in parsed.skipped)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"not json", "not valid JSON"),
        ({"nokeys": []}, "not a JWKS"),
        ({"keys": []}, "no usable signature key"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "private or symmetric"),
    ],
)
def test_bad_jwks_documents_are_refused(document: Any, message: str) -> None:
    with pytest.raises(MaterialError, match=message):
        KeySet.from_jwks(document)


def test_private_and_duplicate_keys_are_refused(keys: Keys) -> None:
    private = {**jwk(keys.ec, "p"), "d": "AAAA"}
    with pytest.raises(MaterialError, match="private"):
        KeySet.from_jwks({"keys": [private]})
    with pytest.raises(MaterialError, match="share the kid"):
        KeySet.from_jwks({"keys": [jwk(keys.ec, "same"), jwk(keys.foreign, "same")]})


def test_jwk_alg_restricts_the_key(keys: Keys, mint: Minter) -> None:
    """An RSA JWK marked ``alg: RS256`` does not verify a PS256 token."""
    document = {"keys": [jwk(keys.rsa, "r", alg="RS256")]}
    verifier = JWTVerifier(
        StaticKeys(KeySet.from_jwks(document)), audience=AUDIENCE, algorithms=["RS256", "PS256"]
    )
    token = mint(key=keys.rsa, kid="r", now=NOW, algorithm="PS256")
    assert refused(verifier, token, NOW) == "key_algorithm_mismatch"
    verifier.verify(mint(key=keys.rsa, kid="r", now=NOW), now=NOW)


def test_verification_key_refuses_unfit_keys(keys: Keys) -> None:
    with pytest.raises(ConfigurationError, match="2048"):
        VerificationKey.from_public_key(rsa.generate_private_key(65537, 1024))  # noqa: S505
    with pytest.raises(ConfigurationError, match="does not fit"):
        VerificationKey.from_public_key(keys.ec, algorithm="RS256")
    with pytest.raises(ConfigurationError, match="unsupported key"):
        VerificationKey.from_public_key(ec.generate_private_key(ec.SECP256K1()))


# -- files -----------------------------------------------------------------------------------------
def test_jwks_file_is_reread_when_it_changes(tmp_path: Path, keys: Keys, mint: Minter) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(keys.ec, EC_KID)]}))
    source = JWKSFile(path, poll_interval=5.0, now=NOW)
    verifier = JWTVerifier(source, audience=AUDIENCE)
    new_token = mint(key=keys.foreign, kid="new", now=NOW)
    assert refused(verifier, new_token, NOW) == "unknown_kid"

    path.write_text(json.dumps({"keys": [jwk(keys.ec, EC_KID), jwk(keys.foreign, "new")]}))
    assert refused(verifier, new_token, NOW + 1) == "unknown_kid"  # not polled yet
    verifier.verify(new_token, now=NOW + 6)
    assert source.reloads == 1

    path.write_text("{broken")
    verifier.verify(mint(key=keys.foreign, kid="new", now=NOW, subject="b"), now=NOW + 12)
    assert source.status(NOW)["last_error"] is not None


def test_jwks_file_errors_at_construction(tmp_path: Path) -> None:
    with pytest.raises(MaterialError, match="no such file"):
        JWKSFile(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(MaterialError, match="not a JWKS"):
        JWKSFile(tmp_path / "bad.json")


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


def test_key_source_picks_file_or_url(tmp_path: Path, keys: Keys, pki: Pki) -> None:
    path = tmp_path / "k.json"
    path.write_text(json.dumps(public_jwks([(keys.ec, "a")])))
    assert isinstance(key_source(str(path)), JWKSFile)
    assert isinstance(key_source("https://idp.example/jwks", ca=pki.ca), JWKSUrl)
    with pytest.raises(ConfigurationError, match="only applies"):
        key_source(str(path), ca=pki.ca)


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


@pytest.mark.parametrize("hostile", list(Hostile), ids=lambda k: k.name)
def test_jwks_file_replaced_by_a_fifo_device_or_loop_keeps_the_keys(
    tmp_path: Path, keys: Keys, mint: Minter, hostile: Hostile
) -> None:
    """Verification never blocks on the hostile file: the old keys keep verifying, the refusal
    is counted once, and the next good file is read at the next poll."""
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(keys.ec, EC_KID)]}))
    source = JWKSFile(path, poll_interval=1.0, now=NOW)
    verifier = JWTVerifier(source, audience=AUDIENCE)
    old_token = mint(now=NOW)
    with replaced_by(path, hostile) as words:
        for tick in (2, 4):
            bounded(lambda t=tick: verifier.verify(old_token, now=NOW + t), release_path=path)
        assert words in str(source.status(NOW)["last_error"])
        assert source.reload_failures == 1
        assert source.status(NOW)["reload_failures"] == 1
    put(path, json.dumps({"keys": [jwk(keys.foreign, "new")]}).encode())
    verifier.verify(mint(key=keys.foreign, kid="new", now=NOW), now=NOW + 6)
    assert source.reloads == 1
    assert source.status(NOW)["last_error"] is None
    assert refused(verifier, old_token, NOW + 7) == "unknown_kid"
