"""CertificateCollector on a real CollectorRegistry, scraped through the text exposition format
(and once over real HTTP): per-certificate timestamps, the expired flag and the elapsed
ratio; targets re-read on every scrape (or per interval); errors counted, never raised.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from grpcsec.monitor import CertificateCollector, ProbeOptions, Prober, parse_source, serve_metrics
from grpcsec.pki import CertificateAuthority, IssuedCertificate
from grpcsec.target import Target
from tests.monitor.conftest import DAY, HOUR, NOW, closed_port, http_get, lasting, tls_server, write

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """{(sample name, sorted labels): value} from Prometheus text."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(registry: CollectorRegistry) -> Samples:
    return samples(generate_latest(registry).decode())


def cert_labels(
    target: Path | str, source: Path | str, issued: IssuedCertificate
) -> tuple[tuple[str, str], ...]:
    certificate = issued.certificate
    return tuple(
        sorted(
            {
                "target": str(target),
                "source": str(source),
                "subject_cn": certificate.subject.rfc4514_string().removeprefix("CN="),
                "issuer_cn": "Monitor Issuing",
                "serial": f"{certificate.serial_number:x}",
            }.items()
        )
    )


class Clock:
    """A settable "now" for the collector (time is a parameter, not a mock of the clock)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def register(
    registry: CollectorRegistry,
    targets: list[str],
    clock: Clock,
    min_interval: dt.timedelta = dt.timedelta(0),
) -> CertificateCollector:
    collector = CertificateCollector(
        [parse_source(t) for t in targets],
        clock=clock,
        prober=Prober(ProbeOptions(timeout=2.0)),
        min_interval=min_interval,
    )
    registry.register(collector)
    return collector


def test_per_certificate_timestamps_expired_flag_and_elapsed_ratio(
    tmp_path: Path, issuing_ca: CertificateAuthority, clock: Clock
) -> None:
    live = lasting(issuing_ca, "live", left=30 * DAY, lifetime=120 * DAY)
    gone = lasting(issuing_ca, "gone", left=-DAY, lifetime=10 * DAY)
    write(tmp_path / "certs" / "live.pem", [live.certificate])
    write(tmp_path / "certs" / "sub" / "gone.crt", [gone.certificate])
    directory = tmp_path / "certs"
    registry = CollectorRegistry()
    register(registry, [str(directory)], clock)
    found = scrape(registry)
    live_labels = cert_labels(directory, directory / "live.pem", live)
    gone_labels = cert_labels(directory, directory / "sub" / "gone.crt", gone)
    not_after = live.certificate.not_valid_after_utc.timestamp()
    assert found[("grpcsec_cert_not_after_timestamp_seconds", live_labels)] == not_after
    assert found[("grpcsec_cert_not_before_timestamp_seconds", live_labels)] == (
        live.certificate.not_valid_before_utc.timestamp()
    )
    assert found[("grpcsec_cert_expired", live_labels)] == 0.0
    assert found[("grpcsec_cert_expired", gone_labels)] == 1.0
    assert found[("grpcsec_cert_lifetime_elapsed_ratio", live_labels)] == pytest.approx(0.75)
    assert found[("grpcsec_cert_lifetime_elapsed_ratio", gone_labels)] == pytest.approx(1.1)
    target = (("target", str(directory)),)
    assert found[("grpcsec_exporter_target_up", target)] == 1.0
    assert found[("grpcsec_exporter_read_errors_total", target)] == 0.0
    assert found[("grpcsec_exporter_probe_errors_total", target)] == 0.0


def test_the_clock_moves_the_expired_flag_without_rereading_anything_else(
    tmp_path: Path, issuing_ca: CertificateAuthority, clock: Clock
) -> None:
    leaf = lasting(issuing_ca, "svc", left=HOUR, lifetime=DAY)
    path = write(tmp_path / "svc.pem", [leaf.certificate])
    registry = CollectorRegistry()
    register(registry, [str(path)], clock)
    labels = cert_labels(path, path, leaf)
    assert scrape(registry)[("grpcsec_cert_expired", labels)] == 0.0
    clock.now = NOW + HOUR + dt.timedelta(seconds=1)
    assert scrape(registry)[("grpcsec_cert_expired", labels)] == 1.0


def test_files_are_reread_on_each_scrape(
    tmp_path: Path, issuing_ca: CertificateAuthority, clock: Clock
) -> None:
    old = lasting(issuing_ca, "svc", left=DAY, lifetime=90 * DAY)
    new = lasting(issuing_ca, "svc", left=89 * DAY, lifetime=90 * DAY)
    path = write(tmp_path / "svc.pem", [old.certificate])
    registry = CollectorRegistry()
    register(registry, [str(path)], clock)
    assert ("grpcsec_cert_not_after_timestamp_seconds", cert_labels(path, path, old)) in scrape(
        registry
    )
    write(path, [new.certificate])  # renewed on disk
    found = scrape(registry)
    assert ("grpcsec_cert_not_after_timestamp_seconds", cert_labels(path, path, old)) not in found
    assert found[("grpcsec_cert_not_after_timestamp_seconds", cert_labels(path, path, new))] == (
        new.certificate.not_valid_after_utc.timestamp()
    )


def test_with_an_interval_targets_are_reread_at_most_that_often(
    tmp_path: Path, issuing_ca: CertificateAuthority, clock: Clock
) -> None:
    old = lasting(issuing_ca, "svc", left=DAY, lifetime=90 * DAY)
    new = lasting(issuing_ca, "svc", left=89 * DAY, lifetime=90 * DAY)
    path = write(tmp_path / "svc.pem", [old.certificate])
    registry = CollectorRegistry()
    register(
        registry,
        [str(path), str(tmp_path / "missing.pem")],
        clock,
        min_interval=dt.timedelta(minutes=5),
    )
    scrape(registry)
    write(path, [new.certificate])
    clock.now = NOW + dt.timedelta(minutes=4)
    found = scrape(registry)
    assert ("grpcsec_cert_not_after_timestamp_seconds", cert_labels(path, path, old)) in found
    missing = (("target", str(tmp_path / "missing.pem")),)
    assert found[("grpcsec_exporter_read_errors_total", missing)] == 1.0  # not re-read
    clock.now = NOW + dt.timedelta(minutes=5)
    found = scrape(registry)
    assert ("grpcsec_cert_not_after_timestamp_seconds", cert_labels(path, path, new)) in found
    assert found[("grpcsec_exporter_read_errors_total", missing)] == 2.0


def test_errors_are_counted_per_target_and_the_scrape_still_succeeds(
    tmp_path: Path, issuing_ca: CertificateAuthority, clock: Clock
) -> None:
    leaf = lasting(issuing_ca, "svc", left=DAY, lifetime=90 * DAY)
    good = write(tmp_path / "good.pem", [leaf.certificate])
    garbage = write(tmp_path / "garbage.pem", b"\x00garbage")
    refused = str(closed_port())
    registry = CollectorRegistry()
    register(registry, [str(good), str(garbage), refused], clock)
    for expected in (1.0, 2.0, 3.0):
        found = scrape(registry)
        assert (
            found[("grpcsec_exporter_read_errors_total", (("target", str(garbage)),))] == expected
        )
        assert found[("grpcsec_exporter_probe_errors_total", (("target", refused),))] == expected
    assert found[("grpcsec_exporter_target_up", (("target", str(garbage)),))] == 0.0
    assert found[("grpcsec_exporter_target_up", (("target", refused),))] == 0.0
    assert found[("grpcsec_exporter_target_up", (("target", str(good)),))] == 1.0
    assert found[("grpcsec_exporter_read_errors_total", (("target", str(good)),))] == 0.0
    assert ("grpcsec_cert_not_after_timestamp_seconds", cert_labels(good, good, leaf)) in found


def test_a_certificate_twice_in_one_file_is_one_series(
    tmp_path: Path, issuing_ca: CertificateAuthority, clock: Clock
) -> None:
    leaf = lasting(issuing_ca, "svc", left=DAY, lifetime=90 * DAY)
    path = write(tmp_path / "twice.pem", [leaf.certificate, leaf.certificate])
    registry = CollectorRegistry()
    register(registry, [str(path)], clock)
    text = generate_latest(registry).decode()
    assert text.count("grpcsec_cert_not_after_timestamp_seconds{") == 1


def test_registering_the_collector_twice_is_refused(clock: Clock) -> None:
    registry = CollectorRegistry()
    register(registry, [], clock)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        register(registry, [], clock)


@pytest.fixture
def live_endpoint(issuing_ca: CertificateAuthority) -> Iterator[tuple[Target, IssuedCertificate]]:
    leaf = lasting(issuing_ca, "localhost", left=20 * DAY, lifetime=90 * DAY)
    with tls_server(leaf) as address:
        yield address, leaf


def test_an_endpoint_chain_is_scraped_over_real_http(
    live_endpoint: tuple[Target, IssuedCertificate], clock: Clock
) -> None:
    address, leaf = live_endpoint
    registry = CollectorRegistry()
    register(registry, [str(address)], clock)
    with serve_metrics(registry, Target("127.0.0.1", 0)) as server:
        found = samples(http_get(server.url))
    labels = cert_labels(str(address), str(address), leaf)
    assert found[("grpcsec_cert_not_after_timestamp_seconds", labels)] == (
        leaf.certificate.not_valid_after_utc.timestamp()
    )
    issuing = [
        key
        for key in found
        if key[0] == "grpcsec_cert_expired" and ("subject_cn", "Monitor Issuing") in key[1]
    ]
    assert len(issuing) == 1  # the intermediate the server sent
    assert found[("grpcsec_exporter_target_up", (("target", str(address)),))] == 1.0


def test_a_target_that_goes_down_is_logged_once_with_why_and_when_it_is_back(
    tmp_path: Path, issuing_ca: CertificateAuthority, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 16: the exporter said nothing about a down target; now one WARNING gives the reason
    when it goes down (not one per scrape), and one INFO when it is back."""
    path = tmp_path / "server.pem"
    collector = register(CollectorRegistry(), [str(path)], clock)
    caplog.set_level(logging.INFO, logger="grpcsec.monitor.exporter")
    collector.refresh()
    collector.refresh()
    down = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(down) == 1, caplog.text
    assert "is down" in down[0].getMessage()
    assert "no such file" in down[0].getMessage()
    caplog.clear()
    write(path, [lasting(issuing_ca, "back", left=30 * DAY, lifetime=90 * DAY).certificate])
    collector.refresh()
    collector.refresh()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [f"target {path} is up again"], messages
