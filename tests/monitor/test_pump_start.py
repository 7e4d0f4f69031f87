"""The rotation gauges are right from the first scrape (issue 16, item 5): the pump reads the
material a server loaded at start, before its first tick, without counting it as a reload."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prometheus_client import CollectorRegistry

from grpcsec.monitor import ServiceMetrics
from grpcsec.monitor.pump import MetricsPump
from grpcsec.pki import utcnow
from grpcsec.rotation import ReloadingServerTLS
from tests.conftest import Pki

LAST = "grpcsec_rotation_last_success_timestamp_seconds"


def test_the_first_scrape_sees_the_load_at_start_not_zero(pki: Pki, tmp_path: Path) -> None:
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    cert.write_bytes(pki.server.chain_pem())
    key.write_bytes(pki.server.key_pem())
    before = utcnow() - dt.timedelta(seconds=1)
    tls = ReloadingServerTLS.from_files(cert, key, interval=60.0)
    registry = CollectorRegistry()
    pump = MetricsPump(ServiceMetrics(registry), rotation=tls, interval=3600.0)
    # The negative control: a registry nobody pumped still says 0.
    assert registry.get_sample_value(LAST) == 0.0
    pump.start()
    try:
        loaded = registry.get_sample_value(LAST)
        assert loaded is not None
        assert before.timestamp() <= loaded <= utcnow().timestamp()
        assert registry.get_sample_value("grpcsec_rotation_reload_successes_total") == 0.0
    finally:
        pump.stop()
