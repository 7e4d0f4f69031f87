"""Inspection: a typed summary of a certificate, and the order of a bundle.

Parsing is ``cryptography``'s; this module only reads fields out into a frozen value that the CLI
prints as a table or JSON. Chain order is judged by names and signatures: certificate *i* must be
directly issued by certificate *i + 1* (``verify_directly_issued_by``).

Not checked here: trust (see :mod:`grpcsec.pki.verify`), revocation, certificate policies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from grpcsec.pki.keys import describe_public_key
from grpcsec.pki.names import SubjectAltNames
from grpcsec.pki.strength import issued_by as _issued_by
from grpcsec.pki.validity import elapsed_fraction, format_duration

__all__ = [
    "BundleReport",
    "CertificateInfo",
    "common_name",
    "common_name_ambiguous",
    "fingerprint_sha256",
    "inspect_bundle",
]

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}
_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)
_KU_NAMES = {
    "digital_signature": "digitalSignature",
    "content_commitment": "contentCommitment",
    "key_encipherment": "keyEncipherment",
    "data_encipherment": "dataEncipherment",
    "key_agreement": "keyAgreement",
    "key_cert_sign": "keyCertSign",
    "crl_sign": "cRLSign",
}


def fingerprint_sha256(certificate: x509.Certificate) -> str:
    """SHA-256 fingerprint as colon-separated upper-case hex (the ``openssl x509`` form)."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def common_name_ambiguous(name: x509.Name) -> bool:
    """Whether ``name`` holds more than one CN, or a CN inside a multi-valued RDN
    (``CN=a+O=b``): which one is "the" CN then depends on who reads it, so none is."""
    count = 0
    for rdn in name.rdns:
        cns = len(rdn.get_attributes_for_oid(NameOID.COMMON_NAME))
        if cns and len(rdn) > 1:
            return True
        count += cns
    return count > 1


def common_name(name: x509.Name) -> str | None:
    """The CN of a name: ``None`` when there is none *or* when it is ambiguous
    (:func:`common_name_ambiguous`), so a CN allow-list can never pick one of several."""
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(values) != 1 or common_name_ambiguous(name):
        return None
    return str(values[0].value)


def _extension(certificate: x509.Certificate, kind: type[Any]) -> Any:  # noqa: ANN401
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateInfo:
    """What a person (or a monitor) wants to know about one certificate."""

    subject: str
    issuer: str
    common_name: str | None
    """``None`` without a CN and with an ambiguous one (then ``common_name_ambiguous``)."""
    issuer_common_name: str | None
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    names: SubjectAltNames
    has_san_extension: bool
    key_algorithm: str
    key_size: int
    signature_algorithm: str
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...]
    is_ca: bool
    path_length: int | None
    subject_key_id: str | None
    authority_key_id: str | None
    fingerprint_sha256: str
    self_signed: bool
    common_name_ambiguous: bool = False

    @classmethod
    def of(cls, certificate: x509.Certificate) -> CertificateInfo:
        """Read every field of ``certificate``."""
        san = _extension(certificate, x509.SubjectAlternativeName)
        usage = _extension(certificate, x509.KeyUsage)
        eku = _extension(certificate, x509.ExtendedKeyUsage)
        constraints = _extension(certificate, x509.BasicConstraints)
        ski = _extension(certificate, x509.SubjectKeyIdentifier)
        aki = _extension(certificate, x509.AuthorityKeyIdentifier)
        algorithm, size = describe_public_key(certificate.public_key())
        usages: tuple[str, ...] = ()
        if usage is not None:
            usages = tuple(_KU_NAMES[u] for u in _KEY_USAGES if getattr(usage, u))
        sig_oid = certificate.signature_algorithm_oid
        return cls(
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(),
            common_name=common_name(certificate.subject),
            issuer_common_name=common_name(certificate.issuer),
            serial=f"{certificate.serial_number:x}",
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            names=SubjectAltNames.from_extension(san) if san else SubjectAltNames(),
            has_san_extension=san is not None,
            key_algorithm=algorithm,
            key_size=size,
            signature_algorithm=getattr(sig_oid, "_name", sig_oid.dotted_string),
            key_usage=usages,
            extended_key_usage=tuple(_EKU_NAMES.get(oid, oid.dotted_string) for oid in (eku or ())),
            is_ca=bool(constraints and constraints.ca),
            path_length=constraints.path_length if constraints else None,
            subject_key_id=ski.digest.hex(":") if ski else None,
            authority_key_id=aki.key_identifier.hex(":") if aki and aki.key_identifier else None,
            fingerprint_sha256=fingerprint_sha256(certificate),
            self_signed=certificate.issuer == certificate.subject,
            common_name_ambiguous=common_name_ambiguous(certificate.subject),
        )

    def time_left(self, now: dt.datetime) -> dt.timedelta:
        """Time until not-after (negative once expired)."""
        return self.not_after - now

    def lifetime_used(self, now: dt.datetime) -> float:
        """Fraction of the lifetime elapsed at ``now`` (0 before not-before, 1 and more after)."""
        return elapsed_fraction(self.not_before, self.not_after, now)

    def status(self, now: dt.datetime) -> str:
        """``valid``, ``expired`` or ``not_yet_valid`` at ``now``."""
        if now < self.not_before:
            return "not_yet_valid"
        if now > self.not_after:
            return "expired"
        return "valid"

    def to_json(self, now: dt.datetime) -> dict[str, object]:
        """A JSON-ready dict; times are RFC 3339 UTC strings."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "common_name": self.common_name,
            "common_name_ambiguous": self.common_name_ambiguous,
            "serial": self.serial,
            "not_before": self.not_before.isoformat().replace("+00:00", "Z"),
            "not_after": self.not_after.isoformat().replace("+00:00", "Z"),
            "status": self.status(now),
            "seconds_left": int(self.time_left(now).total_seconds()),
            "time_left": format_duration(self.time_left(now)),
            "lifetime_used": round(self.lifetime_used(now), 4),
            "san": {
                "dns": list(self.names.dns),
                "ip": [str(ip) for ip in self.names.ips],
                "uri": list(self.names.uris),
                "email": list(self.names.emails),
            },
            "spiffe_id": self.names.spiffe_id,
            "key": {"algorithm": self.key_algorithm, "size": self.key_size},
            "signature_algorithm": self.signature_algorithm,
            "key_usage": list(self.key_usage),
            "extended_key_usage": list(self.extended_key_usage),
            "is_ca": self.is_ca,
            "path_length": self.path_length,
            "subject_key_id": self.subject_key_id,
            "authority_key_id": self.authority_key_id,
            "fingerprint_sha256": self.fingerprint_sha256,
            "self_signed": self.self_signed,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleReport:
    """The certificates of a file, in file order, and what is wrong with their order."""

    certificates: tuple[CertificateInfo, ...]
    problems: tuple[str, ...]

    @property
    def chain_ordered(self) -> bool:
        """Whether each certificate is issued by the next one (a servable chain, leaf first)."""
        return not self.problems

    @property
    def kind(self) -> str:
        """``certificate`` (one), ``chain`` (leaf first, each issued by the next),
        ``trust_bundle`` (several self-signed roots: fine as a CA bundle, not a chain to serve)
        or ``unordered`` (a chain in the wrong order, or unrelated certificates)."""
        if len(self.certificates) == 1:
            return "certificate"
        if self.chain_ordered:
            return "chain"
        if all(info.self_signed for info in self.certificates):
            return "trust_bundle"
        return "unordered"


def inspect_bundle(certificates: Sequence[x509.Certificate]) -> BundleReport:
    """Summarise each certificate and check that the list is a chain in leaf-first order.

    A bundle of unrelated roots (a trust store) is reported as unordered, which is fine for a
    CA bundle and a problem only for a served chain; callers decide which it is.
    """
    problems: list[str] = []
    for index in range(len(certificates) - 1):
        child, parent = certificates[index], certificates[index + 1]
        if not _issued_by(child, parent):
            later = [
                j
                for j in range(len(certificates))
                if j != index and _issued_by(child, certificates[j])
            ]
            where = (
                f"its issuer is certificate {later[0] + 1}"
                if later
                else "its issuer is not in the file"
            )
            problems.append(
                f"certificate {index + 1} ({child.subject.rfc4514_string()}) is not issued by "
                f"certificate {index + 2}; {where}"
            )
    return BundleReport(
        certificates=tuple(CertificateInfo.of(c) for c in certificates), problems=tuple(problems)
    )
