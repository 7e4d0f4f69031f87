"""Durations, windows and the one-minute backdate."""

from __future__ import annotations

import datetime as dt

import pytest

from grpcsec.errors import IssuanceError
from grpcsec.pki.validity import (
    BACKDATE,
    DEFAULT_LEAF_VALIDITY,
    Validity,
    format_duration,
    leaf_validity,
    parse_duration,
)

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


def test_leaf_validity_is_none_when_nothing_is_given() -> None:
    assert leaf_validity(now=NOW) is None


def test_leaf_validity_from_a_lifetime_starts_a_backdate_before_now() -> None:
    window = leaf_validity(lifetime=dt.timedelta(hours=1), now=NOW)
    assert window == Validity(not_before=NOW - BACKDATE, not_after=NOW + dt.timedelta(hours=1))


def test_leaf_validity_from_a_start_lasts_the_default_or_the_lifetime() -> None:
    start = NOW + dt.timedelta(days=1)
    assert leaf_validity(not_before=start, now=NOW) == Validity(
        not_before=start, not_after=start + DEFAULT_LEAF_VALIDITY
    )
    hour = leaf_validity(not_before=start, lifetime=dt.timedelta(hours=1), now=NOW)
    assert hour == Validity(not_before=start, not_after=start + dt.timedelta(hours=1))


def test_leaf_validity_with_an_end_in_the_past_makes_an_expired_window() -> None:
    end = NOW - dt.timedelta(days=1)
    start = NOW - dt.timedelta(days=2)
    window = leaf_validity(not_before=start, not_after=end, now=NOW)
    assert window is not None
    assert not window.contains(NOW)
    with pytest.raises(IssuanceError, match="impossible validity"):  # an end without a start
        leaf_validity(not_after=end, now=NOW)  # starts at now - BACKDATE, after the end


def test_leaf_validity_refuses_a_lifetime_with_an_end() -> None:
    with pytest.raises(IssuanceError, match="cannot both be given"):
        leaf_validity(lifetime=dt.timedelta(hours=1), not_after=NOW + dt.timedelta(days=1), now=NOW)
