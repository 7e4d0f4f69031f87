"""One description of a call: method, metadata, peer and verified claims, and the check protocol.

No grpc import, and no import of :mod:`grpcsec.authn` or :mod:`grpcsec.authz`: both use this
module, so neither needs the other. :mod:`grpcsec.interceptors` builds a :class:`CallInfo`
inside the wrapped handler (on a worker thread or the event loop, never on grpcio's dispatch
thread) and runs the checks in order. A check either returns nothing (the call may go on),
returns a new :class:`CallInfo` carrying what it learned (the bearer token's claims), or raises:

* :class:`~grpcsec.errors.AuthenticationError` → ``UNAUTHENTICATED``;
* :class:`~grpcsec.errors.AuthorizationError` → ``PERMISSION_DENIED``;
* anything else → ``INTERNAL``.

The peer only ever sees a generic message; the exception's message and ``reason`` go to the
server log and the counters. Authorization (A43 policies, :mod:`grpcsec.authz`) evaluates the
same :class:`CallInfo` (``grpcsec.authz.Request`` is another name for it), as one more check
after the authentication checks, and sees their results in ``call.claims``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from grpcsec.errors import AuthorizationError
from grpcsec.identity import Peer

__all__ = ["AsyncCheck", "CallInfo", "Check", "Metadata", "denied"]

Metadata = Sequence[tuple[str, "str | bytes"]]
"""Invocation metadata as grpcio hands it over: ``(key, value)`` pairs in arrival order, keys
lower case, values ``str`` (``bytes`` for ``-bin`` keys). Repeated keys stay repeated."""


class CallInfo:
    """One RPC as the checks and the policy see it (immutable by convention: checks return a
    new one).

    ``method`` is grpcio's full path (``/pkg.Service/Method``); ``metadata`` is exactly what
    arrived (default: none); ``peer`` is the transport identity (:func:`grpcsec.identity.peer`),
    built on first use so that checks which never look at it (bearer tokens) do not pay for it;
    ``claims`` are the verified bearer token's claims once a token check has run (``None``
    before, or when no token was required; never claims of a token that was not verified).
    ``claims`` is read-only and shared by every call with the same token.

    Give either ``peer`` or ``peer_source`` (a function that builds it).
    """

    __slots__ = ("_peer", "_peer_source", "claims", "metadata", "method")

    def __init__(
        self,
        *,
        method: str,
        metadata: Metadata = (),
        peer: Peer | None = None,
        peer_source: Callable[[], Peer] | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> None:
        if peer is None and peer_source is None:
            raise TypeError("CallInfo needs a peer or a peer_source")
        self.method = method
        self.metadata = metadata
        self.claims = claims
        self._peer = peer
        self._peer_source = peer_source

    @property
    def peer(self) -> Peer:
        """Who is calling, at the transport level."""
        found = self._peer
        if found is None:
            source = self._peer_source
            if source is None:  # not reachable: __init__ requires one of the two
                raise TypeError("CallInfo has no peer")
            found = self._peer = source()
        return found

    @property
    def service(self) -> str:
        """``pkg.Service`` from ``/pkg.Service/Method`` (empty for a malformed path)."""
        slash = self.method.rfind("/")
        return self.method[1:slash] if slash > 0 else ""

    @property
    def method_name(self) -> str:
        """``Method`` from ``/pkg.Service/Method``."""
        return self.method[self.method.rfind("/") + 1 :]

    def metadata_values(self, key: str) -> list[str | bytes]:
        """Every value sent under ``key`` (lower case), in order; a repeated key gives several."""
        return [value for k, value in self.metadata if k == key]

    def with_claims(self, claims: Mapping[str, Any]) -> CallInfo:
        """This call with the verified token's ``claims`` attached."""
        return CallInfo(
            method=self.method,
            metadata=self.metadata,
            peer=self._peer,
            peer_source=self._peer_source,
            claims=claims,
        )

    @property
    def subject(self) -> str | None:
        """The token's ``sub`` claim when a token was verified and it has one."""
        if self.claims is None:
            return None
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None

    def __repr__(self) -> str:
        claims = "none" if self.claims is None else f"sub={self.subject!r}"
        return f"CallInfo(method={self.method!r}, claims: {claims})"


@runtime_checkable
class Check(Protocol):
    """One step of the interceptor core. ``check`` is synchronous and must be quick in the
    common case: on a sync server it runs on a handler thread, on an aio server on the event
    loop (unless the handler itself is synchronous). A check that sometimes needs I/O should
    also implement :class:`AsyncCheck`."""

    def check(self, call: CallInfo) -> CallInfo | None:
        """Allow the call (return ``None`` or an enriched :class:`CallInfo`) or raise."""
        ...


@runtime_checkable
class AsyncCheck(Check, Protocol):
    """A check with an ``async`` form, used on ``grpc.aio`` servers so that slow work (a JWKS
    fetch) runs off the event loop."""

    async def check_async(self, call: CallInfo) -> CallInfo | None:
        """Same contract as :meth:`Check.check`."""
        ...


def denied(message: str, *, reason: str) -> AuthorizationError:
    """A ``PERMISSION_DENIED`` error with a stable ``reason`` (``certificate_not_allowed``...,
    one of :class:`grpcsec.denial.DenialReason`)."""
    return AuthorizationError(message, reason=reason)
