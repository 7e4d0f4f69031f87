"""JWT bearer tokens on the server: a verifier with a token cache, and the interceptor check.

No grpc. :class:`JWTVerifier` verifies a compact JWS with PyJWT against keys from a
:class:`~grpcsec.authn.jwks.KeySource` and checks the claims itself, with ``now`` as a
parameter:

* the header's ``alg`` must be in the verifier's explicit allow-list (never ``none``, never
  ``HS*``) *and* fit the selected key's type (an ``ES256`` token cannot be checked with an RSA
  key); the key is chosen by ``kid`` (a token without one is accepted only when exactly one key
  fits its algorithm);
* ``exp`` (required unless ``require_expiry=False``), ``nbf`` and ``iat`` with ``leeway``
  seconds of clock skew, each a whole number of seconds from 1970 to 9999 (NaN, Infinity,
  fractions, booleans and strings are refused: :mod:`grpcsec.authn.numeric`); ``iss``
  against ``issuer`` when given; ``aud`` against ``audience``
  (always required: a verifier that accepts any audience accepts tokens minted for other
  services); ``required_claims`` present;
* at most ``max_token_bytes`` (default 8 KiB), checked before anything is decoded.

A verified token is cached under the SHA-256 of its text until it expires (bounded entries), so
a repeated token costs a hash and a dictionary lookup; a cache hit still re-checks ``exp`` and
``nbf`` against ``now`` and that its key is still in the key set (a key removed from the JWKS
revokes its cached tokens). Failures raise :class:`~grpcsec.errors.AuthenticationError` whose
``reason`` is one of :data:`REASONS`; messages never contain the token (at most its
``token_id``, a hash prefix, and the ``kid``).

:class:`RequireBearerToken` is the :mod:`grpcsec.interceptors` check: exactly one
``authorization: Bearer <jwt>`` header (two are rejected, not guessed), a verified token, and
the scopes and claims the method requires (``PERMISSION_DENIED`` when missing).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

from jwt.api_jws import PyJWS
from jwt.exceptions import (
    DecodeError,
    InvalidAlgorithmError,
    InvalidKeyError,
    InvalidSignatureError,
    PyJWTError,
)

from grpcsec.authn.call import CallInfo, Metadata, denied
from grpcsec.authn.jwks import (
    SUPPORTED_ALGORITHMS,
    KeySet,
    KeySource,
    PublicKey,
    StaticKeys,
    VerificationKey,
)
from grpcsec.authn.methods import MethodRules, MethodSet
from grpcsec.authn.numeric import is_finite_json, load_claims, numeric_date
from grpcsec.errors import AuthenticationError, ConfigurationError
from grpcsec.text import get_logger

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DEFAULT_LEEWAY",
    "DEFAULT_MAX_TOKEN_BYTES",
    "REASONS",
    "JWTVerifier",
    "RequireBearerToken",
    "TokenReport",
    "TokenRequirement",
    "VerifiedToken",
    "bearer_token",
    "claims_to_json",
    "token_id",
]

log = get_logger("grpcsec.authn")

DEFAULT_ALGORITHMS = ("ES256", "RS256")
DEFAULT_LEEWAY = 30.0
DEFAULT_MAX_TOKEN_BYTES = 8192
DEFAULT_CACHE_SIZE = 10_000
UNCACHED_EXPIRY_SECONDS = 300.0
"""How long a verified token without ``exp`` (``require_expiry=False``) stays cached."""
_SWEEP_INTERVAL = 10.0
_REFRESH_CHECK_INTERVAL = 1.0

REASONS = (
    "missing_token",
    "duplicate_authorization",
    "not_bearer",
    "token_too_large",
    "malformed_token",
    "algorithm_not_allowed",
    "missing_kid",
    "unknown_kid",
    "key_algorithm_mismatch",
    "invalid_signature",
    "keys_unavailable",
    "expired",
    "not_yet_valid",
    "issued_in_future",
    "invalid_issuer",
    "invalid_audience",
    "missing_claim",
    "invalid_numeric_date",
)
"""Stable ``AuthenticationError.reason`` values of token checks (``--json``, counters)."""

_AUTHORIZATION = "authorization"
_BEARER = "bearer"
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=")


def _now() -> float:
    return time.time()


def token_id(token: str | bytes) -> str:
    """A log-safe name for a token: ``sha256:`` and 16 hex digits of its hash."""
    data = token.encode("utf-8", "replace") if isinstance(token, str) else token
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def _short(value: object, limit: int = 64) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(message: str, reason: str) -> AuthenticationError:
    return AuthenticationError(message, reason=reason)


def _freeze(value: Any) -> Any:  # noqa: ANN401 (JSON values)
    """Read-only JSON values; :class:`ValueError` for a number JSON cannot carry (NaN, inf)."""
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    if not is_finite_json(value):
        raise ValueError(f"{value!r} is not a JSON number")
    return value


def claims_to_json(value: Any) -> Any:  # noqa: ANN401 (JSON values)
    """Frozen claims (read-only mappings, tuples) back to plain JSON values (dicts, lists)."""
    if isinstance(value, Mapping):
        return {str(key): claims_to_json(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [claims_to_json(item) for item in value]
    return value


def _is_key_source(value: object) -> bool:
    return all(
        callable(getattr(value, name, None))
        for name in ("current", "refresh_wanted", "refresh", "status")
    )


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """OAuth scopes from ``scope`` (space-separated, RFC 8693) and ``scp`` (string or list)."""
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, tuple | list):
            found.update(item for item in value if isinstance(item, str))
    return frozenset(found)


def _strings(value: str | Iterable[str] | None, what: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    items = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) and item for item in items):
        raise ConfigurationError(f"every {what} must be a non-empty string")
    return frozenset(items)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedToken:
    """A token that passed every check. ``claims`` and ``header`` are read-only and shared by
    every call that presents the same token; ``token_id`` is safe to log."""

    claims: Mapping[str, Any]
    header: Mapping[str, Any]
    algorithm: str
    kid: str | None
    token_id: str
    scopes: frozenset[str]
    expires_at: float | None
    not_before: float | None = None
    issued_at: float | None = None

    @property
    def subject(self) -> str | None:
        """The ``sub`` claim."""
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None

    @property
    def issuer(self) -> str | None:
        """The ``iss`` claim."""
        iss = self.claims.get("iss")
        return iss if isinstance(iss, str) else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (no token text)."""
        return {
            "token_id": self.token_id,
            "algorithm": self.algorithm,
            "kid": self.kid,
            "subject": self.subject,
            "issuer": self.issuer,
            "scopes": sorted(self.scopes),
            "expires_at": self.expires_at,
            "claims": claims_to_json(self.claims),
        }


@dataclass(frozen=True, slots=True)
class _Entry:
    token: VerifiedToken
    key: VerificationKey
    keys: KeySet
    cache_until: float


class _NeedsFetch(Exception):  # noqa: N818 (internal signal, not an error)
    """Verification needs keys that only a (blocking) fetch can provide."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenReport:
    """Why a token is or is not accepted, for ``grpcsec token verify``.

    ``header`` and ``claims`` are decoded *without* verification when the token is rejected
    (``None`` when they cannot be decoded); they are for display only.
    """

    accepted: bool
    reason: str | None
    message: str | None
    token_id: str
    header: Mapping[str, Any] | None
    claims: Mapping[str, Any] | None
    verified: VerifiedToken | None
    now: float
    missing_scopes: tuple[str, ...] = ()
    keys: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""

        def relative(claim: str) -> float | None:
            try:
                return round(numeric_date((self.claims or {}).get(claim)) - self.now, 3)
            except ValueError:
                return None

        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "message": self.message,
            "token_id": self.token_id,
            "verified": self.verified is not None,
            "header": claims_to_json(self.header) if self.header is not None else None,
            "claims": claims_to_json(self.claims) if self.claims is not None else None,
            "scopes": sorted(_scopes(self.claims)) if self.claims is not None else [],
            "missing_scopes": list(self.missing_scopes),
            "seconds_until": {"exp": relative("exp"), "nbf": relative("nbf")},
            "now": self.now,
            "keys": dict(self.keys),
        }


class JWTVerifier:
    """Verifies JWT bearer tokens; see the module docstring for every check.

    ``keys`` is a :class:`~grpcsec.authn.jwks.KeySource` (:class:`~grpcsec.authn.jwks.JWKSUrl`,
    :class:`~grpcsec.authn.jwks.JWKSFile`, :class:`~grpcsec.authn.jwks.StaticKeys`) or plain
    public keys. ``audience`` is required; ``issuer`` is recommended. ``cache_size=0`` turns the
    token cache off. Safe to share between threads and event loops.
    """

    def __init__(
        self,
        keys: KeySource | Iterable[VerificationKey | PublicKey],
        *,
        audience: str | Iterable[str],
        issuer: str | Iterable[str] | None = None,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = DEFAULT_LEEWAY,
        required_claims: Iterable[str] = (),
        require_expiry: bool = True,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.keys: KeySource = (
            cast("KeySource", keys)
            if _is_key_source(keys)
            else StaticKeys(cast("Iterable[VerificationKey | PublicKey]", keys))
        )
        self.audiences = _strings(audience, "audience")
        if not self.audiences:
            raise ConfigurationError(
                "an audience is required: without it tokens minted for any other service "
                "would be accepted"
            )
        self.issuers = _strings(issuer, "issuer")
        chosen = tuple(dict.fromkeys(algorithms))
        if not chosen:
            raise ConfigurationError("the algorithm allow-list is empty")
        for name in chosen:
            if name.lower() == "none" or name.upper().startswith("HS"):
                raise ConfigurationError(
                    f"algorithm {name!r} is never allowed: 'none' is unsigned and HS* "
                    "(shared secrets) invite key confusion; use RS*, PS*, ES* or EdDSA"
                )
            if name not in SUPPORTED_ALGORITHMS:
                raise ConfigurationError(
                    f"unsupported algorithm {name!r}; choose from "
                    f"{', '.join(sorted(SUPPORTED_ALGORITHMS))}"
                )
        self.algorithms: frozenset[str] = frozenset(chosen)
        if leeway < 0 or leeway > 300:
            raise ConfigurationError("leeway must be between 0 and 300 seconds")
        self.leeway = float(leeway)
        self.required_claims = _strings(required_claims, "required claim")
        self.require_expiry = require_expiry
        if not 64 <= max_token_bytes <= 64 * 1024:
            raise ConfigurationError("max_token_bytes must be between 64 and 65536")
        self.max_token_bytes = max_token_bytes
        if cache_size < 0:
            raise ConfigurationError("cache_size must not be negative")
        self.cache_size = cache_size
        self._cache: dict[bytes, _Entry] = {}
        self._cache_lock = threading.Lock()
        self._swept_at = float("-inf")
        self._refresh_check_at = float("-inf")
        self._jws = PyJWS()
        self.cache_hits = 0
        self.cache_misses = 0

    def __repr__(self) -> str:
        return (
            f"JWTVerifier(keys={self.keys!r}, audience={sorted(self.audiences)!r}, "
            f"issuer={sorted(self.issuers)!r}, algorithms={sorted(self.algorithms)!r}, "
            f"leeway={self.leeway})"
        )

    # -- public API ------------------------------------------------------------------------------
    def verify(self, token: str, *, now: float | None = None) -> VerifiedToken:
        """Verify ``token`` (the JWT itself, without ``Bearer``); fetches keys when needed.

        Raises :class:`AuthenticationError` with a ``reason`` from :data:`REASONS`.
        """
        moment = time.time() if now is None else now
        verified = self._verify(token, moment, may_block=True)
        if moment >= self._refresh_check_at:
            self._refresh_check_at = moment + _REFRESH_CHECK_INTERVAL
            if self.keys.refresh_wanted(moment, unknown_kid=False):
                self.keys.refresh(moment, wait=False)  # one call fetches; the others go on
        return verified

    def verify_nowait(self, token: str, *, now: float | None = None) -> VerifiedToken | None:
        """Like :meth:`verify`, but ``None`` when a key fetch would be needed first (the
        caller then runs :meth:`verify` on a thread). Never blocks."""
        try:
            return self._verify(token, _now() if now is None else now, may_block=False)
        except _NeedsFetch:
            return None

    def refresh_due(self, now: float | None = None) -> bool:
        """Whether the key source wants a routine refresh (do it off the hot path). Asks the
        source at most once per second."""
        moment = time.time() if now is None else now
        if moment < self._refresh_check_at:
            return False
        self._refresh_check_at = moment + _REFRESH_CHECK_INTERVAL
        return self.keys.refresh_wanted(moment, unknown_kid=False)

    def refresh_keys(self, now: float | None = None) -> None:
        """Refresh the keys if due (blocking; never raises)."""
        moment = _now() if now is None else now
        try:
            if self.keys.refresh_wanted(moment, unknown_kid=False):
                self.keys.refresh(moment, wait=False)
        except Exception:
            log.exception("JWKS refresh failed")

    def cache_info(self) -> dict[str, int]:
        """Cache hits, misses, current and maximum size."""
        return {
            "hits": self.cache_hits,
            "misses": self.cache_misses,
            "size": len(self._cache),
            "max_size": self.cache_size,
        }

    def clear_cache(self) -> None:
        """Forget every cached token."""
        with self._cache_lock:
            self._cache.clear()

    def explain(
        self, token: str, *, now: float | None = None, required_scopes: Iterable[str] = ()
    ) -> TokenReport:
        """Verify and report why the token is or is not accepted (for the CLI and support)."""
        moment = _now() if now is None else now
        token = token.strip()
        header: Mapping[str, Any] | None = None
        claims: Mapping[str, Any] | None = None
        try:
            header = _freeze(self._jws.get_unverified_header(token))
            unverified = self._jws.decode_complete(token, options={"verify_signature": False})
            decoded = load_claims(unverified["payload"])
            claims = _freeze(decoded) if isinstance(decoded, dict) else None
        except (PyJWTError, ValueError, RecursionError, TypeError):
            pass
        keys = self.keys.status(moment)
        try:
            verified = self._verify(token, moment, may_block=True, use_cache=False)
        except AuthenticationError as exc:
            return TokenReport(
                accepted=False,
                reason=exc.reason,
                message=exc.message,
                token_id=token_id(token),
                header=header,
                claims=claims,
                verified=None,
                now=moment,
                keys=self.keys.status(moment) or keys,
            )
        missing = tuple(sorted(_strings(tuple(required_scopes), "scope") - verified.scopes))
        return TokenReport(
            accepted=not missing,
            reason="insufficient_scope" if missing else None,
            message=f"the token lacks the scopes {', '.join(missing)}" if missing else None,
            token_id=verified.token_id,
            header=verified.header,
            claims=verified.claims,
            verified=verified,
            now=moment,
            missing_scopes=missing,
            keys=self.keys.status(moment),
        )

    # -- the work --------------------------------------------------------------------------------
    def _verify(
        self, token: str, now: float, *, may_block: bool, use_cache: bool = True
    ) -> VerifiedToken:
        if len(token) > self.max_token_bytes:
            raise _fail(
                f"token of {len(token)} bytes exceeds the {self.max_token_bytes}-byte limit",
                "token_too_large",
            )
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise _fail("the token is not ASCII", "malformed_token") from None
        digest = hashlib.sha256(raw).digest()
        if use_cache and self.cache_size:
            entry = self._cache.get(digest)
            if entry is not None:
                hit = self._from_cache(digest, entry, now)
                if hit is not None:
                    self.cache_hits += 1
                    return hit
            self.cache_misses += 1
        name = "sha256:" + digest.hex()[:16]
        key, keys, header, payload = self._check_signature(token, name, now, may_block=may_block)
        verified = self._check_claims(header, payload, key, name, now)
        if use_cache and self.cache_size:
            expires = verified.expires_at
            until = (
                (expires + self.leeway) if expires is not None else now + UNCACHED_EXPIRY_SECONDS
            )
            self._store(digest, _Entry(verified, key, keys, until), now)
        return verified

    def _from_cache(self, digest: bytes, entry: _Entry, now: float) -> VerifiedToken | None:
        token = entry.token
        if now >= entry.cache_until:
            self._cache.pop(digest, None)
            if token.expires_at is not None:
                raise _fail(f"token {token.token_id} expired", "expired")
            return None
        if token.not_before is not None and now < token.not_before - self.leeway:
            return None  # re-verify from scratch (a clock moved backwards)
        keys = self.keys.current(now)
        if keys is entry.keys:
            return token
        if keys is None:
            return None  # verify from scratch: that may fetch keys, or refuse without them
        current = keys.get(entry.key.kid) if entry.key.kid is not None else None
        if current is not None and current.thumbprint == entry.key.thumbprint:
            return token
        self._cache.pop(digest, None)
        return None

    def _store(self, digest: bytes, entry: _Entry, now: float) -> None:
        with self._cache_lock:
            cache = self._cache
            if len(cache) >= self.cache_size:
                if now - self._swept_at >= _SWEEP_INTERVAL:
                    self._swept_at = now
                    for stale in [k for k, v in cache.items() if v.cache_until <= now]:
                        del cache[stale]
                while len(cache) >= self.cache_size:
                    del cache[next(iter(cache))]  # the oldest entry
            cache[digest] = entry

    def _select_key(
        self, keys: KeySet | None, kid: str | None, algorithm: str
    ) -> VerificationKey | None:
        if keys is None:
            return None
        if kid is not None:
            key = keys.get(kid)
            if key is not None and algorithm not in key.algorithms:
                raise _fail(
                    f"the token's algorithm {algorithm} does not fit key {_short(kid)} "
                    f"(it verifies {', '.join(sorted(key.algorithms))})",
                    "key_algorithm_mismatch",
                )
            return key
        candidates = keys.without_kid(algorithm)
        if len(candidates) > 1:
            raise _fail(
                f"the token names no key id (kid) and {len(candidates)} keys fit {algorithm}",
                "missing_kid",
            )
        return candidates[0] if candidates else None

    def _find_key(
        self, kid: str | None, algorithm: str, now: float, *, may_block: bool
    ) -> tuple[VerificationKey, KeySet]:
        keys = self.keys.current(now)
        key = self._select_key(keys, kid, algorithm)
        if key is None and self.keys.refresh_wanted(now, unknown_kid=True):
            if not may_block:
                raise _NeedsFetch
            keys = self.keys.refresh(now)
            key = self._select_key(keys, kid, algorithm)
        if keys is None:
            raise _fail(
                "no verification keys are available (the JWKS was never fetched, or could not "
                "be fetched for too long)",
                "keys_unavailable",
            )
        if key is None:
            what = f"key id {_short(kid)}" if kid is not None else f"a key for {algorithm}"
            raise _fail(f"unknown {what} (known: {keys.kids()})", "unknown_kid")
        return key, keys

    def _check_signature(
        self, token: str, name: str, now: float, *, may_block: bool
    ) -> tuple[VerificationKey, KeySet, dict[str, Any], bytes]:
        if not token or not set(token) <= _TOKEN_CHARS or token.count(".") != 2:
            raise _fail(
                f"token {name} is not a compact JWS (three base64url parts)", "malformed_token"
            )
        try:
            header = self._jws.get_unverified_header(token)
        except PyJWTError as exc:
            raise _fail(f"token {name} has an invalid header: {exc}", "malformed_token") from exc
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise _fail(
                f"token {name} uses algorithm {_short(algorithm)}, not in the allow-list "
                f"{sorted(self.algorithms)}",
                "algorithm_not_allowed",
            )
        kid = header.get("kid")
        key, keys = self._find_key(kid, algorithm, now, may_block=may_block)
        try:
            decoded = self._jws.decode_complete(
                token,
                key.key,
                algorithms=[algorithm],
                options={"verify_signature": True, "enforce_minimum_key_length": True},
            )
        except InvalidSignatureError as exc:
            raise _fail(
                f"token {name}: the signature does not verify with key {_short(key.kid)}",
                "invalid_signature",
            ) from exc
        except InvalidAlgorithmError as exc:
            raise _fail(f"token {name}: {exc}", "algorithm_not_allowed") from exc
        except InvalidKeyError as exc:
            raise _fail(f"token {name}: {exc}", "key_algorithm_mismatch") from exc
        except (DecodeError, PyJWTError) as exc:
            raise _fail(f"token {name} is malformed: {exc}", "malformed_token") from exc
        return key, keys, header, decoded["payload"]

    def _check_times(
        self, claims: Mapping[str, Any], name: str, now: float
    ) -> tuple[float | None, float | None, float | None]:
        """``exp``, ``nbf`` and ``iat`` as NumericDates, checked against ``now`` with the leeway."""
        times: dict[str, float | None] = {}
        for claim in ("exp", "nbf", "iat"):
            value = claims.get(claim)
            if value is None:
                times[claim] = None
                continue
            try:
                times[claim] = float(numeric_date(value))
            except ValueError as exc:
                raise _fail(f"token {name}: {claim} {exc}", "invalid_numeric_date") from None
        exp, nbf, iat = times["exp"], times["nbf"], times["iat"]
        leeway = self.leeway
        if exp is None and self.require_expiry:
            raise _fail(f"token {name} has no exp (expiry) claim", "missing_claim")
        if exp is not None and now >= exp + leeway:
            raise _fail(f"token {name} expired {now - exp:.0f} s ago", "expired")
        if nbf is not None and now < nbf - leeway:
            raise _fail(f"token {name} is not valid for {nbf - now:.0f} s (nbf)", "not_yet_valid")
        if iat is not None and iat > now + leeway:
            raise _fail(
                f"token {name} was issued {iat - now:.0f} s in the future", "issued_in_future"
            )
        return exp, nbf, iat

    def _check_claims(
        self,
        header: dict[str, Any],
        payload: bytes,
        key: VerificationKey,
        name: str,
        now: float,
    ) -> VerifiedToken:
        try:
            claims = load_claims(payload)
        except (ValueError, RecursionError) as exc:
            raise _fail(f"token {name}: the payload is not JSON", "malformed_token") from exc
        if not isinstance(claims, dict):
            raise _fail(f"token {name}: the payload is not a JSON object", "malformed_token")
        exp, nbf, iat = self._check_times(claims, name, now)
        try:
            frozen = _freeze(claims)
            frozen_header = _freeze(header)
        except (ValueError, RecursionError) as exc:
            raise _fail(f"token {name}: {exc} (not JSON)", "malformed_token") from exc
        if self.issuers:
            iss = claims.get("iss")
            if not isinstance(iss, str) or iss not in self.issuers:
                raise _fail(f"token {name}: issuer {_short(iss)} is not accepted", "invalid_issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and a in self.audiences for a in audiences):
            raise _fail(
                f"token {name}: audience {_short(aud)} is not one of {sorted(self.audiences)}",
                "invalid_audience",
            )
        for claim in sorted(self.required_claims):
            if claim not in claims:
                raise _fail(f"token {name} lacks the required claim {claim!r}", "missing_claim")
        return VerifiedToken(
            claims=frozen,
            header=frozen_header,
            algorithm=header["alg"],
            kid=key.kid,
            token_id=name,
            scopes=_scopes(claims),
            expires_at=exp,
            not_before=nbf,
            issued_at=iat,
        )


# -- the interceptor check ---------------------------------------------------------------------
def bearer_token(metadata: Metadata, *, max_bytes: int = DEFAULT_MAX_TOKEN_BYTES) -> str:
    """The token of the one ``authorization: Bearer <token>`` entry in ``metadata``.

    Raises :class:`AuthenticationError`: ``missing_token`` (none), ``duplicate_authorization``
    (more than one, never guessed), ``not_bearer`` (another scheme), ``token_too_large``,
    ``malformed_token`` (empty or with spaces).
    """
    found: str | bytes | None = None
    count = 0
    for key, value in metadata:
        if key == _AUTHORIZATION:
            count += 1
            found = value
    if found is None:
        raise _fail("no authorization header", "missing_token")
    if count > 1:
        raise _fail(
            f"{count} authorization headers; exactly one is accepted", "duplicate_authorization"
        )
    text = found.decode("latin-1") if isinstance(found, bytes) else found
    if len(text) > max_bytes + 16:
        raise _fail(
            f"authorization header of {len(text)} bytes exceeds the token limit", "token_too_large"
        )
    scheme, _, token = text.strip().partition(" ")
    if scheme.lower() != _BEARER:
        raise _fail(f"authorization scheme {_short(scheme, 24)} is not Bearer", "not_bearer")
    token = token.strip()
    if not token or " " in token or "\t" in token:
        raise _fail("the bearer token is empty or contains spaces", "malformed_token")
    return token


@dataclass(frozen=True, slots=True, init=False)
class TokenRequirement:
    """What a method needs from a verified token: every scope in ``scopes`` and every claim
    named in ``claims`` present."""

    scopes: frozenset[str]
    claims: frozenset[str]

    def __init__(self, *, scopes: Iterable[str] = (), claims: Iterable[str] = ()) -> None:
        object.__setattr__(self, "scopes", _strings(tuple(scopes), "scope"))
        object.__setattr__(self, "claims", _strings(tuple(claims), "claim"))

    def satisfied_by(self, token: VerifiedToken) -> bool:
        """Whether ``token`` has every required scope and claim."""
        if not self.scopes <= token.scopes:
            return False
        return all(claim in token.claims for claim in self.claims)

    def missing(self, token: VerifiedToken) -> tuple[list[str], list[str]]:
        """The scopes and claims ``token`` lacks."""
        return (
            sorted(self.scopes - token.scopes),
            sorted(c for c in self.claims if c not in token.claims),
        )


class RequireBearerToken:
    """The check: one valid ``authorization: Bearer <jwt>`` and the method's scopes/claims.

    ``scopes`` and ``claims`` apply to every method; ``methods`` maps ``/pkg.Svc/Method`` or
    ``/pkg.Svc/*`` to a :class:`TokenRequirement` that replaces them for matching methods (the
    most specific pattern wins); ``exempt`` methods need no token at all (an open door, logged
    at construction). The verified claims go on to later checks and the handler as
    ``call.claims``.
    """

    __slots__ = ("_exempt", "_refreshes", "_rules", "_uniform", "verifier")

    def __init__(
        self,
        verifier: JWTVerifier,
        *,
        scopes: Iterable[str] = (),
        claims: Iterable[str] = (),
        methods: Mapping[str, TokenRequirement] | None = None,
        exempt: Iterable[str] = (),
    ) -> None:
        self.verifier = verifier
        self._rules = MethodRules(TokenRequirement(scopes=scopes, claims=claims), methods or {})
        self._exempt = MethodSet(exempt)
        self._uniform = None if (self._exempt or methods) else self._rules.default
        self._refreshes: set[asyncio.Future[None]] = set()
        if self._exempt:
            log.warning("bearer tokens are not required for %s", ", ".join(self._exempt.patterns()))

    def requirement_for(self, method: str) -> TokenRequirement | None:
        """What ``method`` requires (``None`` when it is exempt)."""
        if self._uniform is not None:
            return self._uniform
        if method in self._exempt:
            return None
        return self._rules.for_method(method)

    def _token(self, call: CallInfo) -> str:
        return bearer_token(call.metadata, max_bytes=self.verifier.max_token_bytes)

    def _authorize(
        self, call: CallInfo, requirement: TokenRequirement, token: VerifiedToken
    ) -> CallInfo:
        if not requirement.satisfied_by(token):
            scopes, claims = requirement.missing(token)
            if scopes:
                raise denied(
                    f"token {token.token_id} (sub {_short(token.subject)}) lacks the scopes "
                    f"{scopes} required by {call.method}",
                    reason="insufficient_scope",
                )
            if claims:
                raise denied(
                    f"token {token.token_id} lacks the claims {claims} required by {call.method}",
                    reason="missing_claim",
                )
        return call.with_claims(token.claims)

    def check(self, call: CallInfo) -> CallInfo | None:
        """Verify the caller's token (fetching keys on this thread if needed)."""
        requirement = self.requirement_for(call.method)
        if requirement is None:
            return None
        return self._authorize(call, requirement, self.verifier.verify(self._token(call)))

    async def check_async(self, call: CallInfo) -> CallInfo | None:
        """Verify on the event loop when no fetch is needed (the common case); otherwise verify
        in the loop's default executor. A routine key refresh runs in the background."""
        requirement = self.requirement_for(call.method)
        if requirement is None:
            return None
        token = self._token(call)
        now = _now()
        verifier = self.verifier
        verified = verifier.verify_nowait(token, now=now)
        loop = asyncio.get_running_loop()
        if verified is None:
            verified = await loop.run_in_executor(
                None, functools.partial(verifier.verify, token, now=now)
            )
        elif not self._refreshes and verifier.refresh_due(now):
            future = loop.run_in_executor(None, verifier.refresh_keys, now)
            self._refreshes.add(future)
            future.add_done_callback(self._refreshes.discard)
        return self._authorize(call, requirement, verified)

    def __repr__(self) -> str:
        return f"RequireBearerToken({self.verifier!r}, rules={self._rules!r})"
