"""check_targets over CRL files: a CRL's next update judged with the certificate thresholds
(its this-update..next-update span is its lifetime), a CRL past its next update critical, CRLs
found by content in a directory scan (PEM in ``*.pem``, DER in ``*.der`` or ``*.crl``, a CRL
next to certificates in one file), garbage reported per file, and the ``--json`` shape."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from grpcsec.monitor import CheckExit, CheckReport, Status, Thresholds, check_targets
from grpcsec.pki import CertificateAuthority, certificates_pem
from grpcsec.pki.crl import load_crl
from tests.crls import write_crl
from tests.monitor.conftest import DAY, HOUR, NOW, lasting, write

DEFAULT = Thresholds()
WEEK = 7 * DAY


def crl_at(
    path: Path, ca: CertificateAuthority, *, left: dt.timedelta, span: dt.timedelta = WEEK
) -> Path:
    """A CRL of ``ca`` that, at NOW, has ``left`` to go before its next update."""
    next_update = NOW + left
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_crl(path, ca, this_update=next_update - span, next_update=next_update)


def crl_statuses(report: CheckReport) -> dict[str, str]:
    return {Path(c.source).name: c.status.value for c in report.crls}


@pytest.mark.parametrize(
    ("left", "status", "code"),
    [
        (6 * DAY, Status.OK, CheckExit.OK),  # 14% of a week used, 6 days left
        (DAY, Status.WARNING, CheckExit.WARNING),  # 86%: past 75%, not yet 90%
        (12 * HOUR, Status.CRITICAL, CheckExit.CRITICAL),  # 93%
        (-HOUR, Status.EXPIRED, CheckExit.CRITICAL),  # past the next update
    ],
    ids=["ok", "warning", "critical", "expired"],
)
def test_a_crl_file_is_judged_by_its_next_update(
    tmp_path: Path,
    issuing_ca: CertificateAuthority,
    left: dt.timedelta,
    status: Status,
    code: CheckExit,
) -> None:
    path = crl_at(tmp_path / "issuing.crl", issuing_ca, left=left)
    report = check_targets([path], DEFAULT, NOW)
    assert report.errors == ()
    assert report.certificates == ()
    (checked,) = report.crls
    assert checked.status is status
    assert report.exit_code is code
    if status is Status.EXPIRED:
        assert "past its next update" in checked.reason
        assert "publish a fresh CRL" in checked.reason


def test_thresholds_given_apply_to_crls(tmp_path: Path, issuing_ca: CertificateAuthority) -> None:
    path = crl_at(tmp_path / "issuing.crl", issuing_ca, left=3 * DAY)
    assert check_targets([path], DEFAULT, NOW).exit_code is CheckExit.OK
    strict = Thresholds.parse("4d", "2d")
    assert check_targets([path], strict, NOW).exit_code is CheckExit.WARNING
    assert check_targets([path], strict, NOW + 2 * DAY).exit_code is CheckExit.CRITICAL


def test_crls_are_found_by_content_in_a_directory_scan(
    tmp_path: Path, issuing_ca: CertificateAuthority, root_ca: CertificateAuthority
) -> None:
    root = tmp_path / "pki"
    leaf = lasting(issuing_ca, "svc", left=60 * DAY, lifetime=90 * DAY)
    write(root / "svc.crt", [leaf.certificate])
    crl_at(root / "published" / "issuing.pem", issuing_ca, left=6 * DAY)  # PEM CRL in a .pem
    der_source = crl_at(tmp_path / "root.tmp", root_ca, left=12 * HOUR)
    der = load_crl(der_source.read_bytes()).crl.public_bytes(serialization.Encoding.DER)
    write(root / "root.der", der)  # DER CRL in a .der
    write(root / "copy.crl", der)  # and in a .crl
    bundle = crl_at(tmp_path / "x.tmp", issuing_ca, left=-DAY).read_bytes()
    write(
        root / "chain-and-crl.pem", certificates_pem([leaf.certificate]) + bundle
    )  # both in one file
    report = check_targets([root], DEFAULT, NOW)
    assert report.errors == ()
    assert crl_statuses(report) == {
        "issuing.pem": "ok",
        "root.der": "critical",
        "copy.crl": "critical",
        "chain-and-crl.pem": "expired",
    }
    assert [c.info.common_name for c in report.certificates] == ["svc", "svc"]
    assert report.exit_code is CheckExit.CRITICAL
    # sorted by next update, soonest first
    assert Path(report.crls[0].source).name == "chain-and-crl.pem"


def test_a_directory_of_only_crls_is_not_empty(
    tmp_path: Path, issuing_ca: CertificateAuthority
) -> None:
    crl_at(tmp_path / "crls" / "issuing.crl", issuing_ca, left=6 * DAY)
    report = check_targets([tmp_path / "crls"], DEFAULT, NOW)
    assert report.errors == ()
    assert report.exit_code is CheckExit.OK


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("garbage.crl", b"\x30\x03\x02\x01", "not a valid CRL"),
        ("broken.pem", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", "not a valid"),
    ],
)
def test_a_garbage_crl_is_unreadable_and_the_rest_still_checked(
    tmp_path: Path, issuing_ca: CertificateAuthority, name: str, content: bytes, needle: str
) -> None:
    root = tmp_path / "crls"
    crl_at(root / "good.crl", issuing_ca, left=6 * DAY)
    write(root / name, content)
    report = check_targets([root], DEFAULT, NOW)
    assert crl_statuses(report) == {"good.crl": "ok"}
    (error,) = report.errors
    assert Path(error.origin).name == name
    assert needle in error.message
    assert report.exit_code is CheckExit.UNREADABLE


def test_crl_json_shape(tmp_path: Path, issuing_ca: CertificateAuthority) -> None:
    path = crl_at(tmp_path / "issuing.crl", issuing_ca, left=DAY)
    data = json.loads(json.dumps(check_targets([path], DEFAULT, NOW).to_json()))
    assert data["status"] == "warning"
    assert data["exit_code"] == 1
    assert data["certificates"] == []
    (crl,) = data["crls"]
    assert crl == {
        "target": str(path),
        "source": str(path),
        "status": "warning",
        "reason": crl["reason"],
        "issuer": issuing_ca.certificate.subject.rfc4514_string(),
        "issuer_common_name": "Monitor Issuing",
        "authority_key_id": crl["authority_key_id"],
        "number": 1,
        "this_update": "2030-05-26T12:00:00Z",
        "next_update": "2030-06-02T12:00:00Z",
        "seconds_left": 86400,
        "time_left": crl["time_left"],
        "lifetime_used": pytest.approx(6 / 7, abs=1e-4),
        "revoked": 0,
    }
    assert len(crl["authority_key_id"]) == 40
    assert "threshold 30d,75%" in crl["reason"]
