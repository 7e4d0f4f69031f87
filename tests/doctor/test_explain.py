"""Failure texts grpcio produces (1.76 and 1.78+, grpcio-security.md §5.2) map to diagnoses."""

from __future__ import annotations

import pytest

from grpcsec.doctor import DIAGNOSES, CallContext, explain_failure

NEW = "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:5: "
TLS = "Tls handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL routines:"


@pytest.mark.parametrize(
    ("details", "diagnosis"),
    [
        (NEW + "Failed to connect to remote host: Connection refused", "connection_refused"),
        (
            NEW + TLS + "OPENSSL_internal:WRONG_VERSION_NUMBER: Invalid certificate verification "
            "context: OK",
            "plaintext_server",
        ),
        (
            NEW + TLS + "OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: unable to get local issuer "
            "certificate: OK",
            "unknown_authority",
        ),
        (
            NEW + TLS + "CERTIFICATE_VERIFY_FAILED: certificate has expired: OK",
            "server_cert_expired",
        ),
        (
            NEW + TLS + "CERTIFICATE_VERIFY_FAILED: certificate is not yet valid: OK",
            "server_cert_not_yet_valid",
        ),
        (
            NEW + TLS + "CERTIFICATE_VERIFY_FAILED: unsupported certificate purpose: OK",
            "server_cert_wrong_eku",
        ),
        (
            NEW + "Custom verification check failed with error: UNAUTHENTICATED: Hostname "
            "Verification Check failed.",
            "hostname_mismatch",
        ),
        (NEW + "Peer name localhost is not in peer certificate", "hostname_mismatch"),
        (NEW + "Cannot check peer: missing selected ALPN property.", "no_alpn_h2"),
        (
            NEW
            + TLS
            + "TLSV1_ALERT_PROTOCOL_VERSION: Invalid certificate verification context: OK",
            "tls_version_unsupported",
        ),
        (NEW + "Failed to create security handshaker.", "client_key_mismatch"),
        ("empty address list", "client_key_mismatch"),
        (NEW + TLS + "TLSV1_ALERT_UNKNOWN_CA: OK", "client_cert_rejected"),
        (
            (
                "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:5: "
                "Unwrap failed (TSI_DATA_CORRUPTED)"
            ),
            "client_cert_rejected",
        ),
        (
            (
                "errors resolving nowhere.invalid:443: [field:hostname lookup error:address lookup "
                "failed for nowhere.invalid:443: Domain name not found]"
            ),
            "dns_failure",
        ),
    ],
)
def test_known_texts(details: str, diagnosis: str) -> None:
    sent = CallContext(tls=True, client_cert_sent=True)
    assert explain_failure("UNAVAILABLE", details, sent).diagnosis == diagnosis


@pytest.mark.parametrize(
    "details",
    [
        NEW + TLS + "TLSV1_ALERT_UNKNOWN_CA: OK",
        (
            "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:5: "
            "Unwrap failed (TSI_DATA_CORRUPTED)"
        ),
    ],
)
def test_a_refusal_after_the_handshake_without_a_certificate_sent_is_a_missing_one(
    details: str,
) -> None:
    """grpc-go and Node refuse a missing client certificate the way they refuse a bad one; the
    client knows whether it sent one (issue 16: 'call' used to blame the certificate)."""
    none_sent = CallContext(tls=True, client_cert_sent=False)
    assert explain_failure("UNAVAILABLE", details, none_sent).diagnosis == "client_cert_required"


@pytest.mark.parametrize(
    ("context", "diagnosis"),
    [
        (CallContext(tls=False), "server_requires_tls"),
        (CallContext(tls=True, client_cert_sent=False), "client_cert_required"),
        (CallContext(tls=True, client_cert_sent=True), "client_cert_rejected"),
    ],
)
def test_socket_closed_is_read_with_what_the_client_sent(
    context: CallContext, diagnosis: str
) -> None:
    details = (
        "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:1.2.3.4:5: Socket closed"
    )
    assert explain_failure("UNAVAILABLE", details, context).diagnosis == diagnosis


@pytest.mark.parametrize(
    ("code", "diagnosis"),
    [
        ("UNAUTHENTICATED", "unauthenticated"),
        ("PERMISSION_DENIED", "permission_denied"),
        ("DEADLINE_EXCEEDED", "timeout"),
        ("UNIMPLEMENTED", "unimplemented"),
        ("INTERNAL", "unknown"),
    ],
)
def test_status_codes_without_tls_texts(code: str, diagnosis: str) -> None:
    explanation = explain_failure(code, "something")
    assert explanation.diagnosis == diagnosis
    assert explanation.fix


NEW_SECURITY_LEVEL = (
    "Established channel does not have a sufficient security level to transfer call credential."
)
ALERT = "Tls handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:10000410:SSL routines:"


@pytest.mark.parametrize(
    ("details", "context", "diagnosis"),
    [
        # §5.2 row 12: the alert after the client verified the server is about its certificate
        (
            NEW + ALERT + "OPENSSL_internal:SSLV3_ALERT_HANDSHAKE_FAILURE: OK",
            None,
            "client_cert_required",
        ),
        (
            NEW + ALERT + "OPENSSL_internal:SSLV3_ALERT_HANDSHAKE_FAILURE: OK",
            CallContext(client_cert_sent=True),
            "client_cert_rejected",
        ),
        # §5.2 row 16: before verification, it is the cipher suites
        (
            NEW + ALERT + "OPENSSL_internal:SSLV3_ALERT_HANDSHAKE_FAILURE: Invalid certificate "
            "verification context: OK",
            None,
            "tls_handshake_failed",
        ),
        (NEW + ALERT + "SSLV3_ALERT_CERTIFICATE_EXPIRED: OK", None, "client_cert_expired"),
        (NEW + ALERT + "SSLV3_ALERT_BAD_CERTIFICATE: OK", None, "client_cert_rejected"),
        (
            NEW_SECURITY_LEVEL,
            CallContext(tls=False),
            "call_credentials_need_tls",
        ),
    ],
)
def test_alerts_about_the_client_side(
    details: str, context: CallContext | None, diagnosis: str
) -> None:
    assert explain_failure("UNAVAILABLE", details, context).diagnosis == diagnosis


def test_every_explanation_uses_a_documented_code() -> None:
    texts = [
        NEW + "Connection refused",
        NEW + TLS + "CERTIFICATE_VERIFY_FAILED: x",
        "Socket closed",
        NEW + ALERT + "SSLV3_ALERT_HANDSHAKE_FAILURE: OK",
        "anything",
    ]
    for code in ("UNAVAILABLE", "UNAUTHENTICATED", "PERMISSION_DENIED", "UNIMPLEMENTED"):
        for details in texts:
            assert explain_failure(code, details).diagnosis in DIAGNOSES
