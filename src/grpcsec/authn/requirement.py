"""The bearer-token check of the interceptor guard: a verified token with the method's scopes.

No grpc. :class:`RequireBearerToken` is the :mod:`grpcsec.interceptors` check: exactly one
``authorization: Bearer <jwt>`` header (:func:`~grpcsec.authn.bearer.bearer_token`), a token
the :class:`~grpcsec.authn.verifier.JWTVerifier` accepts (``UNAUTHENTICATED`` otherwise), and
the scopes and claims the method requires (:class:`TokenRequirement`; ``PERMISSION_DENIED``
when missing). On ``grpc.aio`` the verification runs on the event loop unless a key fetch is
needed, which then runs in the loop's executor.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from grpcsec.authn.bearer import bearer_token
from grpcsec.authn.methods import MethodTable
from grpcsec.authn.verified import VerifiedToken, shorten, string_set
from grpcsec.authn.verifier import JWTVerifier
from grpcsec.call import CallInfo, denied
from grpcsec.text import get_logger

__all__ = ["RequireBearerToken", "TokenRequirement"]

log = get_logger("grpcsec.authn")


@dataclass(frozen=True, slots=True, init=False)
class TokenRequirement:
    """What a method needs from a verified token: every scope in ``scopes`` and every claim
    named in ``claims`` present."""

    scopes: frozenset[str]
    claims: frozenset[str]

    def __init__(self, *, scopes: Iterable[str] = (), claims: Iterable[str] = ()) -> None:
        object.__setattr__(self, "scopes", string_set(tuple(scopes), "scope"))
        object.__setattr__(self, "claims", string_set(tuple(claims), "claim"))

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

    __slots__ = ("_refreshes", "_table", "verifier")

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
        default = TokenRequirement(scopes=scopes, claims=claims)
        self._table = MethodTable(default, methods or {}, exempt)
        self._refreshes: set[asyncio.Future[None]] = set()
        if self._table.exempt:
            exempt = ", ".join(self._table.exempt.patterns())
            log.warning("bearer tokens are not required for %s", exempt)

    def requirement_for(self, method: str) -> TokenRequirement | None:
        """What ``method`` requires (``None`` when it is exempt)."""
        return self._table.for_method(method)

    def _token(self, call: CallInfo) -> str:
        return bearer_token(call.metadata, max_bytes=self.verifier.max_token_bytes)

    def _authorize(
        self, call: CallInfo, requirement: TokenRequirement, token: VerifiedToken
    ) -> CallInfo:
        if not requirement.satisfied_by(token):
            scopes, claims = requirement.missing(token)
            if scopes:
                raise denied(
                    f"token {token.token_id} (sub {shorten(token.subject)}) lacks the scopes "
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
        now = self.verifier.clock.timestamp()
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
        return f"RequireBearerToken({self.verifier!r}, rules={self._table.rules!r})"
