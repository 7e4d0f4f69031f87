"""Is any certificate of a verified path revoked, according to the CRLs given? No grpc.

This is the offline question ``grpcsec verify --crl`` and ``grpcsec doctor --crl`` ask: the
caller has already built a path (leaf first, each certificate issued by the next, a trusted
root last) and holds some CRLs. Each certificate below the root is looked up in the CRLs of
*its* issuer: CRLs naming that issuer are kept only when the issuer's key signed them
(:meth:`~grpcsec.pki.crl.RevocationList.is_signed_by`: a namesake CA's CRL is refused) and
when ``now`` is inside their window.

The answer is one of three, never a silent OK:

* ``revoked``: a usable CRL of the issuer lists the serial (the first such certificate from the
  leaf up is reported, with the revocation date and reason);
* ``undetermined``: the leaf's issuer has no CRL among those given, or every CRL naming an
  issuer is wrongly signed, expired or not yet valid (``openssl verify -crl_check`` refuses the
  same cases);
* ``good``: otherwise.

The leaf always needs its issuer's CRL once CRLs are given (like ``-crl_check``); an
intermediate is checked when a CRL naming its issuer is given (``-crl_check_all`` would demand
one for every level). Not checked: delta CRLs, indirect CRLs, issuing-distribution-point
scopes and OCSP.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from grpcsec.pki.crl import Revocation, RevocationList

__all__ = ["RevocationCheck", "RevocationStatus", "check_path_revocation", "revocation_words"]


class RevocationStatus(enum.Enum):
    """The verdict on a path. Values are stable (``--json``)."""

    GOOD = "good"
    REVOKED = "revoked"
    UNDETERMINED = "undetermined"


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationCheck:
    """The verdict, the certificate it is about (``None`` when good), and a one-line message.

    ``revocation`` and ``crl`` are the entry and the CRL that revoked it (``revoked`` only).
    """

    status: RevocationStatus
    message: str
    certificate: x509.Certificate | None = None
    revocation: Revocation | None = None
    crl: RevocationList | None = None


def _moment(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%SZ")


def _what(certificate: x509.Certificate, position: int) -> str:
    subject = certificate.subject.rfc4514_string() or "(empty subject)"
    kind = "the certificate" if position == 0 else "intermediate"
    return f"{kind} '{subject}' (serial {certificate.serial_number:x})"


def revocation_words(revocation: Revocation) -> str:
    """``"on 2030-01-01 00:00:00Z for key_compromise"`` (reason ``unspecified`` when none)."""
    reason = "unspecified" if revocation.reason is None else revocation.reason.value
    return f"on {_moment(revocation.revoked_at)} for {reason}"


def _unusable(crl: RevocationList, now: dt.datetime) -> str | None:
    problem = crl.window_problem(now)
    if problem is None:
        return None
    advice = "publish a fresh one" if crl.expired(now) else "check the clock"
    return f"CRL {crl.source}: {problem} (checked at {_moment(now)}); {advice}"


def _check_one(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    position: int,
    crls: Sequence[RevocationList],
    now: dt.datetime,
) -> RevocationCheck | None:
    named = [crl for crl in crls if crl.issuer == certificate.issuer]
    what = _what(certificate, position)
    issuer_name = certificate.issuer.rfc4514_string()
    if not named:
        if position > 0:
            return None
        return RevocationCheck(
            status=RevocationStatus.UNDETERMINED,
            certificate=certificate,
            message=f"no CRL of its issuer '{issuer_name}' was given; revocation of {what} "
            "cannot be determined",
        )
    signed = [crl for crl in named if crl.is_signed_by(issuer)]
    if not signed:
        sources = ", ".join(crl.source for crl in named)
        return RevocationCheck(
            status=RevocationStatus.UNDETERMINED,
            certificate=certificate,
            message=f"CRL {sources} names the issuer '{issuer_name}' but is not signed by its "
            "key (another CA with the same name?); revocation of "
            f"{what} cannot be determined",
        )
    usable = [crl for crl in signed if _unusable(crl, now) is None]
    if not usable:
        return RevocationCheck(
            status=RevocationStatus.UNDETERMINED,
            certificate=certificate,
            message=f"{_unusable(signed[0], now)}; revocation of {what} cannot be determined",
        )
    for crl in usable:
        entry = crl.lookup(certificate.serial_number)
        if entry is not None:
            return RevocationCheck(
                status=RevocationStatus.REVOKED,
                certificate=certificate,
                revocation=entry,
                crl=crl,
                message=f"{what} was revoked by '{issuer_name}' {revocation_words(entry)} "
                f"(CRL {crl.source})",
            )
    return None


def check_path_revocation(
    path: Sequence[x509.Certificate], crls: Sequence[RevocationList], *, now: dt.datetime
) -> RevocationCheck:
    """Check ``path`` (leaf first, each issued by the next, the trust anchor last) against
    ``crls`` at ``now``; the first problem from the leaf up, else ``good``. The path must hold
    the leaf's issuer: a path of one certificate is ``undetermined``."""
    if len(path) < 2:
        return RevocationCheck(
            status=RevocationStatus.UNDETERMINED,
            message="the certificate's issuer is unknown; its CRL cannot be checked",
            certificate=path[0] if path else None,
        )
    for position, (certificate, issuer) in enumerate(itertools.pairwise(path)):
        found = _check_one(certificate, issuer, position, crls, now)
        if found is not None:
            return found
    return RevocationCheck(
        status=RevocationStatus.GOOD,
        message=f"not revoked (checked against {len(crls)} CRL{'s' if len(crls) != 1 else ''})",
    )
