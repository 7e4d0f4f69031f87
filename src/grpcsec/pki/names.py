"""Subject alternative names: parsing, validation and the X.509 extension.

Every certificate grpcsec issues carries a SAN extension, because modern TLS clients (grpc-go,
Chrome, Python's ``ssl``) ignore the subject CN when checking a host name. Names are validated here,
once, so a bad IP or SPIFFE ID fails before anything is signed.

Not checked: whether a DNS name resolves, or whether a SPIFFE trust domain is one you own.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import urlsplit

from cryptography import x509

from grpcsec.errors import IssuanceError
from grpcsec.pki.wellformed import DNS_LABEL, a_label_problem
from grpcsec.text import has_unsafe_characters, inert

__all__ = [
    "IPAddress",
    "SpiffeId",
    "SubjectAltNames",
    "check_printable",
    "normalize_dns_name",
    "parse_email",
    "parse_ip",
    "parse_uri",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

_TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]+$")
_SPIFFE_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")


def check_printable(what: str, text: str) -> str:
    """Return ``text``, or raise :class:`IssuanceError` when it holds a control character
    (C0, DEL, C1), a line break or a bidi/format character: such a name would be displayed
    differently from what it is, so grpcsec never signs one. The message shows it escaped."""
    if has_unsafe_characters(text):
        raise IssuanceError(
            f"invalid {what} '{inert(text)}': control, line-break and bidi characters are not "
            "allowed in a certificate name"
        )
    return text


def normalize_dns_name(name: str) -> str:
    """Validate a DNS SAN and return it lowercased and IDNA-encoded.

    A wildcard is allowed only as the whole left-most label and over at least two further labels
    (``*.svc.example`` yes; ``*.com``, ``a*.example``, ``a.*.example`` no).
    """
    raw = check_printable("DNS name", name).strip().rstrip(".")
    if not raw:
        raise IssuanceError(f"invalid DNS name {name!r}: it is empty")
    try:
        ascii_name = raw.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise IssuanceError(f"invalid DNS name {name!r}: {exc}") from exc
    if len(ascii_name) > 253:
        raise IssuanceError(f"invalid DNS name {name!r}: longer than 253 characters")
    labels = ascii_name.split(".")
    if labels[0] == "*":
        if len(labels) < 3:
            raise IssuanceError(
                f"invalid DNS name {name!r}: a wildcard needs at least two labels after it"
            )
        labels = labels[1:]
    for label in labels:
        if "*" in label:
            raise IssuanceError(
                f"invalid DNS name {name!r}: '*' is allowed only as the whole left-most label"
            )
        problem = a_label_problem(label)
        if problem is not None:
            raise IssuanceError(f"invalid DNS name {name!r}: {problem}")
        if not DNS_LABEL.match(label):
            raise IssuanceError(
                f"invalid DNS name {name!r}: label {label!r} must be 1-63 letters, digits or "
                "hyphens, not starting or ending with a hyphen"
            )
    try:
        ipaddress.ip_address(ascii_name)
    except ValueError:
        return ascii_name
    raise IssuanceError(f"invalid DNS name {name!r}: it is an IP address; add it as an IP SAN")


def parse_ip(text: str) -> IPAddress:
    """Parse an IPv4 or IPv6 address (brackets around IPv6 are accepted and removed)."""
    cleaned = text.strip()
    if cleaned.startswith("[") and cleaned.endswith("]"):
        cleaned = cleaned[1:-1]
    try:
        return ipaddress.ip_address(cleaned)
    except ValueError as exc:
        raise IssuanceError(f"invalid IP address {text!r}") from exc


def parse_email(text: str) -> str:
    """Validate an e-mail SAN: a non-empty local part and a valid domain."""
    local, sep, domain = check_printable("e-mail address", text).strip().rpartition("@")
    if not sep or not local or any(c.isspace() for c in local):
        raise IssuanceError(f"invalid e-mail address {text!r}")
    return f"{local}@{normalize_dns_name(domain)}"


@dataclass(frozen=True, slots=True)
class SpiffeId:
    """A SPIFFE ID (``spiffe://trust-domain/path``), validated per the SPIFFE-ID specification.

    Workload IDs must have a path: gRPC only reports ``peer_spiffe_id`` for those.
    """

    trust_domain: str
    path: str

    @classmethod
    def parse(cls, text: str) -> SpiffeId:
        """Parse and validate; raises :class:`IssuanceError` naming the broken rule."""
        bad = f"invalid SPIFFE ID {text!r}"
        if len(text) > 2048:
            raise IssuanceError(f"{bad}: longer than 2048 characters")
        if not text.startswith("spiffe://"):
            raise IssuanceError(f"{bad}: it must start with 'spiffe://' (lowercase)")
        rest = text[len("spiffe://") :]
        trust_domain, slash, path = rest.partition("/")
        if not trust_domain:
            raise IssuanceError(f"{bad}: the trust domain is empty")
        if len(trust_domain) > 255:
            raise IssuanceError(f"{bad}: the trust domain is longer than 255 characters")
        if not _TRUST_DOMAIN.match(trust_domain):
            raise IssuanceError(
                f"{bad}: the trust domain may contain only lowercase letters, digits, '.', '-' "
                "and '_' (no port, user info or upper case)"
            )
        if not slash or not path:
            raise IssuanceError(f"{bad}: a workload SPIFFE ID needs a path after the trust domain")
        for segment in path.split("/"):
            if not segment:
                raise IssuanceError(f"{bad}: empty path segment (double or trailing '/')")
            if segment in {".", ".."}:
                raise IssuanceError(f"{bad}: path segments '.' and '..' are not allowed")
            if not _SPIFFE_SEGMENT.match(segment):
                raise IssuanceError(
                    f"{bad}: path segment {segment!r} may contain only letters, digits, '.', '-' "
                    "and '_' (no query, fragment or percent-encoding)"
                )
        return cls(trust_domain=trust_domain, path="/" + path)

    def __str__(self) -> str:
        return f"spiffe://{self.trust_domain}{self.path}"


def parse_uri(text: str) -> str:
    """Validate a URI SAN. ``spiffe://`` URIs must be valid SPIFFE IDs."""
    cleaned = check_printable("URI", text).strip()
    if cleaned.lower().startswith("spiffe:"):
        return str(SpiffeId.parse(cleaned))
    parts = urlsplit(cleaned)
    if not parts.scheme or not (parts.netloc or parts.path) or any(c.isspace() for c in cleaned):
        raise IssuanceError(f"invalid URI {text!r}: it needs a scheme, e.g. 'https://host/path'")
    return cleaned


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True, slots=True, kw_only=True)
class SubjectAltNames:
    """Validated subject alternative names, in the order given, without duplicates."""

    dns: tuple[str, ...] = ()
    ips: tuple[IPAddress, ...] = ()
    uris: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        *,
        dns: Iterable[str] = (),
        ips: Iterable[str | IPAddress] = (),
        uris: Iterable[str] = (),
        emails: Iterable[str] = (),
    ) -> SubjectAltNames:
        """Validate every name and build the value."""
        return cls(
            dns=_dedupe(normalize_dns_name(n) for n in dns),
            ips=tuple(dict.fromkeys(ip if not isinstance(ip, str) else parse_ip(ip) for ip in ips)),
            uris=_dedupe(parse_uri(u) for u in uris),
            emails=_dedupe(parse_email(e) for e in emails),
        )

    @classmethod
    def from_identities(cls, identities: Iterable[str]) -> SubjectAltNames:
        """Sort free-form identities into kinds: ``a://b`` is a URI, ``a@b`` an e-mail, an
        address an IP, ``scheme:rest`` (``urn:x:y``) a URI, anything else a DNS name (the
        ``--host`` and ``init`` behaviour). A scheme made only of hex digits (``fe80:…``) is
        read as an IPv6 address, which is what such text almost always is."""
        dns: list[str] = []
        ips: list[str] = []
        uris: list[str] = []
        emails: list[str] = []
        for identity in identities:
            text = identity.strip()
            if "://" in text or _looks_like_uri(text):
                uris.append(text)
            elif "@" in text:
                emails.append(text)
            elif _looks_like_ip(text):
                ips.append(text)
            else:
                dns.append(text)
        return cls.build(dns=dns, ips=ips, uris=uris, emails=emails)

    @classmethod
    def requested(
        cls,
        *,
        hosts: Iterable[str] = (),
        dns: Iterable[str] = (),
        ips: Iterable[str] = (),
        uris: Iterable[str] = (),
        spiffe_ids: Iterable[str] = (),
        emails: Iterable[str] = (),
    ) -> SubjectAltNames:
        """The names of one issuance request: the free-form ``hosts`` sorted by form
        (:meth:`from_identities`), then the explicit names of each kind. ``spiffe_ids`` must be
        SPIFFE IDs (checked) and become URI SANs. Every name is validated before any is used."""
        spiffe = [str(SpiffeId.parse(text)) for text in spiffe_ids]
        explicit = cls.build(dns=dns, ips=ips, uris=[*uris, *spiffe], emails=emails)
        return cls.from_identities(hosts).merged(explicit)

    @classmethod
    def from_extension(cls, san: x509.SubjectAlternativeName) -> SubjectAltNames:
        """Read names from a certificate's or CSR's extension, without re-validating them."""
        return cls(
            dns=tuple(san.get_values_for_type(x509.DNSName)),
            ips=tuple(
                ip
                for ip in san.get_values_for_type(x509.IPAddress)
                if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
            ),
            uris=tuple(san.get_values_for_type(x509.UniformResourceIdentifier)),
            emails=tuple(san.get_values_for_type(x509.RFC822Name)),
        )

    def merged(self, other: SubjectAltNames) -> SubjectAltNames:
        """Both sets of names, this one's first."""
        return SubjectAltNames(
            dns=_dedupe((*self.dns, *other.dns)),
            ips=tuple(dict.fromkeys((*self.ips, *other.ips))),
            uris=_dedupe((*self.uris, *other.uris)),
            emails=_dedupe((*self.emails, *other.emails)),
        )

    @property
    def empty(self) -> bool:
        """Whether there is no name at all."""
        return not (self.dns or self.ips or self.uris or self.emails)

    @property
    def spiffe_id(self) -> str | None:
        """The SPIFFE ID under gRPC's rule: exactly one URI SAN, and it is a SPIFFE ID."""
        if len(self.uris) != 1:
            return None
        try:
            return str(SpiffeId.parse(self.uris[0]))
        except IssuanceError:
            return None

    def to_extension(self) -> x509.SubjectAlternativeName:
        """The X.509 extension value, in the order DNS, IP, URI, e-mail."""
        general: list[x509.GeneralName] = [x509.DNSName(n) for n in self.dns]
        general += [x509.IPAddress(ip) for ip in self.ips]
        general += [x509.UniformResourceIdentifier(u) for u in self.uris]
        general += [x509.RFC822Name(e) for e in self.emails]
        return x509.SubjectAlternativeName(general)

    def as_strings(self) -> list[str]:
        """Every name as ``KIND:value`` (``DNS:localhost``, ``IP:127.0.0.1``...)."""
        return (
            [f"DNS:{n}" for n in self.dns]
            + [f"IP:{ip}" for ip in self.ips]
            + [f"URI:{u}" for u in self.uris]
            + [f"email:{e}" for e in self.emails]
        )


_URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.+)$")
_HEX = frozenset("0123456789abcdefABCDEF")


def _looks_like_uri(text: str) -> bool:
    """``scheme:rest`` whose scheme is not all hex digits (``fe80:…`` is IPv6) and whose rest
    is not a port (``host:8080`` is an address someone mistyped, not a URI)."""
    match = _URI_SCHEME.match(text)
    if match is None:
        return False
    scheme, rest = match.groups()
    return not set(scheme) <= _HEX and not rest.isdigit()


def _looks_like_ip(text: str) -> bool:
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return bool(re.fullmatch(r"[0-9.]+", text)) or (":" in text and "." not in text)
    return True
