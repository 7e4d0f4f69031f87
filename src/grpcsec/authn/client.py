"""Bearer tokens on the client: the interceptors and channels that attach a token to calls.

The interceptors add ``authorization: Bearer <token>`` (from a
:class:`~grpcsec.authn.token_sources.TokenSource`) to every call, for all four call shapes,
on sync channels (:func:`token_channel`, :class:`BearerTokenInterceptor`) and ``grpc.aio``
channels (:func:`aio_token_channel`, :func:`aio_bearer_interceptors`). They are interceptors,
not ``grpc.metadata_call_credentials`` plugins, because a plugin costs a new thread per call
(grpcio-security.md §1.4). Interceptors are not held back by grpcio's security-level gate, so
grpcsec applies its own (:func:`~grpcsec.authn.token_transport.check_token_transport`): a
token is never sent over a plaintext channel unless the caller passes
``allow_plaintext_token_on_loopback=True`` *and* the target is a loopback address or a Unix
socket. A call that already carries ``authorization`` metadata is refused (two headers would be
rejected by a grpcsec server anyway). The only module of :mod:`grpcsec.authn` that imports grpc.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from typing import Any, TypeAlias

import grpc

from grpcsec.authn.token_sources import StaticToken, TokenSource
from grpcsec.authn.token_transport import check_token_transport
from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.credentials import ChannelTLS
from grpcsec.errors import ConfigurationError

__all__ = [
    "AioBearerStreamStream",
    "AioBearerStreamUnary",
    "AioBearerUnaryStream",
    "AioBearerUnaryUnary",
    "BearerTokenInterceptor",
    "aio_bearer_interceptors",
    "aio_token_channel",
    "token_channel",
]

Grpc: TypeAlias = Any
"""A grpcio object (context, call details, continuation, message): grpcio ships no types."""


def _as_source(token: TokenSource | str) -> TokenSource:
    return StaticToken(token) if isinstance(token, str) else token


def _with_token(metadata: Grpc, token: str) -> tuple[tuple[str, Any], ...]:
    items = tuple(metadata or ())
    for key, _value in items:
        if key.lower() == "authorization":
            raise ConfigurationError(
                "the call already has authorization metadata and the channel attaches a bearer "
                "token; send one or the other (servers reject two)"
            )
    return (*items, ("authorization", "Bearer " + token))


_Details = collections.namedtuple(
    "_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
)


class _ClientCallDetails(_Details, grpc.ClientCallDetails):  # type: ignore[misc]
    pass


class BearerTokenInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]  # grpc ships no types
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds ``authorization: Bearer <token>`` to every call of a sync channel (use with
    ``grpc.intercept_channel``). ``secure`` says whether the channel has TLS (or local
    credentials); see :func:`check_token_transport`. ``clock`` gives the time the source is
    asked for its token at."""

    def __init__(
        self,
        token: TokenSource | str,
        *,
        secure: bool,
        target: str,
        allow_plaintext_token_on_loopback: bool = False,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        check_token_transport(
            secure=secure,
            target=target,
            allow_plaintext_token_on_loopback=allow_plaintext_token_on_loopback,
        )
        self.source = _as_source(token)
        self.clock = clock

    def _details(self, details: Grpc) -> _ClientCallDetails:
        metadata = _with_token(details.metadata, self.source.token(self.clock.timestamp()))
        return _ClientCallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Grpc, client_call_details: Grpc, request: Grpc
    ) -> Grpc:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self, continuation: Grpc, client_call_details: Grpc, request: Grpc
    ) -> Grpc:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(
        self, continuation: Grpc, client_call_details: Grpc, request_iterator: Grpc
    ) -> Grpc:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(
        self, continuation: Grpc, client_call_details: Grpc, request_iterator: Grpc
    ) -> Grpc:
        return continuation(self._details(client_call_details), request_iterator)

    def __repr__(self) -> str:
        return f"BearerTokenInterceptor({self.source!r})"


class _AioBearer:
    """Shared part of the four ``grpc.aio`` interceptors (grpc.aio registers an interceptor for
    one call shape only, the first base class it matches)."""

    def __init__(self, source: TokenSource, clock: Clock = SYSTEM_CLOCK) -> None:
        self.source = source
        self.clock = clock

    async def _details(self, details: Grpc) -> Grpc:
        now = self.clock.timestamp()
        token = self.source.token_nowait(now)
        if token is None:
            token = await asyncio.get_running_loop().run_in_executor(None, self.source.token, now)
        metadata = grpc.aio.Metadata(*_with_token(details.metadata, token))
        return details._replace(metadata=metadata)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r})"


class AioBearerUnaryUnary(_AioBearer, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Bearer token for unary-unary calls on a ``grpc.aio`` channel."""

    async def intercept_unary_unary(
        self, continuation: Grpc, client_call_details: Grpc, request: Grpc
    ) -> Grpc:
        return await continuation(await self._details(client_call_details), request)


class AioBearerUnaryStream(_AioBearer, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Bearer token for unary-stream calls on a ``grpc.aio`` channel."""

    async def intercept_unary_stream(
        self, continuation: Grpc, client_call_details: Grpc, request: Grpc
    ) -> Grpc:
        return await continuation(await self._details(client_call_details), request)


class AioBearerStreamUnary(_AioBearer, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    """Bearer token for stream-unary calls on a ``grpc.aio`` channel."""

    async def intercept_stream_unary(
        self, continuation: Grpc, client_call_details: Grpc, request_iterator: Grpc
    ) -> Grpc:
        return await continuation(await self._details(client_call_details), request_iterator)


class AioBearerStreamStream(_AioBearer, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    """Bearer token for stream-stream calls on a ``grpc.aio`` channel."""

    async def intercept_stream_stream(
        self, continuation: Grpc, client_call_details: Grpc, request_iterator: Grpc
    ) -> Grpc:
        return await continuation(await self._details(client_call_details), request_iterator)


def aio_bearer_interceptors(
    token: TokenSource | str,
    *,
    secure: bool,
    target: str,
    allow_plaintext_token_on_loopback: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> list[Any]:
    """The four ``grpc.aio`` client interceptors attaching ``token`` (pass them as
    ``interceptors=`` to ``grpc.aio.secure_channel``); see :func:`check_token_transport`."""
    check_token_transport(
        secure=secure,
        target=target,
        allow_plaintext_token_on_loopback=allow_plaintext_token_on_loopback,
    )
    source = _as_source(token)
    return [
        AioBearerUnaryUnary(source, clock),
        AioBearerUnaryStream(source, clock),
        AioBearerStreamUnary(source, clock),
        AioBearerStreamStream(source, clock),
    ]


def _credentials(tls: ChannelTLS | grpc.ChannelCredentials | None) -> Grpc:
    if tls is None:
        return None
    if isinstance(tls, ChannelTLS):
        return tls.credentials()
    if isinstance(tls, grpc.ChannelCredentials):
        return tls
    raise ConfigurationError("tls must be a ChannelTLS, grpc.ChannelCredentials or None")


def token_channel(
    target: str,
    tls: ChannelTLS | grpc.ChannelCredentials | None,
    token: TokenSource | str,
    *,
    options: Sequence[tuple[str, Any]] = (),
    allow_plaintext_token_on_loopback: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> grpc.Channel:
    """A sync channel to ``target`` that sends ``token`` on every call. ``tls=None`` means
    plaintext, refused unless ``allow_plaintext_token_on_loopback`` and a loopback target.
    The caller owns (and closes) the channel."""
    credentials = _credentials(tls)
    interceptor = BearerTokenInterceptor(
        token,
        secure=credentials is not None,
        target=target,
        allow_plaintext_token_on_loopback=allow_plaintext_token_on_loopback,
        clock=clock,
    )
    if credentials is None:
        channel = grpc.insecure_channel(target, options=list(options))
    else:
        channel = grpc.secure_channel(target, credentials, options=list(options))
    return grpc.intercept_channel(channel, interceptor)


def aio_token_channel(
    target: str,
    tls: ChannelTLS | grpc.ChannelCredentials | None,
    token: TokenSource | str,
    *,
    options: Sequence[tuple[str, Any]] = (),
    allow_plaintext_token_on_loopback: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> grpc.aio.Channel:
    """The ``grpc.aio`` form of :func:`token_channel` (create it inside the event loop)."""
    credentials = _credentials(tls)
    interceptors = aio_bearer_interceptors(
        token,
        secure=credentials is not None,
        target=target,
        allow_plaintext_token_on_loopback=allow_plaintext_token_on_loopback,
        clock=clock,
    )
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=list(options), interceptors=interceptors)
    return grpc.aio.secure_channel(
        target, credentials, options=list(options), interceptors=interceptors
    )
