"""The expiry check: read targets, judge every certificate at ``now``, and decide an exit code.

:func:`check_targets` is what ``grpcsec check`` (and the demo's closing table) runs. The result,
:class:`CheckReport`, lists every certificate sorted by time left (most urgent first), the
findings about whole files, and the targets that could not be read or reached. Nothing here
prints or reads the clock.

Exit codes (:class:`CheckExit`, stable, documented in docs/monitoring.md) are the *highest* that
applies, so a script that sees 2 knows that every target was read:

* 0 — every certificate is fine;
* 1 — at least one reached the warning threshold;
* 2 — at least one reached the critical threshold, expired, or is not valid yet; or a trust
  bundle whose every root is within the critical window;
* 3 — a file or directory could not be read or parsed;
* 4 — an endpoint could not be reached or its TLS handshake failed;
* 64 — bad usage (an unknown option, a bad threshold). Not 2, as elsewhere in grpcsec,
  because 2 means critical here; 64 is ``EX_USAGE`` from BSD's sysexits.h.

Certificate revocation lists found among the targets (``grpcsec check ca.crl``, or in a
directory) are judged by their next update with the same thresholds
(:mod:`grpcsec.monitor.crls`): a CRL past its next update is critical, like an expired
certificate. They are listed under ``crls`` in ``--json``.

Trust bundles (files of self-signed CA certificates only) are judged as a whole: a root that
expires next to another that stays valid is the normal state of a CA rotation, not an
outage. Each root is still listed with its own status, but it counts with the status of the
bundle's best root; and when even that one is within the critical window, the bundle gets a
finding of its own ("every root expires within the critical window").
"""

from __future__ import annotations

import datetime as dt
import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass

from grpcsec.monitor.crls import CheckedCrl, judge_crl
from grpcsec.monitor.probe import ProbeOptions, Prober
from grpcsec.monitor.sources import (
    CertificateSet,
    EndpointSource,
    ErrorKind,
    PathSource,
    Reading,
    Source,
    SourceError,
    parse_source,
    read_sources,
)
from grpcsec.monitor.thresholds import Status, Thresholds, judge
from grpcsec.pki import CertificateInfo, format_duration

__all__ = [
    "CheckExit",
    "CheckReport",
    "CheckedCertificate",
    "Finding",
    "check_readings",
    "check_targets",
]


class CheckExit(enum.IntEnum):
    """``grpcsec check`` exit codes (see the module docstring)."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNREADABLE = 3
    UNREACHABLE = 4
    USAGE = 64


_WORDS = {
    CheckExit.OK: "ok",
    CheckExit.WARNING: "warning",
    CheckExit.CRITICAL: "critical",
    CheckExit.UNREADABLE: "unreadable",
    CheckExit.UNREACHABLE: "unreachable",
    CheckExit.USAGE: "usage",
}


def _rfc3339(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedCertificate:
    """One certificate and its verdict.

    ``source`` is the file (inside a directory target) or the endpoint; ``position`` its index
    in the file or served chain (0 first); ``role`` is ``leaf``, ``intermediate`` or ``root``.
    ``status`` is its own verdict; ``effective`` is what counts for the exit code (different
    only for a root in a trust bundle that has a better root).
    """

    target: str
    source: str
    position: int
    role: str
    served: bool
    info: CertificateInfo
    status: Status
    effective: Status
    reason: str

    def time_left(self, now: dt.datetime) -> dt.timedelta:
        """Time until not-after (negative once expired)."""
        return self.info.time_left(now)

    def to_json(self, now: dt.datetime) -> dict[str, object]:
        """A JSON-ready dict (times as RFC 3339 UTC)."""
        info = self.info
        return {
            "target": self.target,
            "source": self.source,
            "position": self.position,
            "role": self.role,
            "served": self.served,
            "status": self.status.value,
            "effective_status": self.effective.value,
            "reason": self.reason,
            "subject": info.subject,
            "common_name": info.common_name,
            "issuer": info.issuer,
            "issuer_common_name": info.issuer_common_name,
            "serial": info.serial,
            "not_before": _rfc3339(info.not_before),
            "not_after": _rfc3339(info.not_after),
            "seconds_left": int(info.time_left(now).total_seconds()),
            "time_left": format_duration(info.time_left(now)),
            "lifetime_used": round(info.lifetime_used(now), 4),
            "is_ca": info.is_ca,
            "fingerprint_sha256": info.fingerprint_sha256,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """Something about a whole file or chain. ``status`` OK means informational (it does not
    change the exit code), e.g. a served chain of which only the leaf could be read."""

    target: str
    source: str
    status: Status
    message: str

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "target": self.target,
            "source": self.source,
            "status": self.status.value,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckReport:
    """Everything one check found; :attr:`exit_code` is the answer in one number."""

    now: dt.datetime
    thresholds: Thresholds
    targets: tuple[str, ...]
    certificates: tuple[CheckedCertificate, ...]
    findings: tuple[Finding, ...]
    errors: tuple[SourceError, ...]
    crls: tuple[CheckedCrl, ...] = ()

    @property
    def exit_code(self) -> CheckExit:
        """The highest code that applies (module docstring)."""
        code = CheckExit.OK
        for severity in (
            *(c.effective.severity for c in self.certificates),
            *(f.status.severity for f in self.findings),
            *(c.status.severity for c in self.crls),
        ):
            code = max(code, CheckExit(severity))
        for error in self.errors:
            kind = CheckExit.UNREADABLE if error.kind is ErrorKind.READ else CheckExit.UNREACHABLE
            code = max(code, kind)
        return code

    @property
    def status(self) -> str:
        """The exit code as a word: ok, warning, critical, unreadable or unreachable."""
        return _WORDS[self.exit_code]

    def counts(self) -> dict[str, int]:
        """How many certificates have each (own) status."""
        result = {status.value: 0 for status in Status}
        for checked in self.certificates:
            result[checked.status.value] += 1
        return result

    def to_json(self) -> dict[str, object]:
        """The whole report as a JSON-ready dict (the ``--json`` output)."""
        return {
            "now": _rfc3339(self.now),
            "status": self.status,
            "exit_code": int(self.exit_code),
            "thresholds": self.thresholds.to_json(),
            "targets": list(self.targets),
            "counts": self.counts(),
            "certificates": [c.to_json(self.now) for c in self.certificates],
            "crls": [c.to_json(self.now) for c in self.crls],
            "findings": [f.to_json() for f in self.findings],
            "errors": [e.to_json() for e in self.errors],
        }


def _role(info: CertificateInfo) -> str:
    if not info.is_ca:
        return "leaf"
    return "root" if info.self_signed else "intermediate"


def _judge_set(
    entry: CertificateSet, thresholds: Thresholds, now: dt.datetime
) -> tuple[list[CheckedCertificate], list[Finding]]:
    verdicts = [judge(info, thresholds, now) for info in entry.report.certificates]
    findings: list[Finding] = []
    bundle_status: Status | None = None
    if entry.is_trust_bundle:
        best = min(verdicts, key=lambda v: v[0].severity)[0]
        bundle_status = best
        if best.severity >= Status.CRITICAL.severity:
            last = max(info.not_after for info in entry.report.certificates)
            every = "the only root" if len(verdicts) == 1 else "every root"
            findings.append(
                Finding(
                    target=entry.target,
                    source=entry.origin,
                    status=Status.CRITICAL,
                    message=(
                        f"trust bundle: {every} expires within the critical window "
                        f"(the last on {last:%Y-%m-%d %H:%M}Z); add the new root before then"
                        if last >= now
                        else f"trust bundle: {every} has expired; it trusts nothing"
                    ),
                )
            )
    if entry.note is not None:
        findings.append(
            Finding(target=entry.target, source=entry.origin, status=Status.OK, message=entry.note)
        )
    checked = []
    for position, (info, (status, why)) in enumerate(
        zip(entry.report.certificates, verdicts, strict=True)
    ):
        effective, reason = status, why
        if bundle_status is not None and bundle_status.severity < status.severity:
            effective = bundle_status
            reason = f"{why}; the bundle has a root that lasts longer"
        checked.append(
            CheckedCertificate(
                target=entry.target,
                source=entry.origin,
                position=position,
                role=_role(info),
                served=entry.served,
                info=info,
                status=status,
                effective=effective,
                reason=reason,
            )
        )
    return checked, findings


def check_readings(
    readings: Sequence[Reading], thresholds: Thresholds, now: dt.datetime
) -> CheckReport:
    """Judge what was already read (see :func:`grpcsec.monitor.sources.read_sources`)."""
    certificates: list[CheckedCertificate] = []
    findings: list[Finding] = []
    errors: list[SourceError] = []
    crls: list[CheckedCrl] = []
    for reading in readings:
        errors.extend(reading.errors)
        for entry in reading.sets:
            checked, found = _judge_set(entry, thresholds, now)
            certificates.extend(checked)
            findings.extend(found)
        crls.extend(judge_crl(found_crl, thresholds, now) for found_crl in reading.crls)
    certificates.sort(key=lambda c: (c.info.not_after, c.source, c.position))
    far = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    crls.sort(key=lambda c: (c.crl.next_update or far, c.source))
    return CheckReport(
        now=now,
        thresholds=thresholds,
        targets=tuple(r.target for r in readings),
        certificates=tuple(certificates),
        findings=tuple(findings),
        errors=tuple(errors),
        crls=tuple(crls),
    )


def check_targets(
    targets: Sequence[str | os.PathLike[str] | Source],
    thresholds: Thresholds,
    now: dt.datetime,
    *,
    probe: ProbeOptions | Prober | None = None,
) -> CheckReport:
    """Check certificate files, bundles, directories and ``HOST:PORT`` endpoints at ``now``.

    Strings are classified by :func:`grpcsec.monitor.sources.parse_source`. Per-target problems
    (unreadable files, garbage, refused connections) are reported in
    :attr:`CheckReport.errors`, never raised. Raises
    :class:`~grpcsec.errors.ConfigurationError` only for unusable arguments: an empty target,
    or a probe client certificate that cannot be loaded.
    """
    prober = probe if isinstance(probe, Prober) else Prober(probe)
    sources = [
        t if isinstance(t, (PathSource, EndpointSource)) else parse_source(t) for t in targets
    ]
    return check_readings(read_sources(sources, prober=prober), thresholds, now)
