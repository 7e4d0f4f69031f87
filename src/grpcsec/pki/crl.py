"""Certificate revocation lists: build one for a CA, read one, and look a serial up in O(1).

A CRL is read the way every other input is (bounded by :data:`grpcsec.fileio.FileKind.CRL`,
PEM or DER) and parsed once: every entry is read into a dict keyed by serial number, so a
lookup costs one dict access whatever the list's size, and a malformed entry fails the load,
not a later call. Building uses ``cryptography``'s CRL builder and signs with the CA's key;
the CRL carries a CRL number and the authority key identifier (RFC 5280 §5.2.1, §5.2.3), so a
verifier can tell two CAs with the same name apart.

What is *not* decided here: whom to trust. :meth:`RevocationList.is_signed_by` checks a
signature and the issuer name against a certificate the caller already trusts; the validity
window is compared with a ``now`` the caller passes. No grpc import.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from grpcsec.clock import format_moment
from grpcsec.errors import MaterialError
from grpcsec.fileio import FileKind, read_file
from grpcsec.pki.keys import PrivateKey

__all__ = [
    "Revocation",
    "RevocationList",
    "RevocationReason",
    "build_crl",
    "crl_pem",
    "load_crl",
    "load_crl_file",
]


class RevocationReason(enum.Enum):
    """RFC 5280 §5.3.1 reason codes, by the names ``ca revoke --reason`` takes."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "key_compromise"
    CA_COMPROMISE = "ca_compromise"
    AFFILIATION_CHANGED = "affiliation_changed"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation_of_operation"
    CERTIFICATE_HOLD = "certificate_hold"
    PRIVILEGE_WITHDRAWN = "privilege_withdrawn"
    AA_COMPROMISE = "aa_compromise"

    @property
    def flag(self) -> x509.ReasonFlags:
        """cryptography's name for it."""
        return x509.ReasonFlags[_FLAG_NAMES[self]]

    @classmethod
    def from_flag(cls, flag: x509.ReasonFlags) -> RevocationReason:
        """Ours for cryptography's (``remove_from_crl`` is not a revocation: unspecified);
        one dict lookup, as it runs once per entry of a CRL."""
        return _BY_FLAG.get(flag, cls.UNSPECIFIED)


_FLAG_NAMES = {
    RevocationReason.UNSPECIFIED: "unspecified",
    RevocationReason.KEY_COMPROMISE: "key_compromise",
    RevocationReason.CA_COMPROMISE: "ca_compromise",
    RevocationReason.AFFILIATION_CHANGED: "affiliation_changed",
    RevocationReason.SUPERSEDED: "superseded",
    RevocationReason.CESSATION_OF_OPERATION: "cessation_of_operation",
    RevocationReason.CERTIFICATE_HOLD: "certificate_hold",
    RevocationReason.PRIVILEGE_WITHDRAWN: "privilege_withdrawn",
    RevocationReason.AA_COMPROMISE: "aa_compromise",
}
_BY_FLAG = {x509.ReasonFlags[name]: reason for reason, name in _FLAG_NAMES.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Revocation:
    """One revoked certificate: its serial, when, and why (``None``: no reason given)."""

    serial: int
    revoked_at: dt.datetime
    reason: RevocationReason | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (serial in lower-case hex, time RFC 3339 UTC)."""
        return {
            "serial": format(self.serial, "x"),
            "revoked_at": self.revoked_at.isoformat(),
            "reason": None if self.reason is None else self.reason.value,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationList:
    """A parsed CRL: who issued it, its window and number, and its entries by serial."""

    issuer: x509.Name
    authority_key_id: bytes | None
    number: int | None
    this_update: dt.datetime
    next_update: dt.datetime | None
    entries: Mapping[int, Revocation]
    source: str
    crl: x509.CertificateRevocationList = field(repr=False, compare=False)

    def lookup(self, serial: int) -> Revocation | None:
        """The entry for ``serial``, or ``None`` (one dict access)."""
        return self.entries.get(serial)

    def is_signed_by(self, issuer: x509.Certificate) -> bool:
        """Whether ``issuer`` signed this CRL: same name, matching key identifier when both
        carry one, and a valid signature with its public key."""
        if issuer.subject != self.issuer:
            return False
        ski = _subject_key_id(issuer)
        if self.authority_key_id is not None and ski is not None and ski != self.authority_key_id:
            return False
        key = issuer.public_key()
        if not isinstance(
            key,
            rsa.RSAPublicKey
            | ec.EllipticCurvePublicKey
            | ed25519.Ed25519PublicKey
            | ed448.Ed448PublicKey,
        ):
            return False
        try:
            return bool(self.crl.is_signature_valid(key))
        except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
            return False

    def expired(self, now: dt.datetime) -> bool:
        """Whether ``now`` is past the next update (a CRL without one never expires)."""
        return self.next_update is not None and now > self.next_update

    def not_yet_valid(self, now: dt.datetime) -> bool:
        """Whether ``now`` is before this update (the issuer's clock runs ahead)."""
        return now < self.this_update

    def window_problem(self, now: dt.datetime) -> str | None:
        """Why this CRL cannot decide anything at ``now`` (its window), or ``None``: the one
        wording every revocation check (verify, doctor, servers) reports."""
        if self.next_update is not None and self.expired(now):
            return f"the CRL expired at its next update {format_moment(self.next_update)}"
        if self.not_yet_valid(now):
            return f"the CRL is not valid until {format_moment(self.this_update)}"
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (entries counted, not listed)."""
        return {
            "source": self.source,
            "issuer": self.issuer.rfc4514_string(),
            "authority_key_id": None
            if self.authority_key_id is None
            else self.authority_key_id.hex(),
            "number": self.number,
            "this_update": self.this_update.isoformat(),
            "next_update": None if self.next_update is None else self.next_update.isoformat(),
            "revoked": len(self.entries),
        }


def _subject_key_id(certificate: x509.Certificate) -> bytes | None:
    try:
        ext = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return None
    return ext.value.digest


def _parse(crl: x509.CertificateRevocationList, source: str) -> RevocationList:
    """Read every part once, so a malformed CRL fails here."""
    try:
        aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        authority_key_id = aki.key_identifier
    except x509.ExtensionNotFound:
        authority_key_id = None
    try:
        number: int | None = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        number = None
    entries: dict[int, Revocation] = {}
    for revoked in crl:
        reason = None
        try:
            flag = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
            reason = RevocationReason.from_flag(flag)
        except x509.ExtensionNotFound:
            pass
        entries[revoked.serial_number] = Revocation(
            serial=revoked.serial_number,
            revoked_at=revoked.revocation_date_utc,
            reason=reason,
        )
    return RevocationList(
        issuer=crl.issuer,
        authority_key_id=authority_key_id,
        number=number,
        this_update=crl.last_update_utc,
        next_update=crl.next_update_utc,
        entries=MappingProxyType(entries),
        source=source,
        crl=crl,
    )


def load_crl(data: bytes, *, source: str | Path | None = None) -> RevocationList:
    """Parse a PEM or DER CRL; :class:`MaterialError` (one line, naming ``source``) when it is
    not one or any part of it is malformed."""
    name = str(source) if source is not None else "<memory>"
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            crl = x509.load_pem_x509_crl(data)
        else:
            crl = x509.load_der_x509_crl(data)
        return _parse(crl, name)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MaterialError(f"not a valid CRL ({exc})", path=source) from exc


def load_crl_file(path: str | os.PathLike[str]) -> RevocationList:
    """:func:`load_crl` of a file read through :func:`grpcsec.fileio.read_file`."""
    return load_crl(read_file(path, kind=FileKind.CRL), source=Path(path))


def build_crl(
    ca_certificate: x509.Certificate,
    ca_key: PrivateKey,
    revocations: Iterable[Revocation],
    *,
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> x509.CertificateRevocationList:
    """A CRL signed by the CA: issuer = the CA's subject, CRL number ``number``, the authority
    key identifier from the CA's key, one entry (with its reason) per revocation."""
    if next_update <= this_update:
        raise MaterialError("a CRL's next update must be after its this-update time")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_certificate.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    for revocation in revocations:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(revocation.serial)
            .revocation_date(revocation.revoked_at)
        )
        if revocation.reason is not None:
            entry = entry.add_extension(x509.CRLReason(revocation.reason.flag), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    algorithm = (
        None
        if isinstance(ca_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        else hashes.SHA256()
    )
    return builder.sign(ca_key, algorithm)


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    """The CRL in PEM."""
    return crl.public_bytes(serialization.Encoding.PEM)
