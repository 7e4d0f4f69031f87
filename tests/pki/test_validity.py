"""Durations, windows and the one-minute backdate."""

from __future__ import annotations

import datetime as dt

import pytest

from grpcsec.errors import IssuanceError
from grpcsec.pki.validity import BACKDATE, Validity, format_duration, parse_duration

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90d", 90 * 86400),
        ("24h", 86400),
        ("15m", 900),
        ("30s", 30),
        ("1y", 365 * 86400),
        ("1d12h", 36 * 3600),
        ("2w", 14 * 86400),
        (" 5M ", 300),
    ],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "90", "d", "10x", "-5d", "0d", "1.5h", "5d 3h", "h5"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(IssuanceError, match="duration"):
        parse_duration(text)


def test_lasting_backdates_not_before_by_one_minute() -> None:
    window = Validity.lasting(dt.timedelta(hours=24), now=NOW)
    assert window.not_before == NOW - dt.timedelta(minutes=1) == NOW - BACKDATE
    assert window.not_after == NOW + dt.timedelta(hours=24)
    assert window.contains(NOW)
    assert not window.contains(NOW + dt.timedelta(hours=24, seconds=1))


def test_impossible_window_is_refused() -> None:
    with pytest.raises(IssuanceError, match="impossible validity"):
        Validity(not_before=NOW, not_after=NOW - dt.timedelta(seconds=1))
    with pytest.raises(IssuanceError, match="impossible validity"):
        Validity(not_before=NOW, not_after=NOW)


def test_naive_times_are_refused() -> None:
    with pytest.raises(IssuanceError, match="time zone"):
        Validity(not_before=dt.datetime(2026, 1, 1), not_after=NOW)  # noqa: DTZ001


def test_format_duration_is_short_and_signed() -> None:
    assert format_duration(dt.timedelta(days=89, hours=23, minutes=5)) == "89d 23h"
    assert format_duration(dt.timedelta(hours=5, minutes=3)) == "5h 3m"
    assert format_duration(dt.timedelta(seconds=-90)) == "-1m 30s"
