"""Fuzz target ``bearer``: the server side of bearer tokens, from the ``authorization`` value on.

Each input builds a fresh :class:`JWTVerifier` (one-entry token cache, fixed JWKS with a P-256
and an Ed25519 key derived from constants, so every run and every reproduction is the same) and
a :class:`RequireBearerToken` check, then runs one of three modes picked by the first byte:

* ``0`` the rest is up to three ``authorization`` header values (split at NUL bytes, read as
  Latin-1), through the interceptor check for two methods (real clock), then the first value
  through the verifier at fixed times so the cache is hit and expires;
* ``1`` the rest is a JOSE header and a payload (split at the first NUL; no NUL: the payload
  with a default header), **signed** with the fixed key the header's ``alg`` names, so the
  claim checks behind the signature are reached; checked like mode 0 and through
  :meth:`JWTVerifier.explain` (``grpcsec token verify``), whose report must be strict JSON;
* ``2`` the rest is a JWKS document; a parsed key set then verifies a fixed token.

Documented outcomes: the call passes with read-only claims that are strict JSON, or
:class:`AuthenticationError` with a reason from :data:`REASONS` whose message does not contain
the token, or :class:`AuthorizationError` for missing scopes/claims; a JWKS parses or raises
:class:`GrpcsecError`. Anything else is a crash.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.api_jws import PyJWS

from fuzz import Unexpected
from grpcsec.authn import (
    CallInfo,
    JWTVerifier,
    KeySet,
    RequireBearerToken,
    StaticKeys,
    TokenRequirement,
)
from grpcsec.authn.tokens import public_jwks
from grpcsec.authn.verified import REASONS, claims_to_json
from grpcsec.errors import AuthenticationError, AuthorizationError, GrpcsecError
from grpcsec.identity import Peer, TransportSecurity

__all__ = ["AUDIENCE", "ISSUER", "KEYS", "NOW", "check", "sign"]

NOW = 1_900_000_000
ISSUER = "https://issuer.fuzz.test"
AUDIENCE = "fuzz-service"
KEYS: dict[str, tuple[str, Any]] = {
    "ES256": ("fuzz-ec", ec.derive_private_key(0x6772706373656320, ec.SECP256R1())),
    "EdDSA": ("fuzz-ed", ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))),
}
JWKS = json.dumps(public_jwks([(key, kid) for kid, key in KEYS.values()]))
_METHODS = ("/fuzz.Service/Call", "/fuzz.Service/Admin")
_PEER = Peer(address="ipv4:127.0.0.1:1", transport=TransportSecurity.TLS)
_DENIED = frozenset({"insufficient_scope", "missing_claim"})
_WHEN = (NOW, NOW, NOW + 3600)
"""Verification times: a cache miss, a hit, and a hit past ``exp`` (expired)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign(header: bytes, payload: bytes) -> str:
    """A compact JWS over exactly these header and payload bytes, signed by PyJWT with the fixed
    key the header's ``alg`` names (ES256 when it names none of them)."""
    try:
        alg = json.loads(header).get("alg")
    except (ValueError, AttributeError, RecursionError):
        alg = None
    name = alg if isinstance(alg, str) and alg in KEYS else "ES256"
    signing_input = f"{_b64(header)}.{_b64(payload)}".encode("ascii")
    signature = PyJWS().get_algorithm_by_name(name).sign(signing_input, KEYS[name][1])
    return f"{signing_input.decode('ascii')}.{_b64(signature)}"


def _control() -> str:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "control", "exp": NOW + 600, "scope": "call"}
    return sign(b'{"alg":"ES256","kid":"fuzz-ec"}', json.dumps(claims).encode())


_CONTROL = _control()


def _verifier(keys: KeySet | None = None) -> JWTVerifier:
    source = StaticKeys(keys if keys is not None else KeySet.from_jwks(JWKS))
    return JWTVerifier(
        source, audience=AUDIENCE, issuer=ISSUER, algorithms=("ES256", "EdDSA"), cache_size=1
    )


def _guard(verifier: JWTVerifier) -> RequireBearerToken:
    admin = TokenRequirement(scopes=["admin"], claims=["tenant"])
    return RequireBearerToken(verifier, scopes=["call"], methods={_METHODS[1]: admin})


def _secret_free(message: str, values: list[str]) -> None:
    for value in values:
        token = value.strip().rpartition(" ")[2]
        if len(token) >= 40 and token in message:
            raise Unexpected("an error message contains the token")


def _call(guard: RequireBearerToken, values: list[str], method: str) -> None:
    """The interceptor's check on a call with these ``authorization`` values (real clock)."""
    metadata = [("authorization", value) for value in values]
    try:
        passed = guard.check(CallInfo(method=method, metadata=metadata, peer=_PEER))
    except AuthenticationError as exc:
        if exc.reason not in REASONS:
            raise Unexpected(f"undocumented reason {exc.reason!r}") from exc
        _secret_free(str(exc), values)
        return
    except AuthorizationError as exc:
        if getattr(exc, "reason", None) not in _DENIED:
            raise Unexpected(f"undocumented denial {exc!r}") from exc
        _secret_free(str(exc), values)
        return
    if passed is None or passed.claims is None:
        raise Unexpected("a passed call carries no claims")
    json.dumps(claims_to_json(passed.claims), allow_nan=False)


def _verify(verifier: JWTVerifier, token: str, now: float) -> None:
    """The verifier at a given time (the cache is hit at ``NOW`` twice, then expires)."""
    try:
        verified = verifier.verify(token, now=now)
    except AuthenticationError as exc:
        if exc.reason not in REASONS:
            raise Unexpected(f"undocumented reason {exc.reason!r}") from exc
        _secret_free(str(exc), [token])
        return
    json.dumps(verified.to_json(), allow_nan=False)


def _headers(data: bytes) -> None:
    values = [part.decode("latin-1") for part in data.split(b"\x00")[:3]]
    verifier = _verifier()
    guard = _guard(verifier)
    for method in _METHODS:
        _call(guard, values, method)
    for now in _WHEN:
        _verify(verifier, values[0].strip().rpartition(" ")[2], now)


def _signed(data: bytes) -> None:
    header, sep, payload = data.partition(b"\x00")
    if not sep:
        header, payload = b'{"alg":"ES256","kid":"fuzz-ec"}', data
    token = sign(header, payload)
    verifier = _verifier()
    guard = _guard(verifier)
    for method in _METHODS:
        _call(guard, [f"Bearer {token}"], method)
    for now in _WHEN:
        _verify(verifier, token, now)
        _verify(verifier, _CONTROL, now)  # evicts the token: the cache holds one entry
    report = verifier.explain(token, now=NOW, required_scopes=["call"])
    if report.reason is not None and report.reason not in REASONS and report.reason not in _DENIED:
        raise Unexpected(f"undocumented reason {report.reason!r}")
    json.dumps(report.to_json(), allow_nan=False)


def _jwks(data: bytes) -> None:
    try:
        keys = KeySet.from_jwks(data, source="fuzz-jwks.json")
    except GrpcsecError:
        return
    _call(_guard(_verifier(keys)), [f"Bearer {_CONTROL}"], _METHODS[0])


_MODES = (_headers, _signed, _jwks)


def check(data: bytes) -> None:
    """One input: run the mode the first byte picks; only documented outcomes may come out."""
    if data:
        _MODES[data[0] % len(_MODES)](data[1:])
