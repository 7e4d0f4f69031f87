"""Certificate material, parsed and checked once: a key pair and a trust bundle. No grpc.

grpcio is a poor judge of its own input (grpcio-security.md §1.1, §1.3, §5.3): half a pair
aborts the process, a bad server key reads "Failed to bind to address", and empty roots silently
mean its bundled roots. So material becomes a value here (:class:`KeyPair`, :class:`TrustBundle`)
before any credential is built from it: the chain is PEM and leaf-first, its leaf is not a CA,
the key is the leaf's, and it is re-encoded as the unencrypted PKCS#8 PEM grpcio wants
(decrypted in memory when a password is given); trust is an explicit or recorded system bundle,
never nothing. :mod:`grpcsec.credentials` turns these values into grpcio objects, and rotation
loads them off the handshake path.

Not checked here: validity dates (an expired pair is still valid *material*; see
:func:`grpcsec.pki.verify_certificate`), revocation, and role-specific usages and names
(checked where the role is known, in :mod:`grpcsec.credentials`).
"""

from __future__ import annotations

import enum
import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from cryptography import x509

from grpcsec.errors import ConfigurationError, KeyMismatchError, MaterialError
from grpcsec.fileio import FileKind
from grpcsec.pki import (
    CertificateAuthority,
    CertificateInfo,
    IssuedCertificate,
    KeyType,
    certificates_pem,
    check_anchors,
    inspect_bundle,
    load_certificates,
    load_private_key,
    private_key_pem,
    read_file,
)
from grpcsec.pki.keys import key_type_of, public_keys_equal

__all__ = [
    "MAX_TRUST_CERTIFICATES",
    "SYSTEM_BUNDLE_PATHS",
    "KeyPair",
    "StrPath",
    "TrustBundle",
    "TrustOrigin",
    "TrustSource",
    "as_key_pair",
    "as_trust_bundle",
    "load_key_pair",
]

StrPath: TypeAlias = "str | os.PathLike[str]"

#: The OS bundle files grpc core itself looks at (``load_system_roots_supported.cc``), in order.
SYSTEM_BUNDLE_PATHS: tuple[Path, ...] = (
    Path("/etc/ssl/certs/ca-certificates.crt"),
    Path("/etc/pki/tls/certs/ca-bundle.crt"),
    Path("/etc/ssl/ca-bundle.pem"),
    Path("/etc/pki/tls/cacert.pem"),
    Path("/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"),
    Path("/etc/ssl/cert.pem"),
)

_BEGIN_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"

MAX_TRUST_CERTIFICATES = 1000
"""The most certificates a :class:`TrustBundle` may hold. grpc core loads root certificates in
time that grows with the square of their number (``benchmarks/bundle_parse.py``: about 0.08 s
for 1,000 and 10 s for 10,000 on one core), blocking the thread that creates the credentials, so
a larger bundle is refused at once, before anything is parsed. OS bundles hold about 150."""


def _check_trust_count(count: int, source: str | None) -> None:
    if count > MAX_TRUST_CERTIFICATES:
        raise MaterialError(
            f"the trust bundle holds {count} certificates, more than the {MAX_TRUST_CERTIFICATES} "
            "grpcsec accepts (grpc core loads large bundles very slowly); keep only the CAs "
            "that issue your peers' certificates",
            path=source,
        )


def _password_bytes(password: bytes | str | None) -> bytes | None:
    if password is None or isinstance(password, bytes):
        return password
    return password.encode("utf-8")


def _is_ca(certificate: x509.Certificate) -> bool | None:
    """``True``/``False`` from basicConstraints, ``None`` when the extension is absent."""
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class KeyPair:
    """A certificate chain (leaf first) and its private key, checked and ready for grpcio.

    Construction parses and checks everything: the chain is PEM (DER is refused with a hint),
    leaf-first, and its leaf is not a CA; the key is the leaf's. ``chain_pem`` is re-encoded from
    the parsed certificates and ``key_pem`` is the unencrypted PKCS#8 PEM of the key (a
    traditional ``EC``/``RSA PRIVATE KEY`` or a DER key is converted). An encrypted ``key_pem``
    needs :meth:`from_pem` with a password. ``source`` and ``key_source`` name the files in
    errors. The key never appears in ``repr``, and pairs do not compare equal by value (compare
    :attr:`fingerprint_sha256` instead).

    Not checked: validity dates, the key type's support in grpcio (see :class:`ServerTLS`),
    extended key usage and names (role-specific, checked by :class:`ServerTLS`/:class:`ChannelTLS`).
    """

    chain_pem: bytes
    key_pem: bytes
    source: str | None = None
    key_source: str | None = None
    chain: tuple[x509.Certificate, ...] = field(init=False)
    key_type: KeyType | None = field(init=False)

    def __post_init__(self) -> None:
        for value, what, where in (
            (self.chain_pem, "certificate chain", self.source),
            (self.key_pem, "private key", self.key_source),
        ):
            if not isinstance(value, bytes):
                raise ConfigurationError(
                    f"the {what} must be bytes, not {type(value).__name__}", path=where
                )
        chain = load_certificates(self.chain_pem, source=self.source, allow_der=False)
        key = load_private_key(self.key_pem, source=self.key_source)
        report = inspect_bundle(chain)
        if report.problems:
            raise MaterialError(
                f"the chain is not in leaf-first order: {report.problems[0]}", path=self.source
            )
        leaf = chain[0]
        if _is_ca(leaf):
            raise MaterialError(
                "the first certificate is a CA certificate, not a server or client certificate "
                "(passed the CA file as the certificate?)",
                path=self.source,
            )
        if not public_keys_equal(leaf.public_key(), key.public_key()):
            cert_file = f" in {self.source}" if self.source else ""
            raise KeyMismatchError(
                f"this private key does not belong to the certificate{cert_file} "
                f"(serial {leaf.serial_number:x}); pair the certificate with the key it was "
                "issued for",
                path=self.key_source,
            )
        object.__setattr__(self, "chain", tuple(chain))
        object.__setattr__(self, "chain_pem", certificates_pem(chain))
        object.__setattr__(self, "key_pem", private_key_pem(key))
        object.__setattr__(self, "key_type", key_type_of(key))

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_pem(
        cls,
        chain_pem: bytes,
        key_pem: bytes,
        *,
        password: bytes | str | None = None,
        source: str | None = None,
        key_source: str | None = None,
    ) -> KeyPair:
        """A pair from PEM bytes, decrypting an encrypted key in memory with ``password``.

        Raises :class:`~grpcsec.errors.PasswordError` for an encrypted key without a password or
        with a wrong one.
        """
        secret = _password_bytes(password)
        if secret is not None and isinstance(key_pem, bytes):
            key = load_private_key(key_pem, password=secret, source=key_source)
            key_pem = private_key_pem(key)
        return cls(chain_pem=chain_pem, key_pem=key_pem, source=source, key_source=key_source)

    @classmethod
    def from_files(
        cls, cert: StrPath, key: StrPath, *, password: bytes | str | None = None
    ) -> KeyPair:
        """A pair from a chain file (leaf first) and a key file; errors name the file."""
        return cls.from_pem(
            read_file(Path(cert)),
            read_file(Path(key), kind=FileKind.KEY),
            password=password,
            source=os.fspath(cert),
            key_source=os.fspath(key),
        )

    @classmethod
    def from_issued(cls, issued: IssuedCertificate) -> KeyPair:
        """A pair from a certificate grpcsec just issued (it must carry its key)."""
        if issued.key is None:
            raise ConfigurationError(
                "this certificate was issued for a CSR; its private key is not here"
            )
        return cls(chain_pem=issued.chain_pem(), key_pem=issued.key_pem())

    # -- facts ------------------------------------------------------------------------------
    @property
    def leaf(self) -> x509.Certificate:
        """The end-entity certificate (the first of the chain)."""
        return self.chain[0]

    @property
    def info(self) -> CertificateInfo:
        """The inspected leaf (names, usages, dates, fingerprint)."""
        return CertificateInfo.of(self.leaf)

    @property
    def fingerprint_sha256(self) -> str:
        """The leaf's SHA-256 fingerprint, colon-separated upper-case hex."""
        return self.info.fingerprint_sha256

    def __repr__(self) -> str:
        kind = self.key_type.value if self.key_type else "other"
        return (
            f"KeyPair(subject={self.leaf.subject.rfc4514_string()!r}, "
            f"serial={self.leaf.serial_number:x}, chain_length={len(self.chain)}, "
            f"key=<{kind}, hidden>, source={self.source!r})"
        )


def load_key_pair(
    cert: StrPath | None, key: StrPath | None, *, password: bytes | str | None = None
) -> KeyPair | None:
    """The pair from optional ``--cert``/``--key`` style options: ``None`` when both are absent.

    Exactly one of them is refused with :class:`~grpcsec.errors.ConfigurationError`: grpcio
    aborts the whole process when it is given only one half.
    """
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing, path = (
            ("key", "certificate", key) if cert is None else ("certificate", "key", cert)
        )
        raise ConfigurationError(
            f"a {given} was given without its {missing}; pass both (grpcio would abort the "
            "process on half a pair)",
            path=None if path is None else os.fspath(path),
        )
    return KeyPair.from_files(cert, key, password=password)


class TrustOrigin(enum.Enum):
    """Where trust anchors came from. Values are stable (``--json``)."""

    EXPLICIT = "explicit"
    """Given by the caller: a file, PEM bytes or certificates."""
    SYSTEM = "system"
    """An operating-system bundle file (see :data:`SYSTEM_BUNDLE_PATHS`)."""
    CERTIFI = "certifi"
    """The ``certifi`` package's bundle."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustBundle:
    """PEM trust anchors for grpcio's ``root_certificates``, with where they came from.

    Never empty: grpcio would read ``b""`` as "use my bundled roots". Explicit bundles are parsed
    in full and hold CA certificates only (:func:`~grpcsec.pki.check_anchors`: a leaf or a v1
    certificate passed as the CA is a common mix-up, and a false accept). At most
    :data:`MAX_TRUST_CERTIFICATES` anchors. System bundles are only counted, not parsed, because
    OS stores carry certificates that strict parsers reject; grpcio skips those itself.

    Not checked: expiry of the anchors, and whether they are the ones the peer chains to.
    """

    pem: bytes = field(repr=False)
    source: str
    origin: TrustOrigin
    count: int

    def __post_init__(self) -> None:
        if not isinstance(self.pem, bytes) or _BEGIN_CERTIFICATE not in self.pem:
            raise MaterialError("the trust bundle has no PEM certificate", path=self.source)
        if self.count < 1:
            raise MaterialError("the trust bundle is empty", path=self.source)
        _check_trust_count(self.count, self.source)

    @classmethod
    def from_pem(cls, data: bytes, *, source: str | None = None) -> TrustBundle:
        """CA certificates from PEM bytes (DER is refused with a hint; more than
        :data:`MAX_TRUST_CERTIFICATES` certificates are refused before any is parsed)."""
        _check_trust_count(data.count(_BEGIN_CERTIFICATE), source)
        certificates = load_certificates(data, source=source, allow_der=False)
        check_anchors(certificates, source=source)
        return cls(
            pem=certificates_pem(certificates),
            source=source or "<memory>",
            origin=TrustOrigin.EXPLICIT,
            count=len(certificates),
        )

    @classmethod
    def from_file(cls, path: StrPath) -> TrustBundle:
        """CA certificates from a PEM bundle file."""
        return cls.from_pem(read_file(Path(path)), source=os.fspath(path))

    @classmethod
    def from_certificates(cls, certificates: Sequence[x509.Certificate]) -> TrustBundle:
        """CA certificates already parsed (``ca.root``, ``[root, other_root]``)."""
        if not certificates:
            raise MaterialError("the trust bundle is empty: no certificates were given")
        return cls.from_pem(certificates_pem(certificates))

    @classmethod
    def system(
        cls, *, paths: Sequence[StrPath] | None = None, use_certifi: bool = True
    ) -> TrustBundle:
        """The first OS bundle file among ``paths`` (default :data:`SYSTEM_BUNDLE_PATHS`) that
        holds certificates, else ``certifi``'s bundle when it is installed.

        Environment variables (``SSL_CERT_FILE``, ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``) are
        deliberately not consulted: pass an explicit bundle to use a particular file. The result
        records the file used in ``source``.
        """
        if paths is None:
            paths = SYSTEM_BUNDLE_PATHS
        for candidate in paths:
            path = Path(candidate)
            if not path.is_file():
                continue
            data = read_file(path)
            count = data.count(_BEGIN_CERTIFICATE)
            if count:
                return cls(pem=data, source=str(path), origin=TrustOrigin.SYSTEM, count=count)
        if use_certifi:
            try:
                certifi = importlib.import_module("certifi")
            except ImportError:
                pass
            else:
                where = str(certifi.where())
                data = read_file(where)
                count = data.count(_BEGIN_CERTIFICATE)
                if count:
                    return cls(pem=data, source=where, origin=TrustOrigin.CERTIFI, count=count)
        looked = ", ".join(os.fspath(p) for p in paths) or "no paths"
        raise ConfigurationError(
            f"no system CA bundle found (looked at {looked}"
            f"{' and certifi' if use_certifi else ''}); pass an explicit CA bundle"
        )


#: Anything :func:`server_credentials` and :func:`channel_credentials` accept as trust anchors:
#: a :class:`TrustBundle`, PEM bytes, a bundle file path, a certificate or certificates, or a
#: :class:`~grpcsec.pki.CertificateAuthority` (its root is trusted).
TrustSource: TypeAlias = (
    "TrustBundle | bytes | str | os.PathLike[str] | x509.Certificate "
    "| Sequence[x509.Certificate] | CertificateAuthority"
)


def as_trust_bundle(value: TrustSource, what: str = "trust bundle") -> TrustBundle:
    """Any accepted :data:`TrustSource` as a :class:`TrustBundle` (``what`` names it in errors)."""
    if isinstance(value, TrustBundle):
        return value
    if isinstance(value, bytes):
        if not value.strip():
            raise MaterialError(
                f"the {what} is empty (grpcio would silently use its bundled roots instead)"
            )
        return TrustBundle.from_pem(value)
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        raise ConfigurationError(f"the {what} looks like PEM text; pass PEM as bytes, paths as str")
    if isinstance(value, str | os.PathLike):
        return TrustBundle.from_file(value)
    if isinstance(value, x509.Certificate):
        return TrustBundle.from_certificates([value])
    if isinstance(value, CertificateAuthority):
        return TrustBundle.from_certificates([value.root])
    certificates = list(value)
    if not all(isinstance(c, x509.Certificate) for c in certificates):
        raise ConfigurationError(f"the {what} must be PEM bytes, a path or certificates")
    return TrustBundle.from_certificates(certificates)


def as_key_pair(value: KeyPair | IssuedCertificate) -> KeyPair:
    """A :class:`KeyPair`, or one made from a certificate grpcsec just issued."""
    return value if isinstance(value, KeyPair) else KeyPair.from_issued(value)
