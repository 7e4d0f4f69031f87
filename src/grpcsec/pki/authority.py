"""The certificate authority: root and intermediate CAs, leaf issuance and CSR signing.

A :class:`CertificateAuthority` holds a CA certificate, its private key and the chain above it.
Everything it signs follows a :mod:`~grpcsec.pki.profiles` profile; requests only supply names,
a public key and a validity window. Building and signing is ``cryptography``'s
``CertificateBuilder`` (through :func:`~grpcsec.pki.signing.sign_certificate`); this module only
decides what goes in.

Refused, with :class:`IssuanceError`: leaves without any name, certificates that would outlive
their issuer, issuing from a CA that has expired or whose path length forbids another CA, and
CSRs whose key type grpcsec does not issue for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import NameOID

from grpcsec.errors import IssuanceError, KeyMismatchError, MaterialError
from grpcsec.pki.files import certificates_pem
from grpcsec.pki.keys import KeyType, PrivateKey, PublicKey, generate_key, key_type_of
from grpcsec.pki.names import SubjectAltNames, check_printable
from grpcsec.pki.profiles import Profile, ca_extensions, leaf_extensions
from grpcsec.pki.signing import (
    IssuedCertificate,
    check_key_matches,
    issuable_public_key,
    sign_certificate,
    subject_name,
)
from grpcsec.pki.validity import (
    DEFAULT_INTERMEDIATE_VALIDITY,
    DEFAULT_LEAF_VALIDITY,
    DEFAULT_ROOT_VALIDITY,
    Validity,
    utcnow,
)

__all__ = ["CertificateAuthority"]


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A CA certificate with its key. ``parents`` are the CA certificates above it, nearest
    first, ending at (and including) the root when it is known."""

    certificate: x509.Certificate
    key: PrivateKey = field(repr=False)
    parents: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        check_key_matches(self.certificate, self.key)
        try:
            constraints = self.certificate.extensions.get_extension_for_class(
                x509.BasicConstraints
            ).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            raise IssuanceError(
                f"{self.certificate.subject.rfc4514_string()} is not a CA certificate "
                "(no basicConstraints CA:true); it cannot issue certificates"
            )
        try:
            usage = self.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is not None and not usage.key_cert_sign:
            raise IssuanceError(
                f"{self.certificate.subject.rfc4514_string()} lacks the keyCertSign key usage; "
                "it cannot issue certificates"
            )

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        common_name: str = "grpcsec root CA",
        *,
        organization: str | None = None,
        key_type: KeyType = KeyType.ECDSA_P256,
        validity: Validity | None = None,
        path_length: int | None = None,
        now: dt.datetime | None = None,
    ) -> CertificateAuthority:
        """A new self-signed root CA (10 years by default, no path-length limit)."""
        now = now or utcnow()
        window = validity or Validity.lasting(DEFAULT_ROOT_VALIDITY, now=now)
        key = generate_key(key_type)
        subject = subject_name(common_name, organization)
        extensions = ca_extensions(key.public_key(), path_length=path_length, issuer_ski=None)
        certificate = sign_certificate(
            subject=subject,
            issuer=subject,
            public_key=key.public_key(),
            window=window,
            extensions=extensions,
            signing_key=key,
        )
        return cls(certificate, key)

    @classmethod
    def from_pem(
        cls,
        certificate_pem: bytes,
        key: PrivateKey,
        *,
        source: str | None = None,
        key_source: str | None = None,
    ) -> CertificateAuthority:
        """A CA from its certificate file (the CA first, then any parents) and its key.

        ``source`` and ``key_source`` name the two files in error messages.
        """
        from grpcsec.pki.files import load_certificates  # noqa: PLC0415 (cycle-free, lazy)

        certificates = load_certificates(certificate_pem, source=source)
        try:
            return cls(certificates[0], key, tuple(certificates[1:]))
        except KeyMismatchError as exc:
            raise KeyMismatchError(
                f"the CA key does not match the CA certificate {source or ''}".rstrip(),
                path=key_source or source,
            ) from exc
        except IssuanceError as exc:
            raise MaterialError(exc.message, path=source) from exc

    # -- properties -------------------------------------------------------------------------
    @property
    def is_root(self) -> bool:
        """Whether this CA is self-issued (its own issuer)."""
        return self.certificate.issuer == self.certificate.subject

    @property
    def root(self) -> x509.Certificate:
        """The top of the known chain: the trust anchor to hand to peers."""
        return self.parents[-1] if self.parents else self.certificate

    @property
    def serving_chain(self) -> tuple[x509.Certificate, ...]:
        """The CA certificates a leaf must be served with: this CA and its parents, no root."""
        chain = (self.certificate, *self.parents)
        return tuple(c for c in chain if c.issuer != c.subject)

    def certificate_pem(self) -> bytes:
        """PEM of this CA's certificate followed by its parents (a ``ca.crt`` file)."""
        return certificates_pem((self.certificate, *self.parents))

    def _ski(self) -> x509.SubjectKeyIdentifier:
        try:
            return self.certificate.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier
            ).value
        except x509.ExtensionNotFound:
            return x509.SubjectKeyIdentifier.from_public_key(
                issuable_public_key(self.certificate.public_key(), "the CA certificate")
            )

    def _window(
        self, validity: Validity | None, default: dt.timedelta, now: dt.datetime
    ) -> Validity:
        if now > self.certificate.not_valid_after_utc:
            raise IssuanceError(
                f"the CA {self.certificate.subject.rfc4514_string()} expired on "
                f"{self.certificate.not_valid_after_utc:%Y-%m-%d %H:%M}Z; create or renew the CA"
            )
        window = validity or Validity.lasting(default, now=now)
        if window.not_after > self.certificate.not_valid_after_utc:
            raise IssuanceError(
                f"the certificate would outlive its CA (CA expires "
                f"{self.certificate.not_valid_after_utc:%Y-%m-%d %H:%M}Z, certificate "
                f"{window.not_after:%Y-%m-%d %H:%M}Z); choose a shorter validity"
            )
        return window

    def _sign(
        self,
        subject: x509.Name,
        public_key: PublicKey,
        window: Validity,
        extensions: Iterable[tuple[x509.ExtensionType, bool]],
    ) -> x509.Certificate:
        return sign_certificate(
            subject=subject,
            issuer=self.certificate.subject,
            public_key=public_key,
            window=window,
            extensions=extensions,
            signing_key=self.key,
        )

    # -- issuance ---------------------------------------------------------------------------
    def create_intermediate(
        self,
        common_name: str = "grpcsec intermediate CA",
        *,
        organization: str | None = None,
        key_type: KeyType = KeyType.ECDSA_P256,
        validity: Validity | None = None,
        path_length: int | None = 0,
        now: dt.datetime | None = None,
    ) -> CertificateAuthority:
        """A new intermediate CA signed by this one (5 years, path length 0 by default)."""
        now = now or utcnow()
        constraints = self.certificate.extensions.get_extension_for_class(
            x509.BasicConstraints
        ).value
        if constraints.path_length is not None:
            if constraints.path_length == 0:
                raise IssuanceError(
                    f"the CA {self.certificate.subject.rfc4514_string()} has path length 0; "
                    "it may not issue intermediate CAs"
                )
            if path_length is None or path_length >= constraints.path_length:
                path_length = constraints.path_length - 1
        window = self._window(validity, DEFAULT_INTERMEDIATE_VALIDITY, now)
        key = generate_key(key_type)
        certificate = self._sign(
            subject_name(common_name, organization),
            key.public_key(),
            window,
            ca_extensions(key.public_key(), path_length=path_length, issuer_ski=self._ski()),
        )
        return CertificateAuthority(certificate, key, (self.certificate, *self.parents))

    def issue(
        self,
        profile: Profile,
        names: SubjectAltNames,
        *,
        common_name: str | None = None,
        organization: str | None = None,
        key_type: KeyType = KeyType.ECDSA_P256,
        key: PrivateKey | None = None,
        validity: Validity | None = None,
        now: dt.datetime | None = None,
        allow_unsupported_key: bool = False,
    ) -> IssuedCertificate:
        """Issue a leaf of ``profile`` for ``names`` with a new key (or ``key``, when given).

        The subject CN defaults to the first name; the SAN extension is always present.
        """
        if key is None and not key_type.grpc_leaf_supported and not allow_unsupported_key:
            raise IssuanceError(
                f"grpcio cannot complete a TLS handshake with a {key_type.value} leaf key "
                "(NO_COMMON_SIGNATURE_ALGORITHMS); use ecdsa-p256 (the default), ecdsa-p384 or "
                "RSA, or pass allow_unsupported_key=True (--allow-unsupported-key) for non-gRPC use"
            )
        key = key or generate_key(key_type)
        certificate = self._issue_leaf(
            profile, names, key.public_key(), common_name, organization, validity, now
        )
        return IssuedCertificate(certificate, (certificate, *self.serving_chain), key)

    def sign_csr(
        self,
        csr: x509.CertificateSigningRequest,
        profile: Profile,
        *,
        names: SubjectAltNames | None = None,
        common_name: str | None = None,
        validity: Validity | None = None,
        now: dt.datetime | None = None,
        allow_unsupported_key: bool = False,
    ) -> IssuedCertificate:
        """Sign a CSR under ``profile``.

        Only the CSR's public key, subject CN and SANs are used (``names`` replaces the SANs
        when given). Every other requested extension, CA:true and key usages included, is
        ignored: the profile decides them. The CSR's names are re-validated like any request.
        """
        if not csr.is_signature_valid:
            raise IssuanceError("the CSR's signature does not verify")
        for attribute in csr.subject:
            check_printable(f"CSR subject {attribute.rfc4514_attribute_name}", str(attribute.value))
        public_key = issuable_public_key(csr.public_key(), "the CSR")
        requested = key_type_of(public_key)
        if (
            requested is not None
            and not requested.grpc_leaf_supported
            and not allow_unsupported_key
        ):
            raise IssuanceError(
                f"the CSR has a {requested.value} key, which grpcio cannot use for a TLS "
                "handshake; request ECDSA P-256 or RSA, or pass --allow-unsupported-key"
            )
        if names is None:
            try:
                san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            except x509.ExtensionNotFound:
                names = SubjectAltNames.build()  # none: refused below for a server, as CN-only
            else:
                raw = SubjectAltNames.from_extension(san)
                names = SubjectAltNames.build(
                    dns=raw.dns, ips=raw.ips, uris=raw.uris, emails=raw.emails
                )
        if common_name is None:
            cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            common_name = str(cns[0].value) if cns else None
        certificate = self._issue_leaf(profile, names, public_key, common_name, None, validity, now)
        return IssuedCertificate(certificate, (certificate, *self.serving_chain), None)

    def _issue_leaf(  # noqa: PLR0917 (private; called with the full request in order)
        self,
        profile: Profile,
        names: SubjectAltNames,
        public_key: PublicKey,
        common_name: str | None,
        organization: str | None,
        validity: Validity | None,
        now: dt.datetime | None,
    ) -> x509.Certificate:
        if names.empty:
            raise IssuanceError(
                "a certificate needs at least one subject alternative name "
                "(DNS name, IP address, URI or e-mail); CN-only certificates are refused"
            )
        window = self._window(validity, DEFAULT_LEAF_VALIDITY, now or utcnow())
        if common_name is None:
            first = [*names.dns, *(str(ip) for ip in names.ips), *names.uris, *names.emails]
            common_name = first[0] if len(first[0]) <= 64 else ""
        subject = subject_name(common_name, organization)
        return self._sign(
            subject,
            public_key,
            window,
            leaf_extensions(
                profile,
                public_key,
                names.to_extension(),
                self._ski(),
                empty_subject=len(subject) == 0,
            ),
        )
