"""What counts as weak key material, and whether one certificate signed another: one definition
for the doctor (which warns), :mod:`grpcsec.credentials` (which refuses unless
``allow_weak_keys=True``) and rotation (which refuses a weak pair rotated in).

Weak: RSA keys under 2048 bits, any DSA key, elliptic-curve keys on curves under 256 bits, and
certificates signed with MD5 or SHA-1. Allowed curves are those of 256 bits and more (P-256,
P-384 and P-521 in practice: grpcio's BoringSSL offers no others). A self-issued certificate's
own signature is not judged (a trust anchor's self-signature is never verified by anyone).

Not judged: RSA public exponents, Ed25519/Ed448 (strong; whether grpcio can use them is a
separate check), and the strength of the CA bundle a peer is verified with.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

__all__ = ["describe", "issued_by", "self_issued", "weak_points"]

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


def describe(certificate: x509.Certificate) -> str:
    """A short, quoted name for messages: the subject, or the serial when it is empty."""
    subject = certificate.subject.rfc4514_string()
    if subject:
        return f"'{subject}'"
    return f"the certificate with serial {certificate.serial_number:x}"


def self_issued(certificate: x509.Certificate) -> bool:
    return certificate.issuer == certificate.subject


def issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """Whether ``parent`` names and signed ``child`` (the signature is verified)."""
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except Exception:  # noqa: BLE001 (InvalidSignature, ValueError, TypeError, unsupported keys)
        return False
    return True


_MODERN_KEYS = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
)


def weak_points(certificates: Sequence[x509.Certificate]) -> list[str]:
    """One phrase per weakness among ``certificates`` (empty when there is none)."""
    found: list[str] = []
    for certificate in certificates:
        key = certificate.public_key()
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
            found.append(f"{describe(certificate)} has a {key.key_size}-bit RSA key")
        if not isinstance(key, _MODERN_KEYS):
            # DSA above all (cryptography deprecates even naming its class, so it is told by
            # exclusion): a key of any type outside the modern ones is weak here.
            kind = type(key).__name__.removesuffix("PublicKey") or "unknown"
            found.append(f"{describe(certificate)} has a {kind} key")
        if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < MIN_EC_BITS:
            found.append(f"{describe(certificate)} has a {key.curve.key_size}-bit EC key")
        if self_issued(certificate):
            continue
        try:
            algorithm = certificate.signature_hash_algorithm
        except UnsupportedAlgorithm:
            algorithm = None
        if isinstance(algorithm, hashes.SHA1 | hashes.MD5):
            found.append(f"{describe(certificate)} is signed with {algorithm.name.upper()}")
    return found
