"""Bearer tokens on the client: token sources and the interceptors that attach them.

A :class:`TokenSource` hands out the current token; three are provided:

* :class:`StaticToken`: a fixed string;
* :class:`TokenFile`: a file (a Kubernetes projected token, a sidecar's output), re-read when
  its modification time, size or inode change (checked at most every ``poll_interval``);
* :class:`RefreshingToken`: a callable returning ``(token, expiry)``. The token is refreshed
  *before* it expires, on a background thread, while calls keep using the current one; a call
  only waits when there is no valid token at all (the first call, or after failed refreshes).

The interceptors add ``authorization: Bearer <token>`` to every call, for all four call shapes,
on sync channels (:func:`token_channel`, :class:`BearerTokenInterceptor`) and ``grpc.aio``
channels (:func:`aio_token_channel`, :func:`aio_bearer_interceptors`). They are interceptors,
not ``grpc.metadata_call_credentials`` plugins, because a plugin costs a new thread per call
(grpcio-security.md §1.4). Interceptors are not held back by grpcio's security-level gate, so
grpcsec applies its own: a token is never sent over a plaintext channel unless the caller passes
``allow_plaintext_token_on_loopback=True`` *and* the target is a loopback address or a Unix
socket. A call that already carries ``authorization`` metadata is refused (two headers would be
rejected by a grpcsec server anyway). Sources mask the token in ``repr``.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeAlias, runtime_checkable

import grpc

from grpcsec.credentials import ChannelTLS
from grpcsec.errors import AuthenticationError, ConfigurationError, MaterialError
from grpcsec.fileio import FileKind, WatchedFile, WatchedFileCounters
from grpcsec.target import Target
from grpcsec.text import get_logger

__all__ = [
    "AioBearerStreamStream",
    "AioBearerStreamUnary",
    "AioBearerUnaryStream",
    "AioBearerUnaryUnary",
    "BearerTokenInterceptor",
    "RefreshingToken",
    "StaticToken",
    "TokenFile",
    "TokenSource",
    "aio_bearer_interceptors",
    "aio_token_channel",
    "check_token_transport",
    "token_channel",
]

log = get_logger("grpcsec.authn")

Grpc: TypeAlias = Any
"""A grpcio object (context, call details, continuation, message): grpcio ships no types."""

MAX_TOKEN_FILE_BYTES = FileKind.TOKEN.max_bytes
_TOKEN_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/="
)  # RFC 6750 b64token


def _checked(token: str, what: str) -> str:
    """A token that can go in a header: non-empty RFC 6750 b64token characters, bounded."""
    if not isinstance(token, str):
        raise ConfigurationError(f"the {what} must be a string")
    cleaned = token.strip()
    if not cleaned:
        raise ConfigurationError(f"the {what} is empty")
    if len(cleaned) > MAX_TOKEN_FILE_BYTES:
        raise ConfigurationError(f"the {what} is larger than {MAX_TOKEN_FILE_BYTES} bytes")
    if not set(cleaned) <= _TOKEN_CHARS:
        raise ConfigurationError(
            f"the {what} has characters a bearer token cannot contain (spaces, line breaks, "
            "non-ASCII)"
        )
    return cleaned


def _mask(token: str | None) -> str:
    if not token:
        return "<no token>"
    return f"<token sha256:{hashlib.sha256(token.encode()).hexdigest()[:8]}..., {len(token)} chars>"


@runtime_checkable
class TokenSource(Protocol):
    """Where a channel gets its bearer token. ``now`` is POSIX seconds."""

    def token(self, now: float) -> str:
        """The token to send now; may block (a fetch). Raises :class:`AuthenticationError`
        (``token_unavailable``) when there is none."""
        ...

    def token_nowait(self, now: float) -> str | None:
        """The token without blocking, or ``None`` when :meth:`token` would have to wait."""
        ...


class StaticToken:
    """A fixed token."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = _checked(token, "token")

    def token(self, now: float) -> str:
        """The token."""
        return self._token

    def token_nowait(self, now: float) -> str:
        """The token."""
        return self._token

    def __repr__(self) -> str:
        return f"StaticToken({_mask(self._token)})"


class TokenFile(WatchedFileCounters):
    """A token read from a file at construction (errors raise :class:`MaterialError`) and
    re-read when the file changes (:class:`~grpcsec.fileio.WatchedFile`), checked at most every
    ``poll_interval`` seconds. If a new version cannot be read (a FIFO, a device, a symlink
    loop, not a token), the last good token stays, a warning is logged once and
    ``reload_failures`` counts it; the next good version is read at the next check."""

    def __init__(self, path: str | os.PathLike[str], *, poll_interval: float = 1.0) -> None:
        if poll_interval < 0:
            raise ConfigurationError("poll_interval must not be negative")
        self.path = Path(path)
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        self._file: WatchedFile[str] = WatchedFile(
            self.path, kind=FileKind.TOKEN, parse=self._parse, what="token file", log=log
        )
        self._checked_at = time.time()

    def _parse(self, data: bytes) -> str:
        try:
            return _checked(data.decode("ascii"), "token file")
        except (UnicodeDecodeError, ConfigurationError) as exc:
            reason = exc.message if isinstance(exc, ConfigurationError) else "it is not ASCII"
            raise MaterialError(f"not a bearer token: {reason}", path=self.path) from exc

    def token(self, now: float) -> str:
        """The token, re-read first when the file changed."""
        if now - self._checked_at >= self.poll_interval and self._lock.acquire(blocking=False):
            try:
                self._checked_at = now
                self._file.check()
            finally:
                self._lock.release()
        return self._file.value

    def token_nowait(self, now: float) -> str:
        """Same as :meth:`token` (a ``stat`` and, rarely, a small read)."""
        return self.token(now)

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r}, {_mask(self._file.value)})"


TokenAndExpiry = tuple[str, "dt.datetime | float"]


class RefreshingToken:
    """A token from ``fetch() -> (token, expiry)``, refreshed ahead of its expiry.

    ``expiry`` is an aware ``datetime`` or POSIX seconds. The refresh starts
    ``refresh_before`` seconds before expiry (or half-way through the token's life, if that is
    sooner) on a background thread; calls keep the current token meanwhile. When a refresh
    fails, it is retried after ``retry_interval`` seconds while the current token lasts; once
    it has expired, calls fetch synchronously (one at a time) and fail with
    :class:`AuthenticationError` (``token_unavailable``) if that fails too. :meth:`close` joins
    the background thread.
    """

    def __init__(
        self,
        fetch: Callable[[], TokenAndExpiry],
        *,
        refresh_before: float = 60.0,
        retry_interval: float = 5.0,
    ) -> None:
        if refresh_before < 0 or retry_interval <= 0:
            raise ConfigurationError("refresh_before must be >= 0 and retry_interval > 0")
        self._fetch = fetch
        self.refresh_before = refresh_before
        self.retry_interval = retry_interval
        self._fetch_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._current: tuple[str, float, float] | None = None  # token, expiry, refresh at
        self._retry_at = float("-inf")
        self._thread: threading.Thread | None = None
        self._closed = False
        self.fetches = 0
        self.failures = 0

    def _do_fetch(self) -> tuple[str, float, float]:
        started = time.time()
        try:
            token, expiry = self._fetch()
        except Exception as exc:
            self.failures += 1
            raise AuthenticationError(
                f"the token source failed: {type(exc).__name__}", reason="token_unavailable"
            ) from exc
        if isinstance(expiry, dt.datetime):
            if expiry.tzinfo is None:
                self.failures += 1
                raise AuthenticationError(
                    "the token source returned a naive expiry; use an aware datetime",
                    reason="token_unavailable",
                )
            expires = expiry.timestamp()
        else:
            expires = float(expiry)
        try:
            value = _checked(token, "token from the token source")
        except ConfigurationError as exc:
            self.failures += 1
            raise AuthenticationError(exc.message, reason="token_unavailable") from exc
        if expires <= started:
            self.failures += 1
            raise AuthenticationError(
                "the token source returned an expired token", reason="token_unavailable"
            )
        lead = min(self.refresh_before, (expires - started) / 2)
        state = (value, expires, expires - lead)
        self._current = state
        self.fetches += 1
        return state

    def _background(self) -> None:
        with self._fetch_lock:
            try:
                self._do_fetch()
            except AuthenticationError as exc:
                self._retry_at = time.time() + self.retry_interval
                log.warning(
                    "token refresh failed, retrying in %.0f s: %s", self.retry_interval, exc
                )

    def _refresh_in_background(self, now: float) -> None:
        if now < self._retry_at:
            return
        with self._state_lock:
            if self._closed or (self._thread is not None and self._thread.is_alive()):
                return
            self._retry_at = now + self.retry_interval
            self._thread = threading.Thread(
                target=self._background, name="grpcsec-token-refresh", daemon=True
            )
            self._thread.start()

    def token_nowait(self, now: float) -> str | None:
        """The current token (starting a background refresh when due), or ``None`` when there
        is no unexpired token."""
        current = self._current
        if current is None or now >= current[1]:
            return None
        if now >= current[2]:
            self._refresh_in_background(now)
        return current[0]

    def token(self, now: float) -> str:
        """The current token, fetching (and waiting) only when there is no unexpired one."""
        value = self.token_nowait(now)
        if value is not None:
            return value
        with self._fetch_lock:
            current = self._current
            if current is not None and now < current[1]:
                return current[0]
            return self._do_fetch()[0]

    def close(self, timeout: float = 10.0) -> None:
        """Stop refreshing and wait (bounded) for a refresh in progress."""
        with self._state_lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def __enter__(self) -> RefreshingToken:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        current = self._current
        return f"RefreshingToken({_mask(current[0] if current else None)})"


# -- transport check ---------------------------------------------------------------------------
def _is_local_target(target: str) -> bool:
    text = target.strip()
    lowered = text.lower()
    if lowered.startswith(("unix:", "unix-abstract:")):
        return True
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if lowered.startswith(prefix):
            text = text[len(prefix) :]
            break
    if "," in text:
        return all(_is_local_target(part) for part in text.split(","))
    try:
        return Target.parse(text).is_loopback
    except ConfigurationError:
        return False


def check_token_transport(
    *, secure: bool, target: str, allow_plaintext_token_on_loopback: bool
) -> None:
    """Refuse to send tokens in clear: a plaintext channel is allowed only with
    ``allow_plaintext_token_on_loopback`` *and* a loopback or Unix-socket ``target``."""
    if secure:
        return
    if not allow_plaintext_token_on_loopback:
        raise ConfigurationError(
            f"refusing to send a bearer token over a plaintext channel to {target}: use TLS, or "
            "for a loopback test server pass allow_plaintext_token_on_loopback=True"
        )
    if not _is_local_target(target):
        raise ConfigurationError(
            f"refusing to send a bearer token in clear to {target}: "
            "allow_plaintext_token_on_loopback only allows loopback addresses and Unix sockets"
        )


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
    credentials); see :func:`check_token_transport`."""

    def __init__(
        self,
        token: TokenSource | str,
        *,
        secure: bool,
        target: str,
        allow_plaintext_token_on_loopback: bool = False,
    ) -> None:
        check_token_transport(
            secure=secure,
            target=target,
            allow_plaintext_token_on_loopback=allow_plaintext_token_on_loopback,
        )
        self.source = _as_source(token)

    def _details(self, details: Grpc) -> _ClientCallDetails:
        metadata = _with_token(details.metadata, self.source.token(time.time()))
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

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    async def _details(self, details: Grpc) -> Grpc:
        now = time.time()
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
        AioBearerUnaryUnary(source),
        AioBearerUnaryStream(source),
        AioBearerStreamUnary(source),
        AioBearerStreamStream(source),
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
) -> grpc.aio.Channel:
    """The ``grpc.aio`` form of :func:`token_channel` (create it inside the event loop)."""
    credentials = _credentials(tls)
    interceptors = aio_bearer_interceptors(
        token,
        secure=credentials is not None,
        target=target,
        allow_plaintext_token_on_loopback=allow_plaintext_token_on_loopback,
    )
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=list(options), interceptors=interceptors)
    return grpc.aio.secure_channel(
        target, credentials, options=list(options), interceptors=interceptors
    )
