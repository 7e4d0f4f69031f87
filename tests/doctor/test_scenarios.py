"""One real misconfigured server per diagnosis: the doctor must name the root cause and the fix.

Servers run on 127.0.0.1 (grpcsec's own, plain grpcio, grpc-go, openssl s_server, Python ssl,
black holes; see conftest.py). Every healthy control must come out ``ok`` with every check
passing, so a diagnosis is never a doctor that fails everything.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from grpcsec.doctor import DIAGNOSES, Status, probe
from grpcsec.pki import KEY_MODE, PendingFile, load_private_key, private_key_pem, write_files
from grpcsec.target import Target
from tests.doctor.conftest import (
    Files,
    assert_healthy,
    free_port,
    full_backlog,
    go_server,
    grpcio_server,
    grpcsec_server,
    http1_server,
    openssl_binary,
    python_tls_server,
    root_fix,
    run_doctor,
    server_credentials,
    server_process,
    serving,
    silent_listener,
    statuses,
)

pytestmark = pytest.mark.slow

MTLS_CLIENT = {"cert": "client.crt", "key": "client.key"}


def client(files: Files, cert: str = "client.crt", key: str = "client.key") -> dict[str, str]:
    return {"cert": files(cert), "key": files(key)}


# -- healthy controls -------------------------------------------------------------------------
def test_healthy_tls_server_is_ok_with_every_check_passing(files: Files) -> None:
    with grpcsec_server(files) as server:
        report = run_doctor(server.address, ca=files("ca.crt"))
    assert_healthy(report)
    facts = report.facts
    assert facts["protocol"] == "tls"
    assert facts["alpn"] == "h2"
    assert facts["tls_versions"] == {
        "TLSv1.3": "accepted",
        "TLSv1.2": "accepted",
        "TLSv1.1": "refused",
        "TLSv1.0": "refused",
    }
    assert facts["client_auth"] == "none"
    assert facts["health"] == "SERVING"
    assert facts["trusted"] is True
    assert facts["chain_complete"] is True


def test_healthy_mtls_server_with_a_client_certificate_is_ok(files: Files) -> None:
    with grpcsec_server(files, client_ca="ca.crt") as server:
        report = run_doctor(server.address, ca=files("ca.crt"), **client(files))
    assert_healthy(report)
    assert "client_cert_accepted" in statuses(report)
    assert report.facts["client_auth"] == "required"
    assert report.facts["client_cert_accepted"] is True


def test_healthy_plaintext_server_checked_with_insecure_is_ok(files: Files) -> None:
    with grpcsec_server(files, cert=None) as server:
        report = run_doctor(server.address, insecure=True)
    assert_healthy(report)
    assert list(statuses(report)) == ["tcp", "protocol", "grpc_health"]


def test_full_chain_through_an_intermediate_is_ok_by_name(files: Files) -> None:
    with grpcsec_server(files, "server-full-chain.crt", "server-full-chain.key") as server:
        report = run_doctor(Target("localhost", server.address.port), ca=files("ca.crt"))
    assert_healthy(report)
    assert report.facts["verified_path"] == [
        "CN=localhost",
        "CN=doctor issuing",
        "CN=doctor root",
    ]


def test_ipv6_target_in_brackets(files: Files) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.create_server(("::1", 0), family=socket.AF_INET6):
            pass
    except OSError:
        pytest.skip("no IPv6 loopback")
    with grpcsec_server(files, host="::1") as server:
        report = run_doctor(f"[::1]:{server.address.port}", ca=files("ca.crt"))
    assert_healthy(report)
    assert report.facts["address"] == f"[::1]:{server.address.port}"


# -- 1. reaching the server -------------------------------------------------------------------
def test_connection_refused(files: Files) -> None:
    report = run_doctor(Target("127.0.0.1", free_port()), ca=files("ca.crt"))
    assert report.diagnosis == "connection_refused"
    assert "server is running" in root_fix(report)
    assert statuses(report)["protocol"] == "skip"


def test_full_accept_queue_times_out_at_the_tcp_check_within_the_timeout(files: Files) -> None:
    with full_backlog() as target:
        start = time.monotonic()
        report = run_doctor(target, ca=files("ca.crt"), timeout=1.0)
        took = time.monotonic() - start
    assert report.diagnosis == "timeout"
    assert report.root_cause is not None
    assert report.root_cause.name == "tcp"
    assert took < 3.0
    assert "firewall" in root_fix(report)


@pytest.mark.parametrize("insecure", [False, True], ids=["tls", "plaintext"])
def test_server_that_accepts_and_never_answers_times_out_at_the_protocol_check(
    files: Files, insecure: bool
) -> None:
    options: dict[str, Any] = {"insecure": True} if insecure else {"ca": files("ca.crt")}
    with silent_listener() as target:
        start = time.monotonic()
        report = run_doctor(target, timeout=1.0, **options)
        took = time.monotonic() - start
    assert report.diagnosis == "timeout"
    assert report.root_cause is not None
    assert report.root_cause.name == "protocol"
    assert statuses(report)["tcp"] == "pass"
    assert took < 3.0


def test_plaintext_server_seen_by_a_tls_client(files: Files) -> None:
    with grpcsec_server(files, cert=None) as server:
        report = run_doctor(server.address, ca=files("ca.crt"))
    assert report.diagnosis == "plaintext_server"
    assert "--insecure" in root_fix(report)
    assert report.facts["protocol"] == "plaintext"


def test_tls_server_seen_by_a_plaintext_client(files: Files) -> None:
    with grpcsec_server(files) as server:
        report = run_doctor(server.address, insecure=True)
    assert report.diagnosis == "server_requires_tls"
    fix = root_fix(report)
    assert "drop --insecure" in fix
    assert "--ca" in fix


def test_http1_server_on_the_port_is_an_unknown_protocol(files: Files) -> None:
    with http1_server() as target:
        report = run_doctor(target, ca=files("ca.crt"))
    assert report.diagnosis == "unknown_protocol"
    assert report.root_cause is not None
    assert "HTTP/1.1 400" in report.root_cause.message


def test_unresolvable_name_is_a_bounded_dns_failure(files: Files) -> None:
    start = time.monotonic()
    report = run_doctor("doctor-test.invalid:443", ca=files("ca.crt"), timeout=2.0)
    assert report.diagnosis in {"dns_failure", "timeout"}  # a stuck resolver is cut off
    assert time.monotonic() - start < 4.0
    if report.diagnosis == "dns_failure":
        assert "--server-name" in root_fix(report)


# -- 2. TLS parameters ------------------------------------------------------------------------
def test_server_that_speaks_only_tls_1_1(files: Files) -> None:
    with python_tls_server(
        files, minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1
    ) as target:
        report = run_doctor(target, ca=files("ca.crt"))
    assert report.diagnosis == "tls_version_unsupported"
    assert "TLS 1.2" in root_fix(report)
    versions = report.facts["tls_versions"]
    assert versions["TLSv1.1"] == "accepted"
    assert versions["TLSv1.2"] == "refused"
    assert versions["TLSv1.3"] == "refused"


@pytest.mark.parametrize("alpn", [["http/1.1"], None], ids=["http1.1", "no-alpn"])
def test_tls_server_without_alpn_h2(files: Files, alpn: list[str] | None) -> None:
    with python_tls_server(files, alpn=alpn) as target:
        report = run_doctor(target, ca=files("ca.crt"))
    assert report.diagnosis == "no_alpn_h2"
    assert "h2" in root_fix(report)
    assert report.facts["alpn"] is None  # the probe offers only h2, as grpcio does


@pytest.mark.openssl
def test_openssl_server_without_alpn_h2(files: Files) -> None:
    argv = [openssl_binary(), "s_server", "-accept", "127.0.0.1:0", "-alpn", "http/1.1"]
    argv += ["-cert", files("server.crt"), "-key", files("server.key")]
    with server_process(
        argv, r"ACCEPT 127\.0\.0\.1:(\d+)", env={"OPENSSL_CONF": "/dev/null"}
    ) as port:
        report = run_doctor(Target("127.0.0.1", port), ca=files("ca.crt"))
    assert report.diagnosis == "no_alpn_h2"


# -- 3. the server certificate ------------------------------------------------------------------
def test_unknown_authority(files: Files) -> None:
    with grpcsec_server(files) as server:
        report = run_doctor(server.address, ca=files("other-ca.crt"))
    assert report.diagnosis == "unknown_authority"
    assert "--ca" in root_fix(report)
    assert report.facts["trusted"] is False


def test_default_roots_are_reported_and_do_not_trust_a_private_ca(
    files: Files, tmp_path: Any
) -> None:
    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(Path(files("other-ca.crt")).read_bytes())
    env = {"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(bundle)}
    with grpcsec_server(files) as server:
        report = run_doctor(server.address, environ=env)
    assert report.diagnosis == "unknown_authority"
    assert report.facts["roots"] == {"origin": "env", "source": str(bundle), "count": 1}
    assert "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH" in root_fix(report)


def test_incomplete_chain_when_only_the_ca_bundle_has_the_intermediate(files: Files) -> None:
    with grpcsec_server(files, "server-leaf-only.crt", "server-full-chain.key") as server:
        report = run_doctor(server.address, ca=files("ca-and-intermediate.crt"))
    assert report.diagnosis == "incomplete_chain"
    fix = root_fix(report)
    assert "--cert file" in fix
    assert "doctor issuing" in fix
    assert report.facts["trusted"] is True
    assert report.facts["chain_complete"] is False


def test_missing_intermediate_with_only_the_root_names_both_causes(files: Files) -> None:
    with grpcsec_server(files, "server-leaf-only.crt", "server-full-chain.key") as server:
        report = run_doctor(server.address, ca=files("ca.crt"))
    assert report.diagnosis == "unknown_authority"
    assert "CN=doctor issuing" in report.root_cause.message  # type: ignore[union-attr]
    assert "leaf + intermediate" in root_fix(report)


def test_hostname_mismatch_names_the_sans_and_the_override(files: Files) -> None:
    with grpcsec_server(files, "server-other-name.crt", "server-other-name.key") as server:
        report = run_doctor(server.address, ca=files("ca.crt"))
        fixed = run_doctor(server.address, ca=files("ca.crt"), server_name="other.example")
    assert report.diagnosis == "hostname_mismatch"
    fix = root_fix(report)
    assert "--server-name other.example" in fix
    assert "--host 127.0.0.1" in fix
    assert_healthy(fixed)


def test_uri_only_server_certificate(files: Files) -> None:
    with grpcsec_server(
        files, "server-uri-only.crt", "server-uri-only.key", require_host_san=False
    ) as server:
        report = run_doctor(server.address, ca=files("ca.crt"))
    assert report.diagnosis == "uri_only_server_cert"
    assert "DNS name or IP" in root_fix(report)


def test_expired_server_certificate(files: Files) -> None:
    with grpcsec_server(files, "server-expired.crt", "server-expired.key") as server:
        report = run_doctor(server.address, ca=files("ca.crt"))
    assert report.diagnosis == "server_cert_expired"
    assert "renew" in root_fix(report)


def test_server_certificate_not_yet_valid(files: Files) -> None:
    with grpcsec_server(files, "server-future.crt", "server-future.key") as server:
        report = run_doctor(server.address, ca=files("ca.crt"))
    assert report.diagnosis == "server_cert_not_yet_valid"
    assert "clock" in root_fix(report)


def test_server_certificate_without_server_auth(files: Files) -> None:
    credentials = server_credentials(files, "server-client-eku.crt", "server-client-eku.key")
    with grpcio_server(credentials, serving) as target:
        report = run_doctor(target, ca=files("ca.crt"))
    assert report.diagnosis == "server_cert_wrong_eku"
    assert "server or peer profile" in root_fix(report)


# -- 4. client authentication -------------------------------------------------------------------
def test_encrypted_client_key_is_used_with_its_password(files: Files, tmp_path: Path) -> None:
    key = load_private_key(Path(files("client.key")).read_bytes())
    locked = tmp_path / "client.key"
    write_files([PendingFile(locked, private_key_pem(key, b"doctor-pass"), KEY_MODE)])
    with grpcsec_server(files, client_ca="ca.crt") as server:
        report = run_doctor(
            server.address,
            ca=files("ca.crt"),
            cert=files("client.crt"),
            key=str(locked),
            key_password=b"doctor-pass",
        )
    assert_healthy(report)


def test_client_certificate_required_by_grpcio(files: Files) -> None:
    with grpcsec_server(files, client_ca="ca.crt") as server:
        report = run_doctor(server.address, ca=files("ca.crt"))
    assert report.diagnosis == "client_cert_required"
    assert "--cert FILE --key FILE" in root_fix(report)
    assert report.facts["client_auth"] == "required"


@pytest.mark.openssl
def test_client_certificate_required_by_a_tls_1_2_openssl_server(files: Files) -> None:
    """TLS 1.2: the refusal is a handshake failure, not a post-handshake alert."""
    argv = [openssl_binary(), "s_server", "-accept", "127.0.0.1:0", "-tls1_2", "-alpn", "h2"]
    argv += ["-cert", files("server.crt"), "-key", files("server.key")]
    argv += ["-Verify", "1", "-CAfile", files("ca.crt")]
    with server_process(
        argv, r"ACCEPT 127\.0\.0\.1:(\d+)", env={"OPENSSL_CONF": "/dev/null"}
    ) as port:
        report = run_doctor(Target("127.0.0.1", port), ca=files("ca.crt"))
    assert report.diagnosis == "client_cert_required"
    assert report.facts["version"] == "TLSv1.2"
    assert report.facts["acceptable_client_cas"] == ["CN=doctor root"]
    assert "CN=doctor root" in root_fix(report)


def test_client_certificate_rejected_by_grpcio(files: Files) -> None:
    with grpcsec_server(files, client_ca="ca.crt") as server:
        report = run_doctor(
            server.address,
            ca=files("ca.crt"),
            **client(files, "client-other-ca.crt", "client-other-ca.key"),
        )
    assert report.diagnosis == "client_cert_rejected"
    assert "CN=doctor other root" in root_fix(report)
    assert report.facts["client_cert_accepted"] is False


def test_expired_client_certificate(files: Files) -> None:
    with grpcsec_server(files, client_ca="ca.crt") as server:
        report = run_doctor(
            server.address,
            ca=files("ca.crt"),
            **client(files, "client-expired.crt", "client-expired.key"),
        )
    assert report.diagnosis == "client_cert_expired"
    assert "renew" in root_fix(report)


def test_client_key_that_is_not_the_certificates(files: Files) -> None:
    with grpcsec_server(files, client_ca="ca.crt") as server:
        report = run_doctor(server.address, ca=files("ca.crt"), **client(files, key="wrong.key"))
    assert report.diagnosis == "client_key_mismatch"
    assert "grpcsec verify" in root_fix(report)


# -- 5. the gRPC call ---------------------------------------------------------------------------
def test_not_serving(files: Files) -> None:
    with grpcsec_server(files) as server:
        server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        report = run_doctor(server.address, ca=files("ca.crt"))
    assert report.diagnosis == "not_serving"
    assert report.facts["health"] == "NOT_SERVING"
    assert "log" in root_fix(report)


def _abort_with(code: grpc.StatusCode) -> Any:
    def check(_request: Any, context: Any) -> Any:
        context.abort(code, "refused by the test server")

    return check


def test_unauthenticated(files: Files) -> None:
    credentials = server_credentials(files, "server.crt", "server.key")
    with grpcio_server(credentials, _abort_with(grpc.StatusCode.UNAUTHENTICATED)) as target:
        report = run_doctor(target, ca=files("ca.crt"))
    assert report.diagnosis == "unauthenticated"
    assert "--token" in root_fix(report)


def test_permission_denied(files: Files) -> None:
    credentials = server_credentials(files, "server.crt", "server.key")
    with grpcio_server(credentials, _abort_with(grpc.StatusCode.PERMISSION_DENIED)) as target:
        report = run_doctor(target, ca=files("ca.crt"))
    assert report.diagnosis == "permission_denied"
    assert "authorization policy" in root_fix(report)


def test_token_is_sent_as_bearer_metadata_and_never_reported(files: Files) -> None:
    secret = "doctor-test-token-0123456789"
    seen: list[str] = []

    def check(_request: Any, context: Any) -> Any:
        metadata = dict(context.invocation_metadata())
        seen.append(metadata.get("authorization", ""))
        if metadata.get("authorization") != f"Bearer {secret}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
        return serving(_request, context)

    credentials = server_credentials(files, "server.crt", "server.key")
    with grpcio_server(credentials, check) as target:
        good = run_doctor(target, ca=files("ca.crt"), token=secret)
        bad = run_doctor(target, ca=files("ca.crt"), token="not-the-token")
    assert_healthy(good)
    assert seen[0] == f"Bearer {secret}"
    assert bad.diagnosis == "unauthenticated"
    assert "token was refused" in root_fix(bad)
    assert secret not in json.dumps(good.to_json())
    assert "not-the-token" not in json.dumps(bad.to_json())


# -- grpc-go ----------------------------------------------------------------------------------
@pytest.mark.interop
def test_go_server_healthy_apart_from_its_missing_health_service(files: Files) -> None:
    with go_server(files, "server.crt", "server.key", "ca.crt") as target:
        report = run_doctor(target, ca=files("ca.crt"), **client(files))
    assert report.diagnosis == "ok"
    checks = statuses(report)
    assert checks["grpc_health"] == "warn"
    assert all(v == "pass" for k, v in checks.items() if k != "grpc_health"), checks
    assert report.facts["acceptable_client_cas"] == ["CN=doctor root"]


@pytest.mark.interop
def test_go_server_requires_a_client_certificate_after_the_tls_1_3_handshake(
    files: Files,
) -> None:
    with go_server(files, "server.crt", "server.key", "ca.crt") as target:
        report = run_doctor(target, ca=files("ca.crt"))
    assert report.diagnosis == "client_cert_required"
    assert report.facts["version"] == "TLSv1.3"
    assert "alert" in report.root_cause.message  # type: ignore[union-attr]
    assert "CN=doctor root" in root_fix(report)


@pytest.mark.interop
def test_go_server_rejects_a_foreign_client_certificate_after_the_handshake(
    files: Files,
) -> None:
    with go_server(files, "server.crt", "server.key", "ca.crt") as target:
        report = run_doctor(
            target,
            ca=files("ca.crt"),
            **client(files, "client-other-ca.crt", "client-other-ca.key"),
        )
    assert report.diagnosis == "client_cert_rejected"
    checks = {c.name: c for c in report.checks}
    assert checks["client_cert"].status is Status.WARN
    assert checks["client_cert"].code == "client_ca_not_listed"
    assert "CN=doctor root" in root_fix(report) or "CN=doctor other root" in root_fix(report)


@pytest.mark.interop
def test_go_server_with_an_incomplete_chain(files: Files) -> None:
    with go_server(files, "server-leaf-only.crt", "server-full-chain.key", "ca.crt") as target:
        report = run_doctor(target, ca=files("ca-and-intermediate.crt"), **client(files))
    assert report.diagnosis == "incomplete_chain"


# -- without ssl's handshake message hook ---------------------------------------------------
@pytest.fixture
def no_message_hook(monkeypatch: pytest.MonkeyPatch) -> bool:
    """Probe as on a Python whose ssl has no ``_msg_callback``; returns whether this one still
    reads whole chains (``get_unverified_chain``, 3.13+)."""
    monkeypatch.setattr(probe, "RECORD_MESSAGES", False)
    return hasattr(ssl.SSLSocket, "get_unverified_chain")


def test_without_the_hook_a_healthy_server_is_still_ok(files: Files, no_message_hook: bool) -> None:
    with grpcsec_server(files, client_ca="ca.crt") as server:
        report = run_doctor(server.address, ca=files("ca.crt"), **client(files))
        required = run_doctor(server.address, ca=files("ca.crt"))
    assert_healthy(report)
    assert report.facts["chain_read"] == ("whole" if no_message_hook else "leaf_only")
    assert required.diagnosis == "client_cert_required"


def test_without_the_hook_an_unread_intermediate_is_a_warning_not_a_verdict(
    files: Files, no_message_hook: bool
) -> None:
    with grpcsec_server(files, "server-full-chain.crt", "server-full-chain.key") as server:
        report = run_doctor(server.address, ca=files("ca.crt"))
    assert report.diagnosis == "ok"
    expected = "pass" if no_message_hook else "warn"
    assert statuses(report)["chain"] == expected
    assert statuses(report)["grpc_health"] == "pass"


# -- the list ---------------------------------------------------------------------------------
COVERED = {
    "ok",
    "connection_refused",
    "timeout",
    "plaintext_server",
    "server_requires_tls",
    "tls_version_unsupported",
    "no_alpn_h2",
    "unknown_authority",
    "incomplete_chain",
    "hostname_mismatch",
    "uri_only_server_cert",
    "server_cert_expired",
    "server_cert_not_yet_valid",
    "server_cert_wrong_eku",
    "client_cert_required",
    "client_cert_rejected",
    "client_cert_expired",
    "client_key_mismatch",
    "unauthenticated",
    "permission_denied",
    "not_serving",
}


def test_the_required_diagnoses_are_all_stable_codes() -> None:
    assert set(DIAGNOSES) >= COVERED
