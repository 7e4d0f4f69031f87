"""grpcsec.identity: the Peer value from auth-context dicts (unit) and from real handlers (sync
and aio servers over mTLS and TLS on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping, Sequence

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.identity import (
    Peer,
    TransportSecurity,
    certificate_facts_cache_info,
    peer,
)
from grpcsec.pki import IssuedCertificate, SubjectAltNames, fingerprint_sha256
from tests.conftest import (
    CLIENT_SPIFFE_ID,
    FRESH_CONNECTION,
    TIMEOUT,
    WHOAMI,
    Pki,
    issue_client,
    serve,
    whoami,
)


def leaf_pem(issued: IssuedCertificate) -> bytes:
    return issued.certificate.public_bytes(serialization.Encoding.PEM)


def mtls_context(issued: IssuedCertificate, *, transport: bytes = b"ssl") -> dict[str, list[bytes]]:
    """The keys grpcio 1.85.1 reports for an mTLS peer (grpcio-security.md §2.1)."""
    return {
        "transport_security_type": [transport],
        "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"],
        "ssl_tls_version": [b"TLSv1.3"],
        "x509_common_name": [b"client-1"],
        "x509_pem_cert": [leaf_pem(issued)],
        "ssl_session_reused": [b"false"],
    }


# -- unit: auth-context dicts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"ssl", TransportSecurity.TLS),
        (b"tls", TransportSecurity.TLS),
        (b"insecure", TransportSecurity.PLAINTEXT),
        (b"local", TransportSecurity.LOCAL),
        (b"alts", TransportSecurity.ALTS),
        (b"something-new", TransportSecurity.UNKNOWN),
    ],
)
def test_transport_security_type_is_mapped(value: bytes, expected: TransportSecurity) -> None:
    assert Peer.from_auth_context({"transport_security_type": [value]}).transport is expected


def test_empty_auth_context_is_unknown_and_anonymous() -> None:
    seen = Peer.from_auth_context({})
    assert seen.transport is TransportSecurity.UNKNOWN
    assert not seen.client_cert_presented
    assert seen.principal is None


@pytest.mark.parametrize("transport", [b"ssl", b"tls"])
def test_mtls_context_gives_every_certificate_fact(pki: Pki, transport: bytes) -> None:
    seen = Peer.from_auth_context(
        mtls_context(pki.client, transport=transport), address="ipv4:127.0.0.1:5"
    )
    leaf = pki.client.certificate
    assert seen.transport is TransportSecurity.TLS
    assert seen.address == "ipv4:127.0.0.1:5"
    assert seen.tls_version == "TLSv1.3"
    assert seen.client_cert_presented
    assert seen.common_name == "client-1"
    assert seen.subject == "CN=client-1,O=Acme"
    assert seen.dns_names == ("client.internal",)
    assert seen.ip_addresses == (ipaddress.ip_address("10.1.2.3"),)
    assert seen.uris == (CLIENT_SPIFFE_ID,)
    assert seen.emails == ("client@example.org",)
    assert seen.spiffe_id == CLIENT_SPIFFE_ID
    assert seen.serial == f"{leaf.serial_number:x}"
    assert seen.not_after == leaf.not_valid_after_utc
    assert seen.not_after is not None
    assert seen.not_after.tzinfo is dt.timezone.utc
    assert seen.fingerprint_sha256 == fingerprint_sha256(leaf)
    assert seen.certificate == leaf
    assert seen.principal == CLIENT_SPIFFE_ID


def test_a_peer_from_a_certificate_is_the_tls_peer_that_presented_it(pki: Pki) -> None:
    seen = Peer.from_certificate(pki.client.certificate, address="ipv4:127.0.0.1:5")
    from_context = Peer.from_auth_context(
        {"transport_security_type": [b"ssl"], "x509_pem_cert": [leaf_pem(pki.client)]},
        address="ipv4:127.0.0.1:5",
    )
    assert seen == from_context
    assert seen.transport is TransportSecurity.TLS
    assert seen.client_cert_presented
    assert seen.principal == CLIENT_SPIFFE_ID
    assert seen.certificate == pki.client.certificate
    # negative control: another certificate is another peer
    assert Peer.from_certificate(pki.server.certificate) != Peer.from_certificate(
        pki.client.certificate
    )


def test_two_uri_sans_mean_no_spiffe_id_and_the_dns_name_is_the_principal(pki: Pki) -> None:
    """gRPC's rule: a SPIFFE ID only when there is exactly one URI SAN."""
    two = issue_client(
        pki.ca,
        names=SubjectAltNames.build(
            dns=["svc.internal"], uris=["spiffe://example.org/a", "spiffe://example.org/b"]
        ),
    )
    seen = Peer.from_auth_context(mtls_context(two))
    assert seen.spiffe_id is None
    assert seen.uris == ("spiffe://example.org/a", "spiffe://example.org/b")
    assert seen.principal == "svc.internal"


def test_principal_falls_back_to_the_common_name(pki: Pki) -> None:
    mail_only = issue_client(
        pki.ca, names=SubjectAltNames.build(emails=["ops@example.org"]), common_name="ops-bot"
    )
    seen = Peer.from_auth_context(mtls_context(mail_only))
    assert seen.principal == "ops-bot"
    assert "ops-bot" in seen.display


def test_tls_without_client_certificate_is_anonymous() -> None:
    seen = Peer.from_auth_context(
        {"transport_security_type": [b"ssl"], "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"]},
        address="ipv4:127.0.0.1:7",
    )
    assert seen.transport is TransportSecurity.TLS
    assert not seen.client_cert_presented
    assert seen.principal is None
    assert seen.display == "no certificate (ipv4:127.0.0.1:7, tls)"


def test_certificate_without_tls_is_ignored(pki: Pki) -> None:
    """Fail closed: certificate facts count only on a TLS connection."""
    context = mtls_context(pki.client, transport=b"insecure")
    seen = Peer.from_auth_context(context)
    assert seen.transport is TransportSecurity.PLAINTEXT
    assert not seen.client_cert_presented
    assert seen.spiffe_id is None


def test_unparseable_certificate_is_not_an_identity() -> None:
    """Fail closed: a certificate was presented but cannot be read, so it is neither an
    identity nor "no certificate" (which A43's "" principal would match)."""
    context = {
        "transport_security_type": [b"ssl"],
        "x509_pem_cert": [b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"],
    }
    seen = Peer.from_auth_context(context)
    assert seen.client_cert_presented
    assert seen.certificate_unreadable
    assert seen.principal is None
    assert seen.common_name is None


def test_parsed_certificates_are_cached_by_pem(pki: Pki) -> None:
    context = mtls_context(pki.client)
    first = Peer.from_auth_context(context)
    before = certificate_facts_cache_info()
    copy = {key: [bytes(bytearray(v)) for v in values] for key, values in context.items()}
    second = Peer.from_auth_context(copy)  # equal bytes, different objects: still a hit
    after = certificate_facts_cache_info()
    assert after.misses == before.misses  # no second parse
    assert second is first  # the whole value is memoized on equal inputs
    third = Peer.from_auth_context(copy, address="ipv4:127.0.0.1:2")  # another connection
    assert third is not first
    assert third.certificate is first.certificate  # ... same certificate, parsed once
    assert certificate_facts_cache_info().misses == before.misses
    assert after.maxsize is not None
    assert after.maxsize > 0


class FakeContext:
    """Not a grpc mock: the two methods the AuthContextCarrier protocol asks for."""

    def __init__(self, auth: Mapping[str, Sequence[bytes]], address: str) -> None:
        self._auth = auth
        self._address = address

    def auth_context(self) -> Mapping[str, Sequence[bytes]]:
        return self._auth

    def peer(self) -> str:
        return self._address


def test_peer_reads_any_object_with_auth_context_and_peer(pki: Pki) -> None:
    seen = peer(FakeContext(mtls_context(pki.client), "ipv6:%5B::1%5D:48692"))
    assert seen.address == "ipv6:%5B::1%5D:48692"
    assert seen.spiffe_id == CLIENT_SPIFFE_ID


def test_to_json_is_plain_data(pki: Pki) -> None:
    data = Peer.from_auth_context(mtls_context(pki.client)).to_json()
    assert data["transport"] == "tls"
    assert data["san"] == {
        "dns": ["client.internal"],
        "ip": ["10.1.2.3"],
        "uri": [CLIENT_SPIFFE_ID],
        "email": ["client@example.org"],
    }
    assert isinstance(data["not_after"], str)
    assert str(data["not_after"]).endswith("Z")
    assert "certificate" not in data


# -- end to end: what a real handler sees --------------------------------------------------------


def test_handler_sees_the_client_identity_over_mtls(pki: Pki, server_kind: str) -> None:
    with serve(server_kind, server_credentials(pki.server, client_ca=pki.ca)) as server:
        seen = whoami(server.target, channel_credentials(ca=pki.ca, identity=pki.client))
    assert seen["address"].startswith("ipv4:127.0.0.1:")
    assert seen["transport"] == "tls"
    assert seen["client_cert_presented"] is True
    assert seen["common_name"] == "client-1"
    assert seen["subject"] == "CN=client-1,O=Acme"
    assert seen["spiffe_id"] == CLIENT_SPIFFE_ID
    assert seen["principal"] == CLIENT_SPIFFE_ID
    assert seen["san"] == {
        "dns": ["client.internal"],
        "ip": ["10.1.2.3"],
        "uri": [CLIENT_SPIFFE_ID],
        "email": ["client@example.org"],
    }
    assert seen["serial"] == f"{pki.client.certificate.serial_number:x}"
    assert seen["fingerprint_sha256"] == fingerprint_sha256(pki.client.certificate)


def test_handler_sees_no_identity_over_plain_tls(pki: Pki, server_kind: str) -> None:
    with serve(server_kind, server_credentials(pki.server)) as server:
        seen = whoami(server.target, channel_credentials(ca=pki.ca))
    assert seen["transport"] == "tls"
    assert seen["client_cert_presented"] is False
    assert seen["principal"] is None
    assert seen["spiffe_id"] is None


def test_rpcs_on_one_connection_parse_the_certificate_once(pki: Pki) -> None:
    """The cache is what keeps per-RPC identity cheap: same connection, same PEM, one parse."""
    fresh = issue_client(pki.ca, common_name="cache-probe")
    with serve("sync", server_credentials(pki.server, client_ca=pki.ca)) as server:
        credentials = channel_credentials(ca=pki.ca, identity=fresh)
        with grpc.secure_channel(server.target, credentials, options=FRESH_CONNECTION) as ch:
            call = ch.unary_unary(WHOAMI)
            call(b"", timeout=TIMEOUT)
            before = certificate_facts_cache_info()
            for _ in range(5):
                call(b"", timeout=TIMEOUT)
            after = certificate_facts_cache_info()
    assert after.misses == before.misses


def test_memo_never_mixes_identities_on_a_reused_address(pki: Pki) -> None:
    """A port reused by another client with another certificate, or the same certificate over
    plaintext, must not be served a remembered identity."""
    address = "ipv4:127.0.0.1:40000"
    alice = Peer.from_auth_context(mtls_context(pki.client), address=address)
    intruder = Peer.from_auth_context(mtls_context(pki.other_client), address=address)
    assert alice.common_name != intruder.common_name
    assert alice.fingerprint_sha256 != intruder.fingerprint_sha256
    plaintext = Peer.from_auth_context(
        {"transport_security_type": [b"insecure"], "security_level": [b"TSI_SECURITY_NONE"]},
        address=address,
    )
    assert not plaintext.client_cert_presented
    assert plaintext.principal is None
