"""Certificate profiles: which extensions a server, client, peer or CA certificate gets.

A profile, not the request, decides the extensions. That is what keeps a CSR from obtaining
CA:true or a usage its profile does not allow: only the CSR's public key and names are used.

* leaves: ``CA:false`` (critical), key usage ``digitalSignature`` (plus ``keyEncipherment`` for
  RSA keys, which TLS 1.2 RSA key exchange peers may still want), the profile's extended key
  usage, SKI and AKI, and always a SAN extension;
* CAs: ``CA:true`` with an optional path length (critical), ``keyCertSign`` + ``cRLSign``
  (critical), SKI and (below a root) AKI, and **no** extended key usage: Go checks EKU nesting
  down the chain, and a restricting EKU on an intermediate breaks leaves of the other role.
"""

from __future__ import annotations

import enum

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from grpcsec.pki.keys import PublicKey

__all__ = ["Profile", "ca_extensions", "leaf_extensions"]


class Profile(enum.Enum):
    """The leaf profiles. Values are the CLI names."""

    SERVER = "server"
    CLIENT = "client"
    PEER = "peer"

    @property
    def extended_key_usages(self) -> tuple[x509.ObjectIdentifier, ...]:
        """serverAuth, clientAuth, or both for a peer that is a server and a client."""
        if self is Profile.SERVER:
            return (ExtendedKeyUsageOID.SERVER_AUTH,)
        if self is Profile.CLIENT:
            return (ExtendedKeyUsageOID.CLIENT_AUTH,)
        return (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)


Extension = tuple[x509.ExtensionType, bool]


def _key_usage(*, digital_signature: bool, key_encipherment: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _identifiers(
    public_key: PublicKey, issuer_ski: x509.SubjectKeyIdentifier | None
) -> list[Extension]:
    extensions: list[Extension] = [(x509.SubjectKeyIdentifier.from_public_key(public_key), False)]
    if issuer_ski is not None:
        extensions.append(
            (x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), False)
        )
    return extensions


def leaf_extensions(
    profile: Profile,
    public_key: PublicKey,
    san: x509.SubjectAlternativeName,
    issuer_ski: x509.SubjectKeyIdentifier,
    *,
    empty_subject: bool = False,
) -> list[Extension]:
    """The (extension, critical) list for a leaf certificate of ``profile``."""
    return [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (
            _key_usage(
                digital_signature=True,
                key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                ca=False,
            ),
            True,
        ),
        (x509.ExtendedKeyUsage(list(profile.extended_key_usages)), False),
        # RFC 5280 4.2.1.6: the SAN extension is critical when the subject is empty.
        (san, empty_subject),
        *_identifiers(public_key, issuer_ski),
    ]


def ca_extensions(
    public_key: PublicKey,
    *,
    path_length: int | None,
    issuer_ski: x509.SubjectKeyIdentifier | None,
) -> list[Extension]:
    """The (extension, critical) list for a root (``issuer_ski=None``) or intermediate CA."""
    return [
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        (_key_usage(digital_signature=False, key_encipherment=False, ca=True), True),
        *_identifiers(public_key, issuer_ski),
    ]
