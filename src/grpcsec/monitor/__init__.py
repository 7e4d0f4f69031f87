"""Expiry monitoring: checks over files, directories and endpoints; Prometheus metrics. No grpc.

Modules: :mod:`~grpcsec.monitor.thresholds` (warning and critical points, the verdict on one
certificate), :mod:`~grpcsec.monitor.probe` (a TLS probe that reads an endpoint's served
chain), :mod:`~grpcsec.monitor.sources` (targets to certificates), :mod:`~grpcsec.monitor.check`
(``grpcsec check``: a report and an exit code), :mod:`~grpcsec.monitor.crls` (a CRL's next
update judged like an expiry), :mod:`~grpcsec.monitor.exporter` (a collector
for ``grpcsec exporter``) and :mod:`~grpcsec.monitor.metrics` (a service's own metrics).
See docs/monitoring.md for thresholds, exit codes, metric names and alert rules.
"""

from grpcsec.monitor.check import (
    CheckedCertificate,
    CheckExit,
    CheckReport,
    Finding,
    check_readings,
    check_targets,
)
from grpcsec.monitor.crls import CheckedCrl, CrlWindow, judge_crl
from grpcsec.monitor.endpoint import MetricsServer, serve_metrics
from grpcsec.monitor.exporter import CertificateCollector
from grpcsec.monitor.metrics import ServiceMetrics
from grpcsec.monitor.probe import EndpointError, ProbeOptions, Prober, ProbeResult, probe_endpoint
from grpcsec.monitor.sources import (
    CertificateSet,
    CrlFile,
    EndpointSource,
    ErrorKind,
    PathSource,
    Reading,
    Source,
    SourceError,
    parse_source,
    read_source,
    read_sources,
)
from grpcsec.monitor.thresholds import (
    DEFAULT_CRITICAL,
    DEFAULT_WARNING,
    Status,
    Threshold,
    Thresholds,
    Window,
    judge,
)

__all__ = [
    "DEFAULT_CRITICAL",
    "DEFAULT_WARNING",
    "CertificateCollector",
    "CertificateSet",
    "CheckExit",
    "CheckReport",
    "CheckedCertificate",
    "CheckedCrl",
    "CrlFile",
    "CrlWindow",
    "EndpointError",
    "EndpointSource",
    "ErrorKind",
    "Finding",
    "MetricsServer",
    "PathSource",
    "ProbeOptions",
    "ProbeResult",
    "Prober",
    "Reading",
    "ServiceMetrics",
    "Source",
    "SourceError",
    "Status",
    "Threshold",
    "Thresholds",
    "Window",
    "check_readings",
    "check_targets",
    "judge",
    "judge_crl",
    "parse_source",
    "probe_endpoint",
    "read_source",
    "read_sources",
    "serve_metrics",
]
