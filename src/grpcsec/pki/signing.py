"""Issuance helpers below the CA: subject names, key checks, the certificate builder and the
issued-certificate value.

:class:`~grpcsec.pki.authority.CertificateAuthority` decides what goes into a certificate
(profile, window, chain); this module holds the steps that do not depend on which CA signs:
building a subject from a CN and an organization (printable, CN at most 64 characters),
checking that a private key belongs to a certificate, accepting only the public key types
grpcsec issues for, and handing the result to ``cryptography``'s ``CertificateBuilder``.
Nothing here chooses extensions (:mod:`~grpcsec.pki.profiles` does) or validity windows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from grpcsec.errors import IssuanceError, KeyMismatchError
from grpcsec.pki.files import CERT_MODE, KEY_MODE, PendingFile, certificates_pem, write_files
from grpcsec.pki.keys import (
    PrivateKey,
    PublicKey,
    private_key_pem,
    public_keys_equal,
    signature_hash,
)
from grpcsec.pki.names import check_printable
from grpcsec.pki.validity import Validity

__all__ = [
    "IssuedCertificate",
    "check_key_matches",
    "issuable_public_key",
    "sign_certificate",
    "subject_name",
]


def subject_name(common_name: str, organization: str | None) -> x509.Name:
    """The subject (or issuer) name of a new certificate: O then CN, each only when given."""
    attributes = []
    if organization:
        check_printable("organization", organization)
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if common_name:
        check_printable("common name", common_name)
        if len(common_name) > 64:
            raise IssuanceError(f"common name {common_name[:20]!r}... is longer than 64 characters")
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def check_key_matches(
    certificate: x509.Certificate, key: PrivateKey, *, source: str | None = None
) -> None:
    """Raise :class:`KeyMismatchError` unless ``key`` is the private half of the certificate."""
    if not public_keys_equal(certificate.public_key(), key.public_key()):
        raise KeyMismatchError(
            "the private key does not match the certificate "
            f"(certificate serial {certificate.serial_number:x}); use the key it was issued for",
            path=source,
        )


def issuable_public_key(candidate: object, source: str) -> PublicKey:
    """``candidate`` when it is a key type grpcsec issues for (ECDSA, RSA, Ed25519); otherwise
    :class:`IssuanceError` naming ``source`` (e.g. "the CSR")."""
    if isinstance(
        candidate, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
    ):
        return candidate
    raise IssuanceError(f"{source} has a {type(candidate).__name__}; use ECDSA, RSA or Ed25519")


def sign_certificate(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    public_key: PublicKey,
    window: Validity,
    extensions: Iterable[tuple[x509.ExtensionType, bool]],
    signing_key: PrivateKey,
) -> x509.Certificate:
    """Build and sign one certificate with a random serial; the caller has decided every field."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(window.not_before)
        .not_valid_after(window.not_after)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, signature_hash(signing_key))


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A certificate, the chain to serve with it (leaf first, no root), and its new private key.

    ``key`` is ``None`` for a signed CSR, whose key never left the requester. The key is never
    shown in ``repr``.
    """

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key: PrivateKey | None = field(repr=False)

    def chain_pem(self) -> bytes:
        """PEM of the chain, leaf first: the ``--cert`` file for a server or client."""
        return certificates_pem(self.chain)

    def write(
        self,
        cert_path: str | Path,
        key_path: str | Path | None = None,
        *,
        password: bytes | None = None,
        force: bool = False,
    ) -> None:
        """Write the chain (0644) and, when ``key_path`` is given, the key (0600) atomically:
        both files or neither; existing files are replaced only with ``force``."""
        files = [PendingFile(Path(cert_path), self.chain_pem(), CERT_MODE)]
        if key_path is not None:
            files.append(PendingFile(Path(key_path), self.key_pem(password), KEY_MODE))
        write_files(files, force=force)

    def key_pem(self, password: bytes | None = None) -> bytes:
        """PKCS#8 PEM of the private key (encrypted when ``password`` is given)."""
        if self.key is None:
            raise IssuanceError("this certificate was issued for a CSR; its key is not here")
        return private_key_pem(self.key, password)
