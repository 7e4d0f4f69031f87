"""Who is calling: a :class:`Peer` value from a gRPC auth context. No grpc import.

grpcio hands a handler ``context.auth_context()``, a ``dict[str, list[bytes]]`` whose keys are
listed in grpcio-security.md §2.1. Its identity lists mix every SAN type together, so the
certificate facts here (names, SPIFFE ID, serial, dates, fingerprint) are read from the leaf
itself, ``x509_pem_cert``, parsed with ``cryptography``. One connection carries many RPCs with the
same values, so two bounded LRUs avoid repeating work: parsed certificate facts keyed by the PEM
bytes, and whole :class:`Peer` values keyed by the address plus the raw auth-context values they
are built from (a hit costs building that key; ``benchmarks/peer_cost.py`` measures it).

With a grpcio server a present client certificate has always been *verified* against the client
CA: Python can only configure "request, require and verify" or "don't request"
(grpcio-security.md §4). So :attr:`Peer.client_cert_presented` is also "verified".

The chain the peer sent (``x509_pem_cert_chain``: its intermediates, with or without the leaf
depending on the grpcio version) is parsed once per distinct value too, into :attr:`Peer.chain`
(leaf first); intermediates that do not parse set :attr:`Peer.chain_unreadable`, so a check that
needs the chain fails closed.
 Not checked here: anything the TLS stack already decided (chain, expiry at handshake time), and
revocation (:mod:`grpcsec.revocation` decides it from :attr:`Peer.chain`). ``spiffe_id`` follows
gRPC's rule (exactly one URI SAN, and it is a SPIFFE ID) with grpcsec's stricter SPIFFE-ID
syntax, so it can be ``None`` where grpcio's ``peer_spiffe_id`` is set
for a malformed ID.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from grpcsec.errors import MaterialError
from grpcsec.pki.files import load_certificates
from grpcsec.pki.inspect import CertificateInfo
from grpcsec.pki.names import IPAddress
from grpcsec.text import inert

__all__ = [
    "AuthContextCarrier",
    "Peer",
    "TransportSecurity",
    "certificate_facts_cache_info",
    "clear_identity_caches",
    "peer",
]

AuthContext = Mapping[str, Sequence[bytes]]

_CACHE_SIZE = 1024


class TransportSecurity(enum.Enum):
    """How the connection is protected. Values are stable (``--json``, logs)."""

    TLS = "tls"
    """TLS (grpcio reports ``ssl`` today and ``tls`` once grpc/grpc#43080 lands)."""
    PLAINTEXT = "plaintext"
    """No transport security (``insecure``)."""
    LOCAL = "local"
    """Local credentials: loopback TCP or a Unix socket, not encrypted."""
    ALTS = "alts"
    """Google's ALTS."""
    UNKNOWN = "unknown"
    """Absent or unrecognised; treat like plaintext."""

    @classmethod
    def from_auth_type(cls, value: str | None) -> TransportSecurity:
        """Map grpcio's ``transport_security_type`` value."""
        return cls(_TRANSPORTS.get((value or "").lower(), "unknown"))


class AuthContextCarrier(Protocol):
    """What :func:`peer` needs: the sync ``grpc.ServicerContext`` and ``grpc.aio.ServicerContext``
    both fit."""

    def auth_context(self) -> Mapping[str, Sequence[bytes]]:
        """The auth context properties."""
        ...

    def peer(self) -> str:
        """The peer address, e.g. ``ipv4:127.0.0.1:54780``."""
        ...


@dataclass(frozen=True, slots=True)
class _CertificateFacts:
    certificate: x509.Certificate
    info: CertificateInfo


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _certificate_facts(pem: bytes) -> _CertificateFacts | None:
    """Parse one leaf PEM; ``None`` when it does not parse (never raises into a handler)."""
    try:  # the one loader: a malformed certificate is unreadable (fail closed), never a crash
        certificate = load_certificates(pem)[0]
    except (ValueError, MaterialError):
        return None
    return _CertificateFacts(certificate=certificate, info=CertificateInfo.of(certificate))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _chain_certificates(pem: bytes) -> tuple[x509.Certificate, ...] | None:
    """The certificates the peer sent besides its leaf; ``None`` when any does not parse."""
    try:
        return tuple(load_certificates(pem, allow_der=False))
    except (ValueError, MaterialError):
        return None


def clear_identity_caches() -> None:
    """Forget every memoized certificate and peer (tests, benchmarks, or after a CA change)."""
    _certificate_facts.cache_clear()
    _chain_certificates.cache_clear()
    _peer_for.cache_clear()


def certificate_facts_cache_info() -> functools._CacheInfo:
    """Hits, misses and size of the parsed-certificate cache (for tests and metrics)."""
    return _certificate_facts.cache_info()


def _first(values: Sequence[bytes] | None) -> bytes | None:
    """The first value of one auth-context property (as ``bytes``), ``None`` without one."""
    return bytes(values[0]) if values else None


def _text(value: object) -> str | None:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else None


_TRANSPORTS = {
    "ssl": "tls",
    "tls": "tls",
    "insecure": "plaintext",
    "local": "local",
    "alts": "alts",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Peer:
    """The caller of one RPC as the server saw it.

    Certificate fields are empty/``None`` when no client certificate was presented (TLS without
    mTLS, plaintext, local). ``subject`` is RFC 4514 (most specific attribute first, like
    grpcio's ``x509_subject``); ``not_after`` is aware UTC; ``fingerprint_sha256`` is the leaf's,
    colon-separated upper-case hex.
    """

    address: str
    transport: TransportSecurity
    security_level: str | None = None
    tls_version: str | None = None
    server_name: str | None = None
    client_cert_presented: bool = False
    common_name: str | None = None
    """The subject's CN; ``None`` without one and when the subject is ambiguous (two or more CN
    attributes, or a CN in a multi-valued RDN): then ``common_name_ambiguous`` is set, and no
    CN allow-list entry can match (the full ``subject`` still shows every attribute)."""
    common_name_ambiguous: bool = False
    subject: str | None = None
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[IPAddress, ...] = ()
    uris: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    spiffe_id: str | None = None
    serial: str | None = None
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    fingerprint_sha256: str | None = None
    certificate_unreadable: bool = False
    certificate: x509.Certificate | None = field(default=None, repr=False, compare=False)
    chain: tuple[x509.Certificate, ...] = field(default=(), repr=False, compare=False)
    """The certificates the peer sent, leaf first, then its intermediates in the order sent
    (grpcio's ``x509_pem_cert_chain``, with the leaf added when grpcio left it out). Sent, not
    verified as a path: the TLS stack built the verified path from them and the client CA."""
    chain_unreadable: bool = False
    """The peer sent intermediates that do not parse: nothing about its chain can be decided
    (revocation checks refuse such a peer)."""
    chain_digest: str | None = None
    """SHA-256 (hex) of the leaf and chain as grpcio reported them: a cache key for verdicts
    about the whole chain."""
    claims: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    """The verified bearer token's claims, set by grpcsec's authentication guard (never from an
    unverified token); ``None`` without a token check."""

    @classmethod
    def from_auth_context(cls, auth: AuthContext, *, address: str = "") -> Peer:
        """Build from an auth-context mapping (``context.auth_context()``) and the address.

        Memoized on everything it reads (the address and the raw auth-context values), so the
        RPCs of one connection share one immutable value: a hit costs building the key.
        """
        get = auth.get  # spelled out rather than a generator: this runs on every call
        key = (
            address,
            _first(get("transport_security_type")),
            _first(get("security_level")),
            _first(get("ssl_tls_version")),
            _first(get("ssl_requested_server_name")),
            _first(get("x509_pem_cert")),
            _first(get("x509_pem_cert_chain")),
        )
        return _peer_for(key)

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate, *, address: str = "") -> Peer:
        """The peer of a TLS connection that presented ``certificate`` (as the leaf), described
        exactly as :meth:`from_auth_context` describes it from grpcio's auth context; for
        explaining a decision without a connection (``grpcsec policy eval --peer-cert``). Whether
        the certificate would have been trusted is not checked."""
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        auth = {"transport_security_type": [b"ssl"], "x509_pem_cert": [pem]}
        return cls.from_auth_context(auth, address=address)

    @property
    def principal(self) -> str | None:
        """The name to authorize and log: SPIFFE ID, else the first DNS SAN, else the CN."""
        if not self.client_cert_presented or self.certificate_unreadable:
            return None
        if self.spiffe_id:
            return self.spiffe_id
        if self.dns_names:
            return self.dns_names[0]
        return self.common_name

    @property
    def display(self) -> str:
        """A one-line description for logs: ``principal (address, transport)``; without a
        principal (no SAN and no unambiguous CN) the subject DN, else ``anonymous`` or ``no
        certificate``. Made :func:`~grpcsec.text.inert`: the names come from the peer."""
        presented = self.client_cert_presented
        subject = self.subject if presented else None
        who = self.principal or subject or ("anonymous" if presented else "no certificate")
        return inert(f"{who} ({self.address or 'unknown address'}, {self.transport.value})")

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (times RFC 3339 UTC); the certificate itself is left out."""

        def moment(value: dt.datetime | None) -> str | None:
            return value.isoformat().replace("+00:00", "Z") if value else None

        return {
            "address": self.address,
            "transport": self.transport.value,
            "security_level": self.security_level,
            "tls_version": self.tls_version,
            "server_name": self.server_name,
            "client_cert_presented": self.client_cert_presented,
            "principal": self.principal,
            "common_name": self.common_name,
            "common_name_ambiguous": self.common_name_ambiguous,
            "subject": self.subject,
            "san": {
                "dns": list(self.dns_names),
                "ip": [str(ip) for ip in self.ip_addresses],
                "uri": list(self.uris),
                "email": list(self.emails),
            },
            "spiffe_id": self.spiffe_id,
            "serial": self.serial,
            "not_before": moment(self.not_before),
            "not_after": moment(self.not_after),
            "fingerprint_sha256": self.fingerprint_sha256,
            "claims": _thaw(self.claims),
        }


@functools.lru_cache(maxsize=_CACHE_SIZE * 4)
def _peer_for(key: tuple[object, ...]) -> Peer:
    """The :class:`Peer` for one memo key: the address, then the first raw value of
    ``transport_security_type``, ``security_level``, ``ssl_tls_version``,
    ``ssl_requested_server_name``, ``x509_pem_cert`` and ``x509_pem_cert_chain``."""
    address, transport_raw, level, version, server_name, pem, chain_pem = key
    transport = TransportSecurity.from_auth_type(_text(transport_raw))
    facts = None
    unreadable = chain_unreadable = False
    chain: tuple[x509.Certificate, ...] = ()
    digest = None
    if transport is TransportSecurity.TLS and isinstance(pem, bytes):
        facts = _certificate_facts(pem)
        # grpcio verified this certificate, so it parses; if it ever does not, the caller is
        # marked as presenting one nobody can read, which matches no identity (fail closed).
        unreadable = facts is None
        extra = chain_pem if isinstance(chain_pem, bytes) else b""
        sent = _chain_certificates(extra) if extra.strip() else ()
        chain_unreadable = unreadable or sent is None
        if facts is not None and sent is not None:
            leaf = facts.certificate
            chain = (leaf, *(c for c in sent if c != leaf))
        digest = hashlib.sha256(pem + b"\0" + extra).hexdigest()
    info = facts.info if facts else None
    return Peer(
        address=str(address),
        transport=transport,
        security_level=_text(level),
        tls_version=_text(version),
        server_name=_text(server_name),
        client_cert_presented=info is not None or unreadable,
        certificate_unreadable=unreadable,
        common_name=info.common_name if info else None,
        common_name_ambiguous=info.common_name_ambiguous if info else False,
        subject=info.subject if info else None,
        dns_names=info.names.dns if info else (),
        ip_addresses=info.names.ips if info else (),
        uris=info.names.uris if info else (),
        emails=info.names.emails if info else (),
        spiffe_id=info.names.spiffe_id if info else None,
        serial=info.serial if info else None,
        not_before=info.not_before if info else None,
        not_after=info.not_after if info else None,
        fingerprint_sha256=info.fingerprint_sha256 if info else None,
        certificate=facts.certificate if facts else None,
        chain=chain,
        chain_unreadable=chain_unreadable,
        chain_digest=digest,
    )


def _thaw(value: object) -> object:
    """Read-only mappings and tuples (as the guard stores claims) back to plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return value


def peer(context: AuthContextCarrier) -> Peer:
    """The :class:`Peer` of the current RPC, from a sync or aio ``ServicerContext``.

    Behind grpcsec's authentication guard this is the peer the checks saw, with the verified
    token's ``claims``; otherwise it is read from the context's auth context.
    """
    attached = getattr(context, "grpcsec_peer", None)
    if isinstance(attached, Peer):
        return attached
    return Peer.from_auth_context(context.auth_context(), address=context.peer())
