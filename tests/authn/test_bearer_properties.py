"""Property tests: any ``authorization`` value, any signed payload and any JWKS document gives
one of the documented outcomes of the bearer-token check (issue 11, items 6 and 8).

The oracle is the ``bearer`` fuzz target's ``check`` (fuzz/bearer.py): the call passes with
strict-JSON claims, or fails with ``AuthenticationError`` (a reason from ``REASONS``, no token
in the message) or ``AuthorizationError`` (missing scope or claim); ``token verify --json``'s
report is strict JSON. Payloads are *signed* with the target's fixed key, so the claim checks
behind the signature are reached, with NaN, infinities, huge integers and fractions in the
time claims.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import bearer
from grpcsec.authn import JWTVerifier, KeySet, StaticKeys
from grpcsec.errors import AuthenticationError

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
LATIN1 = st.text(alphabet=st.characters(max_codepoint=255), max_size=300)
NUMBERS = (
    st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([bearer.NOW, bearer.NOW + 600, bearer.NOW - 600, 10**400])
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | NUMBERS | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
CLAIM_NAMES = st.sampled_from(["exp", "nbf", "iat", "iss", "aud", "sub", "scope", "scp", "tenant"])


def standard(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": bearer.ISSUER,
        "aud": bearer.AUDIENCE,
        "sub": "alice",
        "iat": bearer.NOW,
        "exp": bearer.NOW + 600,
        "scope": "call",
    }
    claims.update(changes)
    return claims


def signed_input(claims: dict[str, Any], alg: str = "ES256") -> bytes:
    kid = bearer.KEYS[alg][0]
    header = json.dumps({"alg": alg, "kid": kid}).encode()
    return b"\x01" + header + b"\x00" + json.dumps(claims, allow_nan=True).encode()


@PROPERTY_SETTINGS
@given(values=st.lists(LATIN1, min_size=1, max_size=3))
def test_any_authorization_values_give_documented_outcomes(values: list[str]) -> None:
    bearer.check(b"\x00" + "\x00".join(values).encode("latin-1"))


@PROPERTY_SETTINGS
@given(values=st.lists(LATIN1, min_size=1, max_size=3))
def test_bearer_prefixed_garbage_gives_documented_outcomes(values: list[str]) -> None:
    bearer.check(b"\x00" + "\x00".join(f"Bearer {v}" for v in values).encode("latin-1"))


@PROPERTY_SETTINGS
@given(
    changes=st.dictionaries(CLAIM_NAMES | st.text(max_size=8), JSON_VALUES, max_size=5),
    alg=st.sampled_from(sorted(bearer.KEYS)),
)
def test_signed_tokens_with_any_claims_give_documented_outcomes(
    changes: dict[str, Any], alg: str
) -> None:
    bearer.check(signed_input(standard(**changes), alg))


@PROPERTY_SETTINGS
@given(claim=st.sampled_from(["exp", "nbf", "iat"]), value=NUMBERS | st.booleans() | st.text())
def test_time_claims_are_whole_finite_seconds_or_refused(claim: str, value: object) -> None:
    """The item-6 property on its own: a time claim is accepted only as whole seconds in range."""
    verifier = JWTVerifier(
        StaticKeys(KeySet.from_jwks(bearer.JWKS)),
        audience=bearer.AUDIENCE,
        issuer=bearer.ISSUER,
        cache_size=0,
    )
    header, _, payload = signed_input(standard(**{claim: value}))[1:].partition(b"\x00")
    token = bearer.sign(header, payload)
    if isinstance(value, float):
        whole = math.isfinite(value) and value.is_integer() and 0 <= value <= 253_402_300_799
    else:
        whole = type(value) is int and 0 <= value <= 253_402_300_799
    try:
        verified = verifier.verify(token, now=bearer.NOW)
    except AuthenticationError as exc:
        if not whole:
            assert exc.reason == "invalid_numeric_date", exc
        return
    assert whole, f"{claim}={value!r} was accepted"
    assert {"exp": verified.expires_at, "nbf": verified.not_before, "iat": verified.issued_at}[
        claim
    ] == int(value)  # type: ignore[call-overload]


def test_jwks_mode_and_control_token() -> None:
    """Positive controls: the fixed JWKS parses and the standard token passes the check."""
    bearer.check(b"\x02" + bearer.JWKS.encode())
    bearer.check(signed_input(standard()))
    with pytest.raises(AssertionError):  # the oracle itself bites: a made-up reason is refused
        raise bearer.Unexpected("undocumented")
