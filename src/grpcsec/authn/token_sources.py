"""Bearer tokens on the client: where the current token comes from. No grpc.

A :class:`TokenSource` hands out the current token; three are provided:

* :class:`StaticToken`: a fixed string;
* :class:`TokenFile`: a file (a Kubernetes projected token, a sidecar's output), re-read when
  its modification time, size or inode change (checked at most every ``poll_interval``);
* :class:`RefreshingToken`: a callable returning ``(token, expiry)``. The token is refreshed
  *before* it expires, on a background thread, while calls keep using the current one; a call
  only waits when there is no valid token at all (the first call, or after failed refreshes).

Sources mask the token in ``repr``. The interceptors and channels that attach a source's token
to calls are :mod:`grpcsec.authn.client`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import AuthenticationError, ConfigurationError, MaterialError
from grpcsec.fileio import FileKind, WatchedFile, WatchedFileCounters
from grpcsec.text import get_logger

__all__ = ["RefreshingToken", "StaticToken", "TokenAndExpiry", "TokenFile", "TokenSource"]

log = get_logger("grpcsec.authn")

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
    ``reload_failures`` counts it; the next good version is read at the next check. ``clock``
    dates the first check."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        poll_interval: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if poll_interval < 0:
            raise ConfigurationError("poll_interval must not be negative")
        self.path = Path(path)
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        self._file: WatchedFile[str] = WatchedFile(
            self.path, kind=FileKind.TOKEN, parse=self._parse, what="token file", log=log
        )
        self._checked_at = clock.timestamp()

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
    the background thread. ``clock`` is what a fetched token's expiry and the retry delay are
    measured against (a :class:`~grpcsec.clock.ManualClock` in tests).
    """

    def __init__(
        self,
        fetch: Callable[[], TokenAndExpiry],
        *,
        refresh_before: float = 60.0,
        retry_interval: float = 5.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if refresh_before < 0 or retry_interval <= 0:
            raise ConfigurationError("refresh_before must be >= 0 and retry_interval > 0")
        self._fetch = fetch
        self.clock = clock
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
        started = self.clock.timestamp()
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
                self._retry_at = self.clock.timestamp() + self.retry_interval
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
