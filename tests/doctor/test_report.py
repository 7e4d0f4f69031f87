"""The report value: stable codes, the JSON shape, and the diagnosis as the first failure."""

from __future__ import annotations

import pytest

from grpcsec.doctor import DIAGNOSES, WARNINGS, Check, DoctorReport, Status


def test_a_check_refuses_codes_outside_the_documented_lists() -> None:
    with pytest.raises(ValueError, match="unknown doctor code"):
        Check.failed("tcp", "socket_sadness", "x", "y")
    with pytest.raises(ValueError, match="needs a diagnosis code"):
        Check(name="cipher", status=Status.FAIL, code="weak_cipher")


def test_the_diagnosis_is_the_first_failure_and_ok_allows_warnings() -> None:
    checks = (
        Check.passed("tcp", "connected"),
        Check.warned("tls_versions", "weak_tls_version", "TLS 1.0 too", "disable it"),
        Check.failed("hostname", "hostname_mismatch", "no", "pass --server-name"),
        Check.failed("server_eku", "server_cert_wrong_eku", "no", "reissue"),
        Check.skipped("grpc_health"),
    )
    report = DoctorReport(target="h:1", checks=checks, facts={"protocol": "tls"})
    assert report.diagnosis == "hostname_mismatch"
    assert not report.ok
    assert DoctorReport(target="h:1", checks=checks[:2]).ok


def test_json_shape() -> None:
    report = DoctorReport(
        target="h:1",
        checks=(Check.failed("tcp", "timeout", "silence", "check the firewall"),),
        facts={"address": None},
    )
    document = report.to_json()
    assert list(document) == ["target", "ok", "diagnosis", "checks", "server"]
    assert document["checks"] == [
        {
            "name": "tcp",
            "status": "fail",
            "code": "timeout",
            "message": "silence",
            "fix": "check the firewall",
        }
    ]


def test_codes_are_snake_case_and_the_two_lists_agree_where_they_overlap() -> None:
    for code in (*DIAGNOSES, *WARNINGS):
        assert code == code.lower()
        assert " " not in code
    assert set(DIAGNOSES) & set(WARNINGS) == {"cn_only_cert"}
