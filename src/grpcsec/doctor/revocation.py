"""Revocation checks for the doctor: is the served, client or local certificate revoked by the
CRLs given with ``--crl``? Pure; no grpc, no I/O.

grpcio cannot check revocation on either side (no CRL or verification hook in Python; grpc/grpc
#11841), so a client never finds out that the server's certificate was revoked, and a client
whose certificate was revoked only sees "the server refuses the client certificate" from a
server that enforces CRLs. The doctor asks the question offline, on the path it already built
(:func:`grpcsec.doctor.chain.build_path`), with the same rule as ``grpcsec verify --crl``
(:func:`grpcsec.pki.crl_check.check_path_revocation`):

* revoked (the leaf or a CA of its chain) is a failure, ``server_cert_revoked`` or
  ``client_cert_revoked``, whose fix names the serial, the date and the reason;
* undetermined (no CRL of the issuer among those given, a CRL signed by another key, past its
  next update) is the ``revocation_undetermined`` warning: the doctor cannot tell, and a server
  that enforces CRLs would refuse every call of that issuer if its own copy were as stale.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509

from grpcsec.doctor.report import Check
from grpcsec.pki.crl import RevocationList
from grpcsec.pki.crl_check import RevocationStatus, check_path_revocation, revocation_words

__all__ = ["revocation_check"]


def revocation_check(
    name: str,
    role: str,
    path: Sequence[x509.Certificate],
    crls: Sequence[RevocationList],
    now: dt.datetime,
) -> Check:
    """The ``name`` check for a ``role`` (``server`` or ``client``) certificate whose path to
    its root (leaf first) is ``path``, against ``crls`` at ``now``."""
    verdict = check_path_revocation(path, crls, now=now)
    if verdict.status is RevocationStatus.GOOD:
        return Check.passed(name, verdict.message)
    if verdict.status is RevocationStatus.UNDETERMINED:
        return Check.warned(
            name,
            "revocation_undetermined",
            verdict.message,
            "pass the current CRL of each issuer with --crl (and its CA with --ca); "
            "republish a CRL past its next update (grpcsec ca crl)",
        )
    revoked = verdict.certificate
    entry = verdict.revocation
    assert revoked is not None and entry is not None  # noqa: S101 (set for every revoked verdict)
    what = "certificate" if revoked == path[0] else "intermediate CA and every leaf under it"
    return Check.failed(
        name,
        f"{role}_cert_revoked",
        verdict.message,
        f"reissue the {what} (grpcsec issue {role} ...) and deploy it; the CA revoked serial "
        f"{revoked.serial_number:x} {revocation_words(entry)}",
    )
