"""Read the TLS handshake messages a server sent: the pure parsing half of the raw TLS probe.

Python's ``ssl`` module shows a completed handshake's version, cipher and ALPN, and (before 3.13)
only the leaf certificate. The probe also records every handshake message the server sends
(through ``SSLContext._msg_callback``, which sees TLS 1.3 messages after decryption), and this
module reads the few that matter, whether or not the handshake then completes:

* ServerHello: the version the server chose (``supported_versions`` or the legacy field), the
  cipher suite number, ALPN (TLS 1.2 carries it here);
* EncryptedExtensions: ALPN in TLS 1.3;
* Certificate: the whole served chain, in the order served;
* CertificateRequest: that a client certificate is asked for, and the distinguished names of
  the CAs the server says it accepts (grpcio sends none; grpc-go and OpenSSL servers do).

Malformed input raises ``ValueError``; the probe then reports the fact as unknown. Not parsed:
anything else (session tickets, key shares, extensions the doctor does not report).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509

__all__ = [
    "CERTIFICATE",
    "CERTIFICATE_REQUEST",
    "ENCRYPTED_EXTENSIONS",
    "SERVER_HELLO",
    "ServerHandshake",
    "name_from_der",
    "read_server_handshake",
    "version_name",
]

SERVER_HELLO = 2
ENCRYPTED_EXTENSIONS = 8
CERTIFICATE = 11
CERTIFICATE_REQUEST = 13

_EXT_ALPN = 16
_EXT_SUPPORTED_VERSIONS = 43
_EXT_CERTIFICATE_AUTHORITIES = 47
_TLS13 = 0x0304
_VERSION_NAMES = {0x0300: "SSLv3", 0x0301: "TLSv1.0", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2"}
_VERSION_NAMES[_TLS13] = "TLSv1.3"


def version_name(number: int) -> str:
    """``TLSv1.0`` ... ``TLSv1.3`` for a protocol version number (``0x0303`` is TLS 1.2)."""
    return _VERSION_NAMES.get(number, f"0x{number:04x}")


class _Reader:
    """Bounds-checked reads of TLS's big-endian, length-prefixed encoding."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, size: int) -> bytes:
        end = self._pos + size
        if size < 0 or end > len(self._data):
            raise ValueError("truncated TLS message")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> _Reader:
        return _Reader(self.take(self.uint(length_size)))

    @property
    def done(self) -> bool:
        return self._pos >= len(self._data)


def _body(message: bytes, expected_type: int) -> _Reader:
    """The body of a handshake message (type byte and 3-byte length stripped and checked)."""
    reader = _Reader(message)
    if reader.uint(1) != expected_type:
        raise ValueError(f"not a handshake message of type {expected_type}")
    return reader.vector(3)


def _extensions(reader: _Reader) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    while not reader.done:
        kind = reader.uint(2)
        found[kind] = reader.take(reader.uint(2))
    return found


def _alpn(extension: bytes | None) -> str | None:
    if extension is None:
        return None
    protocols = _Reader(extension).vector(2)
    return protocols.take(protocols.uint(1)).decode("ascii", "replace")


def _server_hello(message: bytes) -> tuple[int, int, str | None]:
    """(version, cipher suite, ALPN) of a ServerHello."""
    body = _body(message, SERVER_HELLO)
    version = body.uint(2)
    body.take(32)  # random
    body.vector(1)  # legacy session id
    cipher = body.uint(2)
    body.take(1)  # compression method
    extensions = {} if body.done else _extensions(body.vector(2))
    selected = extensions.get(_EXT_SUPPORTED_VERSIONS)
    if selected is not None:
        version = _Reader(selected).uint(2)
    return version, cipher, _alpn(extensions.get(_EXT_ALPN))


def _encrypted_extensions_alpn(message: bytes) -> str | None:
    return _alpn(_extensions(_body(message, ENCRYPTED_EXTENSIONS).vector(2)).get(_EXT_ALPN))


def _certificates(message: bytes, *, tls13: bool) -> tuple[bytes, ...]:
    body = _body(message, CERTIFICATE)
    if tls13:
        body.vector(1)  # certificate_request_context
    entries = body.vector(3)
    chain: list[bytes] = []
    while not entries.done:
        chain.append(entries.take(entries.uint(3)))
        if tls13:
            entries.vector(2)  # per-certificate extensions
    return tuple(chain)


def _names(authorities: _Reader) -> tuple[bytes, ...]:
    names: list[bytes] = []
    while not authorities.done:
        names.append(authorities.take(authorities.uint(2)))
    return tuple(names)


def _requested_authorities(message: bytes, *, tls13: bool) -> tuple[bytes, ...]:
    body = _body(message, CERTIFICATE_REQUEST)
    if tls13:
        body.vector(1)  # certificate_request_context
        extension = _extensions(body.vector(2)).get(_EXT_CERTIFICATE_AUTHORITIES)
        return () if extension is None else _names(_Reader(extension).vector(2))
    body.vector(1)  # certificate types
    body.vector(2)  # signature algorithms
    return _names(body.vector(2))


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerHandshake:
    """What the server's handshake messages said; ``None`` where it was not seen."""

    version: str | None = None
    cipher_suite: int | None = None
    alpn: str | None = None
    chain_der: tuple[bytes, ...] = ()
    certificate_requested: bool = False
    acceptable_ca_names_der: tuple[bytes, ...] = ()


def read_server_handshake(messages: Iterable[tuple[int, bytes]]) -> ServerHandshake:
    """Read ``(handshake type, whole message)`` pairs the server sent, in order.

    Raises ``ValueError`` when a message that matters is malformed.
    """
    version_number: int | None = None
    cipher: int | None = None
    alpn: str | None = None
    chain: tuple[bytes, ...] = ()
    requested = False
    authorities: tuple[bytes, ...] = ()
    for kind, message in messages:
        tls13 = version_number == _TLS13
        if kind == SERVER_HELLO:
            version_number, cipher, alpn = _server_hello(message)
        elif kind == ENCRYPTED_EXTENSIONS:
            alpn = _encrypted_extensions_alpn(message) or alpn
        elif kind == CERTIFICATE and not chain:
            chain = _certificates(message, tls13=tls13)
        elif kind == CERTIFICATE_REQUEST:
            requested = True
            authorities = _requested_authorities(message, tls13=tls13)
    return ServerHandshake(
        version=None if version_number is None else version_name(version_number),
        cipher_suite=cipher,
        alpn=alpn,
        chain_der=chain,
        certificate_requested=requested,
        acceptable_ca_names_der=authorities,
    )


# -- distinguished names ---------------------------------------------------------------------
_STRING_TAGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be"}


def _der(reader: _Reader) -> tuple[int, bytes]:
    tag = reader.uint(1)
    length = reader.uint(1)
    if length & 0x80:
        length = reader.uint(length & 0x7F)
    return tag, reader.take(length)


def _oid(encoded: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for byte in encoded:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise ValueError("empty OID")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


def _attributes(der: bytes) -> Sequence[Sequence[tuple[str, str]]]:
    tag, content = _der(_Reader(der))
    if tag != 0x30:
        raise ValueError("a distinguished name is a SEQUENCE")
    rdns: list[list[tuple[str, str]]] = []
    outer = _Reader(content)
    while not outer.done:
        _, rdn = _der(outer)  # SET OF AttributeTypeAndValue
        members = _Reader(rdn)
        attributes: list[tuple[str, str]] = []
        while not members.done:
            _, pair = _der(members)
            inner = _Reader(pair)
            _, oid = _der(inner)
            value_tag, value = _der(inner)
            text = value.decode(_STRING_TAGS.get(value_tag, "latin-1"), "replace")
            attributes.append((_oid(oid), text))
        rdns.append(attributes)
    return rdns


def name_from_der(der: bytes) -> str:
    """A DER distinguished name as an RFC 4514 string (``CN=root,O=Acme``), best effort; the
    hex of the DER when it does not parse."""
    try:
        rdns = _attributes(der)
        name = x509.Name(
            [
                x509.RelativeDistinguishedName(
                    [x509.NameAttribute(x509.ObjectIdentifier(oid), value) for oid, value in rdn]
                )
                for rdn in rdns
            ]
        )
        return name.rfc4514_string()
    except ValueError:
        return "DER:" + der.hex()
