"""Revoking what a CA directory issued, and publishing its CRL.

:func:`revoke` adds a revocation to the directory's ``revoked.json``
(:mod:`~grpcsec.pki.registry`); :func:`publish_crl` signs a CRL of every recorded revocation
with the next CRL number and replaces the output file atomically. Both run under the
directory's lock, so concurrent runs neither lose a revocation nor reuse a CRL number.

A certificate is revoked only when it provably belongs to the CA: its issuer is the CA's
subject, its authority key identifier (when both carry one) is the CA's subject key
identifier, and its signature verifies with the CA's public key. A CA with the same name but
another key is therefore refused. A serial given without a certificate must be in
``issued.jsonl``. A certificate that passes those checks but was issued before records were
kept (or written by a library caller without :func:`~grpcsec.pki.registry.write_issued`) is
revoked all the same: the signature proves the CA issued it.

Not checked: whether the certificate has expired (revoking it is harmless), and whether the
CRL reaches the servers that need it (see docs/revocation.md).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from grpcsec.errors import ConfigurationError, MaterialError
from grpcsec.pki.authority import CertificateAuthority
from grpcsec.pki.crl import (
    Revocation,
    RevocationList,
    RevocationReason,
    build_crl,
    crl_pem,
    load_crl,
)
from grpcsec.pki.files import CERT_MODE, PendingFile, write_files
from grpcsec.pki.layout import CA_CERT, CA_KEY
from grpcsec.pki.registry import ISSUED_FILE, REVOKED_FILE, CaRecords, ca_key_id

__all__ = ["RevokeResult", "issued_by_problem", "publish_crl", "revoke"]


def _key_id(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> bytes | None:
    try:
        value = certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    if isinstance(value, x509.SubjectKeyIdentifier):
        return value.digest
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return value.key_identifier
    return None  # pragma: no cover (only the two kinds are asked for)


def issued_by_problem(certificate: x509.Certificate, ca: x509.Certificate) -> str | None:
    """Why ``certificate`` was not issued by ``ca`` (name, key identifier, signature), or
    ``None`` when it was. The CA's own certificate is refused too: a CA does not revoke itself
    (its parent does)."""
    issuer = certificate.issuer.rfc4514_string()
    ca_name = ca.subject.rfc4514_string()
    if certificate == ca:
        return f"it is the CA's own certificate ({ca_name}); revoke it with its parent CA"
    if certificate.issuer != ca.subject:
        return f"it was issued by {issuer}, not by this CA ({ca_name})"
    aki = _key_id(certificate, x509.AuthorityKeyIdentifier)
    ski = _key_id(ca, x509.SubjectKeyIdentifier)
    if aki is not None and ski is not None and aki != ski:
        return (
            f"its authority key identifier {aki.hex()} is not this CA's key ({ski.hex()}): "
            f"another CA named {issuer} issued it"
        )
    try:
        certificate.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return f"its signature does not verify with this CA's key: another CA named {issuer}"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class RevokeResult:
    """What :func:`revoke` did: the revocation in force, the subject when known, whether it
    was already there (nothing changed) and whether the serial was in ``issued.jsonl``."""

    revocation: Revocation
    subject: str | None
    already_revoked: bool
    recorded: bool

    def to_json(self) -> dict[str, object]:
        """JSON-ready (serial hex, time RFC 3339)."""
        return {
            **self.revocation.to_json(),
            "subject": self.subject,
            "already_revoked": self.already_revoked,
            "recorded": self.recorded,
        }


def revoke(
    ca_dir: str | os.PathLike[str],
    ca_certificate: x509.Certificate,
    *,
    certificate: x509.Certificate | None = None,
    serial: int | None = None,
    reason: RevocationReason | None = None,
    now: dt.datetime,
    source: str | Path | None = None,
) -> RevokeResult:
    """Record the revocation of ``certificate`` (checked to be issued by ``ca_certificate``;
    ``source`` names its file in errors) or of ``serial`` (which must be recorded as issued),
    at ``now`` (to the second, as a CRL records it) with ``reason``. Revoking a serial that is
    already revoked changes nothing and says so (``already_revoked``). Needs only the CA
    certificate, not its key."""
    if (certificate is None) == (serial is None):
        raise ConfigurationError("revoke needs a certificate file or a serial, not both")
    records = CaRecords(ca_dir, ca_key_id(ca_certificate))
    if certificate is not None:
        problem = issued_by_problem(certificate, ca_certificate)
        if problem is not None:
            raise MaterialError(f"cannot revoke: {problem}", path=source)
        serial = certificate.serial_number
    assert serial is not None  # noqa: S101 (one of the two was given)
    with records.locked():
        state = records.state()
        issued = records.issued()
        record = issued.get(serial)
        subject = (
            certificate.subject.rfc4514_string()
            if certificate is not None
            else (record.subject if record is not None else state.subjects.get(serial))
        )
        existing = state.revocations.get(serial)
        if existing is not None:
            return RevokeResult(
                revocation=existing,
                subject=subject,
                already_revoked=True,
                recorded=record is not None,
            )
        if certificate is None and record is None:
            raise MaterialError(
                f"unknown serial {serial:x}: this CA has no record of issuing it (pass the "
                "certificate file instead if it was issued before records were kept)",
                path=records.issued_path,
            )
        revocation = Revocation(serial=serial, revoked_at=now.replace(microsecond=0), reason=reason)
        records.save_state(state.with_revocation(revocation, subject))
    return RevokeResult(
        revocation=revocation, subject=subject, already_revoked=False, recorded=record is not None
    )


def publish_crl(
    ca_dir: str | os.PathLike[str],
    ca: CertificateAuthority,
    out: str | os.PathLike[str],
    *,
    lifetime: dt.timedelta,
    now: dt.datetime,
) -> RevocationList:
    """Sign a CRL of every revocation recorded in ``ca_dir`` with the next CRL number (one
    more than the last published, persisted before the file is written, so a number is never
    used twice even if writing fails), valid from ``now`` for ``lifetime``, and replace
    ``out`` atomically (0644). Returns the CRL as read back."""
    target = Path(out)
    reserved = {CA_CERT, CA_KEY, ISSUED_FILE, REVOKED_FILE}
    if target.name in reserved and target.resolve().parent == Path(ca_dir).resolve():
        raise ConfigurationError(f"--out would replace the CA directory's {target.name}")
    if lifetime <= dt.timedelta(0):
        raise ConfigurationError("a CRL's next update must be after now")
    records = CaRecords(ca_dir, ca_key_id(ca.certificate))
    with records.locked():
        state = records.state()
        number = state.crl_number + 1
        records.save_state(state.with_crl_number(number))
        crl = build_crl(
            ca.certificate,
            ca.key,
            state.revocations.values(),
            number=number,
            this_update=now,
            next_update=now + lifetime,
        )
        pem = crl_pem(crl)
        write_files([PendingFile(target, pem, CERT_MODE)], force=True)
    return load_crl(pem, source=target)
