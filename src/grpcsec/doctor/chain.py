"""Certificate facts the doctor judges, as grpcio's TLS stack would see them. Pure; no grpc.

* :func:`build_path` walks from the leaf to a trusted root the way OpenSSL/BoringSSL do
  without partial-chain trust: issuers come from the served chain or the trust bundle, and the
  walk must end at a **self-signed** certificate in the bundle. It remembers which certificates
  only the bundle supplied (a server that omits its intermediate works only for clients whose
  bundle happens to hold it) and where the walk got stuck. Time is not considered here.
* :func:`grpc_name_match` is grpcio's host check: DNS SANs (one wildcard label), IP SANs, and
  the subject CN only when there is no DNS SAN. URI SANs never match.
* :func:`has_usage`, :func:`weak_points`: extended key usage and key/signature strength.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from grpcsec.pki import CertificateInfo, host_matches
from grpcsec.pki.inspect import common_name
from grpcsec.pki.strength import describe, self_issued, weak_points
from grpcsec.pki.strength import issued_by as _issued_by

__all__ = [
    "PathResult",
    "build_path",
    "describe",
    "grpc_name_match",
    "has_usage",
    "lifetime_problem",
    "validity_problem",
    "weak_points",
]

_MAX_DEPTH = 10


def _find(child: x509.Certificate, pool: Sequence[x509.Certificate]) -> x509.Certificate | None:
    return next((c for c in pool if c != child and _issued_by(child, c)), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class PathResult:
    """The walk from a leaf towards a trust anchor.

    ``trusted``: it ended at a self-signed certificate of the bundle. Otherwise exactly one of
    ``missing_issuer`` (nobody supplied the issuer of ``path[-1]``), ``untrusted_root`` (the
    walk reached a self-signed certificate that is not in the bundle) or
    ``anchor_not_root`` (the bundle's certificate at the top is not self-signed and its own
    issuer is missing) says why not. ``from_bundle`` are the non-root certificates that only
    the bundle supplied.
    """

    trusted: bool
    path: tuple[x509.Certificate, ...]
    from_bundle: tuple[x509.Certificate, ...] = ()
    missing_issuer: x509.Name | None = None
    untrusted_root: x509.Certificate | None = None
    anchor_not_root: x509.Certificate | None = None


def build_path(
    leaf: x509.Certificate,
    served: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
) -> PathResult:
    """Walk from ``leaf`` through ``served`` (the rest of the served chain, any order) and
    ``anchors`` (the trust bundle) to a self-signed anchor."""
    path = [leaf]
    from_bundle: list[x509.Certificate] = []
    current = leaf
    for _ in range(_MAX_DEPTH):
        if self_issued(current):
            if current in anchors:
                return PathResult(trusted=True, path=tuple(path), from_bundle=tuple(from_bundle))
            return PathResult(trusted=False, path=tuple(path), untrusted_root=current)
        issuer = _find(current, anchors)
        if issuer is not None and issuer not in served:
            if not self_issued(issuer):
                from_bundle.append(issuer)
        else:
            issuer = _find(current, served)
        if issuer is None:
            stuck = current in anchors and current is not leaf
            return PathResult(
                trusted=False,
                path=tuple(path),
                from_bundle=tuple(from_bundle),
                missing_issuer=None if stuck else current.issuer,
                anchor_not_root=current if stuck else None,
            )
        path.append(issuer)
        current = issuer
    return PathResult(trusted=False, path=tuple(path), missing_issuer=current.issuer)


def grpc_name_match(certificate: x509.Certificate, name: str) -> str | None:
    """``"san"`` when ``name`` is among the DNS/IP SANs, ``"cn"`` when grpcio would accept it
    through its CN fallback (no DNS SAN at all, and the CN equals the name), else ``None``."""
    if host_matches(certificate, name):
        return "san"
    info = CertificateInfo.of(certificate)
    cn = common_name(certificate.subject)
    if not info.names.dns and cn is not None and cn.lower() == name.strip("[]").lower():
        return "cn"
    return None


def has_usage(certificate: x509.Certificate, usage: x509.ObjectIdentifier) -> bool:
    """Whether the extended key usage allows ``usage`` (no extension allows everything)."""
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages


def validity_problem(certificate: x509.Certificate, now: dt.datetime) -> str | None:
    """``"expired"`` or ``"not_yet_valid"`` at ``now``, else ``None``."""
    if now < certificate.not_valid_before_utc:
        return "not_yet_valid"
    if now > certificate.not_valid_after_utc:
        return "expired"
    return None


def lifetime_problem(certificate: x509.Certificate, now: dt.datetime) -> str | None:
    """A sentence when a valid certificate is due for renewal: past two thirds of its lifetime
    (the renewal point step and cert-manager use) or under 7 days left."""
    info = CertificateInfo.of(certificate)
    used = info.lifetime_used(now)
    left = info.time_left(now)
    if used >= 2 / 3 or left < dt.timedelta(days=7):
        days = left.total_seconds() / 86400
        return (
            f"{describe(certificate)} has used {used:.0%} of its lifetime "
            f"({days:.1f} days left, until {info.not_after:%Y-%m-%d %H:%M}Z)"
        )
    return None
