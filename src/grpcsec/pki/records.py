"""The values of a CA directory's records: one line of ``issued.jsonl``
(:class:`IssuedRecord`) and the content of ``revoked.json`` (:class:`RevocationState`), each
with its JSON form and a strict parser (``ValueError`` or ``TypeError`` saying which field is
wrong). The files, their locking and the format description are in
:mod:`~grpcsec.pki.registry`. No I/O here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from cryptography import x509

from grpcsec.pki.crl import Revocation, RevocationReason
from grpcsec.pki.layout import CertificateFiles

__all__ = ["IssuedRecord", "RevocationState", "ca_key_id", "serial_hex"]

_FORMAT = 1


def serial_hex(serial: int) -> str:
    """A serial number as the records write it: lower-case hex."""
    return format(serial, "x")


def ca_key_id(ca_certificate: x509.Certificate) -> str:
    """The CA's subject key identifier in hex (computed from its key when the certificate
    carries none): what ties records to one CA key."""
    try:
        ski = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return ski.value.digest.hex()
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(ca_certificate.public_key()).digest.hex()


def _authority_key_id(certificate: x509.Certificate) -> str:
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        return ""
    return (aki.value.key_identifier or b"").hex()


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat()


def _parse_serial(value: object) -> int:
    if not isinstance(value, str) or not value or len(value) > 40:
        raise TypeError("serial is not a hex string of at most 40 digits")
    return int(value, 16)


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("not a JSON object")
    return value


def _parse_time(value: object, name: str) -> dt.datetime:
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{name} has no time zone")
    return moment.astimezone(dt.timezone.utc)


def _optional_str(value: object, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedRecord:
    """One certificate issued from the directory: one line of ``issued.jsonl``."""

    serial: int
    subject: str
    not_after: dt.datetime
    file: str | None
    role: str
    issued_at: dt.datetime
    ca_key_id: str

    def to_json(self) -> dict[str, Any]:
        """The line's object (serial hex, times RFC 3339 UTC)."""
        return {
            "serial": serial_hex(self.serial),
            "subject": self.subject,
            "not_after": _time(self.not_after),
            "file": self.file,
            "role": self.role,
            "issued_at": _time(self.issued_at),
            "ca_key_id": self.ca_key_id,
        }

    @classmethod
    def from_json(cls, data: object) -> IssuedRecord:
        """Parse one line's object; ``ValueError`` or ``TypeError`` saying what is wrong."""
        data = _object(data)
        subject = data.get("subject")
        if not isinstance(subject, str):
            raise TypeError("subject is not a string")
        return cls(
            serial=_parse_serial(data.get("serial")),
            subject=subject,
            not_after=_parse_time(data.get("not_after"), "not_after"),
            file=_optional_str(data.get("file"), "file"),
            role=_optional_str(data.get("role"), "role") or "",
            issued_at=_parse_time(data.get("issued_at"), "issued_at"),
            ca_key_id=_optional_str(data.get("ca_key_id"), "ca_key_id") or "",
        )

    @classmethod
    def of(cls, item: CertificateFiles, *, now: dt.datetime) -> IssuedRecord:
        """The record of a certificate just written to ``item.certificate_file``."""
        return cls(
            serial=item.certificate.serial_number,
            subject=item.certificate.subject.rfc4514_string(),
            not_after=item.certificate.not_valid_after_utc,
            file=str(item.certificate_file.absolute()),
            role=item.role,
            issued_at=now,
            ca_key_id=_authority_key_id(item.certificate),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationState:
    """``revoked.json``: the revocations by serial (with the subject when known) and the
    number of the last CRL published, for the CA whose key identifier is ``ca_key_id``."""

    ca_key_id: str
    revocations: Mapping[int, Revocation] = field(default_factory=lambda: MappingProxyType({}))
    subjects: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    crl_number: int = 0

    def to_json(self) -> dict[str, Any]:
        """The file's object, revocations in serial order."""
        return {
            "format": _FORMAT,
            "ca_key_id": self.ca_key_id,
            "crl_number": self.crl_number,
            "revoked": [
                {**self.revocations[s].to_json(), "subject": self.subjects.get(s)}
                for s in sorted(self.revocations)
            ],
        }

    @classmethod
    def from_json(cls, data: object) -> RevocationState:
        """Parse the file's object; ``ValueError`` or ``TypeError`` saying what is wrong."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f'not a revocation record (expected "format": {_FORMAT})')
        number = data.get("crl_number")
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise ValueError("crl_number is not a non-negative integer")
        entries = data.get("revoked")
        if not isinstance(entries, list):
            raise TypeError("revoked is not a list")
        revocations: dict[int, Revocation] = {}
        subjects: dict[int, str] = {}
        for index, raw in enumerate(entries):
            try:
                entry = _object(raw)
                serial = _parse_serial(entry.get("serial"))
                reason = _optional_str(entry.get("reason"), "reason")
                revocations[serial] = Revocation(
                    serial=serial,
                    revoked_at=_parse_time(entry.get("revoked_at"), "revoked_at"),
                    reason=None if reason is None else RevocationReason(reason),
                )
                subject = _optional_str(entry.get("subject"), "subject")
            except (ValueError, TypeError) as exc:
                raise ValueError(f"revoked[{index}]: {exc}") from exc
            if subject is not None:
                subjects[serial] = subject
        key_id = data.get("ca_key_id")
        if not isinstance(key_id, str):
            raise TypeError("ca_key_id is not a string")
        return cls(
            ca_key_id=key_id,
            revocations=MappingProxyType(revocations),
            subjects=MappingProxyType(subjects),
            crl_number=number,
        )

    def with_revocation(self, revocation: Revocation, subject: str | None) -> RevocationState:
        """A copy with ``revocation`` added."""
        subjects = dict(self.subjects)
        if subject is not None:
            subjects[revocation.serial] = subject
        return replace(
            self,
            revocations=MappingProxyType({**self.revocations, revocation.serial: revocation}),
            subjects=MappingProxyType(subjects),
        )

    def with_crl_number(self, number: int) -> RevocationState:
        """A copy whose last published CRL number is ``number``."""
        return replace(self, crl_number=number)
