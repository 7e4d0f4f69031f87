"""Carry the counters rotation and authentication keep into :class:`ServiceMetrics`. No grpc.

Rotation (:class:`~grpcsec.rotation.ReloadingServerTLS`) and the guard
(:class:`~grpcsec.interceptors.AuthStats`) count what happens as plain attributes, off the hot
path; :meth:`MetricsPump.pump` reads them and adds the differences since the last pump to the
Prometheus families: reloads (failures by kind), new TLS connections (fetcher calls), the
certificate in service, and authentication failures by reason. A background thread pumps every
``interval`` seconds, and once more when it stops, so a scrape is at most that far behind.

Sources are duck-typed (``status()`` / ``snapshot()``) to keep this module free of grpc.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from typing import Any, Protocol

from grpcsec.monitor.metrics import ServiceMetrics
from grpcsec.pki.validity import utcnow

__all__ = ["MetricsPump"]


class _RotationSource(Protocol):
    def status(self) -> Any: ...  # noqa: ANN401 (RotationStatus; rotation imports grpc)

    @property
    def material(self) -> Any: ...  # noqa: ANN401 (KeyPair of the certificate in service)


class _StatsSource(Protocol):
    def snapshot(self) -> dict[str, Any]: ...


class _RenewalSource(Protocol):
    renewals: int
    total_failures: int
    next_renewal: dt.datetime | None


class _CrlSource(Protocol):
    @property
    def state(self) -> tuple[Any, int]: ...  # (CRLSet, generation); revocation is grpc-free


class MetricsPump:
    """Adds what changed in ``rotation`` and ``stats`` to ``metrics`` (see the module doc)."""

    def __init__(
        self,
        metrics: ServiceMetrics,
        *,
        rotation: _RotationSource | None = None,
        stats: _StatsSource | None = None,
        crls: _CrlSource | None = None,
        renewal: _RenewalSource | None = None,
        source: str | None = None,
        interval: float = 1.0,
    ) -> None:
        self._metrics = metrics
        self._renewal = renewal
        self._source = source
        self._renewed = 0
        self._renewal_failures = 0
        self._rotation = rotation
        self._stats = stats
        self._crls = crls
        self._crl_generation: int | None = None
        self._crl_sources: set[str] = set()
        self._interval = interval
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._successes = 0
        self._failures = 0
        self._handshakes = 0
        self._allowed = 0
        self._denied: Counter[tuple[str, str]] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def pump(self, now: dt.datetime) -> None:
        """Add the differences since the last call (thread safe)."""
        with self._lock:
            if self._rotation is not None:
                self._pump_rotation(self._rotation, now)
            if self._stats is not None:
                self._pump_stats(self._stats)
            if self._crls is not None:
                self._pump_crls(self._crls)
            if self._source is not None:
                self._pump_source(self._source, self._renewal)

    def _pump_source(self, source: str, renewal: _RenewalSource | None) -> None:
        """Where the served certificate comes from, and its renewals (``renewal``: the agent
        of a source that renews by itself, e.g. ACME)."""
        planned = renewal.next_renewal if renewal is not None else None
        self._metrics.observe_certificate_source(source, next_renewal=planned)
        if renewal is None:
            return
        self._metrics.certificate_renewals(
            source,
            succeeded=renewal.renewals - self._renewed,
            failed=renewal.total_failures - self._renewal_failures,
        )
        self._renewed = max(self._renewed, renewal.renewals)
        self._renewal_failures = max(self._renewal_failures, renewal.total_failures)

    def _pump_crls(self, crls: _CrlSource) -> None:
        """The CRLs in service, each under its file, once per new generation."""
        current, generation = crls.state
        if generation == self._crl_generation:
            return
        self._crl_generation = generation
        sources = set()
        for crl in current.crls:
            self._metrics.observe_crl(crl.source, crl)
            sources.add(crl.source)
        for gone in self._crl_sources - sources:
            self._metrics.observe_crl(gone, None)
        self._crl_sources = sources

    def _pump_rotation(self, rotation: _RotationSource, now: dt.datetime) -> None:
        status = rotation.status()
        if self._generation is None and status.last_success_time is not None:
            self._metrics.material_loaded(status.last_success_time)
        if status.generation != self._generation:
            self._generation = status.generation
            self._metrics.observe_serving_certificate(rotation.material.leaf)
        if status.reload_successes > self._successes:
            for _ in range(status.reload_successes - self._successes):
                self._metrics.reload_succeeded(status.last_success_time or now)
            self._successes = status.reload_successes
        if status.reload_failures > self._failures:
            kind = status.last_failure.kind if status.last_failure else "other"
            self._metrics.reload_failed(kind, status.reload_failures - self._failures)
            self._failures = status.reload_failures
        handshakes = status.handshakes or 0
        self._metrics.tls_connection(handshakes - self._handshakes)
        self._handshakes = max(self._handshakes, handshakes)

    def _pump_stats(self, stats: _StatsSource) -> None:
        snapshot = stats.snapshot()
        allowed = int(snapshot.get("allowed", 0))
        self._metrics.calls_allowed(allowed - self._allowed)
        self._allowed = max(self._allowed, allowed)
        denied: Counter[tuple[str, str]] = Counter()
        for code in ("unauthenticated", "permission_denied"):
            for reason, count in snapshot.get(code, {}).items():
                denied[code, reason] = count
        denied["internal", "internal_error"] = int(snapshot.get("internal", 0))
        for (code, reason), count in denied.items():
            new = count - self._denied[code, reason]
            self._metrics.calls_denied(code, reason, new)
            if code == "unauthenticated":
                self._metrics.authentication_failed(reason, new)
        self._denied = denied

    def start(self) -> None:
        """Pump once now (so the first scrape sees the material in service), then every
        ``interval`` seconds on a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self.pump(utcnow())
        self._thread = threading.Thread(target=self._run, name="grpcsec-metrics", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.pump(utcnow())

    def stop(self) -> None:
        """Stop the thread after one last pump."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval + 5)
            self._thread = None
        self.pump(utcnow())
