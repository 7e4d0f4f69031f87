"""Is any certificate of a client's chain revoked? One pure function over values. No grpc.

:func:`judge_chain` walks the chain the client sent, leaf first, and stops at a trusted client
CA (an anchor), following issuers: for each certificate it finds the issuer certificate (a
certificate the client sent, or an anchor, that has the issuer's name *and* really signed it;
certificates sent but not on that path are ignored), then the CRL of that issuer in the
configured set (same issuer name, and the same key identifier when both carry one: a CRL of
another CA with the same name does not match). Then:

* no CRL naming that issuer in the set: the certificate is **not checked** (a configured set
  lists the CAs to check; docs/revocation.md says so);
* CRLs naming the issuer but none with its key identifier (another CA of the same name), or
  a CRL but no issuer certificate to check its signature with, a wrong signature, before its
  this-update or past its next-update (at ``now``): **undetermined**, naming the CRL and why;
* the serial is listed: **revoked**, naming the serial, date, reason and CRL.

A revocation anywhere in the chain wins over an undetermined certificate. The verdict carries
``recheck_at``: the earliest moment time alone could change it (a next update passing, a this
update arriving), so a cached verdict is judged again then.

Not checked here: the chain's path validation and dates (the TLS stack did them at the
handshake), delta CRLs, indirect CRLs (an issuer other than the CA), distribution points.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from grpcsec.clock import format_moment
from grpcsec.pki.crl import Revocation, RevocationList
from grpcsec.pki.crl_set import CRLSet
from grpcsec.pki.strength import issued_by
from grpcsec.text import inert

__all__ = ["Outcome", "Verdict", "judge_chain", "key_identifier", "revocation_words"]


class Outcome(enum.Enum):
    """What revocation checking found. Values are stable (logs, JSON)."""

    GOOD = "good"
    REVOKED = "revoked"
    UNDETERMINED = "undetermined"


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The result for one chain: ``message`` is for the server log (public facts only);
    ``checked`` counts the certificates looked up in a CRL."""

    outcome: Outcome
    message: str
    checked: int = 0
    recheck_at: dt.datetime | None = None
    certificate: x509.Certificate | None = None
    """The certificate the verdict is about (revoked or undetermined), else ``None``."""
    revocation: Revocation | None = None
    """The entry that revoked it (``revoked`` only)."""
    crl: RevocationList | None = None
    """The CRL that revoked it (``revoked`` only)."""

    def current(self, now: dt.datetime) -> bool:
        """Whether the verdict still holds at ``now`` (time alone has not changed it)."""
        return self.recheck_at is None or now < self.recheck_at


def key_identifier(certificate: x509.Certificate) -> bytes | None:
    """The certificate's subject key identifier, if it carries one."""
    try:
        ext = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return None
    return ext.value.digest


def _issuer_of(
    certificate: x509.Certificate,
    rest: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
) -> x509.Certificate | None:
    for candidate in (*rest, *anchors):
        if issued_by(certificate, candidate):
            return candidate
    return None


def _path(
    chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]
) -> list[tuple[x509.Certificate, x509.Certificate | None]]:
    """The leaf, then each issuer found in turn, up to a trusted CA: (certificate, its issuer
    or ``None``) pairs. Certificates the client sent that are not on that path are ignored."""
    steps: list[tuple[x509.Certificate, x509.Certificate | None]] = []
    current = chain[0] if chain else None
    while current is not None and current not in anchors and len(steps) < len(chain):
        others = [c for c in chain if c is not current]
        issuer = _issuer_of(current, others, anchors)
        steps.append((current, issuer))
        current = None if issuer is None or issuer in anchors else issuer
    return steps


def revocation_words(revocation: Revocation) -> str:
    """``"on 2030-01-01 00:00:00Z for key_compromise"`` (reason ``unspecified`` when none)."""
    reason = "unspecified" if revocation.reason is None else revocation.reason.value
    return f"on {format_moment(revocation.revoked_at)} for {reason}"


def _leaf_role(certificate: x509.Certificate) -> str:
    """``client``, ``server`` or plain ``certificate`` by the leaf's extended key usage: the same
    walk judges clients on a server and servers in ``doctor``."""
    try:
        usages = set(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return "certificate"
    client = ExtendedKeyUsageOID.CLIENT_AUTH in usages
    server = ExtendedKeyUsageOID.SERVER_AUTH in usages
    if client == server:
        return "certificate"
    return "client certificate" if client else "server certificate"


def _who(certificate: x509.Certificate, position: int) -> str:
    role = _leaf_role(certificate) if position == 0 else "intermediate CA certificate"
    subject = inert(certificate.subject.rfc4514_string())
    return f"{role} serial {certificate.serial_number:x} ({subject})"


def _crl_name(crl: RevocationList) -> str:
    return f"CRL {crl.source} (issuer {inert(crl.issuer.rfc4514_string())}, number {crl.number})"


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


_NAMESAKE = (
    "the CRL is not signed by the issuer's key (its key identifier names another CA with the "
    "same name)"
)


def _unusable(
    crls: CRLSet, crl: RevocationList, issuer: x509.Certificate | None, now: dt.datetime
) -> str | None:
    """Why ``crl`` cannot decide about a certificate of ``issuer`` at ``now`` (``None``: it can)."""
    if issuer is None:
        return "no certificate of its issuer (sent or trusted) to check the CRL with"
    if not crls.signed_by(crl, issuer):
        return "the CRL is not signed by the issuer's key"
    return crl.window_problem(now)


def judge_chain(
    chain: Sequence[x509.Certificate],
    crls: CRLSet,
    anchors: Sequence[x509.Certificate],
    now: dt.datetime,
    *,
    require_leaf_issuer_crl: bool = False,
) -> Verdict:
    """The verdict for ``chain`` (leaf first) at ``now`` (module docstring).

    ``require_leaf_issuer_crl`` is ``openssl verify -crl_check``'s rule, which ``verify --crl``
    and ``doctor --crl`` follow: the leaf's issuer must have a CRL among those given, else the
    verdict is undetermined. A server checks only the issuers its configured set covers."""
    undetermined: str | None = None
    undetermined_about: x509.Certificate | None = None
    recheck: dt.datetime | None = None
    checked = 0
    for position, (certificate, issuer) in enumerate(_path(chain, anchors)):
        key_id = key_identifier(issuer) if issuer is not None else None
        crl = crls.for_issuer(certificate.issuer, key_id)
        namesake = crls.names_for(certificate.issuer)
        if crl is None and not namesake:
            if require_leaf_issuer_crl and position == 0:
                issuer_name = inert(certificate.issuer.rfc4514_string())
                return Verdict(
                    outcome=Outcome.UNDETERMINED,
                    message=f"no CRL of its issuer '{issuer_name}' was given; revocation of "
                    f"{_who(certificate, position)} cannot be determined",
                    certificate=certificate,
                )
            continue
        who = _who(certificate, position)
        problem: str | None
        if crl is None:  # CRLs name this issuer, but another key issued them
            crl, problem = namesake[0], _NAMESAKE
        else:
            problem = _unusable(crls, crl, issuer, now)
        if problem is not None:
            if crl.not_yet_valid(now):
                recheck = _earliest(recheck, crl.this_update)
            if undetermined is None:  # the first problem is the one reported
                undetermined = f"revocation of {who} undetermined: {_crl_name(crl)}: {problem}"
                undetermined_about = certificate
            continue
        checked += 1
        recheck = _earliest(recheck, crl.next_update)
        entry = crl.lookup(certificate.serial_number)
        if entry is not None:
            return Verdict(
                outcome=Outcome.REVOKED,
                message=f"{who} was revoked {revocation_words(entry)} according to "
                f"{_crl_name(crl)}",
                checked=checked,
                certificate=certificate,
                revocation=entry,
                crl=crl,
            )
    if undetermined is not None:
        return Verdict(
            outcome=Outcome.UNDETERMINED,
            message=undetermined,
            checked=checked,
            recheck_at=recheck,
            certificate=undetermined_about,
        )
    return Verdict(
        outcome=Outcome.GOOD,
        message=f"not revoked ({checked} certificate(s) checked)",
        checked=checked,
        recheck_at=recheck,
    )
