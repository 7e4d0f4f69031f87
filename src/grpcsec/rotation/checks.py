"""Checks that rotated material must pass before it is served: the off-handshake-path half.

:func:`check_server_material` and :func:`check_channel_material` turn a source's raw bytes into
checked values, or raise the grpcsec error that says why not:

* the chain is PEM, leaf-first, and its key is the leaf's (:class:`~grpcsec.material.KeyPair`);
  a torn update (new certificate, old key) fails here as :class:`KeyMismatchError`;
* the leaf and every certificate served with it are inside their validity window at ``now``:
  an expired one is refused (``EXPIRED``), and so is a not-yet-valid one (``NOT_YET_VALID``),
  because peers would reject it too; the watcher retries not-yet-valid material every poll,
  so it goes into service within one interval of becoming valid;
* the leaf fits its role (serverAuth with a DNS/IP SAN for a server, clientAuth for a client,
  a key type grpcio can use), via :class:`~grpcsec.credentials.ServerTLS` /
  :class:`~grpcsec.credentials.ChannelTLS`;
* when the source has an ``issuers`` bundle, the chain verifies against it
  (:func:`grpcsec.pki.verify_certificate` with the role);
* a server in mTLS mode has a client-CA bundle in every generation (an empty one would fail
  every client handshake, grpcio-security.md §1.2);
* the chain leads to a CA this identity was served from, or to a configured next CA
  (:class:`~grpcsec.rotation.lineage.Lineage`; the first generation establishes the lineage);
* no weak key or signature in the chain unless ``allow_weak_keys``
  (:mod:`grpcsec.pki.strength`).

Trust *changes* (a bundle that drops a CA still in use) are judged in
:mod:`grpcsec.rotation.trust`, because they compare two generations. Not checked: revocation,
and whether peers trust the new chain (a server cannot see its clients' bundles).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from cryptography import x509

from grpcsec.clock import format_moment
from grpcsec.credentials import ChannelTLS, ServerTLS
from grpcsec.errors import (
    ConfigurationError,
    GrpcsecError,
    KeyMismatchError,
    MaterialError,
    RotationError,
    UntrustedIssuerError,
    VerificationError,
    VerifyReason,
)
from grpcsec.material import KeyPair, TrustBundle
from grpcsec.pki import CertificateInfo, Role, load_certificates, verify_certificate
from grpcsec.rotation.lineage import Lineage
from grpcsec.rotation.sources import RawMaterial

__all__ = [
    "ChannelMaterial",
    "FailureKind",
    "ServerMaterial",
    "check_channel_material",
    "check_server_material",
    "classify",
]


class FailureKind(enum.Enum):
    """Why material was refused. Values are stable (status JSON, metrics labels)."""

    INVALID = "invalid"
    """Missing, unreadable, garbage, truncated, wrong role or key type."""
    KEY_MISMATCH = "key_mismatch"
    """The key is not the certificate's (often a torn update that a later read fixes)."""
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    """Retried at every poll: it goes into service once valid."""
    UNTRUSTED = "untrusted"
    """The chain does not verify against the configured issuers."""
    UNTRUSTED_ISSUER = "untrusted_issuer"
    """The chain does not lead to a CA served before or to a configured next CA."""
    TRUST_DROPPED = "trust_dropped"
    """A new trust bundle drops a CA that is still needed (see :mod:`grpcsec.rotation.trust`)."""
    ERROR = "error"
    """Anything else (a bug); the traceback is logged."""

    @property
    def time_dependent(self) -> bool:
        """Whether the same bytes may pass later without changing (so they are re-checked)."""
        return self in {FailureKind.NOT_YET_VALID, FailureKind.TRUST_DROPPED}


_BY_REASON = {
    VerifyReason.EXPIRED: FailureKind.EXPIRED,
    VerifyReason.NOT_YET_VALID: FailureKind.NOT_YET_VALID,
    VerifyReason.KEY_MISMATCH: FailureKind.KEY_MISMATCH,
}


def classify(error: BaseException) -> FailureKind:
    """The :class:`FailureKind` of an error raised while reading or checking material."""
    if isinstance(error, UntrustedIssuerError):
        return FailureKind.UNTRUSTED_ISSUER
    if isinstance(error, KeyMismatchError):
        return FailureKind.KEY_MISMATCH
    if isinstance(error, VerificationError):
        return _BY_REASON.get(error.reason, FailureKind.UNTRUSTED)
    if isinstance(error, RotationError):
        return FailureKind.TRUST_DROPPED
    if isinstance(error, GrpcsecError):
        return FailureKind.INVALID
    return FailureKind.ERROR


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ServerMaterial:
    """Checked server material: the :class:`ServerTLS` to serve and the parsed client CAs."""

    tls: ServerTLS
    client_cas: tuple[x509.Certificate, ...]
    digest: str
    lineage: Lineage

    @property
    def leaf(self) -> x509.Certificate:
        """The served certificate."""
        return self.tls.identity.leaf

    def describe(self) -> str:
        """``serial 1a2b (CN=..., valid until ...Z)`` for log lines; never key material."""
        return _describe(self.leaf)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ChannelMaterial:
    """Checked client material: the :class:`ChannelTLS` to dial with and the parsed CAs."""

    tls: ChannelTLS
    server_cas: tuple[x509.Certificate, ...]
    digest: str
    lineage: Lineage | None
    """``None`` while the channel has no client certificate."""

    @property
    def leaf(self) -> x509.Certificate | None:
        """The client certificate, or ``None`` for a TLS-only client."""
        return self.tls.identity.leaf if self.tls.identity else None

    def describe(self) -> str:
        """The client certificate's serial and dates, or the CA count for a TLS-only client."""
        if self.leaf is None:
            return f"no client certificate, {len(self.server_cas)} CA(s)"
        return _describe(self.leaf)


def _describe(leaf: x509.Certificate) -> str:
    info = CertificateInfo.of(leaf)
    return (
        f"serial {info.serial} ({info.subject or 'empty subject'}, "
        f"valid until {info.not_after:%Y-%m-%dT%H:%M:%SZ})"
    )


def check_dates(chain: tuple[x509.Certificate, ...], now: dt.datetime, *, source: str) -> None:
    """Refuse a chain with any certificate outside its validity window at ``now``.

    The messages leave ``now`` out on purpose, so the same problem reads the same at every poll.
    """
    for index, certificate in enumerate(chain):
        what = (
            "the certificate"
            if index == 0
            else f"chain certificate {index + 1} ({certificate.subject.rfc4514_string()})"
        )
        if now < certificate.not_valid_before_utc:
            raise VerificationError(
                VerifyReason.NOT_YET_VALID,
                f"{what} is not valid until {format_moment(certificate.not_valid_before_utc)}; "
                "it will be loaded once valid (check the issuer's clock if this persists)",
                path=source,
            )
        if now > certificate.not_valid_after_utc:
            raise VerificationError(
                VerifyReason.EXPIRED,
                f"{what} expired on {format_moment(certificate.not_valid_after_utc)}; renew it",
                path=source,
            )


def _bundle(data: bytes | None, name: str) -> tuple[TrustBundle, tuple[x509.Certificate, ...]]:
    if data is None:
        raise MaterialError("the CA bundle is missing", path=name)
    bundle = TrustBundle.from_pem(data, source=name)
    return bundle, tuple(load_certificates(bundle.pem, source=name))


def _configured(raw: RawMaterial) -> tuple[x509.Certificate, ...]:
    """The CAs a chain may lead to by configuration: the issuers and next-CA bundles."""
    issuers = _bundle(raw.issuers, raw.issuers_name)[1] if raw.issuers is not None else ()
    next_ca = _bundle(raw.next_ca, raw.next_ca_name)[1] if raw.next_ca is not None else ()
    return issuers + next_ca


def _check_lineage(
    raw: RawMaterial,
    pair: KeyPair,
    previous: Lineage | None,
    peer_cas: tuple[x509.Certificate, ...],
) -> Lineage:
    """Seed the lineage from the first generation, or admit a later one into it."""
    configured = _configured(raw)
    if previous is None:
        return Lineage.seed(pair.chain, candidates=configured + peer_cas)
    return previous.admit(pair.chain, configured=configured, source=raw.chain_name)


def _check_issuers(raw: RawMaterial, pair: KeyPair, role: Role, now: dt.datetime) -> None:
    if raw.issuers is None:
        return
    _, issuers = _bundle(raw.issuers, raw.issuers_name)
    try:
        verify_certificate(
            pair.leaf, trust=issuers, intermediates=pair.chain[1:], role=role, now=now
        )
    except VerificationError as exc:
        raise VerificationError(
            exc.reason,
            f"does not verify against the issuers in {raw.issuers_name}: {exc.message}",
            path=raw.chain_name,
        ) from exc


def check_server_material(
    raw: RawMaterial,
    *,
    now: dt.datetime,
    mutual: bool,
    require_host_san: bool = True,
    allow_unsupported_key: bool = False,
    allow_weak_keys: bool = False,
    lineage: Lineage | None = None,
) -> ServerMaterial:
    """Check raw server material at ``now``; raise the grpcsec error naming the first problem.

    ``lineage`` is that of the material in service (``None`` for the first generation, which
    establishes it).

    ``mutual`` says whether the server requires client certificates: then the raw material must
    carry a client-CA bundle, and without it a bundle is refused (grpcio would silently never
    request client certificates).
    """
    if raw.chain is None or raw.key is None:
        raise MaterialError("a server needs a certificate and a key", path=raw.chain_name)
    pair = KeyPair.from_pem(raw.chain, raw.key, source=raw.chain_name, key_source=raw.key_name)
    check_dates(pair.chain, now, source=raw.chain_name)
    client_ca: TrustBundle | None = None
    client_cas: tuple[x509.Certificate, ...] = ()
    if mutual:
        if raw.trust is None:
            raise MaterialError(
                "the client-CA bundle is missing; without it every mTLS handshake would fail",
                path=raw.trust_name,
            )
        client_ca, client_cas = _bundle(raw.trust, raw.trust_name)
    elif raw.trust is not None:
        raise ConfigurationError(
            "a client-CA bundle appeared on a TLS-only server; mTLS cannot be switched on by "
            "a reload (restart the server with a client CA)",
            path=raw.trust_name,
        )
    tls = ServerTLS(
        identity=pair,
        client_ca=client_ca,
        require_host_san=require_host_san,
        allow_unsupported_key=allow_unsupported_key,
        allow_weak_keys=allow_weak_keys,
    )
    _check_issuers(raw, pair, Role.SERVER, now)
    grown = _check_lineage(raw, pair, lineage, client_cas)
    return ServerMaterial(tls=tls, client_cas=client_cas, digest=raw.digest, lineage=grown)


def check_channel_material(
    raw: RawMaterial,
    *,
    now: dt.datetime,
    allow_unsupported_key: bool = False,
    allow_weak_keys: bool = False,
    lineage: Lineage | None = None,
) -> ChannelMaterial:
    """Check raw client material at ``now``: a CA bundle, and a client pair when present
    (whose chain must stay in ``lineage``, the lineage of the pair in service, if any)."""
    if (raw.chain is None) != (raw.key is None):
        raise ConfigurationError(
            "a client certificate needs both the certificate and the key "
            "(grpcio aborts the process on half a pair)",
            path=raw.chain_name if raw.chain is None else raw.key_name,
        )
    bundle, cas = _bundle(raw.trust, raw.trust_name)
    pair: KeyPair | None = None
    if raw.chain is not None and raw.key is not None:
        pair = KeyPair.from_pem(raw.chain, raw.key, source=raw.chain_name, key_source=raw.key_name)
        check_dates(pair.chain, now, source=raw.chain_name)
    tls = ChannelTLS(
        trust=bundle,
        identity=pair,
        allow_unsupported_key=allow_unsupported_key,
        allow_weak_keys=allow_weak_keys,
    )
    grown: Lineage | None = None
    if pair is not None:
        _check_issuers(raw, pair, Role.CLIENT, now)
        grown = _check_lineage(raw, pair, lineage, cas)
    return ChannelMaterial(tls=tls, server_cas=cas, digest=raw.digest, lineage=grown)
