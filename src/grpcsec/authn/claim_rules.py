"""What a verified token's claims must say: times, issuer, audience, required claims. No grpc.

:class:`ClaimRules` holds a :class:`~grpcsec.authn.verifier.JWTVerifier`'s claim settings and
checks a payload whose signature already verified, with ``now`` as a parameter:

* ``exp`` (required unless ``require_expiry`` is false), ``nbf`` and ``iat`` with ``leeway``
  seconds of clock skew, each a whole number of seconds from 1970 to 9999
  (:func:`~grpcsec.authn.numeric.numeric_date`);
* ``iss`` in ``issuers`` when any are configured;
* ``aud`` (a string or a list) naming one of ``audiences``;
* every claim in ``required_claims`` present.

Failures raise :class:`~grpcsec.errors.AuthenticationError` with a reason from
:data:`~grpcsec.authn.verified.REASONS`. Not checked here: the signature, the algorithm and
the key (the verifier's job), scopes (the method's
:class:`~grpcsec.authn.requirement.TokenRequirement`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grpcsec.authn.numeric import load_claims, numeric_date
from grpcsec.authn.verified import VerifiedToken, fail, freeze_json, shorten, token_scopes

__all__ = ["ClaimRules"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimRules:
    """The claim settings of a verifier (validated by it)."""

    audiences: frozenset[str]
    issuers: frozenset[str]
    leeway: float
    required_claims: frozenset[str]
    require_expiry: bool

    def check_times(
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
                raise fail(f"token {name}: {claim} {exc}", "invalid_numeric_date") from None
        exp, nbf, iat = times["exp"], times["nbf"], times["iat"]
        leeway = self.leeway
        if exp is None and self.require_expiry:
            raise fail(f"token {name} has no exp (expiry) claim", "missing_claim")
        if exp is not None and now >= exp + leeway:
            raise fail(f"token {name} expired {now - exp:.0f} s ago", "expired")
        if nbf is not None and now < nbf - leeway:
            raise fail(f"token {name} is not valid for {nbf - now:.0f} s (nbf)", "not_yet_valid")
        if iat is not None and iat > now + leeway:
            raise fail(
                f"token {name} was issued {iat - now:.0f} s in the future", "issued_in_future"
            )
        return exp, nbf, iat

    def check(
        self,
        header: dict[str, Any],
        payload: bytes,
        kid: str | None,
        name: str,
        now: float,
    ) -> VerifiedToken:
        """The verified token of a payload whose signature (by key ``kid``) verified."""
        try:
            claims = load_claims(payload)
        except (ValueError, RecursionError) as exc:
            raise fail(f"token {name}: the payload is not JSON", "malformed_token") from exc
        if not isinstance(claims, dict):
            raise fail(f"token {name}: the payload is not a JSON object", "malformed_token")
        exp, nbf, iat = self.check_times(claims, name, now)
        try:
            frozen = freeze_json(claims)
            frozen_header = freeze_json(header)
        except (ValueError, RecursionError) as exc:
            raise fail(f"token {name}: {exc} (not JSON)", "malformed_token") from exc
        if self.issuers:
            iss = claims.get("iss")
            if not isinstance(iss, str) or iss not in self.issuers:
                raise fail(f"token {name}: issuer {shorten(iss)} is not accepted", "invalid_issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and a in self.audiences for a in audiences):
            raise fail(
                f"token {name}: audience {shorten(aud)} is not one of {sorted(self.audiences)}",
                "invalid_audience",
            )
        for claim in sorted(self.required_claims):
            if claim not in claims:
                raise fail(f"token {name} lacks the required claim {claim!r}", "missing_claim")
        return VerifiedToken(
            claims=frozen,
            header=frozen_header,
            algorithm=header["alg"],
            kid=kid,
            token_id=name,
            scopes=token_scopes(claims),
            expires_at=exp,
            not_before=nbf,
            issued_at=iat,
        )
