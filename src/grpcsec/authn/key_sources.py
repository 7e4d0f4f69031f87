"""Where a verifier gets its keys: the :class:`KeySource` contract, fixed keys and a JWKS file.

No grpc. Key sources implement :class:`KeySource`:

* :class:`StaticKeys`: fixed keys;
* :class:`JWKSFile`: a JWKS file, re-read when it changes (checked at most every
  ``poll_interval`` seconds; a bad new file keeps the old keys);
* :class:`~grpcsec.authn.jwks_url.JWKSUrl`: a JWKS over HTTPS, cached and refreshed (its own
  module, with its HTTP safety rules).

:func:`key_source` picks the file or the URL from a command-line style value. Times are POSIX
seconds (``now``), the unit of JWT ``exp``/``nbf``/``iat``, and always a parameter.
:meth:`KeySource.current` never blocks; :meth:`KeySource.refresh` may (network).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from grpcsec.authn.jwks_url import JWKSUrl
from grpcsec.authn.keys import KeySet, PublicKey, VerificationKey
from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import ConfigurationError, MaterialError
from grpcsec.fileio import FileKind, WatchedFile, WatchedFileCounters
from grpcsec.material import StrPath, TrustSource
from grpcsec.text import get_logger

__all__ = ["JWKSFile", "KeySource", "StaticKeys", "key_source"]

log = get_logger("grpcsec.authn")


class KeySource(Protocol):
    """Where a verifier gets its keys."""

    def current(self, now: float) -> KeySet | None:
        """The keys to use now, without blocking; ``None`` when there are none fit to use
        (never fetched, or stale beyond the allowed bound)."""
        ...

    def refresh_wanted(self, now: float, *, unknown_kid: bool) -> bool:
        """Whether :meth:`refresh` would fetch now: keys are due, or a token named an unknown
        ``kid``, and the rate limit allows a fetch."""
        ...

    def refresh(self, now: float, *, wait: bool = True) -> KeySet | None:
        """Fetch when :meth:`refresh_wanted` (may block; never raises) and return
        :meth:`current`. Concurrent callers share one fetch: with ``wait`` they wait for it
        (bounded), without they return the current keys at once."""
        ...

    def status(self, now: float) -> dict[str, Any]:
        """A JSON-ready description (source, kids, age, last error) for logs and the CLI."""
        ...


class StaticKeys:
    """Fixed keys: ``cryptography`` public keys or :class:`VerificationKey` values."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[VerificationKey | PublicKey] | KeySet) -> None:
        if isinstance(keys, KeySet):
            self._keys = keys
        else:
            values = [
                k if isinstance(k, VerificationKey) else VerificationKey.from_public_key(k)
                for k in keys
            ]
            if not values:
                raise ConfigurationError("no verification keys were given")
            try:
                self._keys = KeySet(values, source="static")
            except MaterialError as exc:
                raise ConfigurationError(exc.message) from exc

    def current(self, now: float) -> KeySet:
        """The keys."""
        return self._keys

    def refresh_wanted(self, now: float, *, unknown_kid: bool) -> bool:
        """Never: static keys do not change."""
        return False

    def refresh(self, now: float, *, wait: bool = True) -> KeySet:
        """The keys."""
        return self._keys

    def status(self, now: float) -> dict[str, Any]:
        """``{"source": "static", "kids": [...]}``."""
        return {"source": "static", "kids": self._keys.kids(), "keys": len(self._keys)}

    def __repr__(self) -> str:
        return f"StaticKeys({self._keys!r})"


class JWKSFile(WatchedFileCounters):
    """A JWKS file, read at construction (errors raise :class:`MaterialError`) and re-read when
    it changes (:class:`~grpcsec.fileio.WatchedFile`), checked at most every ``poll_interval``
    seconds. A new version that cannot be read or parsed (a FIFO, a device, a symlink loop, bad
    JSON) is logged once, counted in ``reload_failures``, and the old keys stay."""

    def __init__(self, path: StrPath, *, poll_interval: float = 5.0, now: float = 0.0) -> None:
        if poll_interval < 0:
            raise ConfigurationError("poll_interval must not be negative")
        self.path = Path(path)
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        self._file: WatchedFile[KeySet] = WatchedFile(
            self.path,
            kind=FileKind.JWKS,
            parse=lambda data: KeySet.from_jwks(data, source=str(path)),
            what=f"JWKS file {self.path}",
            log=log,
        )
        self._checked_at = now

    def current(self, now: float) -> KeySet:
        """The keys, re-read first when the file changed (at most every ``poll_interval``)."""
        if now - self._checked_at >= self.poll_interval and self._lock.acquire(blocking=False):
            try:
                self._checked_at = now
                if self._file.check():
                    log.info("JWKS file %s reloaded: kids %s", self.path, self._file.value.kids())
            finally:
                self._lock.release()
        return self._file.value

    def refresh_wanted(self, now: float, *, unknown_kid: bool) -> bool:
        """Never: the file is checked by :meth:`current`."""
        return False

    def refresh(self, now: float, *, wait: bool = True) -> KeySet:
        """The current keys."""
        return self.current(now)

    def status(self, now: float) -> dict[str, Any]:
        """Source, kids and the last reload error."""
        keys = self._file.value
        return {
            "source": str(self.path),
            "kids": keys.kids(),
            "keys": len(keys),
            "skipped": list(keys.skipped),
            "last_error": self._file.last_error,
            "reload_failures": self._file.failures,
        }

    def __repr__(self) -> str:
        return f"JWKSFile({str(self.path)!r})"


def key_source(
    spec: str | os.PathLike[str],
    *,
    ca: TrustSource | None = None,
    min_refresh_interval: float = 30.0,
    timeout: float = 5.0,
    clock: Clock = SYSTEM_CLOCK,
) -> JWKSFile | JWKSUrl:
    """A JWKS source from a CLI-style value: an ``https://`` URL or a file path."""
    text = os.fspath(spec)
    if text.lower().startswith(("https://", "http://")):
        return JWKSUrl(
            text, ca=ca, min_refresh_interval=min_refresh_interval, timeout=timeout, clock=clock
        )
    if ca is not None:
        raise ConfigurationError("a CA bundle only applies to a JWKS URL, not to a file")
    return JWKSFile(text)
