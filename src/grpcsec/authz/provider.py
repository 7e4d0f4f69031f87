"""Where the current policy comes from: a fixed one, or a file watched for changes (A43 §9).

* :class:`StaticPolicyProvider`: a policy given as JSON text, a mapping or a parsed
  :class:`~grpcsec.authz.model.Policy`; an invalid one fails construction.
* :class:`FileWatcherPolicyProvider`: a file watched by grpcsec's one watcher
  (:class:`grpcsec.watch.Watch`), polled every ``interval`` seconds by its daemon thread (or
  on :meth:`~FileWatcherPolicyProvider.reload`). The first load is synchronous and must
  succeed. Each tick stats the file and reads it only when it changed (and every tenth tick
  anyway); content equal to the policy in force does nothing; a valid new policy is compiled
  and swapped in atomically (in-flight RPCs keep the engine they started with); an invalid
  one, like an unreadable file, keeps the last good policy, logs one warning and shows in
  :attr:`~FileWatcherPolicyProvider.last_error` and the counters. Refused content is
  remembered by digest, so a broken file is reported once, not on every tick, even after a
  read error in between; any new content is picked up on the next tick.

Both expose :attr:`engine` (the compiled policy in force); :class:`~grpcsec.authz.Authorizer`
reads it on every RPC.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from grpcsec.authz.audit import AuditLoggerRegistry
from grpcsec.authz.engine import Engine
from grpcsec.authz.model import Policy
from grpcsec.authz.parse import parse_policy, read_policy_file
from grpcsec.clock import SYSTEM_CLOCK, Clock, rfc3339
from grpcsec.errors import ConfigurationError, GrpcsecError, PolicyError
from grpcsec.fileio import FileContents, FileKind, FileSet
from grpcsec.text import get_logger
from grpcsec.watch import ReloadOutcome, Watch
from grpcsec.watch.core import one_line

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
    read errors (each distinct one once; ``failures_by_reason`` splits them into ``invalid``
    and ``unreadable``), ``checks`` every look at the file; ``last_result`` is what the latest
    check did (``loaded``, ``unchanged``, ``refused``); the times come from the provider's clock.
    """

    path: str
    policy_name: str
    loads: int
    failures: int
    checks: int
    last_error: str | None
    running: bool
    last_result: ReloadOutcome = ReloadOutcome.LOADED
    last_success_time: dt.datetime | None = None
    last_failure_time: dt.datetime | None = None
    failures_by_reason: Mapping[str, int] = field(default_factory=dict)

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
            "last_result": self.last_result.value,
            "last_success_time": rfc3339(self.last_success_time),
            "last_failure_time": rfc3339(self.last_failure_time),
            "failures_by_reason": dict(sorted(self.failures_by_reason.items())),
        }


class _PolicyFile(FileSet):
    """The policy file as a watch source: read as :func:`read_policy_file` reads it, so an
    unreadable file is a :class:`PolicyError` ("cannot read the policy: ...")."""

    __slots__ = ()

    def read(self) -> FileContents:
        path = self.paths[0]
        return FileContents((path,), (read_policy_file(path),))


def _as_policy_error(error: BaseException, path: Path) -> PolicyError:
    """A refusal's error as the :class:`PolicyError` callers expect (a registry error raised
    by an audit logger factory, or a bug, becomes one naming the file)."""
    return error if isinstance(error, PolicyError) else PolicyError(one_line(error), path=path)


class FileWatcherPolicyProvider:
    """A policy file, re-read every ``interval`` and swapped in when it changes validly.

    ``on_update`` is called with the new :class:`Policy` after the first load and after each
    successful reload (not for unchanged contents), on the thread that loaded it; an exception
    from it is logged and ignored. ``start=False`` runs no thread: call :meth:`reload` yourself
    (tests, or a server with its own scheduler). Use as a context manager, or call
    :meth:`close`, to stop the thread. ``clock`` stamps the status times.
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
        clock: Clock = SYSTEM_CLOCK,
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
        self._engine: Engine | None = None
        # Two reads at most per change: an editor writing in place gets one retry after 0.1 s.
        self._watch: Watch[FileContents, Engine] = Watch(
            _PolicyFile([(self.path, FileKind.POLICY)]),
            load=self._compile,
            apply=self._apply,
            what="authorization policy",
            describe=lambda engine: f"policy {engine.name!r}",
            log=log,
            interval=self.interval,
            attempts=2,
            clock=clock,
            initial_error=lambda error: _as_policy_error(error, self.path),
        )
        if start:
            self._watch.start()

    # -- loading -----------------------------------------------------------------------------------
    def _compile(
        self, contents: FileContents, _now: dt.datetime, _current: Engine | None
    ) -> Engine:
        try:
            policy = parse_policy(
                contents.data, registry=self._registry, extensions=self._extensions, path=self.path
            )
        except PolicyError:
            raise
        except GrpcsecError as exc:  # e.g. a registry error raised by a logger factory
            raise PolicyError(str(exc), path=self.path) from exc
        return Engine(policy)

    def _apply(self, engine: Engine) -> None:
        self._engine = engine  # one attribute: each RPC reads the old or the new engine
        if self._on_update is None:
            return
        try:
            self._on_update(engine.policy)
        except Exception:  # a callback never breaks the watcher
            log.exception("authorization policy update callback failed for %s", self.path)

    def reload(self) -> ReloadResult:
        """Check the file once (what each tick does); safe to call from any thread."""
        failures = self._watch.reload_failures
        outcome = self._watch.poll()
        if outcome is ReloadOutcome.LOADED:
            return ReloadResult.UPDATED
        if self._watch.reload_failures > failures:
            return ReloadResult.FAILED
        return ReloadResult.UNCHANGED

    # -- state -------------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The engine of the last good policy."""
        engine = self._engine
        if engine is None:  # pragma: no cover (the constructor loads or raises)
            raise PolicyError("no policy has been loaded", path=self.path)
        return engine

    @property
    def policy(self) -> Policy:
        """The last good policy."""
        return self.engine.policy

    @property
    def last_error(self) -> PolicyError | None:
        """Why the file's current contents are not in force (``None`` when they are)."""
        failure = self._watch.last_failure
        return _as_policy_error(failure.cause, self.path) if failure is not None else None

    @property
    def running(self) -> bool:
        """Whether the polling thread is alive."""
        return self._watch.running

    @property
    def status(self) -> ProviderStatus:
        """Counters and the last error, as one snapshot."""
        core = self._watch.status()
        error = self.last_error
        return ProviderStatus(
            path=str(self.path),
            policy_name=self.engine.name,
            loads=core.reload_successes + 1,
            failures=core.reload_failures,
            checks=core.checks,
            last_error=str(error) if error is not None else None,
            running=core.watching,
            last_result=core.last_result,
            last_success_time=core.last_success_time,
            last_failure_time=core.last_failure_time,
            failures_by_reason=core.failures_by_reason,
        )

    def close(self) -> None:
        """Stop the polling thread and wait for it (idempotent)."""
        self._watch.stop(_JOIN_TIMEOUT)

    def __enter__(self) -> FileWatcherPolicyProvider:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FileWatcherPolicyProvider({str(self.path)!r}, interval={self.interval})"
