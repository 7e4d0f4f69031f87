"""Why a token is or is not accepted: the report ``grpcsec token verify`` prints. No grpc."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from grpcsec.authn.numeric import numeric_date
from grpcsec.authn.verified import VerifiedToken, claims_to_json, token_scopes

__all__ = ["TokenReport"]


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
            "scopes": sorted(token_scopes(self.claims)) if self.claims is not None else [],
            "missing_scopes": list(self.missing_scopes),
            "seconds_until": {"exp": relative("exp"), "nbf": relative("nbf")},
            "now": self.now,
            "keys": dict(self.keys),
        }
