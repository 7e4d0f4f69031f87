"""grpcio server and channel credentials from certificate material, checked before grpcio sees it.

grpcio is a poor judge of its own input (grpcio-security.md §1.1, §1.3, §5.3):

* ``ssl_channel_credentials`` with only one of key and chain **aborts the process** when the
  channel is created;
* a server key that is encrypted, DER or not the certificate's surfaces as ``RuntimeError:
  Failed to bind to address``, which sends people chasing port conflicts;
* ``root_certificates=None`` *and* ``b""`` silently mean grpcio's bundled (stale) roots, or
  whatever ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` points at;
* ``require_client_auth=False`` with a client CA never even *requests* a client certificate.

So material is parsed once into values (:class:`KeyPair`, :class:`TrustBundle`), checked, and only
then handed over: key matches the leaf, chain is leaf-first, the leaf is not a CA, the key is
re-encoded as the unencrypted PKCS#8 PEM grpcio wants (decrypted in memory when a password is
given), trust comes from an explicit bundle or from a recorded system bundle, never from ``None``.
:class:`ServerTLS` and :class:`ChannelTLS` are the checked configurations; their
``credentials()`` (or the :func:`server_credentials` / :func:`channel_credentials` shortcuts)
return plain grpcio objects usable with ``grpc.server``, ``grpc.aio.server``,
``grpc.secure_channel`` and ``grpc.aio.secure_channel`` alike.

Not checked here: expiry and not-before (an expired pair is still valid *material*; see
:func:`grpcsec.pki.verify_certificate` and the monitor), revocation, and whether the chain reaches
the peer's trust anchors.
"""

from __future__ import annotations

import enum
import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import grpc
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from grpcsec.errors import ConfigurationError, KeyMismatchError, MaterialError
from grpcsec.pki import (
    CertificateAuthority,
    CertificateInfo,
    IssuedCertificate,
    KeyType,
    Role,
    certificates_pem,
    inspect_bundle,
    load_certificates,
    load_private_key,
    private_key_pem,
    read_file,
)
from grpcsec.pki.keys import key_type_of, public_keys_equal

__all__ = [
    "SYSTEM_BUNDLE_PATHS",
    "ChannelTLS",
    "KeyPair",
    "ServerTLS",
    "TrustBundle",
    "TrustOrigin",
    "TrustSource",
    "channel_credentials",
    "load_key_pair",
    "server_credentials",
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
            read_file(Path(key)),
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
    in full and refuse certificates marked ``CA:false`` (a leaf passed as the CA is a common
    mix-up). System bundles are only counted, not parsed, because OS stores carry certificates
    that strict parsers reject; grpcio skips those itself.

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

    @classmethod
    def from_pem(cls, data: bytes, *, source: str | None = None) -> TrustBundle:
        """CA certificates from PEM bytes (DER is refused with a hint)."""
        certificates = load_certificates(data, source=source, allow_der=False)
        for index, certificate in enumerate(certificates, start=1):
            if _is_ca(certificate) is False:
                raise MaterialError(
                    f"certificate {index} ({certificate.subject.rfc4514_string()}) is not a CA "
                    "(basicConstraints CA:false); pass the CA certificate that issued it, "
                    "not a server or client certificate",
                    path=source,
                )
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


def _trust_bundle(value: TrustSource, what: str) -> TrustBundle:
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


def _key_pair(value: KeyPair | IssuedCertificate) -> KeyPair:
    return value if isinstance(value, KeyPair) else KeyPair.from_issued(value)


def _check_leaf_for(
    identity: KeyPair, role: Role, *, allow_unsupported_key: bool, require_host_san: bool
) -> None:
    """The role checks grpcio would otherwise fail at handshake time with a vaguer message."""
    kind = identity.key_type
    if not allow_unsupported_key and kind is not None and not kind.grpc_leaf_supported:
        raise MaterialError(
            f"grpcio cannot complete a TLS handshake with a {kind.value} leaf key "
            "(NO_COMMON_SIGNATURE_ALGORITHMS); reissue it with ecdsa-p256, ecdsa-p384 or RSA",
            path=identity.source,
        )
    info = identity.info
    try:
        eku = identity.leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        usages = list(eku.value)
    except x509.ExtensionNotFound:
        usages = [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]  # no EKU: any usage (RFC 5280)
    if role.eku not in usages and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usages:
        profile = "server" if role is Role.SERVER else "client"
        have = ", ".join(info.extended_key_usage) or "none"
        raise MaterialError(
            f"the certificate lacks {role.eku_name} in its extended key usage (has: {have}); "
            f"peers refuse it with 'unsupported certificate purpose'; reissue it with the "
            f"{profile} or peer profile",
            path=identity.source,
        )
    if role is Role.SERVER and require_host_san and not (info.names.dns or info.names.ips):
        listed = ", ".join(info.names.as_strings()) or "no SANs"
        raise MaterialError(
            f"the server certificate has no DNS or IP subject alternative name ({listed}); "
            "grpcio clients verify only DNS/IP SANs (never URI SANs), so they cannot reach it; "
            "reissue it with a DNS name or IP, or pass require_host_san=False for non-grpcio "
            "clients",
            path=identity.source,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerTLS:
    """A checked server TLS configuration: TLS, or mTLS when ``client_ca`` is set.

    mTLS here means what grpcio can do: the client certificate is requested, required and
    verified against ``client_ca``. (grpcio has no "request but optional" mode from Python.)
    Construction checks that the leaf can serve: its EKU allows serverAuth, it has a DNS or IP
    SAN unless ``require_host_san=False``, and its key type works in grpcio unless
    ``allow_unsupported_key=True``.
    """

    identity: KeyPair
    client_ca: TrustBundle | None = None
    require_host_san: bool = True
    allow_unsupported_key: bool = False

    def __post_init__(self) -> None:
        _check_leaf_for(
            self.identity,
            Role.SERVER,
            allow_unsupported_key=self.allow_unsupported_key,
            require_host_san=self.require_host_san,
        )

    @classmethod
    def create(
        cls,
        identity: KeyPair | IssuedCertificate,
        *,
        client_ca: TrustSource | None = None,
        require_client_cert: bool | None = None,
        require_host_san: bool = True,
        allow_unsupported_key: bool = False,
    ) -> ServerTLS:
        """Build from loose inputs. ``require_client_cert`` defaults to "whether ``client_ca``
        is given"; ``True`` without a CA, or ``False`` with one, is refused, because grpcio
        either cannot verify or would silently never ask for the certificate."""
        if require_client_cert is True and client_ca is None:
            raise ConfigurationError(
                "require_client_cert=True needs client_ca: the CA bundle that client "
                "certificates are verified against"
            )
        if require_client_cert is False and client_ca is not None:
            raise ConfigurationError(
                "client_ca was given with require_client_cert=False: grpcio then never requests "
                "a client certificate (it has no optional-mTLS mode); drop client_ca for "
                "TLS only, or require the certificate"
            )
        return cls(
            identity=_key_pair(identity),
            client_ca=None if client_ca is None else _trust_bundle(client_ca, "client CA bundle"),
            require_host_san=require_host_san,
            allow_unsupported_key=allow_unsupported_key,
        )

    @property
    def mutual(self) -> bool:
        """Whether clients must present a certificate that verifies against ``client_ca``."""
        return self.client_ca is not None

    def credentials(self) -> grpc.ServerCredentials:
        """A fresh ``grpc.ServerCredentials`` for ``add_secure_port`` (sync or aio server)."""
        return grpc.ssl_server_credentials(
            [(self.identity.key_pem, self.identity.chain_pem)],
            root_certificates=self.client_ca.pem if self.client_ca else None,
            require_client_auth=self.mutual,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelTLS:
    """A checked client TLS configuration: explicit trust anchors, and a client pair for mTLS.

    Construction checks that a client leaf allows clientAuth and that its key type works in
    grpcio (unless ``allow_unsupported_key=True``). ``trust.source`` says where the roots came
    from.
    """

    trust: TrustBundle
    identity: KeyPair | None = None
    allow_unsupported_key: bool = False

    def __post_init__(self) -> None:
        if self.identity is not None:
            _check_leaf_for(
                self.identity,
                Role.CLIENT,
                allow_unsupported_key=self.allow_unsupported_key,
                require_host_san=False,
            )

    @classmethod
    def create(
        cls,
        *,
        ca: TrustSource | None = None,
        identity: KeyPair | IssuedCertificate | None = None,
        use_system_roots: bool = False,
        allow_unsupported_key: bool = False,
    ) -> ChannelTLS:
        """Build from loose inputs: exactly one of ``ca`` and ``use_system_roots=True``."""
        if ca is not None and use_system_roots:
            raise ConfigurationError("pass either a CA bundle or use_system_roots=True, not both")
        if ca is None and not use_system_roots:
            raise ConfigurationError(
                "no trust anchors: pass the CA bundle that issued the server certificate, or "
                "use_system_roots=True for a publicly trusted server"
            )
        trust = TrustBundle.system() if ca is None else _trust_bundle(ca, "CA bundle")
        return cls(
            trust=trust,
            identity=None if identity is None else _key_pair(identity),
            allow_unsupported_key=allow_unsupported_key,
        )

    @property
    def mutual(self) -> bool:
        """Whether the channel presents a client certificate."""
        return self.identity is not None

    def credentials(self) -> grpc.ChannelCredentials:
        """A fresh ``grpc.ChannelCredentials`` for ``secure_channel`` (sync or aio)."""
        if self.identity is None:
            return grpc.ssl_channel_credentials(root_certificates=self.trust.pem)
        return grpc.ssl_channel_credentials(
            root_certificates=self.trust.pem,
            private_key=self.identity.key_pem,
            certificate_chain=self.identity.chain_pem,
        )


def server_credentials(
    identity: KeyPair | IssuedCertificate,
    *,
    client_ca: TrustSource | None = None,
    require_client_cert: bool | None = None,
    require_host_san: bool = True,
    allow_unsupported_key: bool = False,
) -> grpc.ServerCredentials:
    """Server credentials: TLS, or mTLS (client certificate required and verified) when
    ``client_ca`` is given. See :meth:`ServerTLS.create`."""
    return ServerTLS.create(
        identity,
        client_ca=client_ca,
        require_client_cert=require_client_cert,
        require_host_san=require_host_san,
        allow_unsupported_key=allow_unsupported_key,
    ).credentials()


def channel_credentials(
    *,
    ca: TrustSource | None = None,
    identity: KeyPair | IssuedCertificate | None = None,
    use_system_roots: bool = False,
    allow_unsupported_key: bool = False,
) -> grpc.ChannelCredentials:
    """Channel credentials trusting exactly ``ca`` (or the recorded system bundle), presenting
    ``identity`` for mTLS when given. Use :meth:`ChannelTLS.create` to see where the roots came
    from."""
    return ChannelTLS.create(
        ca=ca,
        identity=identity,
        use_system_roots=use_system_roots,
        allow_unsupported_key=allow_unsupported_key,
    ).credentials()
