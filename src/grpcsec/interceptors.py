"""The one place that wraps grpcio's four handler shapes, for ``grpc.server`` and ``grpc.aio``.

A :class:`Guard` runs an ordered list of checks (:class:`~grpcsec.call.Check`: client
certificate requirements, bearer tokens, authorization policies) for every RPC and maps their
errors to status codes:

* :class:`~grpcsec.errors.AuthenticationError` → ``UNAUTHENTICATED``, details
  :data:`UNAUTHENTICATED_DETAILS`;
* :class:`~grpcsec.errors.AuthorizationError` → ``PERMISSION_DENIED``, details
  :data:`PERMISSION_DENIED_DETAILS`;
* anything else → ``INTERNAL``, details :data:`INTERNAL_DETAILS`.

The peer only ever gets the generic text; the reason and message go to the ``grpcsec.authn``
logger and to :class:`AuthStats`. How it is wired into grpcio (grpcio-security.md §3):

* ``intercept_service`` only asks for the handler and wraps it: on a sync server it runs on the
  single dispatch thread, where any work would serialize every RPC. The checks run inside the
  wrapped behaviour: on a handler thread (sync), on the event loop (aio, async handlers; a
  check that may block offers ``check_async``), or on the executor thread for a sync handler
  on an aio server.
* Streaming calls are checked once, before the handler starts: the wrapper runs the checks
  and only then calls (or starts iterating) the real behaviour, whose request iterator is
  untouched.
* On ``grpc.aio`` the wrapper has the same kind as the behaviour (coroutine function, async
  generator function, plain function, generator function), because grpcio picks its calling
  convention by inspecting it; a denial is ``await context.abort(...)``, never an exception
  escaping the interceptor (which would leak its text to the peer).

The handler receives a thin proxy of its ``context`` carrying the checks' result:
:func:`call_info` (method, metadata, :class:`~grpcsec.identity.Peer`, token ``claims``) and
:func:`claims`. Everything else on the context is the real object's.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeAlias

import grpc

from grpcsec.call import AsyncCheck, CallInfo, Check
from grpcsec.denial import AuthStats, DenialCode, denial_of
from grpcsec.guarded import GuardedContext, PeerSource, call_info, claims
from grpcsec.identity import Peer
from grpcsec.text import get_logger

__all__ = [
    "INTERNAL_DETAILS",
    "PERMISSION_DENIED_DETAILS",
    "UNAUTHENTICATED_DETAILS",
    "AioGuardInterceptor",
    "AuthStats",
    "CallInfo",
    "Check",
    "Guard",
    "GuardInterceptor",
    "call_info",
    "claims",
]

log = get_logger("grpcsec.authn")

Grpc: TypeAlias = Any
"""A grpcio object (context, call details, continuation, message): grpcio ships no types."""

UNAUTHENTICATED_DETAILS = DenialCode.UNAUTHENTICATED.details
PERMISSION_DENIED_DETAILS = DenialCode.PERMISSION_DENIED.details
INTERNAL_DETAILS = DenialCode.INTERNAL.details

_STATUS = {
    DenialCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    DenialCode.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    DenialCode.INTERNAL: grpc.StatusCode.INTERNAL,
}

_PEER_HAS_CLAIMS = any(f.name == "claims" for f in dataclasses.fields(Peer))


_Failure = tuple[grpc.StatusCode, str, str]


class Guard:
    """The interceptor core: ``checks`` run in order for every RPC; the first failure wins.

    Build the grpcio interceptor with :meth:`server_interceptor` (``grpc.server``) or
    :meth:`aio_server_interceptor` (``grpc.aio.server``); one guard may serve both. With no
    checks every call passes (the handler gets its context unchanged): useful as a baseline.
    """

    def __init__(self, *checks: Check, stats: AuthStats | None = None) -> None:
        for item in checks:
            if not callable(getattr(item, "check", None)):
                raise TypeError(f"{item!r} is not a check: it has no check(call) method")
        self.checks: tuple[Check, ...] = checks
        self._async_checks = tuple(
            item.check_async if isinstance(item, AsyncCheck) else None for item in checks
        )
        self.stats = stats if stats is not None else AuthStats()

    def __repr__(self) -> str:
        return f"Guard({', '.join(repr(c) for c in self.checks)})"

    def server_interceptor(self) -> GuardInterceptor:
        """A ``grpc.ServerInterceptor`` for ``grpc.server(..., interceptors=[...])``."""
        return GuardInterceptor(self)

    def aio_server_interceptor(self) -> AioGuardInterceptor:
        """A ``grpc.aio.ServerInterceptor`` for ``grpc.aio.server(interceptors=[...])``."""
        return AioGuardInterceptor(self)

    # -- running the checks ----------------------------------------------------------------------
    def _run(self, call: CallInfo) -> CallInfo:
        for item in self.checks:
            result = item.check(call)
            if result is not None:
                call = result
        return call

    async def _run_async(self, call: CallInfo) -> CallInfo:
        for item, async_check in zip(self.checks, self._async_checks, strict=True):
            result = await async_check(call) if async_check is not None else item.check(call)
            if result is not None:
                call = result
        return call

    def run(self, method: str, metadata: Grpc, context: Grpc) -> CallInfo:
        """Run every check for one call (synchronously); raises what a check raises. The
        result's ``peer`` can be read while ``context``'s call is running."""
        source = PeerSource(context)
        return self._run(CallInfo(method=method, metadata=metadata or (), peer_source=source))

    @staticmethod
    def _keep_peer_for_the_call(source: PeerSource, context: Grpc, *, aio: bool) -> None:
        """grpc.aio: let the peer source go when the call ends. (A sync server's context stays
        valid as long as something holds it, so nothing needs doing there.)"""
        if not aio or source.built:
            return
        if hasattr(context, "add_done_callback"):
            context.add_done_callback(source.release)
        else:  # a sync handler on grpc.aio: not every shape runs its callbacks; build it now
            source()
            source.release()

    def _failure(self, method: str, context: Grpc, error: Exception) -> _Failure:
        denial = denial_of(error, method)
        self.stats.record_denial(denial)
        try:
            who = context.peer()
        except Exception:  # noqa: BLE001 (only for the log line)
            who = "unknown peer"
        if denial.code is DenialCode.INTERNAL:
            log.error("INTERNAL %s from %s: %s", method, who, denial.message, exc_info=error)
        else:
            log.info(
                "%s %s from %s: %s (reason=%s)",
                denial.code.name,
                method,
                who,
                denial.message,
                denial.reason.value,
            )
        return _STATUS[denial.code], denial.code.details, denial.reason.value

    def admit(
        self, method: str, metadata: Grpc, context: Grpc, *, aio: bool = False
    ) -> CallInfo | None:
        """Sync: the checked call, or abort ``context`` (which raises). ``aio`` is set for a
        sync handler on a grpc.aio server."""
        source = PeerSource(context)
        try:
            call = self._run(CallInfo(method=method, metadata=metadata or (), peer_source=source))
        except Exception as error:  # noqa: BLE001 (every failure becomes a status)
            source.release()
            failure = self._failure(method, context, error)
        else:
            self.stats.record_allowed()
            self._keep_peer_for_the_call(source, context, aio=aio)
            return call
        context.abort(failure[0], failure[1])
        return None  # not reached: abort raises

    async def admit_async(self, method: str, metadata: Grpc, context: Grpc) -> CallInfo | None:
        """aio: the checked call, or ``await context.abort(...)`` (which raises)."""
        source = PeerSource(context)
        try:
            call = await self._run_async(
                CallInfo(method=method, metadata=metadata or (), peer_source=source)
            )
        except Exception as error:  # noqa: BLE001 (every failure becomes a status)
            source.release()
            failure = self._failure(method, context, error)
        else:
            self.stats.record_allowed()
            self._keep_peer_for_the_call(source, context, aio=True)
            return call
        await context.abort(failure[0], failure[1])
        return None  # not reached: abort raises

    # -- wrapping behaviours ---------------------------------------------------------------------
    def _wrap_sync(self, behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
        """For ``grpc.server``: every shape is "call, then return the response or iterator".
        The wrapper serves every call of ``method``; it reads the metadata from the context."""
        guard = self
        if not guard.checks:

            def passthrough(request: Grpc, context: Grpc, *rest: Grpc) -> Grpc:
                guard.stats.record_allowed()
                return behaviour(request, context, *rest)

            return passthrough

        def checked(request: Grpc, context: Grpc, *rest: Grpc) -> Grpc:
            call = guard.admit(method, context.invocation_metadata(), context)
            return behaviour(request, GuardedContext(context, call) if call else context, *rest)

        return checked

    def _wrap_aio(
        self, behaviour: Callable[..., Any], method: str, *, response_streaming: bool
    ) -> Callable[..., Any]:
        """For ``grpc.aio.server``: a wrapper of the same kind as ``behaviour``. Like the sync
        wrapper it serves every call of ``method`` and reads the metadata from the context."""
        guard = self
        has_checks = bool(guard.checks)

        def wrap(context: Grpc, call: CallInfo | None) -> Grpc:
            return GuardedContext(context, call) if call is not None and has_checks else context

        async def admit(context: Grpc) -> CallInfo | None:
            if not has_checks:
                guard.stats.record_allowed()
                return None
            return await guard.admit_async(method, context.invocation_metadata(), context)

        def admit_sync(context: Grpc) -> CallInfo | None:
            if not has_checks:
                guard.stats.record_allowed()
                return None
            return guard.admit(method, context.invocation_metadata(), context, aio=True)

        if inspect.isasyncgenfunction(behaviour):

            async def checked_stream(request: Grpc, context: Grpc) -> AsyncIterator[Any]:
                call = await admit(context)
                async for response in behaviour(request, wrap(context, call)):
                    yield response

            return checked_stream

        if inspect.iscoroutinefunction(behaviour):

            async def checked_coroutine(request: Grpc, context: Grpc) -> Grpc:
                call = await admit(context)
                return await behaviour(request, wrap(context, call))

            return checked_coroutine

        if response_streaming:
            # grpcio calls a sync streaming behaviour on the event loop and iterates the result
            # on its executor; a generator defers the checks to that first iteration.
            def checked_generator(request: Grpc, context: Grpc) -> Iterator[Any]:
                call = admit_sync(context)
                yield from behaviour(request, wrap(context, call))

            return checked_generator

        def checked_function(request: Grpc, context: Grpc) -> Grpc:
            call = admit_sync(context)
            return behaviour(request, wrap(context, call))

        return checked_function


def _replace(handler: Grpc, wrap: Callable[[Callable[..., Any], bool], Callable[..., Any]]) -> Grpc:
    streaming = bool(handler.response_streaming)
    if handler.request_streaming:
        if streaming:
            return handler._replace(stream_stream=wrap(handler.stream_stream, streaming))
        return handler._replace(stream_unary=wrap(handler.stream_unary, streaming))
    if streaming:
        return handler._replace(unary_stream=wrap(handler.unary_stream, streaming))
    return handler._replace(unary_unary=wrap(handler.unary_unary, streaming))


class _Wrappers:
    """The wrapped handler of each method, built once: grpcio returns the same handler object
    for every call of a method, and a wrapper reads everything per call from its context, so
    building closures on every call (several microseconds) is wasted. A different handler for
    the same method (a server that builds handlers per call) gets a new wrapper."""

    _SIZE = 1024

    def __init__(self, wrap: Callable[[Callable[..., Any], str, bool], Callable[..., Any]]) -> None:
        self._wrap = wrap
        self._wrapped: dict[str, tuple[Grpc, Grpc]] = {}
        self._lock = threading.Lock()

    def get(self, handler: Grpc, method: str) -> Grpc:
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrap = self._wrap
        wrapped = _replace(handler, lambda behaviour, streaming: wrap(behaviour, method, streaming))
        with self._lock:
            if len(self._wrapped) >= self._SIZE:
                self._wrapped.clear()
            self._wrapped[method] = (handler, wrapped)
        return wrapped


class GuardInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc ships no types
    """The sync interceptor: chooses the handler and wraps it, nothing else (it runs on the
    server's dispatch thread)."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._wrappers = _Wrappers(
            lambda behaviour, method, _streaming: guard._wrap_sync(behaviour, method)
        )

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Grpc
    ) -> Grpc:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return self._wrappers.get(handler, handler_call_details.method)


class AioGuardInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc ships no types
    """The ``grpc.aio`` interceptor: chooses the handler and wraps it; never raises."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._wrappers = _Wrappers(
            lambda behaviour, method, streaming: guard._wrap_aio(
                behaviour, method, response_streaming=streaming
            )
        )

    async def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Grpc
    ) -> Grpc:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self._wrappers.get(handler, handler_call_details.method)
