"""In-process metrics a grpcsec service registers on its own Prometheus registry. No grpc.

:class:`ServiceMetrics` creates the metric families on a ``CollectorRegistry`` and offers one
small typed method per event, for the layers that see the event: the credential source (which
certificate is served now), the rotation watcher (reloads), the rotation fetcher (one call per
new TLS connection), the authentication and authorization interceptors.
:func:`grpcsec.monitor.endpoint.serve_metrics` serves a registry over HTTP.

* ``grpcsec_tls_certificate_not_after_timestamp_seconds`` (gauge; role, subject_cn,
  issuer_cn, serial) and ``grpcsec_tls_certificate_not_before_timestamp_seconds`` (same);
* ``grpcsec_rotation_reload_successes_total`` (counter),
  ``grpcsec_rotation_reload_failures_total`` (counter; reason) and
  ``grpcsec_rotation_last_success_timestamp_seconds`` (gauge; the first load's time from start);
* ``grpcsec_tls_connections_total`` (counter);
* ``grpcsec_calls_allowed_total`` (counter) and ``grpcsec_calls_denied_total`` (counter; code,
  reason): every call the guard admitted or refused, with the
  :class:`~grpcsec.denial.DenialCode` (``unauthenticated``, ``permission_denied``,
  ``internal``) and :class:`~grpcsec.denial.DenialReason` of each refusal;
* ``grpcsec_authentication_failures_total`` (counter; reason): the ``unauthenticated`` part of
  the above, kept for existing dashboards;
* ``grpcsec_authorization_decisions_total`` (counter; policy, rule, decision);
* ``grpcsec_crl_next_update_timestamp_seconds`` and ``grpcsec_crl_revoked_entries`` (gauges;
  source, issuer): the CRLs this process enforces, with the names and labels of
  ``grpcsec exporter`` (:meth:`ServiceMetrics.observe_crl`; one series per source, replaced
  when that source's CRL changes).

* ``grpcsec_tls_certificate_source_info`` (gauge, always 1; role, source: ``file``,
  ``acme``...), ``grpcsec_tls_certificate_next_renewal_timestamp_seconds`` (gauge; role,
  source) and ``grpcsec_tls_certificate_renewals_total`` (counter; source, result ``success`` or
  ``failure``): where the served certificate comes from and how its renewal goes, for a
  source that renews by itself (:meth:`ServiceMetrics.observe_certificate_source`).

``role`` is ``server`` (the certificate this process serves) or ``client`` (the one it presents
to its upstreams); each role has one series, for the current certificate: the previous
certificate's series is removed when a new one is observed.

Label values are bounded so that a bug cannot explode the number of series: ``reason`` and
``decision`` must be short codes (``[a-z0-9_.-]``, up to 64 characters, e.g. ``missing_token``;
an enum's value is used), anything else is counted as ``other``; ``policy`` and ``rule`` are
names from the policy file (cut to 128 characters); a decision without a matching rule (the
default) has ``rule=""``. The methods never raise, so they are safe on grpcio's threads.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import threading
from typing import Any

from cryptography import x509
from prometheus_client import CollectorRegistry, Counter, Gauge

from grpcsec.monitor.exporter import (
    CRL_LABELS,
    CRL_NEXT_UPDATE,
    CRL_NEXT_UPDATE_HELP,
    CRL_REVOKED,
    CRL_REVOKED_HELP,
)
from grpcsec.pki import CertificateInfo
from grpcsec.pki.crl import RevocationList

__all__ = ["ServiceMetrics"]

_CODE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")
OTHER = "other"
_SERIES_KEPT = 4096
"""Labelled children remembered per decision key (bounded; a policy has few rules)."""


def _code(value: str | enum.Enum) -> str:
    text = value.value if isinstance(value, enum.Enum) else value
    text = str(text).strip().lower()
    return text if _CODE.match(text) else OTHER


def _name(value: str | None) -> str:
    return "" if value is None else str(value)[:128]


def _info(certificate: x509.Certificate | CertificateInfo) -> CertificateInfo:
    return (
        certificate if isinstance(certificate, CertificateInfo) else CertificateInfo.of(certificate)
    )


class ServiceMetrics:
    """The metric families of one grpcsec service, registered on ``registry`` (module
    docstring). Registering twice on one registry raises ``ValueError`` (duplicate names):
    create one per registry and share it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        labels = ("role", "subject_cn", "issuer_cn", "serial")
        self._not_after = Gauge(
            "grpcsec_tls_certificate_not_after_timestamp_seconds",
            "Not-after (expiry) of the certificate this process uses, as a Unix timestamp.",
            labels,
            registry=registry,
        )
        self._not_before = Gauge(
            "grpcsec_tls_certificate_not_before_timestamp_seconds",
            "Not-before of the certificate this process uses, as a Unix timestamp.",
            labels,
            registry=registry,
        )
        self._reload_successes = Counter(
            "grpcsec_rotation_reload_successes",
            "Certificate reloads that were validated and swapped in.",
            registry=registry,
        )
        self._reload_failures = Counter(
            "grpcsec_rotation_reload_failures",
            "Certificate reloads that were refused; the last good certificate kept serving.",
            ("reason",),
            registry=registry,
        )
        self._last_success = Gauge(
            "grpcsec_rotation_last_success_timestamp_seconds",
            "When the last reload succeeded, as a Unix timestamp (0: none yet).",
            registry=registry,
        )
        self._connections = Counter(
            "grpcsec_tls_connections",
            "New TLS connections (handshakes started; the credential fetcher sees each one).",
            registry=registry,
        )
        self._authentication_failures = Counter(
            "grpcsec_authentication_failures",
            "Calls refused because the caller could not be authenticated.",
            ("reason",),
            registry=registry,
        )
        self._calls_allowed = Counter(
            "grpcsec_calls_allowed",
            "Calls that passed every check (client certificate, token, policy).",
            registry=registry,
        )
        self._calls_denied = Counter(
            "grpcsec_calls_denied",
            "Calls refused, by status code and denial reason.",
            ("code", "reason"),
            registry=registry,
        )
        self._authorization_decisions = Counter(
            "grpcsec_authorization_decisions",
            "Authorization decisions by policy, matching rule and decision.",
            ("policy", "rule", "decision"),
            registry=registry,
        )
        self._crl_next_update = Gauge(
            CRL_NEXT_UPDATE, CRL_NEXT_UPDATE_HELP, CRL_LABELS, registry=registry
        )
        self._crl_revoked = Gauge(CRL_REVOKED, CRL_REVOKED_HELP, CRL_LABELS, registry=registry)
        self._source = Gauge(
            "grpcsec_tls_certificate_source_info",
            "Where the certificate this process uses comes from (file, acme, ...); always 1.",
            ("role", "source"),
            registry=registry,
        )
        self._next_renewal = Gauge(
            "grpcsec_tls_certificate_next_renewal_timestamp_seconds",
            "When the certificate's own source plans to renew it, as a Unix timestamp.",
            ("role", "source"),
            registry=registry,
        )
        self._renewals = Counter(
            "grpcsec_tls_certificate_renewals",
            "Renewals the certificate's source attempted, by result (success, failure).",
            ("source", "result"),
            registry=registry,
        )
        self._decision_series: dict[tuple[object, ...], Any] = {}
        self._lock = threading.Lock()
        self._current: dict[str, tuple[str, str, str, str]] = {}
        self._crls: dict[str, tuple[tuple[Gauge, tuple[str, str]], ...]] = {}

    # -- certificates ------------------------------------------------------------------------
    def _observe(self, role: str, certificate: x509.Certificate | CertificateInfo | None) -> None:
        info = None if certificate is None else _info(certificate)
        with self._lock:
            previous = self._current.pop(role, None)
            if previous is not None:
                self._not_after.remove(*previous)
                self._not_before.remove(*previous)
            if info is None:
                return
            labels = (role, info.common_name or "", info.issuer_common_name or "", info.serial)
            self._not_after.labels(*labels).set(info.not_after.timestamp())
            self._not_before.labels(*labels).set(info.not_before.timestamp())
            self._current[role] = labels

    def observe_serving_certificate(
        self, certificate: x509.Certificate | CertificateInfo | None
    ) -> None:
        """The leaf this server now serves (``None``: none; its series is removed)."""
        self._observe("server", certificate)

    def observe_client_certificate(
        self, certificate: x509.Certificate | CertificateInfo | None
    ) -> None:
        """The leaf this process now presents as a client (``None``: none)."""
        self._observe("client", certificate)

    def observe_certificate_source(
        self, source: str, *, role: str = "server", next_renewal: dt.datetime | None = None
    ) -> None:
        """The certificate of ``role`` comes from ``source`` (a short code: ``file``,
        ``acme``), which plans to renew it at ``next_renewal`` (``None``: no plan)."""
        source = _code(source)
        self._source.labels(role, source).set(1)
        if next_renewal is not None:
            self._next_renewal.labels(role, source).set(next_renewal.timestamp())

    def certificate_renewals(self, source: str, *, succeeded: int = 0, failed: int = 0) -> None:
        """``succeeded`` and ``failed`` more renewal attempts by ``source``."""
        if succeeded > 0:
            self._renewals.labels(_code(source), "success").inc(succeeded)
        if failed > 0:
            self._renewals.labels(_code(source), "failure").inc(failed)

    # -- revocation lists ----------------------------------------------------------------------
    def observe_crl(self, source: str, crl: RevocationList | None) -> None:
        """The CRL now in force from ``source`` (a file path; ``None``: none any more, its
        series are removed). A new CRL from the same source replaces the previous series, even
        when its issuer differs. A CRL without a next update has no next-update sample."""
        with self._lock:
            for gauge, labels in self._crls.pop(source, ()):
                gauge.remove(*labels)
            if crl is None:
                return
            labels = (source, crl.issuer.rfc4514_string())
            series = [(self._crl_revoked, labels)]
            self._crl_revoked.labels(*labels).set(len(crl.entries))
            if crl.next_update is not None:
                self._crl_next_update.labels(*labels).set(crl.next_update.timestamp())
                series.append((self._crl_next_update, labels))
            self._crls[source] = tuple(series)

    # -- rotation ----------------------------------------------------------------------------
    def reload_succeeded(self, now: dt.datetime) -> None:
        """A reload was validated and swapped in at ``now``."""
        self._reload_successes.inc()
        self._last_success.set(now.timestamp())

    def material_loaded(self, at: dt.datetime) -> None:
        """The material in service was loaded at ``at`` (the first load, at start): the
        last-success gauge shows its age from the first scrape instead of 0 (which an alert on
        ``time() - last_success`` would read as decades without a rotation). No counter moves."""
        self._last_success.set(at.timestamp())

    def reload_failed(self, reason: str | enum.Enum, count: int = 1) -> None:
        """``count`` reloads refused for ``reason`` (a short code, e.g. ``key_mismatch``)."""
        if count > 0:
            self._reload_failures.labels(_code(reason)).inc(count)

    def tls_connection(self, count: int = 1) -> None:
        """``count`` new TLS connections (cheap: one locked add; fetcher thread safe)."""
        if count > 0:
            self._connections.inc(count)

    # -- authentication and authorization ------------------------------------------------------
    def authentication_failed(self, reason: str | enum.Enum, count: int = 1) -> None:
        """``count`` calls refused by authentication, for ``reason`` (e.g. ``missing_token``)."""
        if count > 0:
            self._authentication_failures.labels(_code(reason)).inc(count)

    def calls_allowed(self, count: int = 1) -> None:
        """``count`` calls admitted by every check."""
        if count > 0:
            self._calls_allowed.inc(count)

    def calls_denied(self, code: str | enum.Enum, reason: str | enum.Enum, count: int = 1) -> None:
        """``count`` calls refused with ``code`` (``unauthenticated``...) for ``reason``."""
        if count > 0:
            self._calls_denied.labels(_code(code), _code(reason)).inc(count)

    def authorization_decision(
        self, policy: str, rule: str | None, decision: str | enum.Enum | bool
    ) -> None:
        """One decision of ``policy``: the matching ``rule`` (``None``: no rule matched, the
        default applied) and the ``decision`` (``allow``/``deny``, an enum, or a bool)."""
        key = (policy, rule, decision)
        series = self._decision_series.get(key)
        if series is None:  # once per (policy, rule, decision): this runs on every RPC
            if isinstance(decision, bool):
                decided = "allow" if decision else "deny"
            else:
                decided = _code(decision)
            series = self._authorization_decisions.labels(_name(policy), _name(rule), decided)
            if len(self._decision_series) >= _SERIES_KEPT:
                self._decision_series.clear()
            self._decision_series[key] = series
        series.inc()
