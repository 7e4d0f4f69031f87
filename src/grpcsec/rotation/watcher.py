"""The watcher: polls a source, checks new material off the handshake path, swaps in only what
passed, and keeps the last good material (and says why) when something did not.

One :class:`Watcher` serves a rotating server or a reloading channel. Each poll (``interval``
seconds, default 1) asks the source for its cheap ``version()`` token (stat for files) and
reads nothing when the token is unchanged; every ``full_check_every`` polls it reads and hashes
the content anyway, in case a rewrite kept the same size and timestamp. New content is checked
by the owner's ``load`` function; a failure is read and checked again, up to ``attempts``
reads in all, after ``retry_delay``, then twice and three times that (0.6 s in all by default),
because a reader can land between the two renames of a certificate and its key (a torn update;
a writer that fsyncs each file can take that long). Only then is the material refused: the last
good material stays in service, one log line says why, and ``last_error``, ``last_failure``
and ``reload_failures`` show it. The same refused bytes are not logged again, and are
re-checked at every poll only when time can fix them (not yet valid, a CA still in use).

:meth:`Watcher.reload` checks at once, whatever the token says, and never raises; it is safe in a
signal handler, including one that interrupts a reload in the same thread (it then asks the
watcher thread to reload and returns :attr:`ReloadOutcome.BUSY`).
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from cryptography import x509

from grpcsec.errors import ConfigurationError, GrpcsecError, RotationError
from grpcsec.pki import CertificateInfo, utcnow
from grpcsec.rotation.checks import FailureKind, classify
from grpcsec.rotation.sources import CertificateSource, RawMaterial
from grpcsec.text import get_logger

__all__ = ["ReloadFailure", "ReloadOutcome", "RotationStatus", "Watcher", "WatcherCounters"]

log = get_logger("grpcsec.rotation")

T = TypeVar("T")


class ReloadOutcome(enum.Enum):
    """What one reload did. Values are stable (JSON, logs)."""

    LOADED = "loaded"
    """New material passed every check and is now served."""
    UNCHANGED = "unchanged"
    """Nothing new to load (same token, or the same bytes as in service)."""
    REFUSED = "refused"
    """New material failed a check; the last good material stays (see ``last_error``)."""
    BUSY = "busy"
    """A reload was already running in this thread; the watcher thread will reload next."""


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


def _moment(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationStatus:
    """A snapshot of a rotating server or channel, for status endpoints and metrics.

    ``serial``/``not_before``/``not_after``/``fingerprint_sha256`` describe the certificate in
    service (``None`` for a client without one). ``handshakes`` counts fetcher calls (one per
    accepted TCP connection) on a server, ``None`` on a channel.
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
            "not_before": _moment(self.not_before),
            "not_after": _moment(self.not_after),
            "fingerprint_sha256": self.fingerprint_sha256,
            "reload_successes": self.reload_successes,
            "reload_failures": self.reload_failures,
            "last_success_time": _moment(self.last_success_time),
            "last_failure_time": _moment(self.last_failure_time),
            "last_failure": self.last_failure.to_json() if self.last_failure else None,
            "handshakes": self.handshakes,
            "healthy": self.healthy,
        }


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
        clock: Callable[[], dt.datetime] = utcnow,
        after_poll: Callable[[], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ConfigurationError(f"the poll interval must be positive, not {interval}")
        if not 1 <= attempts <= 20:
            raise ConfigurationError(f"attempts must be between 1 and 20, not {attempts}")
        if retry_delay < 0 or full_check_every < 1:
            raise ConfigurationError("retry_delay must be >= 0 and full_check_every >= 1")
        self.source = source
        self.what = what
        self.interval = interval
        self._load = load
        self._apply = apply
        self._describe = describe
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._full_check_every = full_check_every
        self._clock = clock
        self._after_poll = after_poll
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._force_pending = False
        self._thread: threading.Thread | None = None
        self._polls = 0
        self._token: Hashable = None
        self._refused_digest: str | None = None
        self._current: T | None = None
        self._current_digest: str | None = None
        #: Successful swaps after the first load.
        self.reload_successes = 0
        #: Refused reloads (each distinct problem once; explicit reloads always count).
        self.reload_failures = 0
        #: When the material in service was loaded (aware UTC).
        self.last_success_time: dt.datetime | None = None
        #: When a reload was last refused.
        self.last_failure_time: dt.datetime | None = None
        #: The latest refusal, or ``None`` once material loads (or the source returns to the
        #: material in service).
        self.last_failure: ReloadFailure | None = None
        with self._locked():
            outcome = self._check(force=True, initial=True)
        if outcome is not ReloadOutcome.LOADED or self._current is None:
            failure = self.last_failure
            raise RotationError(
                f"cannot load the initial {what}: {failure.message if failure else 'no material'}",
            ) from (failure.error if failure else None)

    # -- state ------------------------------------------------------------------------------
    @property
    def current(self) -> T:
        """The material in service."""
        if self._current is None:  # pragma: no cover (the constructor loads or raises)
            raise RotationError(f"no {self.what} has been loaded")
        return self._current

    @property
    def last_error(self) -> RotationError | None:
        """The error of the latest refusal, ``None`` while the latest reload succeeded."""
        return self.last_failure.error if self.last_failure else None

    @property
    def running(self) -> bool:
        """Whether the polling thread is running."""
        return self._thread is not None and self._thread.is_alive()

    # -- reloading ----------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            self._owner = threading.get_ident()
            try:
                yield
            finally:
                self._owner = None

    def reload(self) -> ReloadOutcome:
        """Read and check the source now, whatever its token says. Never raises."""
        if self._owner == threading.get_ident():
            self.request_reload()
            return ReloadOutcome.BUSY
        with self._locked():
            return self._guarded_check(force=True)

    def poll(self) -> ReloadOutcome:
        """One poll, as the watcher thread does it (tests drive polling with this)."""
        with self._locked():
            return self._guarded_check(force=False)

    def _guarded_check(self, *, force: bool) -> ReloadOutcome:
        try:
            return self._check(force=force)
        except Exception:
            log.exception("%s watcher: unexpected error; the material in service stays", self.what)
            return ReloadOutcome.REFUSED

    def request_reload(self) -> None:
        """Ask the polling thread to reload at once, without waiting (needs :meth:`start`)."""
        self._force_pending = True
        self._wake.set()

    def wake(self) -> None:
        """Run a poll (and ``after_poll``) in the watcher thread now."""
        self._wake.set()

    def _check(self, *, force: bool, initial: bool = False) -> ReloadOutcome:
        self._polls += 1
        try:
            token = self.source.version()
        except Exception:  # noqa: BLE001 (a broken source must not stop the watcher)
            token = object()
        retry_time_dependent = (
            self.last_failure is not None and self.last_failure.kind.time_dependent
        )
        full = force or retry_time_dependent or self._polls % self._full_check_every == 0
        if token == self._token and not full:
            return ReloadOutcome.UNCHANGED
        error: BaseException | None = None
        digest: str | None = None
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(self._retry_delay * attempt)
            try:
                raw = self.source.read()
            except Exception as exc:  # noqa: BLE001 (recorded and reported below)
                error, digest = exc, None
                continue
            digest = raw.digest
            if digest == self._current_digest:
                self._token = token
                self.last_failure = None
                return ReloadOutcome.UNCHANGED
            if (
                not force
                and digest == self._refused_digest
                and self.last_failure is not None
                and not self.last_failure.kind.time_dependent
            ):
                self._token = token
                return ReloadOutcome.REFUSED
            try:
                value = self._load(raw, self._clock(), self._current)
            except Exception as exc:  # noqa: BLE001 (recorded and reported below)
                error = exc
                continue
            try:
                self._swap(value, digest, token, initial=initial)
            except Exception as exc:  # noqa: BLE001 (apply failed: nothing was swapped)
                error = exc
                break
            return ReloadOutcome.LOADED
        self._token = token
        self._refuse(error, digest, explicit=force, initial=initial)
        return ReloadOutcome.REFUSED

    def _swap(self, value: T, digest: str, token: Hashable, *, initial: bool) -> None:
        self._apply(value)
        self._current = value
        self._current_digest = digest
        self._token = token
        self._refused_digest = None
        self.last_failure = None
        self.last_success_time = self._clock()
        if not initial:
            self.reload_successes += 1
            log.info(
                "%s reloaded from %s: now serving %s",
                self.what,
                self.source.description,
                self._describe(value),
            )

    def _refuse(
        self, error: BaseException | None, digest: str | None, *, explicit: bool, initial: bool
    ) -> None:
        kind = classify(error) if error is not None else FailureKind.ERROR
        cause = (
            str(error) if isinstance(error, GrpcsecError) else f"{type(error).__name__}: {error}"
        )
        if initial:
            message = cause
        else:
            message = (
                f"{self.what} not reloaded ({kind.value}), still serving "
                f"{self._describe(self.current)}: {cause}"
            )
        # The same bytes refused for the same kind of reason are one problem, logged once (a
        # time-dependent message, "seen 12s ago", may change from poll to poll).
        repeat = (
            not explicit
            and self.last_failure is not None
            and self.last_failure.kind is kind
            and self._refused_digest == digest
            and (digest is not None or self.last_failure.message == message)
        )
        self._refused_digest = digest
        if repeat:
            return
        rotation_error = RotationError(message)
        rotation_error.path = getattr(error, "path", None)  # the file, without a str() prefix
        rotation_error.__cause__ = error
        now = self._clock()
        self.last_failure = ReloadFailure(kind=kind, message=message, at=now, error=rotation_error)
        self.last_failure_time = now
        if initial:
            return
        self.reload_failures += 1
        if kind is FailureKind.ERROR:
            log.error("%s", message, exc_info=error)
        else:
            log.warning("%s", message)

    def status(
        self, leaf: x509.Certificate | None, *, generation: int, handshakes: int | None = None
    ) -> RotationStatus:
        """A :class:`RotationStatus` for the material in service, whose leaf is ``leaf``."""
        info = CertificateInfo.of(leaf) if leaf is not None else None
        return RotationStatus(
            what=self.what,
            source=self.source.description,
            watching=self.running,
            interval=self.interval,
            generation=generation,
            serial=info.serial if info else None,
            subject=info.subject if info else None,
            not_before=info.not_before if info else None,
            not_after=info.not_after if info else None,
            fingerprint_sha256=info.fingerprint_sha256 if info else None,
            reload_successes=self.reload_successes,
            reload_failures=self.reload_failures,
            last_success_time=self.last_success_time,
            last_failure_time=self.last_failure_time,
            last_failure=self.last_failure,
            handshakes=handshakes,
        )

    # -- the polling thread ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the polling thread (idempotent)."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"grpcsec-watch {self.what}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the polling thread and wait up to ``timeout`` seconds for it to end."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            if self._stop.is_set():
                return
            self._wake.clear()
            force, self._force_pending = self._force_pending, False
            with self._locked():
                self._guarded_check(force=force)
            if self._after_poll is not None:
                try:
                    self._after_poll()
                except Exception:
                    log.exception("%s watcher: housekeeping failed", self.what)


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
