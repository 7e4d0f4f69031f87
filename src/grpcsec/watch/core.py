"""The one watcher: everything grpcsec reloads (certificates and trust bundles, policy files,
JWKS and token files) is kept current by a :class:`Watch`. No grpc import.

A watch holds the last good value built from a source and replaces it only with a value that
passed the owner's checks. Each poll asks the source for its cheap ``version()`` token (for
files, :func:`grpcsec.fileio.file_version`: stat only) and reads nothing while the token is
unchanged; every ``full_check_every`` polls it reads anyway and compares the content digest, in
case a rewrite kept the same size and times. New content goes to ``load(raw, now, current)``:

* it passes: ``apply`` puts it in service (under the watch's lock) and it becomes
  :attr:`Watch.current`; the generation goes up by one;
* it fails: it is read and checked again, up to ``attempts`` reads, after ``retry_delay``, then
  twice and three times that, because a reader can land between the two renames of a
  certificate and its key (a torn update). Then it is refused: the last good value stays, one
  log line says why (a refused digest, or the same read error, is reported once, not at every
  poll), and the refusal is counted by reason and shown in :meth:`Watch.status`. A refusal
  whose reason is in ``recheck`` (time may fix it: not yet valid) is checked again every poll.

:meth:`Watch.reload` reads and checks now whatever the token says, never raises, and reports a
refusal again; it is safe in a signal handler, even one that interrupts a check in the same
thread (it then returns :attr:`ReloadOutcome.BUSY` and asks for a reload).
:meth:`Watch.request_reload` only sets a flag and an event (signal-safe): the polling thread,
or the next :meth:`Watch.poll`, reloads. :meth:`Watch.start` runs polls every ``interval``
seconds in a daemon thread until :meth:`Watch.stop`. Every timestamp comes from ``clock``.

Not decided here: what content is valid (``load``), and what a value means (the owner).
Error text in the status is the one-line error message (grpcsec errors never carry key
material or tokens); the content itself is never logged.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import ConfigurationError, GrpcsecError
from grpcsec.watch.status import Digested, Refusal, ReloadOutcome, Source, WatchStatus

__all__ = ["Watch", "one_line"]

T = TypeVar("T")
R = TypeVar("R", bound=Digested)


def _default_reason(error: BaseException, stage: str) -> str:
    if stage == "read":
        return "unreadable"
    return "invalid" if stage == "load" and isinstance(error, GrpcsecError) else "error"


def one_line(error: BaseException) -> str:
    """An error as one line: a grpcsec error's own text, otherwise its type and text."""
    return str(error) if isinstance(error, GrpcsecError) else f"{type(error).__name__}: {error}"


class Watch(Generic[R, T]):
    """Keeps ``load(source.read(), now, current)`` current; see the module docstring.

    ``apply(value)`` (optional) puts a checked value in service under the watch's lock, so
    swaps never interleave; if it raises, nothing is swapped. ``describe(value)`` names a
    value in log lines (a serial, a policy name; never secrets); ``what`` names the material.
    ``classify(error)`` gives a refusal's reason code (default: ``unreadable`` for a failed
    read, ``invalid`` for a grpcsec error from ``load``, ``error`` for anything else, which is
    logged with its traceback); reasons in ``recheck`` are checked again at every poll.
    ``after_poll`` runs in the polling thread after each poll (housekeeping).

    Construction performs the first load (with the same retries) and raises the error of the
    last attempt when it fails, or what ``initial_error`` makes of it (an owner's own error
    type): nothing should start without a valid value.
    """

    def __init__(
        self,
        source: Source[R],
        *,
        load: Callable[[R, dt.datetime, T | None], T],
        what: str,
        log: logging.Logger,
        describe: Callable[[T], str] = lambda _value: "the last good one",
        apply: Callable[[T], None] | None = None,
        classify: Callable[[BaseException], str] | None = None,
        recheck: frozenset[str] = frozenset(),
        interval: float = 1.0,
        attempts: int = 4,
        retry_delay: float = 0.1,
        full_check_every: int = 10,
        clock: Clock = SYSTEM_CLOCK,
        after_poll: Callable[[], None] | None = None,
        initial_error: Callable[[BaseException], BaseException] | None = None,
    ) -> None:
        if not interval > 0:
            raise ConfigurationError(f"the poll interval must be positive, not {interval}")
        if not 1 <= attempts <= 20:
            raise ConfigurationError(f"attempts must be between 1 and 20, not {attempts}")
        if retry_delay < 0 or full_check_every < 1:
            raise ConfigurationError("retry_delay must be >= 0 and full_check_every >= 1")
        self.source = source
        self.what = what
        self.interval = float(interval)
        self.clock = clock
        self._load, self._apply, self._describe = load, apply, describe
        self._classify, self._recheck, self._log = classify, recheck, log
        self._attempts, self._retry_delay = attempts, retry_delay
        self._full_check_every = full_check_every
        self._after_poll = after_poll
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._wake, self._stop = threading.Event(), threading.Event()
        self._force_pending = False
        self._thread: threading.Thread | None = None
        self._checks = 0
        self._token: Hashable = None
        self._current: T | None = None
        self._current_digest: str | None = None
        self._refused: tuple[str, Refusal] | None = None  # digest and refusal of bad content
        self._by_reason: dict[str, int] = {}
        self._last_result = ReloadOutcome.LOADED
        self.generation = 0
        #: Swaps after the first load.
        self.reload_successes = 0
        #: Refusals after the first load (each distinct problem once; reloads always).
        self.reload_failures = 0
        #: When the value in service was loaded (aware UTC, from ``clock``).
        self.last_success_time: dt.datetime | None = None
        #: When a reload was last refused.
        self.last_failure_time: dt.datetime | None = None
        #: The latest refusal; ``None`` once content loads or the source returns to the content
        #: in service.
        self.last_failure: Refusal | None = None
        with self._locked():
            self._check(force=True, initial=True)
        if self._current is None:
            failure = self.last_failure
            cause = failure.cause if failure is not None else ConfigurationError(f"no {what}")
            error = initial_error(cause) if initial_error is not None else cause
            if error is cause:
                raise cause
            raise error from cause

    # -- state ----------------------------------------------------------------------------------
    @property
    def current(self) -> T:
        """The value in service."""
        if self._current is None:  # pragma: no cover (the constructor loads or raises)
            raise ConfigurationError(f"no {self.what} has been loaded")
        return self._current

    @property
    def running(self) -> bool:
        """Whether the polling thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> WatchStatus:
        """A snapshot, read without waiting for a check in progress (a ``/status`` handler
        must not stall behind torn-update retries)."""
        return WatchStatus(
            what=self.what,
            source=self.source.description,
            paths=tuple(str(p) for p in getattr(self.source, "paths", ())),
            watching=self.running,
            interval=self.interval,
            generation=self.generation,
            checks=self._checks,
            last_result=self._last_result,
            reload_successes=self.reload_successes,
            reload_failures=self.reload_failures,
            failures_by_reason=dict(self._by_reason),
            last_success_time=self.last_success_time,
            last_failure_time=self.last_failure_time,
            last_failure=self.last_failure,
        )

    # -- checking -------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            self._owner = threading.get_ident()
            try:
                yield
            finally:
                self._owner = None

    def reload(self) -> ReloadOutcome:
        """Read and check now, whatever the token says; a refusal is reported again. Never
        raises; from a signal handler that interrupted a check, returns ``BUSY``."""
        if self._owner == threading.get_ident():
            self.request_reload()
            return ReloadOutcome.BUSY
        with self._locked():
            return self._guarded(force=True)

    def poll(self) -> ReloadOutcome:
        """One poll, as the thread does it (a forced one when a reload was requested)."""
        if self._owner == threading.get_ident():
            return ReloadOutcome.BUSY
        force, self._force_pending = self._force_pending, False
        with self._locked():
            return self._guarded(force=force)

    def request_reload(self) -> None:
        """Ask for a reload at the next poll and wake the thread; returns at once."""
        self._force_pending = True
        self._wake.set()

    def wake(self) -> None:
        """Run a poll (and ``after_poll``) in the polling thread now."""
        self._wake.set()

    def _guarded(self, *, force: bool) -> ReloadOutcome:
        try:
            outcome = self._check(force=force)
        except Exception:  # noqa: BLE001 (logged with its traceback; the watch outlives it)
            self._log.exception(
                "%s watcher: unexpected error; the value in service stays", self.what
            )
            outcome = ReloadOutcome.REFUSED
        self._last_result = outcome
        return outcome

    def _rechecks(self) -> bool:
        return self._refused is not None and self._refused[1].reason in self._recheck

    def _check(self, *, force: bool, initial: bool = False) -> ReloadOutcome:
        self._checks += 1
        try:
            token = self.source.version()
        except Exception:  # noqa: BLE001 (a broken source must not stop the watcher)
            token = object()
        full = force or self._rechecks() or self._checks % self._full_check_every == 0
        if token == self._token and not full:
            return ReloadOutcome.UNCHANGED
        error: BaseException | None = None
        stage, digest = "read", None
        for attempt in range(self._attempts):
            if attempt:
                self._stop.wait(self._retry_delay * attempt)
            try:
                raw = self.source.read()
            except Exception as exc:  # noqa: BLE001 (recorded and reported below)
                error, stage, digest = exc, "read", None
                continue
            digest = raw.digest
            if digest == self._current_digest:
                self._token, self.last_failure = token, None
                return ReloadOutcome.UNCHANGED
            refused = self._refused
            if not force and refused is not None and refused[0] == digest and not self._rechecks():
                self._token, self.last_failure = token, refused[1]
                return ReloadOutcome.REFUSED
            try:
                value = self._load(raw, self.clock.now(), self._current)
            except Exception as exc:  # noqa: BLE001 (recorded and reported below)
                error, stage = exc, "load"
                continue
            try:
                self._swap(value, digest, token, initial=initial)
            except Exception as exc:  # noqa: BLE001 (apply failed: nothing was swapped)
                error, stage = exc, "apply"
                break
            return ReloadOutcome.LOADED
        self._token = token
        if error is not None:
            self._refuse(error, stage, digest, explicit=force, initial=initial)
        return ReloadOutcome.REFUSED

    def _swap(self, value: T, digest: str, token: Hashable, *, initial: bool) -> None:
        if self._apply is not None:
            self._apply(value)
        self._current, self._current_digest, self._token = value, digest, token
        self._refused, self.last_failure = None, None
        self.generation += 1
        self.last_success_time = self.clock.now()
        if not initial:
            self.reload_successes += 1
            description = self._describe(value)
            self._log.info(
                "%s reloaded from %s: %s", self.what, self.source.description, description
            )

    def _refuse(
        self, error: BaseException, stage: str, digest: str | None, *, explicit: bool, initial: bool
    ) -> None:
        reason = self._classify(error) if self._classify else _default_reason(error, stage)
        cause = one_line(error)
        message = (
            cause
            if initial
            else f"{self.what} not reloaded ({reason}), keeping {self._describe(self.current)}: "
            f"{cause}"
        )
        # The same content refused for the same reason, or the same read error again, is one
        # problem, reported once (a time-dependent message may change from poll to poll).
        previous = self._refused[1] if digest is not None and self._refused else self.last_failure
        same_content = (
            digest is not None and self._refused is not None and self._refused[0] == digest
        )
        repeat = (
            not explicit
            and previous is not None
            and previous.reason == reason
            and (same_content if digest is not None else previous.message == message)
        )
        if repeat:
            self.last_failure = previous
            return
        now = self.clock.now()
        refusal = Refusal(reason=reason, message=message, at=now, cause=error)
        if digest is not None:
            self._refused = (digest, refusal)
        self.last_failure, self.last_failure_time = refusal, now
        if initial:
            return
        self.reload_failures += 1
        self._by_reason[reason] = self._by_reason.get(reason, 0) + 1
        if reason == "error":
            self._log.error("%s", message, exc_info=error)
        else:
            self._log.warning("%s", message)

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
        """Stop the polling thread and wait up to ``timeout`` seconds for it (idempotent)."""
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
            self.poll()
            if self._after_poll is not None:
                try:
                    self._after_poll()
                except Exception:  # noqa: BLE001 (logged with its traceback)
                    self._log.exception("%s watcher: housekeeping failed", self.what)

    def __repr__(self) -> str:
        return f"Watch({self.what!r}, {self.source.description!r}, generation={self.generation})"
