"""The watcher: polls a source, checks new material off the handshake path, swaps in only what
passed, and keeps the last good material (and says why) when something did not.

One :class:`Watcher` serves a rotating server or a reloading channel. It is grpcsec's one
watcher core, :class:`grpcsec.watch.Watch` (stat token, digest, retries, refusals reported
once, polling thread, :class:`grpcsec.clock.Clock` for every time), given the rotation checks
and their failure kinds, and speaking the rotation vocabulary: :class:`ReloadFailure` (a
:class:`~grpcsec.rotation.checks.FailureKind` and a :class:`~grpcsec.errors.RotationError`)
and :class:`RotationStatus` (the certificate in service).

Each poll (``interval`` seconds, default 1) reads nothing while the source's ``version()``
token is unchanged, except every ``full_check_every`` polls. New content that fails is read
and checked again, up to ``attempts`` reads, after ``retry_delay``, then twice and three times
that (0.6 s in all by default), because a reader can land between the two renames of a
certificate and its key (a torn update; a writer that fsyncs each file can take that long).
Only then is the material refused: the last good material stays in service, one log line says
why, and ``last_error``, ``last_failure`` and ``reload_failures`` show it. The same refused
bytes are not logged again, and are re-checked at every poll only when time can fix them (not
yet valid, a CA still in use).

:meth:`Watcher.reload` checks at once, whatever the token says, and never raises; it is safe in a
signal handler, including one that interrupts a reload in the same thread (it then asks the
watcher thread to reload and returns :attr:`ReloadOutcome.BUSY`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from cryptography import x509

from grpcsec.clock import SYSTEM_CLOCK, Clock, rfc3339
from grpcsec.errors import RotationError
from grpcsec.pki import CertificateInfo
from grpcsec.rotation.checks import FailureKind, classify
from grpcsec.rotation.sources import CertificateSource, RawMaterial
from grpcsec.text import get_logger
from grpcsec.watch import Refusal, ReloadOutcome, Watch
from grpcsec.watch.core import one_line

__all__ = ["ReloadFailure", "ReloadOutcome", "RotationStatus", "Watcher", "WatcherCounters"]

log = get_logger("grpcsec.rotation")

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadFailure:
    """One refused reload: why (``kind``), the one-line message, and when."""

    kind: FailureKind
    message: str
    at: dt.datetime
    error: RotationError = field(repr=False, compare=False)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "kind": self.kind.value,
            "message": self.message,
            "at": self.at.isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationStatus:
    """A snapshot of a rotating server or channel, for status endpoints and metrics.

    ``serial``/``not_before``/``not_after``/``fingerprint_sha256`` describe the certificate in
    service (``None`` for a client without one). ``handshakes`` counts fetcher calls (one per
    accepted TCP connection) on a server, ``None`` on a channel. ``last_result`` is the outcome
    of the latest check; ``failures_by_reason`` splits ``reload_failures`` by failure kind.
    """

    what: str
    source: str
    watching: bool
    interval: float
    generation: int
    serial: str | None
    subject: str | None
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    fingerprint_sha256: str | None
    reload_successes: int
    reload_failures: int
    last_success_time: dt.datetime | None
    last_failure_time: dt.datetime | None
    last_failure: ReloadFailure | None
    handshakes: int | None = None
    last_result: ReloadOutcome = ReloadOutcome.LOADED
    failures_by_reason: Mapping[str, int] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """Whether the latest reload attempt succeeded (or there was none after the first)."""
        return self.last_failure is None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (times RFC 3339 UTC)."""
        return {
            "what": self.what,
            "source": self.source,
            "watching": self.watching,
            "interval_seconds": self.interval,
            "generation": self.generation,
            "serial": self.serial,
            "subject": self.subject,
            "not_before": rfc3339(self.not_before),
            "not_after": rfc3339(self.not_after),
            "fingerprint_sha256": self.fingerprint_sha256,
            "reload_successes": self.reload_successes,
            "reload_failures": self.reload_failures,
            "last_success_time": rfc3339(self.last_success_time),
            "last_failure_time": rfc3339(self.last_failure_time),
            "last_failure": self.last_failure.to_json() if self.last_failure else None,
            "handshakes": self.handshakes,
            "healthy": self.healthy,
            "last_result": self.last_result.value,
            "failures_by_reason": dict(sorted(self.failures_by_reason.items())),
        }


_RECHECK = frozenset(kind.value for kind in FailureKind if kind.time_dependent)


class Watcher(Generic[T]):
    """Polls ``source`` and swaps checked material in through ``apply``.

    ``load(raw, now, current)`` checks raw material (``current`` is what is in service) and
    returns the checked value or raises a :class:`~grpcsec.errors.GrpcsecError`. ``apply`` puts
    a checked value in service; it runs under the watcher's lock, so swaps never interleave.
    ``describe`` names a value in log lines (a serial, never key material); ``what`` names the
    material (``server certificate``). ``clock`` gives the time checks run at.

    Construction performs the first load and raises :class:`RotationError` when it fails: a
    server must not start without valid material. The polling thread starts with :meth:`start`.
    """

    def __init__(
        self,
        source: CertificateSource,
        *,
        load: Callable[[RawMaterial, dt.datetime, T | None], T],
        apply: Callable[[T], None],
        describe: Callable[[T], str],
        what: str,
        interval: float = 1.0,
        attempts: int = 4,
        retry_delay: float = 0.1,
        full_check_every: int = 10,
        clock: Clock = SYSTEM_CLOCK,
        after_poll: Callable[[], None] | None = None,
    ) -> None:
        self.source = source
        self.what = what
        self._failure: tuple[Refusal, ReloadFailure] | None = None
        self._watch: Watch[RawMaterial, T] = Watch(
            source,
            load=load,
            apply=apply,
            describe=describe,
            what=what,
            log=log,
            classify=lambda error: classify(error).value,
            recheck=_RECHECK,
            interval=interval,
            attempts=attempts,
            retry_delay=retry_delay,
            full_check_every=full_check_every,
            clock=clock,
            after_poll=after_poll,
            initial_error=lambda error: RotationError(
                f"cannot load the initial {what}: {one_line(error)}"
            ),
        )
        self.interval = self._watch.interval

    # -- state ------------------------------------------------------------------------------
    @property
    def current(self) -> T:
        """The material in service."""
        return self._watch.current

    @property
    def reload_successes(self) -> int:
        """Successful swaps after the first load."""
        return self._watch.reload_successes

    @property
    def reload_failures(self) -> int:
        """Refused reloads (each distinct problem once; explicit reloads always count)."""
        return self._watch.reload_failures

    @property
    def last_success_time(self) -> dt.datetime | None:
        """When the material in service was loaded (aware UTC)."""
        return self._watch.last_success_time

    @property
    def last_failure_time(self) -> dt.datetime | None:
        """When a reload was last refused."""
        return self._watch.last_failure_time

    @property
    def last_failure(self) -> ReloadFailure | None:
        """The latest refusal, or ``None`` once material loads (or the source returns to the
        material in service)."""
        refusal = self._watch.last_failure
        if refusal is None:
            return None
        cached = self._failure
        if cached is not None and cached[0] is refusal:
            return cached[1]
        error = RotationError(refusal.message)
        error.path = getattr(refusal.cause, "path", None)  # the file, without a str() prefix
        error.__cause__ = refusal.cause
        failure = ReloadFailure(
            kind=FailureKind(refusal.reason), message=refusal.message, at=refusal.at, error=error
        )
        self._failure = (refusal, failure)
        return failure

    @property
    def last_error(self) -> RotationError | None:
        """The error of the latest refusal, ``None`` while the latest reload succeeded."""
        failure = self.last_failure
        return failure.error if failure is not None else None

    @property
    def running(self) -> bool:
        """Whether the polling thread is running."""
        return self._watch.running

    # -- reloading ----------------------------------------------------------------------------
    def reload(self) -> ReloadOutcome:
        """Read and check the source now, whatever its token says. Never raises."""
        return self._watch.reload()

    def poll(self) -> ReloadOutcome:
        """One poll, as the watcher thread does it (tests drive polling with this)."""
        return self._watch.poll()

    def request_reload(self) -> None:
        """Ask the polling thread (or the next :meth:`poll`) to reload, without waiting."""
        self._watch.request_reload()

    def wake(self) -> None:
        """Run a poll (and ``after_poll``) in the watcher thread now."""
        self._watch.wake()

    def status(
        self, leaf: x509.Certificate | None, *, generation: int, handshakes: int | None = None
    ) -> RotationStatus:
        """A :class:`RotationStatus` for the material in service, whose leaf is ``leaf``."""
        info = CertificateInfo.of(leaf) if leaf is not None else None
        core = self._watch.status()
        return RotationStatus(
            what=self.what,
            source=core.source,
            watching=core.watching,
            interval=core.interval,
            generation=generation,
            serial=info.serial if info else None,
            subject=info.subject if info else None,
            not_before=info.not_before if info else None,
            not_after=info.not_after if info else None,
            fingerprint_sha256=info.fingerprint_sha256 if info else None,
            reload_successes=core.reload_successes,
            reload_failures=core.reload_failures,
            last_success_time=core.last_success_time,
            last_failure_time=core.last_failure_time,
            last_failure=self.last_failure,
            handshakes=handshakes,
            last_result=core.last_result,
            failures_by_reason=core.failures_by_reason,
        )

    # -- the polling thread ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the polling thread (idempotent)."""
        self._watch.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the polling thread and wait up to ``timeout`` seconds for it to end."""
        self._watch.stop(timeout)


class WatcherCounters:
    """The reload counters every rotating object exposes, read from its ``_watcher``
    (shared by the server credentials and both reloading channels)."""

    _watcher: Watcher[Any]

    @property
    def reload_successes(self) -> int:
        """Swaps after the first load."""
        return self._watcher.reload_successes

    @property
    def reload_failures(self) -> int:
        """Refused reloads (each distinct problem counted once; explicit reloads always)."""
        return self._watcher.reload_failures

    @property
    def last_success_time(self) -> dt.datetime | None:
        """When the material in service was loaded."""
        return self._watcher.last_success_time

    @property
    def last_error(self) -> RotationError | None:
        """Why the latest reload was refused; ``None`` while the latest reload succeeded."""
        return self._watcher.last_error

    @property
    def last_failure(self) -> ReloadFailure | None:
        """The latest refusal with its :class:`~grpcsec.rotation.checks.FailureKind`."""
        return self._watcher.last_failure
