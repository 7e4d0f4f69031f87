"""Client-certificate requirements: who may call, by the identity in a verified certificate.

grpcio already verified a presented client certificate against the server's client CA (its
Python API has no "request but don't verify" mode), so what is left is *which* verified clients
may call. A :class:`ClientCertAllowList` names them by SPIFFE ID, SPIFFE trust domain, SPIFFE
path prefix, DNS SAN, URI SAN, subject CN, subject DN or SHA-256 fingerprint; a client matching
any entry is allowed. The SPIFFE entries follow go-spiffe's ``AuthorizeID``/``AuthorizeOneOf``
(exact IDs), ``AuthorizeMemberOf`` (trust domain) and a path prefix that matches whole segments
(``spiffe://a.test/ns/prod`` allows ``.../ns/prod`` and ``.../ns/prod/x``, not
``.../ns/production``).

Fail closed: an empty allow-list allows nobody, and "any verified client" is the explicitly named
:meth:`ClientCertAllowList.any_verified_client`. :class:`RequireClientCert` is the check for
:mod:`grpcsec.interceptors`; it can use a different allow-list per method or service.

* no transport security (plaintext, local, unknown) → ``UNAUTHENTICATED``
  (``no_transport_security``);
* TLS without a client certificate → ``UNAUTHENTICATED`` (``no_client_certificate``);
* a verified certificate that matches no entry → ``PERMISSION_DENIED``
  (``certificate_not_allowed``); when the method's list holds SPIFFE entries only and the
  certificate is no X.509 SVID (zero or several URI SANs, or one that is not a SPIFFE ID) →
  ``UNAUTHENTICATED`` (``spiffe_id_invalid``).

Entries are normalized when the list is built (DNS names lower case, fingerprints as hex, DNs
parsed), and bad entries fail there with :class:`~grpcsec.errors.ConfigurationError`. Matching
is exact apart from SPIFFE path prefixes: no wildcards. Not checked here: revocation, and
whether a SPIFFE ID's chain leads to its own trust domain's CA
(:class:`~grpcsec.authn.spiffe_check.SpiffeBindingCheck` decides that, before this check).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography import x509

from grpcsec.authn.methods import MethodTable
from grpcsec.authn.trust_domains import parse_trust_domain, svid_problem
from grpcsec.call import CallInfo, denied
from grpcsec.errors import AuthenticationError, ConfigurationError, IssuanceError
from grpcsec.identity import Peer, TransportSecurity
from grpcsec.pki.names import SpiffeId, normalize_dns_name
from grpcsec.text import get_logger

__all__ = ["ClientCertAllowList", "RequireClientCert", "normalize_fingerprint"]

log = get_logger("grpcsec.authn")

_HEX64 = re.compile(r"^[0-9A-F]{64}$")


def normalize_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint as 64 upper-case hex digits. Accepts ``AB:CD:...``, plain hex and
    an optional ``sha256:`` prefix (the form ``grpcsec inspect`` and ``openssl`` print)."""
    cleaned = text.strip()
    if cleaned.lower().startswith("sha256:"):
        cleaned = cleaned[len("sha256:") :]
    cleaned = cleaned.replace(":", "").replace(" ", "").upper()
    if not _HEX64.match(cleaned):
        raise ConfigurationError(
            f"invalid certificate fingerprint {text!r}: expected a SHA-256 fingerprint "
            "(64 hex digits, colons allowed)"
        )
    return cleaned


def _trust_domain(text: str) -> str:
    try:
        return parse_trust_domain(text)
    except IssuanceError as exc:
        raise ConfigurationError(f"invalid SPIFFE trust domain {text!r}") from exc


def _spiffe_id(text: str) -> str:
    try:
        return str(SpiffeId.parse(text.strip()))
    except IssuanceError as exc:
        raise ConfigurationError(exc.message) from exc


def _dns_name(text: str) -> str:
    try:
        return normalize_dns_name(text)
    except IssuanceError as exc:
        raise ConfigurationError(exc.message) from exc


def _uri(text: str) -> str:
    cleaned = text.strip()
    scheme, sep, rest = cleaned.partition("://")
    if not sep or not scheme or not rest or any(c.isspace() for c in cleaned):
        raise ConfigurationError(f"invalid URI {text!r}: it needs a scheme, e.g. spiffe://a/b")
    return cleaned


def _common_name(text: str) -> str:
    if not text or text != text.strip():
        raise ConfigurationError(f"invalid common name {text!r}: empty or padded with spaces")
    return text


def _subject(text: str) -> x509.Name:
    try:
        return x509.Name.from_rfc4514_string(text.strip())
    except ValueError as exc:
        raise ConfigurationError(
            f"invalid subject DN {text!r}: use RFC 4514, most specific first, e.g. "
            "'CN=client-1,O=Acme' (as grpcsec inspect prints it)"
        ) from exc


@dataclass(frozen=True, slots=True, init=False)
class ClientCertAllowList:
    """Verified client certificates that may call; a client matching any entry is allowed.

    Every argument is an iterable of strings, normalized and validated here. With no entries
    and ``allow_any_verified_client=False`` the list allows nobody.
    """

    spiffe_ids: frozenset[str]
    trust_domains: frozenset[str]
    spiffe_prefixes: tuple[str, ...]
    dns_names: frozenset[str]
    uris: frozenset[str]
    common_names: frozenset[str]
    subjects: tuple[x509.Name, ...]
    fingerprints: frozenset[str]
    allow_any_verified_client: bool

    def __init__(
        self,
        *,
        spiffe_ids: Iterable[str] = (),
        trust_domains: Iterable[str] = (),
        spiffe_prefixes: Iterable[str] = (),
        dns_names: Iterable[str] = (),
        uris: Iterable[str] = (),
        common_names: Iterable[str] = (),
        subjects: Iterable[str | x509.Name] = (),
        fingerprints: Iterable[str] = (),
        allow_any_verified_client: bool = False,
    ) -> None:
        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        put("spiffe_ids", frozenset(_spiffe_id(v) for v in spiffe_ids))
        put("trust_domains", frozenset(_trust_domain(v) for v in trust_domains))
        put("spiffe_prefixes", tuple(sorted({_spiffe_id(v) for v in spiffe_prefixes})))
        put("dns_names", frozenset(_dns_name(v) for v in dns_names))
        put("uris", frozenset(_uri(v) for v in uris))
        put("common_names", frozenset(_common_name(v) for v in common_names))
        put(
            "subjects",
            tuple(dict.fromkeys(v if isinstance(v, x509.Name) else _subject(v) for v in subjects)),
        )
        put("fingerprints", frozenset(normalize_fingerprint(v) for v in fingerprints))
        put("allow_any_verified_client", bool(allow_any_verified_client))

    @classmethod
    def any_verified_client(cls) -> ClientCertAllowList:
        """Every client whose certificate grpcio verified against the client CA."""
        return cls(allow_any_verified_client=True)

    @classmethod
    def nobody(cls) -> ClientCertAllowList:
        """The empty list: every call is denied."""
        return cls()

    @property
    def empty(self) -> bool:
        """Whether the list allows nobody."""
        return not (self.allow_any_verified_client or self.uses_spiffe or self._other_entries)

    @property
    def uses_spiffe(self) -> bool:
        """Whether the list has SPIFFE entries (IDs, trust domains or path prefixes)."""
        return bool(self.spiffe_ids or self.trust_domains or self.spiffe_prefixes)

    @property
    def spiffe_only(self) -> bool:
        """Whether only SPIFFE entries can allow a caller (so a non-SVID never can)."""
        return self.uses_spiffe and not self._other_entries

    @property
    def _other_entries(self) -> bool:
        return bool(
            self.dns_names or self.uris or self.common_names or self.subjects or self.fingerprints
        )

    def match(self, peer: Peer) -> str | None:
        """The entry that allows ``peer`` (``spiffe_id=spiffe://...``), or ``None``.

        A peer without a verified client certificate over TLS never matches.
        """
        if peer.transport is not TransportSecurity.TLS or not peer.client_cert_presented:
            return None
        if self.allow_any_verified_client:
            return "any_verified_client"
        return self._match_spiffe(peer) or self._match_names(peer) or self._match_certificate(peer)

    def _match_spiffe(self, peer: Peer) -> str | None:
        spiffe_id = peer.spiffe_id
        if spiffe_id is None:
            return None
        if spiffe_id in self.spiffe_ids:
            return f"spiffe_id={spiffe_id}"
        for prefix in self.spiffe_prefixes:  # whole segments: .../prod never allows .../production
            if spiffe_id == prefix or spiffe_id.startswith(prefix + "/"):
                return f"spiffe_prefix={prefix}"
        domain = spiffe_id[len("spiffe://") :].partition("/")[0]
        return f"trust_domain={domain}" if domain in self.trust_domains else None

    def _match_names(self, peer: Peer) -> str | None:
        for name in peer.dns_names:
            if name in self.dns_names:
                return f"dns={name}"
        for uri in peer.uris:
            if uri in self.uris:
                return f"uri={uri}"
        if peer.common_name is not None and peer.common_name in self.common_names:
            return f"cn={peer.common_name}"
        return None

    def _match_certificate(self, peer: Peer) -> str | None:
        certificate = peer.certificate
        if self.subjects and certificate is not None and certificate.subject in self.subjects:
            return f"subject={peer.subject}"
        fingerprint = (peer.fingerprint_sha256 or "").replace(":", "").upper()
        if fingerprint and fingerprint in self.fingerprints:
            return f"fingerprint={peer.fingerprint_sha256}"
        return None

    def describe(self) -> dict[str, object]:
        """A JSON-ready summary of the entries."""
        return {
            "allow_any_verified_client": self.allow_any_verified_client,
            "spiffe_ids": sorted(self.spiffe_ids),
            "trust_domains": sorted(self.trust_domains),
            "spiffe_prefixes": list(self.spiffe_prefixes),
            "dns_names": sorted(self.dns_names),
            "uris": sorted(self.uris),
            "common_names": sorted(self.common_names),
            "subjects": [name.rfc4514_string() for name in self.subjects],
            "fingerprints": sorted(self.fingerprints),
        }


class RequireClientCert:
    """The check: a verified client certificate on the allow-list for the called method.

    ``allow`` applies to every method; ``methods`` maps ``/pkg.Svc/Method`` or ``/pkg.Svc/*``
    to another list (the most specific pattern wins, replacing ``allow``); ``exempt`` methods
    are not checked at all (e.g. ``/grpc.health.v1.Health/*``), which is an open door and is
    logged once at construction.
    """

    __slots__ = ("_table",)

    def __init__(
        self,
        allow: ClientCertAllowList,
        *,
        methods: Mapping[str, ClientCertAllowList] | None = None,
        exempt: Iterable[str] = (),
    ) -> None:
        self._table = MethodTable(allow, methods or {}, exempt)
        if allow.empty:
            log.warning("client certificate allow-list is empty: every call is denied")
        if self._table.exempt:
            log.warning(
                "client certificates are not required for %s",
                ", ".join(self._table.exempt.patterns()),
            )

    def allow_list_for(self, method: str) -> ClientCertAllowList | None:
        """The allow-list that applies to ``method`` (``None`` when it is exempt)."""
        return self._table.for_method(method)

    def check(self, call: CallInfo) -> None:
        """Raise unless the caller's certificate is on the method's allow-list."""
        allow = self.allow_list_for(call.method)
        if allow is None:
            return
        peer = call.peer
        if peer.transport is not TransportSecurity.TLS:
            raise AuthenticationError(
                f"a client certificate is required but the connection has no TLS "
                f"({peer.transport.value})",
                reason="no_transport_security",
            )
        if not peer.client_cert_presented:
            raise AuthenticationError(
                "a client certificate is required but none was presented (server without mTLS?)",
                reason="no_client_certificate",
            )
        if allow.match(peer) is None:
            problem = svid_problem(peer.uris, peer.spiffe_id)
            if problem is not None and allow.spiffe_only:
                raise AuthenticationError(
                    f"client certificate {peer.subject or '?'} (sha256 {peer.fingerprint_sha256}) "
                    f"is not a SPIFFE SVID ({problem}); {call.method} allows SPIFFE IDs only",
                    reason="spiffe_id_invalid",
                )
            raise denied(
                f"client certificate {peer.principal or peer.subject or '?'} "
                f"(sha256 {peer.fingerprint_sha256}) is not on the allow-list for {call.method}",
                reason="certificate_not_allowed",
            )

    def __repr__(self) -> str:
        return f"RequireClientCert(rules={self._table.rules!r}, exempt={self._table.exempt!r})"
