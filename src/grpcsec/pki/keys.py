"""Private keys: the supported types, generation, PEM encoding and loading.

ECDSA P-256 is the default: it is what step, cfssl, trustme and Linkerd use, key generation takes
microseconds, and handshakes are several times faster than with RSA-4096 (see benchmarks/).
grpcio only accepts unencrypted PEM keys, so encrypted keys are decrypted here, in memory, with a
password the caller was given; the clear key is never written anywhere by this module.

Not checked here: key strength policy beyond the fixed menu of types, and hardware-backed keys.
"""

from __future__ import annotations

import enum
from typing import TypeAlias

from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from grpcsec.errors import MaterialError, PasswordError

__all__ = [
    "KeyType",
    "PrivateKey",
    "PublicKey",
    "describe_public_key",
    "generate_key",
    "key_type_of",
    "load_private_key",
    "private_key_pem",
    "public_keys_equal",
    "signature_hash",
]

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class KeyType(enum.Enum):
    """The key types grpcsec issues. Values are the names used on the command line."""

    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    ED25519 = "ed25519"

    @property
    def grpc_leaf_supported(self) -> bool:
        """Whether grpcio's TLS stack can serve and present a *leaf* with this key type.

        Measured by ``tests/test_key_types_grpc.py`` (grpcio 1.85.1, BoringSSL): an Ed25519 leaf
        fails every handshake with ``NO_COMMON_SIGNATURE_ALGORITHMS``; every other type works.
        An Ed25519 *CA* signing ECDSA or RSA leaves does work in grpcio, but
        ``cryptography``'s web PKI verifier (and so ``grpcsec verify``) rejects it.
        """
        return self is not KeyType.ED25519


def generate_key(key_type: KeyType = KeyType.ECDSA_P256) -> PrivateKey:
    """Generate a fresh private key of ``key_type``."""
    if key_type is KeyType.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if key_type is KeyType.ECDSA_P384:
        return ec.generate_private_key(ec.SECP384R1())
    if key_type is KeyType.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    bits = {KeyType.RSA_2048: 2048, KeyType.RSA_3072: 3072, KeyType.RSA_4096: 4096}[key_type]
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_type_of(key: PrivateKey | PublicKey) -> KeyType | None:
    """The :class:`KeyType` of a key, or ``None`` for a key outside grpcsec's menu."""
    public: object = key
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        public = key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        return KeyType.ED25519
    if isinstance(public, ec.EllipticCurvePublicKey):
        return {"secp256r1": KeyType.ECDSA_P256, "secp384r1": KeyType.ECDSA_P384}.get(
            public.curve.name
        )
    if isinstance(public, rsa.RSAPublicKey):
        return {2048: KeyType.RSA_2048, 3072: KeyType.RSA_3072, 4096: KeyType.RSA_4096}.get(
            public.key_size
        )
    return None


def describe_public_key(public: object) -> tuple[str, int]:
    """A short algorithm name and size in bits, for inspection output (``("ECDSA P-256", 256)``)."""
    if isinstance(public, ec.EllipticCurvePublicKey):
        names = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"ECDSA {names.get(public.curve.name, public.curve.name)}", public.curve.key_size
    if isinstance(public, rsa.RSAPublicKey):
        return "RSA", public.key_size
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    return type(public).__name__, 0


def signature_hash(issuer_key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
    """The hash an issuer signs with: SHA-384 for P-384, none for Ed25519, else SHA-256."""
    if isinstance(issuer_key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey) and issuer_key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def private_key_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM of ``key``, encrypted with the best available scheme when ``password`` is set."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=encryption,
    )


def load_private_key(
    data: bytes, *, password: bytes | None = None, source: str | None = None
) -> PrivateKey:
    """Parse a PEM (or DER) private key, decrypting it in memory when it is encrypted.

    ``source`` names the file in error messages. Raises :class:`PasswordError` when the key is
    encrypted and no password or a wrong one was given, and :class:`MaterialError` for anything
    that is not a supported private key (a certificate, garbage, a truncated file).
    """
    is_pem = data.lstrip().startswith(b"-----BEGIN")
    stripped = data.strip() if is_pem else data  # stripping could cut bytes off DER
    if not data.strip():
        raise MaterialError("the file is empty; expected a PEM private key", path=source)
    if is_pem and b"PRIVATE KEY-----" not in stripped.split(b"\n", 1)[0]:
        first = stripped.split(b"\n", 1)[0].decode("ascii", "replace")
        raise MaterialError(f"expected a PEM private key, found {first!r}", path=source)
    encrypted = b"ENCRYPTED" in stripped[:200]
    if encrypted and not password:
        raise PasswordError(
            "the private key is encrypted and no password was given",
            path=source,
        )
    loader = serialization.load_pem_private_key if is_pem else serialization.load_der_private_key
    try:
        key = loader(stripped, password=password if encrypted or not is_pem else None)
    except TypeError as exc:
        if "not encrypted" in str(exc):
            key = loader(stripped, password=None)
        else:
            raise PasswordError(
                "the private key is encrypted and no password was given", path=source
            ) from exc
    except (ValueError, InternalError) as exc:  # InternalError: OpenSSL refused the key bytes
        if encrypted:
            raise PasswordError(
                "the password does not decrypt the private key", path=source
            ) from exc
        if password and not is_pem:
            raise PasswordError(
                "the DER private key is corrupt, or the password does not decrypt it",
                path=source,
            ) from exc
        what = "PEM private key" if is_pem else "private key (neither PEM nor DER)"
        raise MaterialError(
            f"not a valid {what}: the data is corrupt or truncated", path=source
        ) from exc
    except UnsupportedAlgorithm as exc:
        raise MaterialError(f"unsupported private key algorithm: {exc}", path=source) from exc
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise MaterialError(
            f"unsupported private key type {type(key).__name__}; use ECDSA, RSA or Ed25519",
            path=source,
        )
    return key


def public_keys_equal(a: object, b: object) -> bool:
    """Whether two public keys are the same key (compared by their SubjectPublicKeyInfo DER)."""
    encode = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        left: bytes = a.public_bytes(encode, spki)  # type: ignore[attr-defined]
        right: bytes = b.public_bytes(encode, spki)  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        return False
    return left == right
