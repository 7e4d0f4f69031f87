"""ServiceMetrics on a real CollectorRegistry, scraped over real HTTP with serve_metrics.

Each method moves exactly its metric; a rotated certificate replaces the old series instead of
adding one; label values that are not short codes collapse into ``other`` so a bug cannot
create unbounded series; the HTTP server binds only where told and stops cleanly.
"""

from __future__ import annotations

import enum
import socket
import threading
import urllib.error
from pathlib import Path

import pytest
from cryptography import x509
from prometheus_client import CollectorRegistry

from grpcsec.errors import ConfigurationError
from grpcsec.monitor import ServiceMetrics, serve_metrics
from grpcsec.pki import CertificateAuthority, CertificateInfo
from grpcsec.target import Target
from tests.monitor.conftest import DAY, NOW, http_get, lasting
from tests.monitor.test_exporter import samples


class Reason(enum.Enum):
    EXPIRED = "expired"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> ServiceMetrics:
    return ServiceMetrics(registry)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_counters_start_at_zero_and_move_one_per_call(
    registry: CollectorRegistry, metrics: ServiceMetrics
) -> None:
    assert value(registry, "grpcsec_tls_connections_total") == 0.0
    assert value(registry, "grpcsec_rotation_reload_successes_total") == 0.0
    assert value(registry, "grpcsec_rotation_last_success_timestamp_seconds") == 0.0
    for _ in range(3):
        metrics.tls_connection()
    metrics.reload_succeeded(NOW)
    metrics.reload_failed("key_mismatch")
    metrics.reload_failed(Reason.EXPIRED)
    metrics.reload_failed("key_mismatch")
    metrics.authentication_failed("missing_token")
    metrics.authentication_failed(Reason.EXPIRED)
    metrics.authorization_decision("orders", "allow-readers", "allow")
    metrics.authorization_decision("orders", None, False)
    metrics.authorization_decision("orders", None, False)
    assert value(registry, "grpcsec_tls_connections_total") == 3.0
    assert value(registry, "grpcsec_rotation_reload_successes_total") == 1.0
    assert value(registry, "grpcsec_rotation_last_success_timestamp_seconds") == NOW.timestamp()
    assert value(registry, "grpcsec_rotation_reload_failures_total", reason="key_mismatch") == 2.0
    assert value(registry, "grpcsec_rotation_reload_failures_total", reason="expired") == 1.0
    assert value(registry, "grpcsec_authentication_failures_total", reason="missing_token") == 1.0
    assert value(registry, "grpcsec_authentication_failures_total", reason="expired") == 1.0
    decisions = "grpcsec_authorization_decisions_total"
    assert (
        value(registry, decisions, policy="orders", rule="allow-readers", decision="allow") == 1.0
    )
    assert value(registry, decisions, policy="orders", rule="", decision="deny") == 2.0


def test_a_failed_reload_does_not_move_the_last_success(
    registry: CollectorRegistry, metrics: ServiceMetrics
) -> None:
    metrics.reload_succeeded(NOW)
    metrics.reload_failed("unreadable")
    assert value(registry, "grpcsec_rotation_last_success_timestamp_seconds") == NOW.timestamp()
    metrics.reload_succeeded(NOW + DAY)
    assert (
        value(registry, "grpcsec_rotation_last_success_timestamp_seconds")
        == (NOW + DAY).timestamp()
    )


def test_label_values_that_are_not_short_codes_become_other(
    registry: CollectorRegistry, metrics: ServiceMetrics
) -> None:
    metrics.authentication_failed("token for user 12345 expired at 10:00!")
    metrics.authentication_failed("x" * 65)
    metrics.reload_failed("")
    metrics.authorization_decision("p", "r", "maybe later")
    assert value(registry, "grpcsec_authentication_failures_total", reason="other") == 2.0
    assert value(registry, "grpcsec_rotation_reload_failures_total", reason="other") == 1.0
    assert (
        value(
            registry,
            "grpcsec_authorization_decisions_total",
            policy="p",
            rule="r",
            decision="other",
        )
        == 1.0
    )
    metrics.authorization_decision("p" * 300, "r", "deny")
    assert (
        value(
            registry,
            "grpcsec_authorization_decisions_total",
            policy="p" * 128,
            rule="r",
            decision="deny",
        )
        == 1.0
    )


def test_the_served_certificate_has_one_series_that_follows_rotation(
    registry: CollectorRegistry, metrics: ServiceMetrics, issuing_ca: CertificateAuthority
) -> None:
    old = lasting(issuing_ca, "svc", left=DAY, lifetime=90 * DAY).certificate
    new = lasting(issuing_ca, "svc", left=89 * DAY, lifetime=90 * DAY).certificate
    client = lasting(issuing_ca, "me", left=10 * DAY, lifetime=90 * DAY).certificate

    def labels(role: str, certificate: x509.Certificate) -> dict[str, str]:
        info = CertificateInfo.of(certificate)
        return {
            "role": role,
            "subject_cn": info.common_name or "",
            "issuer_cn": "Monitor Issuing",
            "serial": info.serial,
        }

    name = "grpcsec_tls_certificate_not_after_timestamp_seconds"
    metrics.observe_serving_certificate(old)
    metrics.observe_client_certificate(CertificateInfo.of(client))
    assert (
        registry.get_sample_value(name, labels("server", old))
        == old.not_valid_after_utc.timestamp()
    )
    assert (
        registry.get_sample_value(name, labels("client", client))
        == client.not_valid_after_utc.timestamp()
    )
    metrics.observe_serving_certificate(new)
    assert registry.get_sample_value(name, labels("server", old)) is None
    assert (
        registry.get_sample_value(name, labels("server", new))
        == new.not_valid_after_utc.timestamp()
    )
    assert (
        registry.get_sample_value(
            "grpcsec_tls_certificate_not_before_timestamp_seconds", labels("server", new)
        )
        == new.not_valid_before_utc.timestamp()
    )
    assert registry.get_sample_value(name, labels("client", client)) is not None  # untouched
    metrics.observe_client_certificate(None)
    assert registry.get_sample_value(name, labels("client", client)) is None


def test_tls_connection_counts_are_exact_under_concurrency(
    registry: CollectorRegistry, metrics: ServiceMetrics
) -> None:
    """The rotation fetcher calls it from grpcio's threads."""

    def hammer() -> None:
        for _ in range(1000):
            metrics.tls_connection()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert value(registry, "grpcsec_tls_connections_total") == 8000.0


def test_registering_twice_on_one_registry_is_refused(registry: CollectorRegistry) -> None:
    ServiceMetrics(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        ServiceMetrics(registry)


# -- serve_metrics ---------------------------------------------------------------------------------
def test_serve_metrics_serves_the_registry_over_http_and_stops(
    registry: CollectorRegistry, metrics: ServiceMetrics, issuing_ca: CertificateAuthority
) -> None:
    leaf = lasting(issuing_ca, "svc", left=DAY, lifetime=90 * DAY).certificate
    metrics.observe_serving_certificate(leaf)
    metrics.tls_connection()
    metrics.authentication_failed("no_client_certificate")
    server = serve_metrics(registry, Target("127.0.0.1", 0))
    try:
        assert server.address.host == "127.0.0.1"
        assert server.address.port != 0
        assert server.url == f"http://127.0.0.1:{server.address.port}/metrics"
        found = samples(http_get(server.url))
    finally:
        server.stop()
    assert found[("grpcsec_tls_connections_total", ())] == 1.0
    assert (
        found[("grpcsec_authentication_failures_total", (("reason", "no_client_certificate"),))]
        == 1.0
    )
    served = [k for k in found if k[0] == "grpcsec_tls_certificate_not_after_timestamp_seconds"]
    assert len(served) == 1
    assert found[served[0]] == leaf.not_valid_after_utc.timestamp()
    with pytest.raises(urllib.error.URLError):
        http_get(server.url, timeout=2.0)
    server.stop()  # idempotent


def test_serve_metrics_refuses_a_busy_port(registry: CollectorRegistry) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            serve_metrics(registry, Target("127.0.0.1", port))


def test_serve_metrics_binds_ipv6_loopback_when_told(
    registry: CollectorRegistry, tmp_path: Path
) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = serve_metrics(registry, Target("::1", 0))
    except ConfigurationError:
        pytest.skip("IPv6 loopback is not configured here")
    with server:
        assert str(server.address).startswith("[::1]:")
        assert "grpcsec" not in http_get(server.url)  # empty registry: nothing registered
