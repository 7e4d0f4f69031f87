"""A JWKS fetched over HTTPS, cached, refreshed and rate-limited. No grpc.

:class:`JWKSUrl` is refreshed every ``refresh_interval``; fetched at once when a token names an
unknown ``kid``, but at most once per ``min_refresh_interval`` (so random ``kid`` values cannot
turn the server into a traffic amplifier); when fetching fails, the last keys keep being served
for ``max_stale`` seconds past their refresh time and are refused after that.

HTTP safety: only ``https://``, verified against a named CA bundle (the system bundle by
default); redirects are refused (a redirect could leave HTTPS or the trusted host); each fetch
is bounded in time (``timeout``) and size (``max_bytes``). Times are POSIX seconds (``now``)
and always a parameter.
"""

from __future__ import annotations

import ssl
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from grpcsec.authn.keys import MAX_JWKS_BYTES, KeySet
from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import ConfigurationError, MaterialError
from grpcsec.material import TrustBundle, TrustSource, as_trust_bundle
from grpcsec.text import get_logger

__all__ = ["JWKSUrl"]

log = get_logger("grpcsec.authn")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are refused: a JWKS URL is configuration, and a redirect could leave HTTPS."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:  # noqa: ANN401
        return None


@dataclass(frozen=True, slots=True)
class _UrlState:
    keys: KeySet | None
    fetched_at: float | None


class JWKSUrl:
    """A JWKS fetched over HTTPS and cached.

    * ``ca``: the CA bundle that issued the server's certificate; default: the system bundle
      (:meth:`~grpcsec.material.TrustBundle.system`, recorded in :meth:`status`). Plain HTTP
      and redirects are refused.
    * ``refresh_interval``: keys older than this are fetched again (by the next call that finds
      them due; on ``grpc.aio`` in the background).
    * ``min_refresh_interval``: at most one fetch per this many seconds, whatever triggers it
      (an unknown ``kid``, a failed fetch's retry).
    * ``max_stale``: how long past ``refresh_interval`` the last good keys are still served
      while fetches fail; after that tokens are refused (``keys_unavailable``).
    * ``timeout`` bounds each fetch; ``max_bytes`` bounds the document.

    Nothing is fetched at construction; call :meth:`fetch` at startup to fail fast. The
    methods take ``now`` (POSIX seconds); ``clock`` gives it to :meth:`fetch` when omitted.
    """

    def __init__(
        self,
        url: str,
        *,
        ca: TrustSource | None = None,
        refresh_interval: float = 300.0,
        min_refresh_interval: float = 30.0,
        max_stale: float = 3600.0,
        timeout: float = 5.0,
        max_bytes: int = MAX_JWKS_BYTES,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not url.lower().startswith("https://") or len(url) <= len("https://"):
            raise ConfigurationError(f"the JWKS URL must be https:// (got {url!r})")
        if min(refresh_interval, max_stale, timeout) <= 0 or min_refresh_interval < 0:
            raise ConfigurationError(
                "refresh_interval, max_stale and timeout must be positive, "
                "min_refresh_interval not negative"
            )
        if max_bytes <= 0:
            raise ConfigurationError("max_bytes must be positive")
        self.url = url
        self.clock = clock
        self.trust: TrustBundle = (
            TrustBundle.system() if ca is None else as_trust_bundle(ca, "JWKS CA bundle")
        )
        self.refresh_interval = refresh_interval
        self.min_refresh_interval = min_refresh_interval
        self.max_stale = max_stale
        self.timeout = timeout
        self.max_bytes = max_bytes
        context = ssl.create_default_context(cadata=self.trust.pem.decode("ascii", "replace"))
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoRedirect()
        )
        self._lock = threading.Lock()
        self._state = _UrlState(None, None)
        self._attempted_at: float | None = None
        self._last_error: str | None = None
        self.fetches = 0
        self.fetch_failures = 0

    # -- non-blocking ------------------------------------------------------------------------
    def current(self, now: float) -> KeySet | None:
        """The last fetched keys, unless they are stale beyond ``max_stale``."""
        state = self._state
        if state.keys is None or state.fetched_at is None:
            return None
        if now > state.fetched_at + self.refresh_interval + self.max_stale:
            return None
        return state.keys

    def _attempt_allowed(self, now: float) -> bool:
        attempted = self._attempted_at
        return attempted is None or now - attempted >= self.min_refresh_interval

    def refresh_wanted(self, now: float, *, unknown_kid: bool) -> bool:
        """Keys missing, a ``kid`` unknown or keys due, and the rate limit allows a fetch."""
        if not self._attempt_allowed(now):
            return False
        state = self._state
        if state.keys is None or state.fetched_at is None or unknown_kid:
            return True
        return now >= state.fetched_at + self.refresh_interval

    # -- blocking ----------------------------------------------------------------------------
    def refresh(self, now: float, *, wait: bool = True) -> KeySet | None:
        """Fetch if still wanted once the lock is ours, then return :meth:`current`. With
        ``wait`` a caller waits (bounded) for a fetch in progress and gets its result; without,
        it returns the current keys at once (a routine refresh never holds up other calls)."""
        acquired = (
            self._lock.acquire(timeout=self.timeout + 1.0)
            if wait
            else self._lock.acquire(blocking=False)
        )
        if not acquired:
            return self.current(now)
        try:
            if self._attempt_allowed(now):
                try:
                    keys = self._fetch_locked(now)
                except MaterialError as exc:
                    log.warning("JWKS %s: fetch failed, keeping the last keys: %s", self.url, exc)
                else:
                    log.info("JWKS %s fetched: kids %s", self.url, keys.kids())
        finally:
            self._lock.release()
        return self.current(now)

    def fetch(self, now: float | None = None) -> KeySet:
        """Fetch now (ignoring the rate limit) and return the keys; raises
        :class:`MaterialError` when the JWKS cannot be fetched or parsed. For startup checks
        and the CLI."""
        if now is None:
            now = self.clock.timestamp()
        with self._lock:
            return self._fetch_locked(now)

    def _fetch_locked(self, now: float) -> KeySet:
        """One fetch attempt at ``now`` (the lock is held), counted and recorded: the new keys,
        or the :class:`MaterialError` (the last keys stay)."""
        self._attempted_at = now
        try:
            keys = self._download()
        except MaterialError as exc:
            self.fetch_failures += 1
            self._last_error = exc.message
            raise
        self.fetches += 1
        self._last_error = None
        self._state = _UrlState(keys, now)
        return keys

    def _download(self) -> KeySet:
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked to be https)
            self.url, headers={"Accept": "application/json", "User-Agent": "grpcsec"}
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                data: bytes = response.read(self.max_bytes + 1)
        except urllib.error.HTTPError as exc:
            exc.close()  # the error holds the response and its socket
            raise MaterialError(f"HTTP {exc.code} {exc.reason}", path=self.url) from exc
        except urllib.error.URLError as exc:
            raise MaterialError(f"cannot fetch: {exc.reason}", path=self.url) from exc
        except (OSError, ValueError) as exc:
            raise MaterialError(f"cannot fetch: {exc}", path=self.url) from exc
        if len(data) > self.max_bytes:
            raise MaterialError(f"the JWKS is larger than {self.max_bytes} bytes", path=self.url)
        return KeySet.from_jwks(data, source=self.url)

    def status(self, now: float) -> dict[str, Any]:
        """URL, trust, kids, age and the last fetch error."""
        state = self._state
        return {
            "source": self.url,
            "trust": self.trust.source,
            "kids": state.keys.kids() if state.keys else [],
            "keys": len(state.keys) if state.keys else 0,
            "age_seconds": None if state.fetched_at is None else round(now - state.fetched_at, 3),
            "usable": self.current(now) is not None,
            "fetches": self.fetches,
            "fetch_failures": self.fetch_failures,
            "last_error": self._last_error,
        }

    def __repr__(self) -> str:
        return f"JWKSUrl({self.url!r})"
