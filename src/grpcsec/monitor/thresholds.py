"""Expiry thresholds and the verdict on one certificate at a given time. No grpc, no I/O.

A :class:`Threshold` is a time left (``30d``), a fraction of the lifetime elapsed (``75%``), or
both (``30d,75%``). With both it is reached at the *later* of the two moments, that is when both
conditions hold: a 24-hour certificate always has less than 30 days left but only warns once
75% of its day has passed, and a 10-year root passes 75% of its life years before expiry but
only warns 30 days out. One rule fits short-lived service certificates and long-lived CAs.

Defaults (see docs/monitoring.md), and why:

* **warning: 30d,75%.** 30 days is a month of notice for certificates renewed by hand (the
  shipped alerts of x509-certificate-exporter warn at 28 days); 75% lies after the usual
  automatic renewal point at 2/3 of the lifetime (step, cert-manager, grpcsec's renewal) plus
  its jitter, so a warning means "renewal is overdue", not "renewal is about to happen".
* **critical: 7d,90%.** A week is the last working window for a manual renewal; 90% of a
  24-hour certificate leaves 2.4 hours, time for a renewer's retries but not for a weekend.

Certificates that are expired or not yet valid are critical whatever the thresholds: a peer
rejects them now.

The same thresholds judge a CRL (:class:`~grpcsec.monitor.crls.CrlWindow`): its this-update to
next-update span is its "lifetime", so ``75%`` of a 7-day CRL warns after 5 days and 6 hours,
and a CRL past its next update is expired (critical: a verifier that denies undetermined
revocation refuses every call).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from grpcsec.errors import ConfigurationError, IssuanceError
from grpcsec.pki import format_duration, parse_duration

__all__ = [
    "DEFAULT_CRITICAL",
    "DEFAULT_WARNING",
    "Status",
    "Threshold",
    "Thresholds",
    "Window",
    "judge",
]


class Window(Protocol):
    """What the thresholds judge: a validity window (a certificate's, or a CRL's this-update to
    next-update). :class:`~grpcsec.pki.CertificateInfo` is one."""

    @property
    def not_before(self) -> dt.datetime: ...

    @property
    def not_after(self) -> dt.datetime: ...

    def time_left(self, now: dt.datetime) -> dt.timedelta: ...

    def lifetime_used(self, now: dt.datetime) -> float: ...


class Status(enum.Enum):
    """The verdict on one certificate. Values are stable (``--json``, metrics)."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"

    @property
    def severity(self) -> int:
        """0 ok, 1 warning, 2 critical, expired or not yet valid (also the check's exit code)."""
        return _SEVERITY[self]


_SEVERITY = {
    Status.OK: 0,
    Status.WARNING: 1,
    Status.CRITICAL: 2,
    Status.EXPIRED: 2,
    Status.NOT_YET_VALID: 2,
}


def _format_fraction(fraction: float) -> str:
    percent = fraction * 100
    return f"{percent:.0f}%" if percent == round(percent) else f"{percent:g}%"


@dataclass(frozen=True, slots=True, kw_only=True)
class Threshold:
    """A point in a certificate's life: ``time_left`` before not-after, ``lifetime_used`` (a
    fraction in (0, 1]) of the not-before..not-after span, or both (the later of the two)."""

    time_left: dt.timedelta | None = None
    lifetime_used: float | None = None

    def __post_init__(self) -> None:
        if self.time_left is None and self.lifetime_used is None:
            raise ConfigurationError("a threshold needs a time left (30d) or a fraction (75%)")
        if self.time_left is not None and self.time_left <= dt.timedelta(0):
            raise ConfigurationError("a threshold's time left must be longer than zero")
        if self.lifetime_used is not None and not 0 < self.lifetime_used <= 1:
            raise ConfigurationError("a threshold's fraction must be more than 0% and at most 100%")

    @classmethod
    def parse(cls, text: str | Iterable[str]) -> Threshold:
        """Parse ``30d``, ``75%``, ``30d,75%`` (or the parts as separate strings).

        Durations use :func:`grpcsec.pki.parse_duration` units (s, m, h, d, w, y); a fraction is
        a percentage with ``%``. Raises :class:`ConfigurationError` naming the bad part.
        """
        parts = [text] if isinstance(text, str) else list(text)
        items = [item.strip() for part in parts for item in part.split(",") if item.strip()]
        if not items:
            raise ConfigurationError("empty threshold: use a duration (30d), a percentage (75%)")
        time_left: dt.timedelta | None = None
        used: float | None = None
        for item in items:
            if item.endswith("%"):
                if used is not None:
                    raise ConfigurationError(f"threshold {item!r}: only one percentage allowed")
                try:
                    percent = float(item[:-1])
                except ValueError:
                    raise ConfigurationError(
                        f"invalid threshold {item!r}: a percentage is a number and %, e.g. 75%"
                    ) from None
                if not 0 < percent <= 100:
                    raise ConfigurationError(
                        f"invalid threshold {item!r}: the percentage must be in (0%, 100%]"
                    )
                used = percent / 100
            else:
                if time_left is not None:
                    raise ConfigurationError(f"threshold {item!r}: only one duration allowed")
                try:
                    time_left = parse_duration(item)
                except IssuanceError as exc:
                    raise ConfigurationError(
                        f"invalid threshold {item!r}: use a duration (30d, 12h) or a "
                        "percentage of the lifetime (75%)"
                    ) from exc
        return cls(time_left=time_left, lifetime_used=used)

    def reached(self, info: Window, now: dt.datetime) -> bool:
        """Whether ``info`` is at or past this point at ``now`` (every given condition holds)."""
        if self.time_left is not None and info.time_left(now) > self.time_left:
            return False
        return self.lifetime_used is None or info.lifetime_used(now) >= self.lifetime_used

    def moment(self, info: Window) -> dt.datetime:
        """When ``info`` reaches this point (the later of the conditions)."""
        moments = []
        if self.time_left is not None:
            moments.append(info.not_after - self.time_left)
        if self.lifetime_used is not None:
            moments.append(
                info.not_before + (info.not_after - info.not_before) * self.lifetime_used
            )
        return max(moments)

    def __str__(self) -> str:
        parts = []
        if self.time_left is not None:
            parts.append(_format_compact(self.time_left))
        if self.lifetime_used is not None:
            parts.append(_format_fraction(self.lifetime_used))
        return ",".join(parts)

    def to_json(self) -> dict[str, object]:
        """``{"text", "time_left_seconds", "lifetime_used"}`` (absent conditions are null)."""
        return {
            "text": str(self),
            "time_left_seconds": (
                int(self.time_left.total_seconds()) if self.time_left is not None else None
            ),
            "lifetime_used": self.lifetime_used,
        }


def _format_compact(delta: dt.timedelta) -> str:
    """``30d``, ``36h``, ``90m``, ``45s``: the largest unit that divides evenly."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


DEFAULT_WARNING = Threshold(time_left=dt.timedelta(days=30), lifetime_used=0.75)
DEFAULT_CRITICAL = Threshold(time_left=dt.timedelta(days=7), lifetime_used=0.90)


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    """The warning and critical points. The critical point may not come before the warning
    point in any dimension they share (a shorter time left, a larger fraction)."""

    warning: Threshold = DEFAULT_WARNING
    critical: Threshold = DEFAULT_CRITICAL

    def __post_init__(self) -> None:
        w, c = self.warning, self.critical
        if w.time_left is not None and c.time_left is not None and c.time_left > w.time_left:
            raise ConfigurationError(
                f"the critical threshold ({c}) comes before the warning threshold ({w}): "
                "critical must leave less time than warning (pass both --warn and --crit)"
            )
        if (
            w.lifetime_used is not None
            and c.lifetime_used is not None
            and c.lifetime_used < w.lifetime_used
        ):
            raise ConfigurationError(
                f"the critical threshold ({c}) comes before the warning threshold ({w}): "
                "critical must be a larger percentage than warning (pass both --warn and --crit)"
            )

    @classmethod
    def parse(
        cls, warning: str | Iterable[str] | None = None, critical: str | Iterable[str] | None = None
    ) -> Thresholds:
        """Thresholds from option strings; ``None`` (or nothing) keeps a default."""
        w = _parse_or(warning, DEFAULT_WARNING)
        c = _parse_or(critical, DEFAULT_CRITICAL)
        return cls(warning=w, critical=c)

    def to_json(self) -> dict[str, object]:
        """``{"warning": ..., "critical": ...}`` as :meth:`Threshold.to_json`."""
        return {"warning": self.warning.to_json(), "critical": self.critical.to_json()}


def _parse_or(text: str | Iterable[str] | None, default: Threshold) -> Threshold:
    if text is None:
        return default
    if not isinstance(text, str):
        text = list(text)
        if not text:
            return default
    return Threshold.parse(text)


def judge(info: Window, thresholds: Thresholds, now: dt.datetime) -> tuple[Status, str]:
    """The status of ``info`` at ``now`` and a one-line reason for people."""
    if now < info.not_before:
        return Status.NOT_YET_VALID, (
            f"not valid before {info.not_before:%Y-%m-%d %H:%M:%SZ} "
            f"(in {format_duration(info.not_before - now)})"
        )
    left = info.time_left(now)
    if left < dt.timedelta(0):
        return Status.EXPIRED, f"expired {format_duration(-left)} ago"
    used = f"{info.lifetime_used(now) * 100:.0f}% of lifetime used"
    for status, threshold in (
        (Status.CRITICAL, thresholds.critical),
        (Status.WARNING, thresholds.warning),
    ):
        if threshold.reached(info, now):
            return status, f"{format_duration(left)} left, {used} (threshold {threshold})"
    return Status.OK, f"{format_duration(left)} left, {used}"
