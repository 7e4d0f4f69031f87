"""Thresholds: parsing, validation, and the verdict at one second before and after each point.

The default thresholds (30d,75% / 7d,90%) must suit both a 24-hour service certificate (which
always has less than 30 days left) and a 10-year root (which passes 75% of its life years
before expiry): with both conditions, the later moment wins.
"""

from __future__ import annotations

import datetime as dt

import pytest

from grpcsec.errors import ConfigurationError
from grpcsec.monitor import DEFAULT_CRITICAL, DEFAULT_WARNING, Status, Threshold, Thresholds, judge
from grpcsec.pki import CertificateAuthority, CertificateInfo
from tests.monitor.conftest import DAY, HOUR, NOW, issue, lasting

SECOND = dt.timedelta(seconds=1)


def info_of(
    ca: CertificateAuthority, *, not_before: dt.datetime, not_after: dt.datetime
) -> CertificateInfo:
    return CertificateInfo.of(
        issue(ca, "t", not_before=not_before, not_after=not_after).certificate
    )


# -- parsing ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "time_left", "used"),
    [
        ("30d", dt.timedelta(days=30), None),
        ("66%", None, 0.66),
        ("30d,75%", dt.timedelta(days=30), 0.75),
        (" 75% , 1d12h ", dt.timedelta(hours=36), 0.75),
        ("100%", None, 1.0),
        ("12.5%", None, 0.125),
    ],
)
def test_threshold_parses_durations_percentages_and_both(
    text: str, time_left: dt.timedelta | None, used: float | None
) -> None:
    threshold = Threshold.parse(text)
    assert threshold.time_left == time_left
    assert threshold.lifetime_used == used


def test_threshold_parts_may_come_as_repeated_options() -> None:
    assert Threshold.parse(["7d", "90%"]) == Threshold.parse("7d,90%") == DEFAULT_CRITICAL


def test_threshold_prints_back_to_its_compact_form() -> None:
    assert str(DEFAULT_WARNING) == "30d,75%"
    assert str(DEFAULT_CRITICAL) == "7d,90%"
    assert str(Threshold.parse("36h")) == "36h"
    assert str(Threshold.parse("90m,12.5%")) == "90m,12.5%"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty threshold"),
        ("soon", "invalid threshold 'soon'"),
        ("0d", "invalid threshold '0d'"),
        ("-5d", "invalid threshold"),
        ("0%", "(0%, 100%]"),
        ("150%", "(0%, 100%]"),
        ("abc%", "a percentage is a number"),
        ("30d,7d", "only one duration"),
        ("50%,60%", "only one percentage"),
    ],
)
def test_bad_thresholds_are_configuration_errors_naming_the_part(text: str, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=None) as caught:
        Threshold.parse(text)
    assert needle in str(caught.value)


def test_critical_may_not_come_before_warning() -> None:
    with pytest.raises(ConfigurationError, match="critical must leave less time"):
        Thresholds.parse("5d", None)  # default critical 7d is earlier than a 5d warning
    with pytest.raises(ConfigurationError, match="larger percentage"):
        Thresholds.parse("80%", "70%")
    # dimensions that are not shared are not compared
    assert Thresholds.parse("5d", "95%").critical == Threshold(lifetime_used=0.95)


def test_defaults_are_used_for_missing_or_empty_options() -> None:
    assert Thresholds.parse(None, []) == Thresholds()
    assert Thresholds().warning == DEFAULT_WARNING
    assert Thresholds().critical == DEFAULT_CRITICAL


# -- verdicts at the edges -------------------------------------------------------------------------
def test_duration_threshold_flips_exactly_at_the_point(root_ca: CertificateAuthority) -> None:
    info = info_of(root_ca, not_before=NOW - 300 * DAY, not_after=NOW + 65 * DAY)
    thresholds = Thresholds.parse("30d", "7d")
    warn_at = info.not_after - 30 * DAY
    crit_at = info.not_after - 7 * DAY
    assert judge(info, thresholds, warn_at - SECOND)[0] is Status.OK
    assert judge(info, thresholds, warn_at)[0] is Status.WARNING
    assert judge(info, thresholds, crit_at - SECOND)[0] is Status.WARNING
    assert judge(info, thresholds, crit_at)[0] is Status.CRITICAL
    assert judge(info, thresholds, info.not_after)[0] is Status.CRITICAL  # still valid
    assert judge(info, thresholds, info.not_after + SECOND)[0] is Status.EXPIRED


def test_percentage_threshold_flips_at_that_share_of_the_lifetime(
    root_ca: CertificateAuthority,
) -> None:
    start = NOW - HOUR
    info = info_of(root_ca, not_before=start, not_after=start + 100 * HOUR)
    thresholds = Thresholds.parse("66%", "90%")
    assert judge(info, thresholds, start + 66 * HOUR - SECOND)[0] is Status.OK
    assert judge(info, thresholds, start + 66 * HOUR)[0] is Status.WARNING
    assert judge(info, thresholds, start + 90 * HOUR - SECOND)[0] is Status.WARNING
    assert judge(info, thresholds, start + 90 * HOUR)[0] is Status.CRITICAL


def test_not_yet_valid_is_reported_before_not_before(root_ca: CertificateAuthority) -> None:
    info = info_of(root_ca, not_before=NOW + DAY, not_after=NOW + 90 * DAY)
    status, reason = judge(info, Thresholds(), NOW)
    assert status is Status.NOT_YET_VALID
    assert "not valid before" in reason
    assert "in 1d 0h" in reason
    assert judge(info, Thresholds(), NOW + DAY)[0] is Status.OK
    assert Status.NOT_YET_VALID.severity == Status.EXPIRED.severity == 2


def test_default_thresholds_suit_a_24h_service_certificate(root_ca: CertificateAuthority) -> None:
    """Less than 30 days left from its first second, yet OK until 75% of its day has passed."""
    start = NOW
    info = info_of(root_ca, not_before=start, not_after=start + 24 * HOUR)
    assert judge(info, Thresholds(), start + HOUR)[0] is Status.OK
    assert judge(info, Thresholds(), start + 18 * HOUR - SECOND)[0] is Status.OK
    assert judge(info, Thresholds(), start + 18 * HOUR)[0] is Status.WARNING
    assert judge(info, Thresholds(), start + dt.timedelta(hours=21.6))[0] is Status.CRITICAL


def test_default_thresholds_suit_a_ten_year_root() -> None:
    """Past 90% of its life for a year, yet only a warning 30 days out, critical 7 days out."""
    start = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    root = CertificateAuthority.create("old root", now=start, validity=None)  # 10 years by default
    info = CertificateInfo.of(root.certificate)
    end = info.not_after
    assert judge(info, Thresholds(), end - 365 * DAY)[0] is Status.OK
    assert judge(info, Thresholds(), end - 30 * DAY - SECOND)[0] is Status.OK
    assert judge(info, Thresholds(), end - 30 * DAY)[0] is Status.WARNING
    assert judge(info, Thresholds(), end - 7 * DAY)[0] is Status.CRITICAL


def test_threshold_moment_is_the_later_condition(root_ca: CertificateAuthority) -> None:
    short = CertificateInfo.of(lasting(root_ca, "short", left=12 * HOUR, lifetime=DAY).certificate)
    assert DEFAULT_WARNING.moment(short) == short.not_before + 18 * HOUR
    long = CertificateInfo.of(
        lasting(root_ca, "long", left=300 * DAY, lifetime=400 * DAY).certificate
    )
    assert DEFAULT_WARNING.moment(long) == long.not_after - 30 * DAY


def test_reason_says_time_left_share_used_and_the_threshold(root_ca: CertificateAuthority) -> None:
    info = CertificateInfo.of(lasting(root_ca, "r", left=5 * DAY, lifetime=90 * DAY).certificate)
    status, reason = judge(info, Thresholds(), NOW)
    assert status is Status.CRITICAL
    assert reason == "5d 0h left, 94% of lifetime used (threshold 7d,90%)"
    expired = CertificateInfo.of(lasting(root_ca, "e", left=-2 * HOUR, lifetime=DAY).certificate)
    assert judge(expired, Thresholds(), NOW) == (Status.EXPIRED, "expired 2h 0m ago")
