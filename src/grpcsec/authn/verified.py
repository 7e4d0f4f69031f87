"""What a token check produces: a verified token, its read-only claims, and how failures read.

No grpc. A :class:`VerifiedToken` is the result of :meth:`JWTVerifier.verify
<grpcsec.authn.verifier.JWTVerifier.verify>`; its ``claims`` and ``header`` are frozen
(read-only mappings and tuples) because one cached token is shared by every call presenting it.
Failures are :class:`~grpcsec.errors.AuthenticationError` values whose ``reason`` is one of
:data:`REASONS`, built by :func:`fail`; messages name a token only by :func:`token_id` (a hash
prefix), never by its text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from grpcsec.authn.numeric import is_finite_json
from grpcsec.errors import AuthenticationError, ConfigurationError

__all__ = [
    "REASONS",
    "VerifiedToken",
    "claims_to_json",
    "fail",
    "freeze_json",
    "shorten",
    "string_set",
    "token_id",
    "token_scopes",
]

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


def token_id(token: str | bytes) -> str:
    """A log-safe name for a token: ``sha256:`` and 16 hex digits of its hash."""
    data = token.encode("utf-8", "replace") if isinstance(token, str) else token
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def shorten(value: object, limit: int = 64) -> str:
    """``repr(value)`` cut to ``limit`` characters (untrusted values in messages)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(message: str, reason: str) -> AuthenticationError:
    """An ``UNAUTHENTICATED`` error with one of :data:`REASONS`."""
    return AuthenticationError(message, reason=reason)


def freeze_json(value: Any) -> Any:  # noqa: ANN401 (JSON values)
    """Read-only JSON values; :class:`ValueError` for a number JSON cannot carry (NaN, inf)."""
    if isinstance(value, dict):
        return MappingProxyType({key: freeze_json(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(freeze_json(item) for item in value)
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


def token_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """OAuth scopes from ``scope`` (space-separated, RFC 8693) and ``scp`` (string or list)."""
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, tuple | list):
            found.update(item for item in value if isinstance(item, str))
    return frozenset(found)


def string_set(value: str | Iterable[str] | None, what: str) -> frozenset[str]:
    """Configured names (audiences, scopes...) as a set; :class:`ConfigurationError` for an
    empty or non-string entry."""
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
