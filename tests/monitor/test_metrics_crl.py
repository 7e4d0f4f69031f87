"""CRL metrics with the same names and labels from both doors: ServiceMetrics.observe_crl (what
a serving process enforces; one series per source, replaced when that source's CRL changes,
removed with ``None``) and the exporter's collector over CRL files among its targets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prometheus_client import CollectorRegistry

from grpcsec.monitor import CertificateCollector, ServiceMetrics, parse_source
from grpcsec.pki import CertificateAuthority
from grpcsec.pki.crl import load_crl_file
from tests.crls import write_crl
from tests.monitor.conftest import DAY, NOW, lasting, write
from tests.monitor.test_exporter import scrape

NEXT = "grpcsec_crl_next_update_timestamp_seconds"
REVOKED = "grpcsec_crl_revoked_entries"


def test_observe_crl_has_one_series_per_source_that_follows_changes(
    tmp_path: Path, issuing_ca: CertificateAuthority, root_ca: CertificateAuthority
) -> None:
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry)
    victims = [lasting(issuing_ca, f"v{i}", left=DAY, lifetime=9 * DAY).certificate for i in (1, 2)]
    first = load_crl_file(write_crl(tmp_path / "a.crl", issuing_ca, victims[0],
                                    this_update=NOW, next_update=NOW + DAY))  # fmt: skip
    issuing = {"source": "/etc/crl/issuing.crl", "issuer": "CN=Monitor Issuing"}
    metrics.observe_crl("/etc/crl/issuing.crl", first)
    assert registry.get_sample_value(NEXT, issuing) == (NOW + DAY).timestamp()
    assert registry.get_sample_value(REVOKED, issuing) == 1.0
    # a new CRL from the same source replaces the values (one series)
    second = load_crl_file(write_crl(tmp_path / "b.crl", issuing_ca, *victims,
                                     this_update=NOW, next_update=NOW + 2 * DAY))  # fmt: skip
    metrics.observe_crl("/etc/crl/issuing.crl", second)
    assert registry.get_sample_value(NEXT, issuing) == (NOW + 2 * DAY).timestamp()
    assert registry.get_sample_value(REVOKED, issuing) == 2.0
    # another source is its own series; a source whose issuer changes loses the old labels
    root_crl = load_crl_file(write_crl(tmp_path / "r.crl", root_ca, this_update=NOW,
                                       next_update=NOW + 30 * DAY))  # fmt: skip
    metrics.observe_crl("/etc/crl/root.crl", root_crl)
    metrics.observe_crl("/etc/crl/issuing.crl", root_crl)
    assert registry.get_sample_value(REVOKED, issuing) is None
    moved = {"source": "/etc/crl/issuing.crl", "issuer": "CN=Monitor Root"}
    assert registry.get_sample_value(REVOKED, moved) == 0.0
    root = {"source": "/etc/crl/root.crl", "issuer": "CN=Monitor Root"}
    assert registry.get_sample_value(NEXT, root) == (NOW + 30 * DAY).timestamp()
    # None removes that source's series only
    metrics.observe_crl("/etc/crl/issuing.crl", None)
    assert registry.get_sample_value(NEXT, moved) is None
    assert registry.get_sample_value(REVOKED, moved) is None
    assert registry.get_sample_value(REVOKED, root) == 0.0
    metrics.observe_crl("/never/seen.crl", None)  # unknown source: nothing to do, no error


def test_the_exporter_reports_crl_files_among_its_targets(
    tmp_path: Path, issuing_ca: CertificateAuthority, root_ca: CertificateAuthority
) -> None:
    leaf = lasting(issuing_ca, "svc", left=60 * DAY, lifetime=90 * DAY)
    published = tmp_path / "published"
    write(published / "svc.crt", [leaf.certificate])
    issuing = write_crl(published / "issuing.crl", issuing_ca, leaf.certificate,
                        this_update=NOW - DAY, next_update=NOW + 6 * DAY)  # fmt: skip
    root = write_crl(tmp_path / "root.pem", root_ca, this_update=NOW - DAY,
                     next_update=NOW - dt.timedelta(hours=1))  # fmt: skip
    registry = CollectorRegistry()
    registry.register(CertificateCollector([parse_source(str(published)), parse_source(str(root))]))
    found = scrape(registry)
    issuing_labels = (("issuer", "CN=Monitor Issuing"), ("source", str(issuing)))
    root_labels = (("issuer", "CN=Monitor Root"), ("source", str(root)))
    assert found[(NEXT, issuing_labels)] == (NOW + 6 * DAY).timestamp()
    assert found[(REVOKED, issuing_labels)] == 1.0
    assert found[(NEXT, root_labels)] == (NOW - dt.timedelta(hours=1)).timestamp()
    assert found[(REVOKED, root_labels)] == 0.0
    # both targets are up: a CRL file is a readable target, not an error
    assert found[("grpcsec_exporter_target_up", (("target", str(root)),))] == 1.0
    assert found[("grpcsec_exporter_read_errors_total", (("target", str(published)),))] == 0.0
    # re-read on the next scrape: a republished CRL moves the gauge
    write_crl(issuing, issuing_ca, this_update=NOW, next_update=NOW + 7 * DAY)
    again = scrape(registry)
    assert again[(NEXT, issuing_labels)] == (NOW + 7 * DAY).timestamp()
    assert again[(REVOKED, issuing_labels)] == 0.0
