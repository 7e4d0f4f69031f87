"""Small pure pieces of the raw probes."""

from __future__ import annotations

import pytest

from grpcsec.doctor.probe import _alert_from_reason


@pytest.mark.parametrize(
    ("reason", "alert"),
    [
        ("SSLV3_ALERT_BAD_CERTIFICATE", "bad_certificate"),
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "certificate_required"),
        ("TLSV1_ALERT_PROTOCOL_VERSION", "protocol_version"),
        # OpenSSL knows no reason code for some alerts; Python then gives only the text
        ("[SSL] tlsv1 alert no application protocol (_ssl.c:1006)", "no_application_protocol"),
        ("WRONG_VERSION_NUMBER", None),
        (None, None),
    ],
)
def test_alert_names_from_ssl_errors(reason: str | None, alert: str | None) -> None:
    assert _alert_from_reason(reason) == alert
