"""The values of :mod:`grpcsec.watch`: what a source is, what a check did, what went wrong,
and the status snapshot a ``/status`` endpoint serves. No grpc import."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from grpcsec.clock import rfc3339

__all__ = ["Digested", "Refusal", "ReloadOutcome", "Source", "WatchStatus"]


class Digested(Protocol):
    """What a source's ``read()`` returns: anything with a content digest."""

    @property
    def digest(self) -> str:
        """Equal for equal content (SHA-256 hex)."""
        ...


R_co = TypeVar("R_co", bound=Digested, covariant=True)


class Source(Protocol[R_co]):
    """Where a watch reads from: :class:`grpcsec.fileio.FileSet` for files; anything with these
    three members (memory, a push stream) otherwise. ``read()`` raises a
    :class:`~grpcsec.errors.GrpcsecError` naming what could not be read."""

    @property
    def description(self) -> str:
        """A short human name (the paths) for logs and status."""
        ...

    def version(self) -> Hashable:
        """A cheap token that changes whenever the content may have changed."""
        ...

    def read(self) -> R_co:
        """The content as it is now."""
        ...


class ReloadOutcome(enum.Enum):
    """What one check did. Values are stable (JSON, logs)."""

    LOADED = "loaded"
    """New content passed and is now in service."""
    UNCHANGED = "unchanged"
    """Nothing new (same token, or the same content as in service)."""
    REFUSED = "refused"
    """New content failed; the last good value stays (see :attr:`Watch.last_failure`)."""
    BUSY = "busy"
    """A check was already running in this thread; a reload was requested instead."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """One refused reload: its reason code, the one-line message, when, and the error."""

    reason: str
    message: str
    at: dt.datetime
    cause: BaseException = field(repr=False, compare=False)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (the cause is summarised by the message)."""
        return {"reason": self.reason, "message": self.message, "at": rfc3339(self.at)}


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchStatus:
    """A snapshot of one watch, for ``/status`` endpoints and metrics.

    ``generation`` is 1 after the first load and +1 per swap; ``last_result`` is the outcome of
    the latest check (``loaded`` right after the first load); ``reload_successes`` and
    ``reload_failures`` count reloads after the first load, the latter also by reason.
    """

    what: str
    source: str
    paths: tuple[str, ...]
    watching: bool
    interval: float
    generation: int
    checks: int
    last_result: ReloadOutcome
    reload_successes: int
    reload_failures: int
    failures_by_reason: Mapping[str, int]
    last_success_time: dt.datetime | None
    last_failure_time: dt.datetime | None
    last_failure: Refusal | None

    @property
    def healthy(self) -> bool:
        """Whether the content on disk is the content in service (no refusal pending)."""
        return self.last_failure is None

    @property
    def last_error(self) -> str | None:
        """The latest refusal's one-line message, ``None`` while healthy."""
        return self.last_failure.message if self.last_failure is not None else None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (times RFC 3339 UTC)."""
        return {
            "what": self.what,
            "source": self.source,
            "paths": list(self.paths),
            "watching": self.watching,
            "interval_seconds": self.interval,
            "generation": self.generation,
            "checks": self.checks,
            "last_result": self.last_result.value,
            "reload_successes": self.reload_successes,
            "reload_failures": self.reload_failures,
            "failures_by_reason": dict(sorted(self.failures_by_reason.items())),
            "last_success_time": rfc3339(self.last_success_time),
            "last_failure_time": rfc3339(self.last_failure_time),
            "last_error": self.last_error,
            "last_failure": self.last_failure.to_json() if self.last_failure else None,
            "healthy": self.healthy,
        }
