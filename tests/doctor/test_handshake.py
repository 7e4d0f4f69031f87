"""Parsing the server's handshake messages (RFC 5246 / RFC 8446 encodings), built byte by byte."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from grpcsec.doctor.handshake import name_from_der, read_server_handshake, version_name


def vec(length_size: int, data: bytes) -> bytes:
    return len(data).to_bytes(length_size, "big") + data


def message(kind: int, body: bytes) -> tuple[int, bytes]:
    return kind, bytes([kind]) + vec(3, body)


def ext(kind: int, data: bytes) -> bytes:
    return kind.to_bytes(2, "big") + vec(2, data)


ALPN_H2 = ext(16, vec(2, vec(1, b"h2")))
RANDOM = bytes(32)


def server_hello(version: bytes, cipher: bytes, extensions: bytes | None) -> tuple[int, bytes]:
    body = version + RANDOM + vec(1, bytes(32)) + cipher + b"\x00"
    if extensions is not None:
        body += vec(2, extensions)
    return message(2, body)


NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme, Inc"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Grüße root"),
    ]
)


def test_tls13_flight_gives_version_alpn_chain_and_requested_cas() -> None:
    chain = (b"\x30\x01leaf", b"\x30\x01intermediate")
    entries = b"".join(vec(3, der) + vec(2, b"") for der in chain)
    flight = [
        server_hello(b"\x03\x03", b"\x13\x01", ext(43, b"\x03\x04")),
        message(8, vec(2, ALPN_H2)),
        message(13, vec(1, b"") + vec(2, ext(47, vec(2, vec(2, NAME.public_bytes()))))),
        message(11, vec(1, b"") + vec(3, entries)),
    ]
    seen = read_server_handshake(flight)
    assert seen.version == "TLSv1.3"
    assert seen.cipher_suite == 0x1301
    assert seen.alpn == "h2"
    assert seen.chain_der == chain
    assert seen.certificate_requested
    assert seen.acceptable_ca_names_der == (NAME.public_bytes(),)


def test_tls12_flight_reads_alpn_from_server_hello_and_ca_names_from_the_request() -> None:
    chain = (b"\x30\x01leaf",)
    flight = [
        server_hello(b"\x03\x03", b"\xc0\x2b", ALPN_H2),
        message(11, vec(3, b"".join(vec(3, der) for der in chain))),
        message(13, vec(1, b"\x01\x40") + vec(2, b"\x04\x03") + vec(2, vec(2, b"\x30\x00"))),
    ]
    seen = read_server_handshake(flight)
    assert (seen.version, seen.alpn, seen.chain_der) == ("TLSv1.2", "h2", chain)
    assert seen.acceptable_ca_names_der == (b"\x30\x00",)


def test_server_hello_without_extensions_and_no_request() -> None:
    seen = read_server_handshake([server_hello(b"\x03\x02", b"\x00\x2f", None)])
    assert seen.version == "TLSv1.1"
    assert seen.alpn is None
    assert not seen.certificate_requested


def test_tls13_request_without_ca_list_as_grpcio_sends_it() -> None:
    flight = [
        server_hello(b"\x03\x03", b"\x13\x02", ext(43, b"\x03\x04")),
        message(13, vec(1, b"") + vec(2, ext(13, vec(2, b"\x04\x03")))),
    ]
    seen = read_server_handshake(flight)
    assert seen.certificate_requested
    assert seen.acceptable_ca_names_der == ()


def test_truncated_message_raises_value_error() -> None:
    kind, whole = server_hello(b"\x03\x03", b"\x13\x01", ALPN_H2)
    with pytest.raises(ValueError, match="truncated"):
        read_server_handshake([(kind, whole[:20])])


def test_names_print_as_rfc4514_and_garbage_as_hex() -> None:
    assert name_from_der(NAME.public_bytes()) == NAME.rfc4514_string()
    assert name_from_der(b"\x04\x01x") == "DER:040178"


@pytest.mark.parametrize(
    ("number", "name"),
    [(0x0301, "TLSv1.0"), (0x0302, "TLSv1.1"), (0x0303, "TLSv1.2"), (0x0304, "TLSv1.3")],
)
def test_version_names(number: int, name: str) -> None:
    assert version_name(number) == name
