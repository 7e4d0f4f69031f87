"""check_targets over files, bundles and directories: each threshold and exit code, with the
time passed in; bad input reported per target, never raised.

Exit codes are the highest that applies: 0 ok, 1 warning, 2 critical/expired/not yet valid,
3 unreadable, 4 unreachable.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from grpcsec.errors import ConfigurationError
from grpcsec.monitor import (
    CheckExit,
    CheckReport,
    EndpointSource,
    ErrorKind,
    PathSource,
    Status,
    Thresholds,
    check_targets,
    parse_source,
    read_source,
)
from grpcsec.pki import CertificateAuthority, private_key_pem
from grpcsec.target import Target
from tests.monitor.conftest import (
    DAY,
    HOUR,
    NOW,
    closed_port,
    issue,
    lasting,
    self_signed_root,
    write,
)

DEFAULT = Thresholds()


def statuses(report: CheckReport) -> dict[str, str]:
    return {c.info.common_name or "": c.status.value for c in report.certificates}


# -- targets are classified once -------------------------------------------------------------------
def test_existing_paths_are_files_and_host_port_is_an_endpoint(tmp_path: Path) -> None:
    cert = write(tmp_path / "a:443", b"x")  # a file whose name looks like an endpoint
    assert parse_source(str(cert)) == PathSource(cert)
    assert parse_source(str(tmp_path)) == PathSource(tmp_path)
    assert parse_source("svc.internal:8443") == EndpointSource(Target("svc.internal", 8443))
    assert parse_source("[::1]:443") == EndpointSource(Target("::1", 443))
    assert parse_source("missing.pem") == PathSource(Path("missing.pem"))
    assert parse_source(tmp_path / "x.pem") == PathSource(tmp_path / "x.pem")
    with pytest.raises(ConfigurationError, match="empty target"):
        parse_source("  ")


# -- one file per status ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("window", "status", "code"),
    [
        ((60 * DAY, 90 * DAY), Status.OK, CheckExit.OK),
        ((20 * DAY, 90 * DAY), Status.WARNING, CheckExit.WARNING),
        ((5 * DAY, 90 * DAY), Status.CRITICAL, CheckExit.CRITICAL),
        ((-1 * HOUR, 90 * DAY), Status.EXPIRED, CheckExit.CRITICAL),
        ((20 * HOUR, 24 * HOUR), Status.OK, CheckExit.OK),
        ((5 * HOUR, 24 * HOUR), Status.WARNING, CheckExit.WARNING),
        ((2 * HOUR, 24 * HOUR), Status.CRITICAL, CheckExit.CRITICAL),
    ],
    ids=["ok", "warning", "critical", "expired", "24h-ok", "24h-warning", "24h-critical"],
)
def test_a_certificate_file_gets_the_status_and_exit_code_of_its_threshold(
    tmp_path: Path,
    issuing_ca: CertificateAuthority,
    window: tuple[dt.timedelta, dt.timedelta],
    status: Status,
    code: CheckExit,
) -> None:
    """``window`` is (time left at NOW, lifetime)."""
    leaf = lasting(issuing_ca, "svc", left=window[0], lifetime=window[1])
    path = write(tmp_path / "svc.crt", leaf.chain_pem())
    report = check_targets([str(path)], DEFAULT, NOW)
    leaf_row = next(c for c in report.certificates if c.role == "leaf")
    assert leaf_row.status is status
    assert report.exit_code is code
    assert [c.role for c in report.certificates] == ["leaf", "intermediate"]  # by time left


def test_not_yet_valid_is_critical(tmp_path: Path, issuing_ca: CertificateAuthority) -> None:
    leaf = issue(issuing_ca, "early", not_before=NOW + HOUR, not_after=NOW + 90 * DAY)
    report = check_targets([write(tmp_path / "early.pem", [leaf.certificate])], DEFAULT, NOW)
    assert statuses(report) == {"early": "not_yet_valid"}
    assert report.exit_code is CheckExit.CRITICAL
    assert report.status == "critical"


def test_custom_thresholds_change_the_verdict(
    tmp_path: Path, issuing_ca: CertificateAuthority
) -> None:
    leaf = lasting(issuing_ca, "svc", left=20 * DAY, lifetime=365 * DAY)
    path = write(tmp_path / "svc.pem", [leaf.certificate])
    assert check_targets([path], DEFAULT, NOW).exit_code is CheckExit.WARNING
    assert check_targets([path], Thresholds.parse("14d", "7d"), NOW).exit_code is CheckExit.OK
    assert (
        check_targets([path], Thresholds.parse("60d", "21d"), NOW).exit_code is CheckExit.CRITICAL
    )
    assert check_targets([path], Thresholds.parse("90%", "99%"), NOW).exit_code is CheckExit.WARNING


def test_rows_are_sorted_by_time_left_across_targets(
    tmp_path: Path, issuing_ca: CertificateAuthority
) -> None:
    for name, days in (("late", 80), ("soon", 3), ("middle", 40)):
        leaf = lasting(issuing_ca, name, left=days * DAY, lifetime=100 * DAY)
        write(tmp_path / f"{name}.pem", [leaf.certificate])
    report = check_targets(
        [tmp_path / "late.pem", tmp_path / "soon.pem", tmp_path / "middle.pem"], DEFAULT, NOW
    )
    assert [c.info.common_name for c in report.certificates] == ["soon", "middle", "late"]
    assert report.exit_code is CheckExit.CRITICAL


def test_a_combined_certificate_and_key_file_is_read_for_its_certificate(
    tmp_path: Path, issuing_ca: CertificateAuthority
) -> None:
    leaf = lasting(issuing_ca, "combined", left=60 * DAY, lifetime=90 * DAY)
    assert leaf.key is not None
    path = write(tmp_path / "combined.pem", private_key_pem(leaf.key) + leaf.chain_pem())
    report = check_targets([path], DEFAULT, NOW)
    assert sorted(statuses(report)) == ["Monitor Issuing", "combined"]
    assert report.exit_code is CheckExit.OK


def test_a_der_certificate_is_read(tmp_path: Path, issuing_ca: CertificateAuthority) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: PLC0415

    leaf = lasting(issuing_ca, "der", left=5 * DAY, lifetime=90 * DAY)
    path = write(tmp_path / "leaf.der", leaf.certificate.public_bytes(Encoding.DER))
    assert statuses(check_targets([path], DEFAULT, NOW)) == {"der": "critical"}


# -- bundles ---------------------------------------------------------------------------------------
def test_a_served_chain_bundle_reports_every_certificate(
    tmp_path: Path, root_ca: CertificateAuthority, issuing_ca: CertificateAuthority
) -> None:
    leaf = lasting(issuing_ca, "svc", left=60 * DAY, lifetime=90 * DAY)
    path = write(
        tmp_path / "fullchain.pem", [leaf.certificate, issuing_ca.certificate, root_ca.certificate]
    )
    report = check_targets([path], DEFAULT, NOW)
    assert [(c.role, c.position) for c in report.certificates] == [
        ("leaf", 0),
        ("intermediate", 1),
        ("root", 2),
    ]
    assert report.exit_code is CheckExit.OK
    assert report.findings == ()


def test_a_trust_bundle_with_one_lasting_root_is_fine(tmp_path: Path) -> None:
    """Old root expiring next to its replacement: a CA rotation in progress, not an outage."""
    old = self_signed_root("Old Root", not_before=NOW - 3650 * DAY, not_after=NOW + 3 * DAY)
    new = self_signed_root("New Root", not_before=NOW - DAY, not_after=NOW + 3650 * DAY)
    path = write(tmp_path / "trust.pem", old + new)
    report = check_targets([path], DEFAULT, NOW)
    old_row = next(c for c in report.certificates if c.info.common_name == "Old Root")
    assert old_row.status is Status.CRITICAL  # shown as it is...
    assert old_row.effective is Status.OK  # ...but the bundle still trusts through New Root
    assert "the bundle has a root that lasts longer" in old_row.reason
    assert report.findings == ()
    assert report.exit_code is CheckExit.OK


def test_a_trust_bundle_whose_every_root_is_in_the_critical_window_is_critical(
    tmp_path: Path,
) -> None:
    first = self_signed_root("Root A", not_before=NOW - 3650 * DAY, not_after=NOW + 3 * DAY)
    second = self_signed_root("Root B", not_before=NOW - 3650 * DAY, not_after=NOW + 5 * DAY)
    path = write(tmp_path / "trust.pem", first + second)
    report = check_targets([path], DEFAULT, NOW)
    assert report.exit_code is CheckExit.CRITICAL
    assert len(report.findings) == 1
    finding = report.findings[0]
    assert finding.status is Status.CRITICAL
    assert finding.message.startswith("trust bundle: every root expires within the critical window")
    assert "2030-06-06" in finding.message  # the last root's expiry


def test_a_trust_bundle_of_expired_roots_trusts_nothing(tmp_path: Path) -> None:
    gone = self_signed_root("Gone", not_before=NOW - 3650 * DAY, not_after=NOW - DAY)
    report = check_targets([write(tmp_path / "ca.pem", gone)], DEFAULT, NOW)
    assert (
        report.findings[0].message == "trust bundle: the only root has expired; it trusts nothing"
    )
    assert report.exit_code is CheckExit.CRITICAL


# -- directories -----------------------------------------------------------------------------------
def test_a_directory_is_searched_recursively_for_certificate_files(
    tmp_path: Path, issuing_ca: CertificateAuthority
) -> None:
    root = tmp_path / "certs"
    ok = lasting(issuing_ca, "ok", left=60 * DAY, lifetime=90 * DAY)
    warn = lasting(issuing_ca, "warn", left=20 * DAY, lifetime=90 * DAY)
    write(root / "a" / "ok.crt", [ok.certificate])
    write(root / "b" / "c" / "warn.cer", [warn.certificate])
    assert ok.key is not None
    write(root / "a" / "ok.key", private_key_pem(ok.key))  # not a certificate file name
    write(root / "a" / "key.pem", private_key_pem(ok.key))  # a key in a .pem: skipped
    write(root / "notes.txt", b"not a certificate")
    report = check_targets([root], DEFAULT, NOW)
    assert statuses(report) == {"ok": "ok", "warn": "warning"}
    assert {c.source for c in report.certificates} == {
        str(root / "a" / "ok.crt"),
        str(root / "b" / "c" / "warn.cer"),
    }
    assert {c.target for c in report.certificates} == {str(root)}
    assert report.errors == ()
    assert report.exit_code is CheckExit.WARNING


def test_garbage_in_a_directory_is_reported_per_file_and_the_rest_still_checked(
    tmp_path: Path, issuing_ca: CertificateAuthority
) -> None:
    root = tmp_path / "certs"
    crit = lasting(issuing_ca, "crit", left=2 * DAY, lifetime=90 * DAY)
    write(root / "crit.pem", [crit.certificate])
    write(root / "garbage.pem", os.urandom(64) + b"\x00")
    write(root / "truncated.crt", crit.chain_pem()[:-40])
    (root / "dangling.pem").symlink_to(root / "nowhere.pem")
    report = check_targets([root], DEFAULT, NOW)
    assert statuses(report) == {"crit": "critical"}
    errors = {Path(e.origin).name: e for e in report.errors}
    assert set(errors) == {"garbage.pem", "truncated.crt", "dangling.pem"}
    assert all(e.kind is ErrorKind.READ and e.target == str(root) for e in errors.values())
    assert "truncated PEM" in errors["truncated.crt"].message
    assert "no such file" in errors["dangling.pem"].message
    assert report.exit_code is CheckExit.UNREADABLE  # 3 outranks 2: the check is incomplete


def test_kubernetes_secret_layout_is_read_once(
    tmp_path: Path, issuing_ca: CertificateAuthority
) -> None:
    """Visible names are symlinks into a hidden ``..data`` directory: each certificate once."""
    root = tmp_path / "secret"
    leaf = lasting(issuing_ca, "k8s", left=60 * DAY, lifetime=90 * DAY)
    write(root / "..2030_06_01" / "tls.crt", [leaf.certificate])
    (root / "..data").symlink_to("..2030_06_01")
    (root / "tls.crt").symlink_to("..data/tls.crt")
    report = check_targets([root], DEFAULT, NOW)
    assert [(c.info.common_name, c.source) for c in report.certificates] == [
        ("k8s", str(root / "tls.crt"))
    ]


def test_an_empty_directory_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    report = check_targets([tmp_path / "empty"], DEFAULT, NOW)
    assert report.exit_code is CheckExit.UNREADABLE
    assert "no certificate files found" in report.errors[0].message


# -- bad input per target, never a crash -----------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (b"hello", "no PEM certificate found"),
        (
            b"-----BEGIN " + b"PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "no certificate or CRL in the file",
        ),
        (b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "corrupt"),
    ],
    ids=["missing", "empty", "text", "key-only", "bad-base64"],
)
def test_unreadable_files_are_errors_with_exit_3(
    tmp_path: Path, content: bytes | None, needle: str
) -> None:
    path = tmp_path / "x.pem"
    if content is not None:
        path.write_bytes(content)
    report = read_source(parse_source(str(path)))
    assert report.sets == ()
    assert len(report.errors) == 1
    assert needle in report.errors[0].message
    assert check_targets([str(path)], DEFAULT, NOW).exit_code is CheckExit.UNREADABLE


def test_unreachable_outranks_unreadable_and_critical(
    tmp_path: Path, issuing_ca: CertificateAuthority
) -> None:
    crit = lasting(issuing_ca, "crit", left=DAY, lifetime=90 * DAY)
    path = write(tmp_path / "crit.pem", [crit.certificate])
    report = check_targets([path, tmp_path / "missing.pem", str(closed_port())], DEFAULT, NOW)
    assert report.exit_code is CheckExit.UNREACHABLE
    kinds = sorted(e.kind.value for e in report.errors)
    assert kinds == ["endpoint", "read"]
    assert statuses(report) == {"crit": "critical"}  # the readable target is still reported


def test_json_report_has_every_certificate_finding_and_error(
    tmp_path: Path, issuing_ca: CertificateAuthority
) -> None:
    leaf = lasting(issuing_ca, "svc", left=20 * DAY, lifetime=90 * DAY)
    path = write(tmp_path / "svc.pem", [leaf.certificate])
    report = check_targets([path, tmp_path / "nope.pem"], DEFAULT, NOW)
    data = json.loads(json.dumps(report.to_json()))
    assert data["now"] == "2030-06-01T12:00:00Z"
    assert data["status"] == "unreadable"
    assert data["exit_code"] == 3
    assert data["thresholds"]["warning"] == {
        "text": "30d,75%",
        "time_left_seconds": 30 * 86400,
        "lifetime_used": 0.75,
    }
    assert data["counts"]["warning"] == 1
    (cert,) = data["certificates"]
    assert cert["status"] == cert["effective_status"] == "warning"
    assert cert["common_name"] == "svc"
    assert cert["issuer_common_name"] == "Monitor Issuing"
    assert cert["seconds_left"] == 20 * 86400
    assert cert["not_after"] == "2030-06-21T12:00:00Z"
    assert cert["lifetime_used"] == pytest.approx(70 / 90, abs=1e-4)
    assert cert["serial"] == f"{leaf.certificate.serial_number:x}"
    (error,) = data["errors"]
    assert error == {
        "target": str(tmp_path / "nope.pem"),
        "source": str(tmp_path / "nope.pem"),
        "kind": "read",
        "reason": None,
        "message": f"{tmp_path / 'nope.pem'}: no such file",
    }
