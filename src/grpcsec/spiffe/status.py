"""What a Workload API source reports: a frozen snapshot for ``/status`` and a Prometheus
collector that reads it at scrape time. No grpc import.

The snapshot holds public facts only (SPIFFE ID, serial, dates, trust domain names, the socket
path, connection state); never key material or PEM bodies. The collector exports:

* ``grpcsec_spiffe_workload_api_up``: 1 while the stream to the agent is open and has delivered
  an update, 0 while it is down (the last SVID keeps serving meanwhile);
* ``grpcsec_spiffe_last_update_timestamp_seconds``: when the agent last pushed an update;
* ``grpcsec_spiffe_svid_not_after_timestamp_seconds``: expiry of the SVID received last (the
  served certificate is in ``grpcsec_tls_certificate_not_after_timestamp_seconds``; they differ
  when a pushed SVID was refused).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from grpcsec.clock import rfc3339

__all__ = ["SpiffeCollector", "SpiffeStatus"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SpiffeStatus:
    """The Workload API source as it is now (see the module docstring)."""

    address: str
    connected: bool
    spiffe_id: str | None
    serial: str | None
    not_after: dt.datetime | None
    trust_domain: str | None
    trust_domains: tuple[str, ...]
    updates: int
    last_update: dt.datetime | None
    disconnected_since: dt.datetime | None
    last_error: str | None

    def to_json(self) -> dict[str, object]:
        """JSON-ready (times RFC 3339 UTC)."""
        return {
            "source": "spiffe",
            "workload_api": self.address,
            "connected": self.connected,
            "spiffe_id": self.spiffe_id,
            "serial": self.serial,
            "not_after": rfc3339(self.not_after),
            "trust_domain": self.trust_domain,
            "bundle_trust_domains": list(self.trust_domains),
            "updates": self.updates,
            "last_update": rfc3339(self.last_update),
            "disconnected_since": rfc3339(self.disconnected_since),
            "last_error": self.last_error,
        }


class SpiffeCollector(Collector):
    """Prometheus families read from ``status()`` at each scrape (nothing to pump)."""

    def __init__(self, status: Callable[[], SpiffeStatus]) -> None:
        self._status = status

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The three gauges of the module docstring, labelled with the socket path."""
        status = self._status()
        labels = ["workload_api"]
        up = GaugeMetricFamily(
            "grpcsec_spiffe_workload_api_up",
            "1 while the SPIFFE Workload API stream is open, 0 while it is down.",
            labels=labels,
        )
        up.add_metric([status.address], 1.0 if status.connected else 0.0)
        yield up
        last = GaugeMetricFamily(
            "grpcsec_spiffe_last_update_timestamp_seconds",
            "When the SPIFFE Workload API last pushed an SVID/bundle update (Unix time).",
            labels=labels,
        )
        when = status.last_update
        last.add_metric([status.address], when.timestamp() if when is not None else 0.0)
        yield last
        expiry = GaugeMetricFamily(
            "grpcsec_spiffe_svid_not_after_timestamp_seconds",
            "Not-after of the X.509 SVID the Workload API pushed last (Unix time).",
            labels=[*labels, "spiffe_id"],
        )
        if status.not_after is not None:
            labels_now = [status.address, status.spiffe_id or ""]
            expiry.add_metric(labels_now, status.not_after.timestamp())
        yield expiry
