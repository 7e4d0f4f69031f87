"""The handler's side of a guarded call: its context, carrying what the checks found.

:class:`GuardedContext` wraps grpcio's ``ServicerContext`` so a handler reads the checks' result
with :func:`call_info` and :func:`claims`, while every other attribute is the real context's.
:class:`PeerSource` builds the caller's :class:`~grpcsec.identity.Peer` on first use and only
while the call runs. No grpc import: the objects are grpcio's, passed in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from grpcsec.call import CallInfo
from grpcsec.identity import Peer

__all__ = ["GuardedContext", "PeerSource", "call_info", "claims"]

Grpc: TypeAlias = Any
"""A grpcio object (grpcio ships no types)."""

_PEER_HAS_CLAIMS = any(f.name == "claims" for f in dataclasses.fields(Peer))


class GuardedContext:
    """The handler's view of its ``ServicerContext``: the real one, plus the checks' result.

    Attribute access falls through to the real context, so ``abort``, ``set_code``,
    ``invocation_metadata``, aio ``read``/``write`` and the rest behave exactly as without
    grpcsec. ``grpcsec_call`` is the :class:`CallInfo` the checks produced and ``grpcsec_peer``
    the :class:`Peer` (with the token claims once :class:`Peer` has a ``claims`` field).
    """

    __slots__ = ("_grpcsec_context", "grpcsec_call")

    def __init__(self, context: Grpc, call: CallInfo) -> None:
        self._grpcsec_context = context
        self.grpcsec_call = call

    def __getattr__(self, name: str) -> Grpc:
        return getattr(self._grpcsec_context, name)

    @property
    def grpcsec_peer(self) -> Peer:
        """The caller, as the checks saw it."""
        call = self.grpcsec_call
        if call.claims is None or not _PEER_HAS_CLAIMS:
            return call.peer
        return dataclasses.replace(call.peer, claims=call.claims)  # type: ignore[call-arg, unused-ignore]

    def auth_context(self) -> Mapping[str, Sequence[bytes]]:
        """The real context's auth context."""
        result: Mapping[str, Sequence[bytes]] = self._grpcsec_context.auth_context()
        return result

    def peer(self) -> str:
        """The real context's peer address."""
        return str(self._grpcsec_context.peer())

    def __repr__(self) -> str:
        return f"<grpcsec context for {self.grpcsec_call.method}>"


def call_info(context: object) -> CallInfo | None:
    """The :class:`CallInfo` the guard's checks produced for this call, from the handler's
    ``context`` (``None`` when no guard with checks wrapped the handler)."""
    return context.grpcsec_call if isinstance(context, GuardedContext) else None


def claims(context: object) -> Mapping[str, Any] | None:
    """The verified bearer token's claims for this call (``None`` without a token check)."""
    call = call_info(context)
    return call.claims if call is not None else None


class PeerSource:
    """Builds the call's :class:`Peer` on first use, only while the call runs.

    grpcio's contexts must not be asked for their auth context once the RPC is over (a finished
    ``grpc.aio`` call crashes the process), so the source lets go of the context when the call
    terminates; a :class:`CallInfo` kept past its call then raises instead of crashing.
    """

    __slots__ = ("_context", "_peer")

    def __init__(self, context: Grpc) -> None:
        self._context = context
        self._peer: Peer | None = None

    def __call__(self) -> Peer:
        found = self._peer
        if found is None:
            context = self._context
            if context is None:
                raise RuntimeError(
                    "the peer of a finished call was never read; read call.peer during the call"
                )
            if isinstance(context, GuardedContext):  # an outer guard's view (claims attached)
                found = context.grpcsec_peer
            else:  # grpcio's own context: no grpcsec_peer to look up (a costly miss)
                found = Peer.from_auth_context(context.auth_context(), address=context.peer())
            self._peer = found
        return found

    @property
    def built(self) -> bool:
        return self._peer is not None

    def release(self, *_unused: object) -> None:
        """Forget the context (grpcio calls this on termination, with or without arguments)."""
        self._context = None
