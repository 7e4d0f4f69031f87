"""Where the current policy comes from: a fixed one, or a file watched for changes (A43 §9).

* :class:`StaticPolicyProvider`: a policy given as JSON text, a mapping or a parsed
  :class:`~grpcsec.authz.model.Policy`; an invalid one fails construction.
* :class:`FileWatcherPolicyProvider`: a file re-read every ``interval`` seconds by a daemon
  thread (or on :meth:`~FileWatcherPolicyProvider.reload`). The first load is synchronous and
  must succeed. Later, the raw bytes are compared with the last bytes seen: unchanged, nothing
  happens; changed, they are recorded as seen *before* validation, then a valid policy is
  compiled and swapped in atomically (in-flight RPCs keep the engine they started with), and an
  invalid one, like an unreadable file, keeps the last good policy, logs one warning and shows
  in :attr:`~FileWatcherPolicyProvider.last_error` and the counters. Because bad bytes count as
  seen, a broken file is reported once, not on every tick; any new content is picked up on the
  next tick. An unreadable file is reported once per distinct error.

Both expose :attr:`engine` (the compiled policy in force); :class:`~grpcsec.authz.Authorizer`
reads it on every RPC.
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from grpcsec.authz.audit import AuditLoggerRegistry
from grpcsec.authz.engine import Engine
from grpcsec.authz.model import Policy
from grpcsec.authz.parse import parse_policy, read_policy_file
from grpcsec.errors import ConfigurationError, GrpcsecError, PolicyError
from grpcsec.text import get_logger

__all__ = [
    "FileWatcherPolicyProvider",
    "PolicyProvider",
    "ProviderStatus",
    "ReloadResult",
    "StaticPolicyProvider",
]

log = get_logger("grpcsec.authz")

_JOIN_TIMEOUT = 5.0

PolicySource = str | bytes | Mapping[str, Any] | Policy


class PolicyProvider(Protocol):
    """Anything that hands out the engine currently in force."""

    @property
    def engine(self) -> Engine:
        """The compiled policy to use for the next RPC."""
        ...

    def close(self) -> None:
        """Stop background work, if any."""
        ...


def _to_policy(
    source: PolicySource, registry: AuditLoggerRegistry | None, extensions: bool
) -> Policy:
    if isinstance(source, Policy):
        return source
    return parse_policy(source, registry=registry, extensions=extensions)


class StaticPolicyProvider:
    """A policy fixed for the provider's lifetime."""

    def __init__(
        self,
        policy: PolicySource,
        *,
        registry: AuditLoggerRegistry | None = None,
        extensions: bool = True,
    ) -> None:
        self._engine = Engine(_to_policy(policy, registry, extensions))

    @property
    def engine(self) -> Engine:
        """The compiled policy."""
        return self._engine

    @property
    def policy(self) -> Policy:
        """The parsed policy."""
        return self._engine.policy

    def close(self) -> None:
        """Nothing to stop."""

    def __repr__(self) -> str:
        return f"StaticPolicyProvider({self._engine.name!r})"


class ReloadResult(enum.Enum):
    """What one check of the file did."""

    UNCHANGED = "unchanged"
    UPDATED = "updated"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderStatus:
    """A snapshot for health endpoints and metrics.

    ``loads`` counts successful loads (the first included), ``failures`` rejected contents and
    read errors (each distinct one once), ``checks`` every look at the file.
    """

    path: str
    policy_name: str
    loads: int
    failures: int
    checks: int
    last_error: str | None
    running: bool

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "path": self.path,
            "policy_name": self.policy_name,
            "loads": self.loads,
            "failures": self.failures,
            "checks": self.checks,
            "last_error": self.last_error,
            "running": self.running,
        }


class FileWatcherPolicyProvider:
    """A policy file, re-read every ``interval`` and swapped in when it changes validly.

    ``on_update`` is called with the new :class:`Policy` after the first load and after each
    successful reload (not for unchanged contents), on the thread that loaded it; an exception
    from it is logged and ignored. ``start=False`` runs no thread: call :meth:`reload` yourself
    (tests, or a server with its own scheduler). Use as a context manager, or call
    :meth:`close`, to stop the thread.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        interval: float | dt.timedelta,
        on_update: Callable[[Policy], None] | None = None,
        registry: AuditLoggerRegistry | None = None,
        extensions: bool = True,
        start: bool = True,
    ) -> None:
        if not str(path):
            raise ConfigurationError("the authorization policy file path is empty")
        seconds = interval.total_seconds() if isinstance(interval, dt.timedelta) else interval
        if not seconds > 0:
            raise ConfigurationError(
                f"the policy refresh interval must be greater than 0 seconds, not {seconds}"
            )
        self.path = Path(path)
        self.interval = float(seconds)
        self._on_update = on_update
        self._registry = registry
        self._extensions = extensions
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loads = 0
        self._failures = 0
        self._checks = 0
        self._read_error: str | None = None
        self._seen_error: PolicyError | None = None
        self._last_error: PolicyError | None = None
        data = read_policy_file(self.path)
        self._seen = data
        self._engine = self._compile(data)
        self._loads = 1
        self._checks = 1
        self._notify(self._engine.policy)
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(
                target=self._run, name=f"grpcsec-authz-watch:{self.path.name}", daemon=True
            )
            self._thread.start()

    # -- loading -----------------------------------------------------------------------------------
    def _compile(self, data: bytes) -> Engine:
        policy = parse_policy(
            data, registry=self._registry, extensions=self._extensions, path=self.path
        )
        return Engine(policy)

    def _notify(self, policy: Policy) -> None:
        if self._on_update is None:
            return
        try:
            self._on_update(policy)
        except Exception:  # a callback never breaks the watcher
            log.exception("authorization policy update callback failed for %s", self.path)

    def _fail(self, error: PolicyError) -> ReloadResult:
        self._failures += 1
        self._last_error = error
        log.warning(
            "authorization policy %s not reloaded, keeping policy %r: %s",
            self.path,
            self._engine.name,
            error.message,
        )
        return ReloadResult.FAILED

    def reload(self) -> ReloadResult:
        """Check the file once (what each tick does); safe to call from any thread."""
        with self._lock:
            self._checks += 1
            try:
                data = read_policy_file(self.path)
            except PolicyError as exc:
                if exc.message == self._read_error:
                    return ReloadResult.UNCHANGED
                self._read_error = exc.message
                return self._fail(exc)
            self._read_error = None
            if data == self._seen:
                self._last_error = self._seen_error
                return ReloadResult.UNCHANGED
            self._seen = data
            try:
                engine = self._compile(data)
            except PolicyError as exc:
                self._seen_error = exc
                return self._fail(exc)
            except GrpcsecError as exc:  # e.g. a registry error raised by a logger factory
                self._seen_error = PolicyError(str(exc), path=self.path)
                return self._fail(self._seen_error)
            self._engine = engine
            self._loads += 1
            self._seen_error = None
            self._last_error = None
        log.info("authorization policy %r loaded from %s", engine.name, self.path)
        self._notify(engine.policy)
        return ReloadResult.UPDATED

    def _tick(self) -> None:
        try:
            self.reload()
        except Exception:  # the watcher must outlive any surprise
            log.exception("authorization policy watcher error for %s", self.path)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._tick()

    # -- state -------------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The engine of the last good policy."""
        return self._engine

    @property
    def policy(self) -> Policy:
        """The last good policy."""
        return self._engine.policy

    @property
    def last_error(self) -> PolicyError | None:
        """Why the file's current contents are not in force (``None`` when they are)."""
        return self._last_error

    @property
    def running(self) -> bool:
        """Whether the polling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def status(self) -> ProviderStatus:
        """Counters and the last error, as one snapshot."""
        with self._lock:
            return ProviderStatus(
                path=str(self.path),
                policy_name=self._engine.name,
                loads=self._loads,
                failures=self._failures,
                checks=self._checks,
                last_error=str(self._last_error) if self._last_error else None,
                running=self.running,
            )

    def close(self) -> None:
        """Stop the polling thread and wait for it (idempotent)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT)

    def __enter__(self) -> FileWatcherPolicyProvider:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FileWatcherPolicyProvider({str(self.path)!r}, interval={self.interval})"
