"""JWTVerifier as a pure function, with ``now`` as a parameter.

Time limits are tested one second either side of the boundary (with and without leeway); the
algorithm allow-list against ``none``, HS256 key confusion and key-type mismatch; the cache for
speed, expiry and key removal; and every message for the absence of the token itself.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from grpcsec.authn import (
    JWTVerifier,
    StaticKeys,
    VerificationKey,
)
from grpcsec.authn.verified import REASONS, claims_to_json, token_id
from grpcsec.clock import ManualClock
from grpcsec.errors import AuthenticationError, ConfigurationError
from tests.authn.conftest import (
    AUDIENCE,
    EC_KID,
    ISSUER,
    RSA_KID,
    SCOPE,
    Keys,
    Minter,
    hs256_with_key_confusion,
    make_verifier,
    raw_token,
    signed_token,
    standard_claims,
)

NOW = 1_900_000_000.0


def reason(verifier: JWTVerifier, token: str, now: float = NOW) -> str:
    with pytest.raises(AuthenticationError) as caught:
        verifier.verify(token, now=now)
    assert caught.value.reason in REASONS
    if len(token) > 8:
        assert token not in str(caught.value)
    return caught.value.reason


@pytest.fixture
def verifier(keys: Keys) -> JWTVerifier:
    return make_verifier(keys, leeway=0)


# -- accepted -------------------------------------------------------------------------------------
def test_valid_es256_and_rs256_tokens_verify(
    verifier: JWTVerifier, keys: Keys, mint: Minter
) -> None:
    es = verifier.verify(mint(now=NOW), now=NOW + 1)
    rs = verifier.verify(mint(key=keys.rsa, kid=RSA_KID, now=NOW), now=NOW + 1)
    assert (es.algorithm, es.kid, es.subject, es.issuer) == ("ES256", EC_KID, "alice", ISSUER)
    assert (rs.algorithm, rs.kid) == ("RS256", RSA_KID)
    assert es.scopes == frozenset({SCOPE})
    assert es.expires_at == NOW + 300
    assert es.token_id.startswith("sha256:")


def test_claims_are_read_only_and_convert_back_to_json(verifier: JWTVerifier, mint: Minter) -> None:
    token = mint(now=NOW, claims={"roles": ["a", "b"], "ctx": {"tenant": "acme"}})
    claims = verifier.verify(token, now=NOW).claims
    with pytest.raises(TypeError):
        claims["sub"] = "mallory"  # type: ignore[index]
    assert claims["roles"] == ("a", "b")
    assert claims_to_json(claims)["ctx"] == {"tenant": "acme"}


def test_audience_list_and_scp_claim(verifier: JWTVerifier, mint: Minter) -> None:
    token = mint(now=NOW, audience=["other", AUDIENCE], scopes=[], claims={"scp": ["x", "y"]})
    verified = verifier.verify(token, now=NOW)
    assert verified.scopes == frozenset({"x", "y"})


# -- time ------------------------------------------------------------------------------------------
def test_expiry_boundary_one_second_either_side(verifier: JWTVerifier, mint: Minter) -> None:
    token = mint(now=NOW)  # exp = NOW + 300
    verifier.verify(token, now=NOW + 299)
    verifier.clear_cache()
    assert reason(verifier, token, NOW + 300) == "expired"
    assert reason(verifier, token, NOW + 301) == "expired"


def test_leeway_extends_expiry_and_not_before(keys: Keys, mint: Minter) -> None:
    verifier = make_verifier(keys, leeway=30, cache_size=0)
    token = mint(now=NOW, not_before=NOW + 60)
    assert reason(verifier, token, NOW + 29) == "not_yet_valid"
    verifier.verify(token, now=NOW + 31)
    verifier.verify(token, now=NOW + 329)
    assert reason(verifier, token, NOW + 331) == "expired"


def test_not_before_and_issued_in_future(verifier: JWTVerifier, mint: Minter) -> None:
    assert reason(verifier, mint(now=NOW, not_before=NOW + 1)) == "not_yet_valid"
    verifier.verify(mint(now=NOW, not_before=NOW), now=NOW)
    assert reason(verifier, mint(now=NOW + 10)) == "issued_in_future"


def test_expiry_is_required_unless_disabled(keys: Keys, mint: Minter) -> None:
    token = mint(now=NOW, claims={"exp": None})
    assert reason(make_verifier(keys), token) == "missing_claim"
    relaxed = make_verifier(keys, require_expiry=False)
    assert relaxed.verify(token, now=NOW).expires_at is None


def test_non_numeric_times_are_invalid(verifier: JWTVerifier, mint: Minter) -> None:
    assert reason(verifier, mint(now=NOW, claims={"exp": "tomorrow"})) == "invalid_numeric_date"
    assert reason(verifier, mint(now=NOW, claims={"nbf": True})) == "invalid_numeric_date"


# -- who -------------------------------------------------------------------------------------------
def test_issuer_audience_and_required_claims(keys: Keys, mint: Minter) -> None:
    verifier = make_verifier(keys, required_claims=["tenant"])
    assert reason(verifier, mint(now=NOW, issuer="https://evil.test")) == "invalid_issuer"
    assert reason(verifier, signed_token(keys.ec, standard_claims(NOW, iss=7))) == "invalid_issuer"
    assert reason(verifier, mint(now=NOW, audience="other")) == "invalid_audience"
    assert reason(verifier, mint(now=NOW, claims={"aud": None})) == "invalid_audience"
    assert reason(verifier, mint(now=NOW)) == "missing_claim"
    verifier.verify(mint(now=NOW, claims={"tenant": "acme"}), now=NOW)


def test_no_issuer_configured_accepts_any_issuer(keys: Keys, mint: Minter) -> None:
    verifier = make_verifier(keys, issuer=None)
    verifier.verify(mint(now=NOW, issuer="https://anyone.test"), now=NOW)


# -- algorithms and keys ---------------------------------------------------------------------------
def test_alg_none_is_refused(verifier: JWTVerifier) -> None:
    token = raw_token({"alg": "none", "kid": EC_KID}, standard_claims(NOW))
    assert reason(verifier, token) == "algorithm_not_allowed"


def test_hs256_signed_with_the_rsa_public_key_is_refused(verifier: JWTVerifier, keys: Keys) -> None:
    token = hs256_with_key_confusion(keys.rsa_public_pem(), RSA_KID, standard_claims(NOW))
    assert reason(verifier, token) == "algorithm_not_allowed"


def test_algorithm_that_does_not_fit_the_key_is_refused(keys: Keys, mint: Minter) -> None:
    """An RS256 token naming the EC key's kid cannot be checked with that key."""
    verifier = make_verifier(keys)
    token = mint(key=keys.rsa, kid=EC_KID, now=NOW)
    assert reason(verifier, token) == "key_algorithm_mismatch"


def test_algorithm_outside_the_allow_list_is_refused(keys: Keys, mint: Minter) -> None:
    verifier = make_verifier(keys, algorithms=["ES256"])
    assert reason(verifier, mint(key=keys.rsa, kid=RSA_KID, now=NOW)) == "algorithm_not_allowed"


def test_wrong_signature_and_unknown_kid(verifier: JWTVerifier, keys: Keys, mint: Minter) -> None:
    assert reason(verifier, mint(key=keys.foreign, now=NOW)) == "invalid_signature"
    assert reason(verifier, mint(key=keys.foreign, kid="nope", now=NOW)) == "unknown_kid"
    tampered = mint(now=NOW)
    head, _payload, signature = tampered.split(".")
    forged = (
        f"{head}.{raw_token({}, standard_claims(NOW, sub='mallory')).split('.')[1]}.{signature}"
    )
    assert reason(verifier, forged) == "invalid_signature"


def test_token_without_kid_needs_exactly_one_fitting_key(keys: Keys, mint: Minter) -> None:
    single = JWTVerifier(StaticKeys([keys.ec.public_key()]), audience=AUDIENCE)
    single.verify(mint(kid="", now=NOW), now=NOW)
    two = JWTVerifier(
        StaticKeys([keys.ec.public_key(), keys.foreign.public_key()]), audience=AUDIENCE
    )
    assert reason(two, mint(kid="", now=NOW)) == "missing_kid"


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d", "not a token", "é.é.é", "eyJhbGciOiJFUzI1NiJ9.e30.!!!!", "a.b.c"],
)
def test_malformed_tokens(verifier: JWTVerifier, token: str) -> None:
    assert reason(verifier, token) == "malformed_token"


def test_oversized_token_is_refused_before_decoding(keys: Keys, mint: Minter) -> None:
    verifier = make_verifier(keys, max_token_bytes=1024)
    assert reason(verifier, mint(now=NOW, claims={"pad": "x" * 1200})) == "token_too_large"
    assert reason(verifier, "x" * 5000) == "token_too_large"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"algorithms": ["none"]}, "never allowed"),
        ({"algorithms": ["HS256"]}, "never allowed"),
        ({"algorithms": ["XX1"]}, "unsupported algorithm"),
        ({"algorithms": []}, "empty"),
        ({"audience": []}, "audience is required"),
        ({"leeway": -1}, "leeway"),
        ({"max_token_bytes": 10}, "max_token_bytes"),
    ],
)
def test_unsafe_configuration_fails_at_construction(
    keys: Keys, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_verifier(keys, **options)


# -- cache -----------------------------------------------------------------------------------------
def test_cached_token_is_much_faster_than_a_cold_verification(keys: Keys, mint: Minter) -> None:
    """A repeated token is a cache hit: the same object back, far cheaper than verifying.
    (The speed ratio is measured by benchmarks/authn.py; here only a loose sanity bound.)"""
    verifier = make_verifier(keys)
    token = mint()
    first = verifier.verify(token)
    started = time.perf_counter()
    for _ in range(200):
        assert verifier.verify(token) is first
    cached = time.perf_counter() - started
    cold = make_verifier(keys, cache_size=0)
    started = time.perf_counter()
    for _ in range(200):
        cold.verify(token)
    uncached = time.perf_counter() - started
    assert verifier.cache_info()["hits"] == 200
    assert cached < uncached


def test_cached_token_still_expires(verifier: JWTVerifier, mint: Minter) -> None:
    token = mint(now=NOW)
    verifier.verify(token, now=NOW)
    assert reason(verifier, token, NOW + 301) == "expired"
    assert verifier.cache_info()["size"] == 0


def test_removing_a_key_revokes_its_cached_tokens(keys: Keys, mint: Minter) -> None:
    class Mutable(StaticKeys):
        def __init__(self, values: list[VerificationKey]) -> None:
            super().__init__(values)
            self.values = values

        def set(self, values: list[VerificationKey]) -> None:
            StaticKeys.__init__(self, values)

    source = Mutable(keys.verification_keys())
    verifier = JWTVerifier(source, audience=AUDIENCE)
    token = mint(now=NOW)
    verifier.verify(token, now=NOW)
    source.set([VerificationKey.from_public_key(keys.rsa, kid=RSA_KID)])
    assert reason(verifier, token) == "unknown_kid"


def test_cache_is_bounded(keys: Keys, mint: Minter) -> None:
    verifier = make_verifier(keys, cache_size=3)
    for index in range(6):
        verifier.verify(mint(now=NOW, subject=f"user-{index}"), now=NOW)
    assert verifier.cache_info()["size"] == 3


def test_explain_reports_reason_and_unverified_claims(keys: Keys, mint: Minter) -> None:
    verifier = make_verifier(keys)
    report = verifier.explain(mint(now=NOW), now=NOW + 400)
    assert not report.accepted
    assert report.reason == "expired"
    assert report.claims is not None
    assert report.claims["sub"] == "alice"
    assert report.to_json()["seconds_until"]["exp"] == -100.0
    ok = verifier.explain(mint(now=NOW), now=NOW, required_scopes=[SCOPE, "other"])
    assert not ok.accepted
    assert ok.reason == "insufficient_scope"
    assert ok.missing_scopes == ("other",)
    assert verifier.explain(mint(now=NOW), now=NOW).accepted


def test_reprs_and_token_ids_never_show_the_token(keys: Keys, mint: Minter) -> None:
    token = mint()
    verifier = make_verifier(keys)
    verified = verifier.verify(token)
    assert token not in repr(verifier)
    assert token not in repr(verified)
    assert token not in str(verified.to_json())
    assert token_id(token) == verified.token_id


# -- the clock -------------------------------------------------------------------------------------
def test_a_manual_clock_moves_a_cached_token_past_expiry(keys: Keys, mint: Minter) -> None:
    """Without ``now=``, the verifier reads its clock: a ManualClock takes a cached token to one
    second before and then to its expiry with no sleep. The control: a verifier on the
    machine's clock refuses the same token, dated by the ManualClock (2030), as not yet issued."""
    clock = ManualClock()
    verifier = make_verifier(keys, leeway=0, clock=clock)
    token = mint(ttl=dt.timedelta(seconds=300), clock=clock)
    assert verifier.verify(token).subject == "alice"
    clock.advance(299)
    assert verifier.verify(token).subject == "alice"
    assert verifier.cache_info()["hits"] == 1
    clock.advance(1)
    with pytest.raises(AuthenticationError) as caught:
        verifier.verify(token)
    assert caught.value.reason == "expired"
    with pytest.raises(AuthenticationError) as caught:
        make_verifier(keys, leeway=0).verify(token)
    assert caught.value.reason == "issued_in_future"
