"""Validity periods: duration strings, defaults and the not-before backdate.

Defaults, and why:

* leaf certificates: **90 days**. Long enough that a team trying grpcsec is not surprised by an
  outage a day later, short enough to force a renewal habit; services that run the renewal agent
  should use 24h (``--valid 24h``), as step-ca, Linkerd and Istio do.
* intermediate CAs: **5 years**; root CAs: **10 years** (step's and mkcert's root lifetime).
* not-before is **backdated one minute** (step-ca's default) so that a peer whose clock is a little
  behind does not reject a certificate issued a moment ago.

Time is always a parameter (``now``); nothing here reads the clock except the default argument
factory :func:`utcnow`, which callers replace in tests.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from grpcsec.clock import SYSTEM_CLOCK
from grpcsec.errors import IssuanceError

__all__ = [
    "BACKDATE",
    "DEFAULT_INTERMEDIATE_VALIDITY",
    "DEFAULT_LEAF_VALIDITY",
    "DEFAULT_ROOT_VALIDITY",
    "Validity",
    "elapsed_fraction",
    "format_duration",
    "leaf_validity",
    "parse_duration",
    "parse_time",
    "utcnow",
]

BACKDATE = dt.timedelta(minutes=1)
DEFAULT_LEAF_VALIDITY = dt.timedelta(days=90)
DEFAULT_INTERMEDIATE_VALIDITY = dt.timedelta(days=5 * 365)
DEFAULT_ROOT_VALIDITY = dt.timedelta(days=10 * 365)

_UNITS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "y": 365 * 86400,
}
_DURATION = re.compile(r"(\d+)(ms|[smhdwy])")


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime, from :data:`grpcsec.clock.SYSTEM_CLOCK`."""
    return SYSTEM_CLOCK.now()


def elapsed_fraction(start: dt.datetime, end: dt.datetime, now: dt.datetime) -> float:
    """The share of ``start``..``end`` elapsed at ``now``: 0 before the start, 1 and more after
    the end; 1 for an empty or inverted window (nothing is left of it)."""
    total = (end - start).total_seconds()
    used = (now - start).total_seconds()
    return max(0.0, used / total) if total > 0 else 1.0


def parse_duration(text: str) -> dt.timedelta:
    """Parse ``90d``, ``24h``, ``15m``, ``1y``, ``30s``, ``250ms``, or a sum such as ``1d12h``.

    Raises :class:`IssuanceError` for anything else, including zero and negative durations.
    """
    cleaned = text.strip().lower()
    pos = 0
    seconds: float = 0
    for match in _DURATION.finditer(cleaned):
        if match.start() != pos:
            break
        seconds += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not cleaned or pos != len(cleaned):
        raise IssuanceError(
            f"invalid duration {text!r}: use a number and a unit ms, s, m, h, d, w or y "
            "(e.g. 90d, 24h)"
        )
    if seconds <= 0:
        raise IssuanceError(f"invalid duration {text!r}: it must be longer than zero")
    return dt.timedelta(seconds=seconds)


def parse_time(text: str) -> dt.datetime:
    """Parse an ISO 8601 date or date-time into an aware UTC datetime; a naive value means UTC.

    Accepts ``2030-01-31``, ``2030-01-31T12:00``, ``2030-01-31T12:00:00Z`` and explicit offsets
    (``+02:00``). Raises :class:`IssuanceError` for anything else, like :func:`parse_duration`.
    """
    cleaned = text.strip()
    if cleaned[-1:] in {"Z", "z"}:
        cleaned = cleaned[:-1] + "+00:00"  # Python 3.10's fromisoformat does not take "Z"
    try:
        moment = dt.datetime.fromisoformat(cleaned)
    except ValueError as exc:
        raise IssuanceError(
            f"invalid time {text!r}: use ISO 8601, e.g. 2030-01-31 or 2030-01-31T12:00:00Z"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def format_duration(delta: dt.timedelta) -> str:
    """A short human form of a duration: ``89d 23h``, ``5h 3m``, ``-2d 1h`` for the past."""
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes}m"
    if minutes:
        return f"{sign}{minutes}m {seconds}s"
    return f"{sign}{seconds}s"


def _aware(moment: dt.datetime, name: str) -> dt.datetime:
    if moment.tzinfo is None:
        raise IssuanceError(f"{name} must carry a time zone (use UTC)")
    return moment.astimezone(dt.timezone.utc)


@dataclass(frozen=True, slots=True, kw_only=True)
class Validity:
    """A certificate's validity window, always in aware UTC."""

    not_before: dt.datetime
    not_after: dt.datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "not_before", _aware(self.not_before, "not_before"))
        object.__setattr__(self, "not_after", _aware(self.not_after, "not_after"))
        if self.not_after <= self.not_before:
            raise IssuanceError(
                f"impossible validity: not-after {self.not_after:%Y-%m-%dT%H:%M:%SZ} is not after "
                f"not-before {self.not_before:%Y-%m-%dT%H:%M:%SZ}"
            )

    @classmethod
    def lasting(
        cls, duration: dt.timedelta, *, now: dt.datetime, backdate: dt.timedelta = BACKDATE
    ) -> Validity:
        """Valid from ``now - backdate`` until ``now + duration``."""
        if duration <= dt.timedelta(0):
            raise IssuanceError("impossible validity: the duration must be longer than zero")
        return cls(not_before=now - backdate, not_after=now + duration)

    @property
    def lifetime(self) -> dt.timedelta:
        """The whole span from not-before to not-after."""
        return self.not_after - self.not_before

    def contains(self, when: dt.datetime) -> bool:
        """Whether ``when`` lies inside the window (both ends included, as RFC 5280 says)."""
        return self.not_before <= when <= self.not_after


def leaf_validity(
    *,
    lifetime: dt.timedelta | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    now: dt.datetime,
) -> Validity | None:
    """The window of a leaf from what a request gives, or ``None`` when it gives nothing (the
    issuer's default applies). A start alone lasts :data:`DEFAULT_LEAF_VALIDITY` (or
    ``lifetime``) from that start; an end without a start starts at ``now - BACKDATE``. An end
    in the past is allowed (expired certificates for tests); a lifetime and an end together
    are refused, since they may disagree."""
    if lifetime is not None and not_after is not None:
        raise IssuanceError("a lifetime and an end cannot both be given; give one of them")
    if not_before is None and not_after is None:
        return None if lifetime is None else Validity.lasting(lifetime, now=now)
    start = not_before if not_before is not None else now - BACKDATE
    if not_after is not None:
        return Validity(not_before=start, not_after=not_after)
    span = lifetime if lifetime is not None else DEFAULT_LEAF_VALIDITY
    return Validity(not_before=start, not_after=start + span)
