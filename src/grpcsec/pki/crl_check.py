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
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from grpcsec.pki.crl import Revocation, RevocationList
from grpcsec.pki.crl_set import CRLSet
from grpcsec.pki.crl_verdict import Outcome, judge_chain, revocation_words

__all__ = ["RevocationCheck", "RevocationStatus", "check_path_revocation", "revocation_words"]


RevocationStatus = Outcome
"""The verdict on a path: the servers' own :class:`~grpcsec.pki.crl_verdict.Outcome` (values
stable for ``--json``)."""


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


def check_path_revocation(
    path: Sequence[x509.Certificate], crls: Sequence[RevocationList], *, now: dt.datetime
) -> RevocationCheck:
    """Check ``path`` (leaf first, each issued by the next, the trust anchor last) against
    ``crls`` at ``now``; the first problem from the leaf up, else ``good``. The path must hold
    the leaf's issuer: a path of one certificate is ``undetermined``.

    The walk is the servers' own (:func:`grpcsec.pki.crl_verdict.judge_chain`, one matching of
    CRLs to issuers everywhere), with ``openssl verify -crl_check``'s rule that the leaf's
    issuer must have a CRL among those given."""
    if len(path) < 2:
        return RevocationCheck(
            status=RevocationStatus.UNDETERMINED,
            message="the certificate's issuer is unknown; its CRL cannot be checked",
            certificate=path[0] if path else None,
        )
    verdict = judge_chain(path[:-1], CRLSet.of(crls), path[-1:], now, require_leaf_issuer_crl=True)
    if verdict.outcome is Outcome.GOOD:
        count = len(crls)
        message = f"not revoked (checked against {count} CRL{'s' if count != 1 else ''})"
    else:
        message = verdict.message
    return RevocationCheck(
        status=verdict.outcome,
        message=message,
        certificate=verdict.certificate,
        revocation=verdict.revocation,
        crl=verdict.crl,
    )
