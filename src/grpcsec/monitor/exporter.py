"""A Prometheus collector that re-reads certificate files and endpoints when scraped. No grpc.

:class:`CertificateCollector` reads its targets (files, bundles, directories, endpoints; see
:mod:`grpcsec.monitor.sources`) on each scrape, or at most once per ``min_interval``, and
reports every certificate found. A target that fails is counted and reported as down; the
collector itself never fails a scrape because of a target.

Metrics (names follow x509-certificate-exporter and cert-manager: times are Unix-timestamp
gauges, so alerts do the arithmetic with ``time()``):

* ``grpcsec_cert_not_after_timestamp_seconds`` (gauge): not-after, per certificate;
* ``grpcsec_cert_not_before_timestamp_seconds`` (gauge): not-before, per certificate;
* ``grpcsec_cert_expired`` (gauge): 1 when past not-after, else 0;
* ``grpcsec_cert_lifetime_elapsed_ratio`` (gauge): the share of not-before..not-after elapsed
  (0 before not-before, above 1 once expired);
* ``grpcsec_crl_next_update_timestamp_seconds`` (gauge): a CRL's next update, per CRL file
  among the targets (a CRL without a next update has no sample);
* ``grpcsec_crl_revoked_entries`` (gauge): how many certificates that CRL revokes;
* ``grpcsec_exporter_target_up`` (gauge): 1 when the target was read without error, else 0;
* ``grpcsec_exporter_read_errors_total`` (counter): files that could not be read or parsed;
* ``grpcsec_exporter_probe_errors_total`` (counter): endpoint probes that failed.

Per-certificate labels: ``target`` (the argument: file, directory or ``HOST:PORT``),
``source`` (the file inside a directory, else the target), ``subject_cn``, ``issuer_cn`` and
``serial`` (lower-case hex, as ``grpcsec inspect`` shows it). Per-target metrics carry
``target`` only. Per-CRL labels: ``source`` (the file) and ``issuer`` (the issuer's DN, RFC
4514), the same as :meth:`grpcsec.monitor.ServiceMetrics.observe_crl`, so one alert rule
covers the exporter and a serving process. Every target's counters exist (at 0) from the start.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from grpcsec.monitor.probe import Prober
from grpcsec.monitor.sources import ErrorKind, Reading, Source, read_sources
from grpcsec.pki import utcnow
from grpcsec.text import get_logger

log = get_logger(__name__)

__all__ = ["CERTIFICATE_LABELS", "CRL_LABELS", "CertificateCollector"]

CERTIFICATE_LABELS = ("target", "source", "subject_cn", "issuer_cn", "serial")
CRL_LABELS = ("source", "issuer")
CRL_NEXT_UPDATE = "grpcsec_crl_next_update_timestamp_seconds"
CRL_REVOKED = "grpcsec_crl_revoked_entries"
CRL_NEXT_UPDATE_HELP = "A CRL's next update as a Unix timestamp (stale after it)."
CRL_REVOKED_HELP = "How many certificates a CRL revokes."

_NOT_AFTER = "grpcsec_cert_not_after_timestamp_seconds"
_NOT_BEFORE = "grpcsec_cert_not_before_timestamp_seconds"
_EXPIRED = "grpcsec_cert_expired"
_ELAPSED = "grpcsec_cert_lifetime_elapsed_ratio"
_UP = "grpcsec_exporter_target_up"
_READ_ERRORS = "grpcsec_exporter_read_errors"
_PROBE_ERRORS = "grpcsec_exporter_probe_errors"


def _families() -> dict[str, GaugeMetricFamily | CounterMetricFamily]:
    return {
        _NOT_AFTER: GaugeMetricFamily(
            _NOT_AFTER,
            "Certificate not-after time (expiry) as a Unix timestamp.",
            labels=CERTIFICATE_LABELS,
        ),
        _NOT_BEFORE: GaugeMetricFamily(
            _NOT_BEFORE,
            "Certificate not-before time as a Unix timestamp.",
            labels=CERTIFICATE_LABELS,
        ),
        _EXPIRED: GaugeMetricFamily(
            _EXPIRED, "1 when the certificate has expired, else 0.", labels=CERTIFICATE_LABELS
        ),
        _ELAPSED: GaugeMetricFamily(
            _ELAPSED,
            "Fraction of the certificate's lifetime (not-before to not-after) elapsed.",
            labels=CERTIFICATE_LABELS,
        ),
        CRL_NEXT_UPDATE: GaugeMetricFamily(
            CRL_NEXT_UPDATE, CRL_NEXT_UPDATE_HELP, labels=CRL_LABELS
        ),
        CRL_REVOKED: GaugeMetricFamily(CRL_REVOKED, CRL_REVOKED_HELP, labels=CRL_LABELS),
        _UP: GaugeMetricFamily(
            _UP, "1 when the target was read (or probed) without error, else 0.", labels=["target"]
        ),
        _READ_ERRORS: CounterMetricFamily(
            _READ_ERRORS,
            "Certificate files that could not be read or parsed.",
            labels=["target"],
        ),
        _PROBE_ERRORS: CounterMetricFamily(
            _PROBE_ERRORS,
            "Endpoint probes that failed (unreachable, TLS handshake failed).",
            labels=["target"],
        ),
    }


class CertificateCollector:
    """Reports the certificates of ``sources``, re-read on each scrape (or at most once per
    ``min_interval``). Register it on a ``CollectorRegistry``; thread-safe.

    ``clock`` gives "now" for the expired flag and the elapsed ratio (tests pass a fixed time).
    """

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        prober: Prober | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        min_interval: dt.timedelta = dt.timedelta(0),
    ) -> None:
        self._sources = tuple(sources)
        self._targets = tuple(dict.fromkeys(str(s) for s in self._sources))
        self._prober = prober or Prober()
        self._clock = clock
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._readings: list[Reading] | None = None
        self._read_at: dt.datetime | None = None
        self._read_errors = dict.fromkeys(self._targets, 0)
        self._probe_errors = dict.fromkeys(self._targets, 0)
        self._down: dict[str, tuple[str, ...]] = {}

    def describe(self) -> Iterable[Metric]:
        """The metric families, without samples (lets a registry refuse duplicate names)."""
        return list(_families().values())

    def refresh(self) -> list[Reading]:
        """Read every target now (or reuse a reading younger than ``min_interval``)."""
        with self._lock:
            return self._refresh(self._clock())

    def _refresh(self, now: dt.datetime) -> list[Reading]:
        fresh = (
            self._readings is not None
            and self._read_at is not None
            and self._min_interval > dt.timedelta(0)
            and dt.timedelta(0) <= now - self._read_at < self._min_interval
        )
        if fresh and self._readings is not None:
            return self._readings
        readings = read_sources(self._sources, prober=self._prober)
        for reading in readings:
            for error in reading.errors:
                counts = (
                    self._probe_errors if error.kind is ErrorKind.ENDPOINT else self._read_errors
                )
                counts[reading.target] = counts.get(reading.target, 0) + 1
        self._log_changes(readings)
        self._readings, self._read_at = readings, now
        return readings

    def _log_changes(self, readings: Sequence[Reading]) -> None:
        """Say why a target is down when it goes down or its reasons change, and when it is
        back; an unchanged failure is not repeated at every scrape."""
        for reading in readings:
            reasons = tuple(error.message for error in reading.errors)
            before = self._down.get(reading.target)
            if reasons and reasons != before:
                log.warning("target %s is down: %s", reading.target, "; ".join(reasons))
                self._down[reading.target] = reasons
            elif not reasons and before is not None:
                log.info("target %s is up again", reading.target)
                del self._down[reading.target]

    def collect(self) -> Iterable[Metric]:
        """Re-read (see :meth:`refresh`) and report."""
        with self._lock:
            now = self._clock()
            readings = self._refresh(now)
            read_errors = dict(self._read_errors)
            probe_errors = dict(self._probe_errors)
        families = _families()
        seen: set[tuple[str, ...]] = set()
        up: dict[str, bool] = dict.fromkeys(self._targets, True)
        for reading in readings:
            if reading.errors:
                up[reading.target] = False
            for entry in reading.sets:
                for info in entry.report.certificates:
                    labels = (
                        reading.target,
                        entry.origin,
                        info.common_name or "",
                        info.issuer_common_name or "",
                        info.serial,
                    )
                    if labels in seen:  # the same certificate twice in one file
                        continue
                    seen.add(labels)
                    label_list = list(labels)
                    families[_NOT_AFTER].add_metric(label_list, info.not_after.timestamp())
                    families[_NOT_BEFORE].add_metric(label_list, info.not_before.timestamp())
                    families[_EXPIRED].add_metric(label_list, 1.0 if now > info.not_after else 0.0)
                    families[_ELAPSED].add_metric(label_list, info.lifetime_used(now))
            for found in reading.crls:
                crl_labels = (found.origin, found.crl.issuer.rfc4514_string())
                if crl_labels in seen:  # the same issuer's CRL twice in one file
                    continue
                seen.add(crl_labels)
                if found.crl.next_update is not None:
                    families[CRL_NEXT_UPDATE].add_metric(
                        list(crl_labels), found.crl.next_update.timestamp()
                    )
                families[CRL_REVOKED].add_metric(list(crl_labels), float(len(found.crl.entries)))
        for target in self._targets:
            families[_UP].add_metric([target], 1.0 if up.get(target, False) else 0.0)
            families[_READ_ERRORS].add_metric([target], float(read_errors.get(target, 0)))
            families[_PROBE_ERRORS].add_metric([target], float(probe_errors.get(target, 0)))
        return list(families.values())
