"""The one time source: every wall-clock read in grpcsec goes through a :class:`Clock`.

Why: expiry, token lifetimes, reload timestamps and retry back-off are decisions over time, and a
decision that reads the clock itself cannot be tested at one second before and after a limit.
Code that decides takes ``now`` as a parameter; code that runs (watchers, token sources, the
server) holds a :class:`Clock` given to it, :data:`SYSTEM_CLOCK` by default, so a test passes a
:class:`ManualClock` and moves time by hand. The architecture test refuses a wall-clock read
(``datetime.now``, ``time.time``) anywhere else in ``src/grpcsec``.

Monotonic time (timeouts, intervals) is not the wall clock and may be read directly; a clock
offers :meth:`Clock.monotonic` for code that wants both from one place. No grpc import.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "ManualClock", "SystemClock", "format_moment", "rfc3339"]


@runtime_checkable
class Clock(Protocol):
    """Where the current time comes from."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...

    def timestamp(self) -> float:
        """The current time as seconds since the Unix epoch (JWT ``exp``/``iat`` arithmetic)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for intervals, not dates)."""
        ...


class SystemClock:
    """The machine's clock (the only reader of the wall clock in grpcsec)."""

    __slots__ = ()

    def now(self) -> dt.datetime:
        """``datetime.now(UTC)``."""
        return dt.datetime.now(dt.timezone.utc)

    def timestamp(self) -> float:
        """``time.time()``."""
        return time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK: Clock = SystemClock()
"""The default clock of everything that runs."""


class ManualClock:
    """A clock that moves only when told to (tests, simulations); safe across threads.

    Both readings move together: :meth:`advance` adds the same seconds to the wall time and to
    the monotonic reading, so interval logic and date logic agree.
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        moment = start if start is not None else dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
        if moment.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._lock = threading.Lock()
        self._now = moment.astimezone(dt.timezone.utc)
        self._monotonic = 1000.0

    def now(self) -> dt.datetime:
        """The time set or advanced to."""
        with self._lock:
            return self._now

    def timestamp(self) -> float:
        """:meth:`now` as a Unix timestamp."""
        return self.now().timestamp()

    def monotonic(self) -> float:
        """A monotonic reading that moves with :meth:`advance`."""
        with self._lock:
            return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move both readings forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)
            self._monotonic += seconds

    def set(self, moment: dt.datetime) -> None:
        """Jump the wall time to ``moment`` (forward only; the monotonic reading follows)."""
        if moment.tzinfo is None:
            raise ValueError("set() needs a timezone-aware time")
        with self._lock:
            delta = (moment - self._now).total_seconds()
        self.advance(delta)

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()})"


def format_moment(when: dt.datetime) -> str:
    """``2030-01-01 00:00:00Z``: a time in messages and log lines (UTC, seconds)."""
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def rfc3339(when: dt.datetime | None) -> str | None:
    """A time in JSON documents (``2030-01-01T00:00:00Z``); ``None`` stays ``None``."""
    return when.isoformat().replace("+00:00", "Z") if when is not None else None
