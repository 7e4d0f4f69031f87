"""The JWT verifier: a compact JWS checked against a key source, with a token cache. No grpc.

:class:`JWTVerifier` verifies a compact JWS with PyJWT against keys from a
:class:`~grpcsec.authn.key_sources.KeySource`, with ``now`` as a parameter:

* the header's ``alg`` must be in the verifier's explicit allow-list (never ``none``, never
  ``HS*``) *and* fit the selected key's type (an ``ES256`` token cannot be checked with an RSA
  key); the key is chosen by ``kid`` (a token without one is accepted only when exactly one key
  fits its algorithm);
* the claims by :class:`~grpcsec.authn.claim_rules.ClaimRules`: ``exp``/``nbf``/``iat`` with
  ``leeway``, ``iss`` against ``issuer`` when given, ``aud`` against ``audience`` (always
  required: a verifier that accepts any audience accepts tokens minted for other services),
  ``required_claims`` present;
* at most ``max_token_bytes`` (default 8 KiB), checked before anything is decoded.

A verified token is cached under the SHA-256 of its text until it expires (bounded entries), so
a repeated token costs a hash and a dictionary lookup; a cache hit still re-checks ``exp`` and
``nbf`` against ``now`` and that its key is still in the key set (a key removed from the JWKS
revokes its cached tokens). Failures raise :class:`~grpcsec.errors.AuthenticationError` whose
``reason`` is one of :data:`~grpcsec.authn.verified.REASONS`; messages never contain the token
(at most its ``token_id``, a hash prefix, and the ``kid``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, cast

from jwt.api_jws import PyJWS
from jwt.exceptions import (
    DecodeError,
    InvalidAlgorithmError,
    InvalidKeyError,
    InvalidSignatureError,
    PyJWTError,
)

from grpcsec.authn.bearer import DEFAULT_MAX_TOKEN_BYTES
from grpcsec.authn.claim_rules import ClaimRules
from grpcsec.authn.key_sources import KeySource, StaticKeys
from grpcsec.authn.keys import SUPPORTED_ALGORITHMS, KeySet, PublicKey, VerificationKey
from grpcsec.authn.numeric import load_claims
from grpcsec.authn.report import TokenReport
from grpcsec.authn.token_cache import CacheEntry, TokenCache
from grpcsec.authn.verified import VerifiedToken, fail, freeze_json, shorten, string_set, token_id
from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import AuthenticationError, ConfigurationError
from grpcsec.text import get_logger

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DEFAULT_LEEWAY",
    "JWTVerifier",
]

log = get_logger("grpcsec.authn")

DEFAULT_ALGORITHMS = ("ES256", "RS256")
DEFAULT_LEEWAY = 30.0
DEFAULT_CACHE_SIZE = 10_000
UNCACHED_EXPIRY_SECONDS = 300.0
"""How long a verified token without ``exp`` (``require_expiry=False``) stays cached."""
_SWEEP_INTERVAL = 10.0
_REFRESH_CHECK_INTERVAL = 1.0

_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=")


def _is_key_source(value: object) -> bool:
    return all(
        callable(getattr(value, name, None))
        for name in ("current", "refresh_wanted", "refresh", "status")
    )


class _NeedsFetch(Exception):  # noqa: N818 (internal signal, not an error)
    """Verification needs keys that only a (blocking) fetch can provide."""


class JWTVerifier:
    """Verifies JWT bearer tokens; see the module docstring for every check.

    ``keys`` is a :class:`~grpcsec.authn.key_sources.KeySource`
    (:class:`~grpcsec.authn.jwks_url.JWKSUrl`, :class:`~grpcsec.authn.key_sources.JWKSFile`,
    :class:`~grpcsec.authn.key_sources.StaticKeys`) or plain public keys. ``audience`` is
    required; ``issuer`` is recommended. ``cache_size=0`` turns the token cache off.
    ``clock`` gives ``now`` when a method is called without one. Safe to share between threads
    and event loops.
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
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.clock = clock
        self.keys: KeySource = (
            cast("KeySource", keys)
            if _is_key_source(keys)
            else StaticKeys(cast("Iterable[VerificationKey | PublicKey]", keys))
        )
        self.audiences = string_set(audience, "audience")
        if not self.audiences:
            raise ConfigurationError(
                "an audience is required: without it tokens minted for any other service "
                "would be accepted"
            )
        self.issuers = string_set(issuer, "issuer")
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
        self.required_claims = string_set(required_claims, "required claim")
        self.require_expiry = require_expiry
        if not 64 <= max_token_bytes <= 64 * 1024:
            raise ConfigurationError("max_token_bytes must be between 64 and 65536")
        self.max_token_bytes = max_token_bytes
        self.claim_rules = ClaimRules(
            audiences=self.audiences,
            issuers=self.issuers,
            leeway=self.leeway,
            required_claims=self.required_claims,
            require_expiry=require_expiry,
        )
        if cache_size < 0:
            raise ConfigurationError("cache_size must not be negative")
        self.cache_size = cache_size
        self._cache = TokenCache(cache_size, sweep_interval=_SWEEP_INTERVAL)
        self._refresh_check_at = float("-inf")
        self._jws = PyJWS()

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
        moment = self.clock.timestamp() if now is None else now
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
            return self._verify(
                token, self.clock.timestamp() if now is None else now, may_block=False
            )
        except _NeedsFetch:
            return None

    def refresh_due(self, now: float | None = None) -> bool:
        """Whether the key source wants a routine refresh (do it off the hot path). Asks the
        source at most once per second."""
        moment = self.clock.timestamp() if now is None else now
        if moment < self._refresh_check_at:
            return False
        self._refresh_check_at = moment + _REFRESH_CHECK_INTERVAL
        return self.keys.refresh_wanted(moment, unknown_kid=False)

    def refresh_keys(self, now: float | None = None) -> None:
        """Refresh the keys if due (blocking; never raises)."""
        moment = self.clock.timestamp() if now is None else now
        try:
            if self.keys.refresh_wanted(moment, unknown_kid=False):
                self.keys.refresh(moment, wait=False)
        except Exception:
            log.exception("JWKS refresh failed")

    def cache_info(self) -> dict[str, int]:
        """Cache hits, misses, current and maximum size."""
        return self._cache.info()

    def clear_cache(self) -> None:
        """Forget every cached token."""
        self._cache.clear()

    def explain(
        self, token: str, *, now: float | None = None, required_scopes: Iterable[str] = ()
    ) -> TokenReport:
        """Verify and report why the token is or is not accepted (for the CLI and support)."""
        moment = self.clock.timestamp() if now is None else now
        token = token.strip()
        header: Mapping[str, Any] | None = None
        claims: Mapping[str, Any] | None = None
        try:
            header = freeze_json(self._jws.get_unverified_header(token))
            unverified = self._jws.decode_complete(token, options={"verify_signature": False})
            decoded = load_claims(unverified["payload"])
            claims = freeze_json(decoded) if isinstance(decoded, dict) else None
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
        missing = tuple(sorted(string_set(tuple(required_scopes), "scope") - verified.scopes))
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
            raise fail(
                f"token of {len(token)} bytes exceeds the {self.max_token_bytes}-byte limit",
                "token_too_large",
            )
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise fail("the token is not ASCII", "malformed_token") from None
        digest = hashlib.sha256(raw).digest()
        if use_cache and self.cache_size:
            entry = self._cache.get(digest)
            if entry is not None:
                hit = self._from_cache(digest, entry, now)
                if hit is not None:
                    self._cache.hits += 1
                    return hit
            self._cache.misses += 1
        name = "sha256:" + digest.hex()[:16]
        key, keys, header, payload = self._check_signature(token, name, now, may_block=may_block)
        verified = self.claim_rules.check(header, payload, key.kid, name, now)
        if use_cache and self.cache_size:
            expires = verified.expires_at
            until = (
                (expires + self.leeway) if expires is not None else now + UNCACHED_EXPIRY_SECONDS
            )
            self._cache.store(digest, CacheEntry(verified, key, keys, until), now)
        return verified

    def _from_cache(self, digest: bytes, entry: CacheEntry, now: float) -> VerifiedToken | None:
        token = entry.token
        if now >= entry.cache_until:
            self._cache.drop(digest)
            if token.expires_at is not None:
                raise fail(f"token {token.token_id} expired", "expired")
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
        self._cache.drop(digest)
        return None

    def _select_key(
        self, keys: KeySet | None, kid: str | None, algorithm: str
    ) -> VerificationKey | None:
        if keys is None:
            return None
        if kid is not None:
            key = keys.get(kid)
            if key is not None and algorithm not in key.algorithms:
                raise fail(
                    f"the token's algorithm {algorithm} does not fit key {shorten(kid)} "
                    f"(it verifies {', '.join(sorted(key.algorithms))})",
                    "key_algorithm_mismatch",
                )
            return key
        candidates = keys.without_kid(algorithm)
        if len(candidates) > 1:
            raise fail(
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
            raise fail(
                "no verification keys are available (the JWKS was never fetched, or could not "
                "be fetched for too long)",
                "keys_unavailable",
            )
        if key is None:
            what = f"key id {shorten(kid)}" if kid is not None else f"a key for {algorithm}"
            raise fail(f"unknown {what} (known: {keys.kids()})", "unknown_kid")
        return key, keys

    def _check_signature(
        self, token: str, name: str, now: float, *, may_block: bool
    ) -> tuple[VerificationKey, KeySet, dict[str, Any], bytes]:
        if not token or not set(token) <= _TOKEN_CHARS or token.count(".") != 2:
            raise fail(
                f"token {name} is not a compact JWS (three base64url parts)", "malformed_token"
            )
        try:
            header = self._jws.get_unverified_header(token)
        except PyJWTError as exc:
            raise fail(f"token {name} has an invalid header: {exc}", "malformed_token") from exc
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise fail(
                f"token {name} uses algorithm {shorten(algorithm)}, not in the allow-list "
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
            raise fail(
                f"token {name}: the signature does not verify with key {shorten(key.kid)}",
                "invalid_signature",
            ) from exc
        except InvalidAlgorithmError as exc:
            raise fail(f"token {name}: {exc}", "algorithm_not_allowed") from exc
        except InvalidKeyError as exc:
            raise fail(f"token {name}: {exc}", "key_algorithm_mismatch") from exc
        except (DecodeError, PyJWTError) as exc:
            raise fail(f"token {name} is malformed: {exc}", "malformed_token") from exc
        return key, keys, header, decoded["payload"]
