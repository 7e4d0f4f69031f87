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

from dataclasses import dataclass, field

import grpc
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from grpcsec.errors import ConfigurationError, MaterialError
from grpcsec.material import (
    KeyPair,
    TrustBundle,
    TrustSource,
    as_key_pair,
    as_trust_bundle,
)
from grpcsec.pki import IssuedCertificate, Role
from grpcsec.pki.strength import weak_points

__all__ = [
    "ChannelTLS",
    "ServerTLS",
    "channel_credentials",
    "server_credentials",
]


def _check_leaf_for(
    identity: KeyPair,
    role: Role,
    *,
    allow_unsupported_key: bool,
    require_host_san: bool,
    allow_weak_keys: bool,
) -> None:
    """The role checks grpcio would otherwise fail at handshake time with a vaguer message,
    and the strength check (:mod:`grpcsec.pki.strength`) peers may not make."""
    weak = [] if allow_weak_keys else weak_points(identity.chain)
    if weak:
        raise MaterialError(
            f"weak key material: {'; '.join(weak)}; reissue it (RSA >= 2048 bits, ECDSA P-256 "
            "or stronger, SHA-256 signatures) or pass allow_weak_keys=True (--allow-weak-keys)",
            path=identity.source,
        )
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
        if info.names.uris:
            why = (
                f"its only names are URIs ({', '.join(info.names.as_strings())}), and gRPC "
                "clients never match a host against URI SANs, so no client can verify it"
            )
        else:
            why = (
                "it names its host only in the subject CN, which grpc-go, browsers and other "
                "modern clients ignore (grpcio still falls back to it)"
            )
        raise MaterialError(
            f"the server certificate has no DNS or IP subject alternative name: {why}; "
            "reissue it with --host NAME_OR_IP",
            path=identity.source,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerTLS:
    """A checked server TLS configuration: TLS, or mTLS when ``client_ca`` is set.

    mTLS here means what grpcio can do: the client certificate is requested, required and
    verified against ``client_ca``. (grpcio has no "request but optional" mode from Python.)
    Construction checks that the leaf can serve: its EKU allows serverAuth, it has a DNS or IP
    SAN unless ``require_host_san=False``, its key type works in grpcio unless
    ``allow_unsupported_key=True``, and no key or signature in the chain is weak unless
    ``allow_weak_keys=True``.
    """

    identity: KeyPair
    client_ca: TrustBundle | None = None
    require_host_san: bool = True
    allow_unsupported_key: bool = False
    allow_weak_keys: bool = False

    def __post_init__(self) -> None:
        _check_leaf_for(
            self.identity,
            Role.SERVER,
            allow_unsupported_key=self.allow_unsupported_key,
            require_host_san=self.require_host_san,
            allow_weak_keys=self.allow_weak_keys,
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
        allow_weak_keys: bool = False,
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
            identity=as_key_pair(identity),
            client_ca=None if client_ca is None else as_trust_bundle(client_ca, "client CA bundle"),
            require_host_san=require_host_san,
            allow_unsupported_key=allow_unsupported_key,
            allow_weak_keys=allow_weak_keys,
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
    grpcio (unless ``allow_unsupported_key=True``) and that its chain has no weak key or
    signature (unless ``allow_weak_keys=True``). ``trust.source`` says where the roots came
    from.
    """

    trust: TrustBundle
    identity: KeyPair | None = None
    allow_unsupported_key: bool = False
    allow_weak_keys: bool = False
    server_name: str | None = None
    session_resumption: bool = False
    _session_cache: object = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.session_resumption:
            # One private cache per configuration: one client identity and one trust bundle.
            # A cache shared across identities or trust lets a channel resume a session another
            # identity or another trust established (benchmarks/resumption.py shows both).
            from grpc.experimental import session_cache  # noqa: PLC0415 (only when asked)

            cache = session_cache.ssl_session_cache_lru(64)
            object.__setattr__(self, "_session_cache", cache)
        if self.identity is not None:
            _check_leaf_for(
                self.identity,
                Role.CLIENT,
                allow_unsupported_key=self.allow_unsupported_key,
                require_host_san=False,
                allow_weak_keys=self.allow_weak_keys,
            )

    @classmethod
    def create(
        cls,
        *,
        ca: TrustSource | None = None,
        identity: KeyPair | IssuedCertificate | None = None,
        use_system_roots: bool = False,
        allow_unsupported_key: bool = False,
        allow_weak_keys: bool = False,
        server_name: str | None = None,
        session_resumption: bool = False,
    ) -> ChannelTLS:
        """Build from loose inputs: exactly one of ``ca`` and ``use_system_roots=True``.

        ``server_name`` is the name to verify the server certificate against (and to send as
        SNI) instead of the dialled host, e.g. when dialling by IP; see :meth:`channel_options`.

        ``session_resumption`` (off by default) gives this configuration a private TLS session
        cache: new channels built with :meth:`channel_options` resume earlier sessions, which
        measured 1.27x (ECDSA P-256) and 1.63x (RSA-2048) more new connections per second. It
        is off because a resumed session skips certificate checks on both sides, so a rotated
        or revoked certificate is only enforced when the session ticket expires, and it only
        works when dialling a DNS name or with ``server_name``.
        """
        if ca is not None and use_system_roots:
            raise ConfigurationError("pass either a CA bundle or use_system_roots=True, not both")
        if ca is None and not use_system_roots:
            raise ConfigurationError(
                "no trust anchors: pass the CA bundle that issued the server certificate, or "
                "use_system_roots=True for a publicly trusted server"
            )
        trust = TrustBundle.system() if ca is None else as_trust_bundle(ca, "CA bundle")
        return cls(
            trust=trust,
            identity=None if identity is None else as_key_pair(identity),
            allow_unsupported_key=allow_unsupported_key,
            allow_weak_keys=allow_weak_keys,
            server_name=server_name,
            session_resumption=session_resumption,
        )

    @property
    def mutual(self) -> bool:
        """Whether the channel presents a client certificate."""
        return self.identity is not None

    def channel_options(self) -> list[tuple[str, object]]:
        """Channel options this configuration needs: the server-name override, when set, and
        the private TLS session cache when ``session_resumption`` is on."""
        options: list[tuple[str, object]] = []
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        if self._session_cache is not None:
            options.append(("grpc.ssl_session_cache", self._session_cache))
        return options

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
    allow_weak_keys: bool = False,
) -> grpc.ServerCredentials:
    """Server credentials: TLS, or mTLS (client certificate required and verified) when
    ``client_ca`` is given. See :meth:`ServerTLS.create`."""
    return ServerTLS.create(
        identity,
        client_ca=client_ca,
        require_client_cert=require_client_cert,
        require_host_san=require_host_san,
        allow_unsupported_key=allow_unsupported_key,
        allow_weak_keys=allow_weak_keys,
    ).credentials()


def channel_credentials(
    *,
    ca: TrustSource | None = None,
    identity: KeyPair | IssuedCertificate | None = None,
    use_system_roots: bool = False,
    allow_unsupported_key: bool = False,
    allow_weak_keys: bool = False,
) -> grpc.ChannelCredentials:
    """Channel credentials trusting exactly ``ca`` (or the recorded system bundle), presenting
    ``identity`` for mTLS when given. Use :meth:`ChannelTLS.create` to see where the roots came
    from."""
    return ChannelTLS.create(
        ca=ca,
        identity=identity,
        use_system_roots=use_system_roots,
        allow_unsupported_key=allow_unsupported_key,
        allow_weak_keys=allow_weak_keys,
    ).credentials()
