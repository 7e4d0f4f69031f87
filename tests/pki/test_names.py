"""SAN parsing: what is accepted, normalised, and refused with which reason."""

from __future__ import annotations

import ipaddress

import pytest

from grpcsec.errors import IssuanceError
from grpcsec.pki.names import SpiffeId, SubjectAltNames, normalize_dns_name, parse_ip, parse_uri


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("LocalHost", "localhost"),
        ("api.example.com.", "api.example.com"),
        ("*.svc.example", "*.svc.example"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("_grpc.example", "_grpc.example"),
    ],
)
def test_dns_names_are_normalised(given: str, expected: str) -> None:
    assert normalize_dns_name(given) == expected


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("", "empty"),
        ("*.com", "two labels"),
        ("a.*.example", "left-most"),
        ("a*.example", "left-most"),
        ("-bad.example", "hyphen"),
        ("bad-.example", "hyphen"),
        ("a..example", "label"),
        ("x" * 64 + ".example", "label"),
        ("127.0.0.1", "IP address"),
        ("has space.example", "label"),
    ],
)
def test_bad_dns_names_are_refused_with_reason(given: str, reason: str) -> None:
    with pytest.raises(IssuanceError, match=reason):
        normalize_dns_name(given)


def test_ip_addresses_parse_with_and_without_brackets() -> None:
    assert parse_ip("127.0.0.1") == ipaddress.ip_address("127.0.0.1")
    assert parse_ip("[::1]") == ipaddress.ip_address("::1")
    with pytest.raises(IssuanceError, match=r"invalid IP address '300\.1\.1\.1'"):
        parse_ip("300.1.1.1")


def test_valid_spiffe_id_round_trips() -> None:
    spiffe = SpiffeId.parse("spiffe://example.org/ns/default/sa/orders")
    assert spiffe.trust_domain == "example.org"
    assert spiffe.path == "/ns/default/sa/orders"
    assert str(spiffe) == "spiffe://example.org/ns/default/sa/orders"


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("spiffe://example.org", "needs a path"),
        ("spiffe://example.org/", "needs a path"),
        ("spiffe://Example.org/a", "trust domain"),
        ("spiffe://example.org:8080/a", "trust domain"),
        ("spiffe://user@example.org/a", "trust domain"),
        ("spiffe://example.org/a//b", "empty path segment"),
        ("spiffe://example.org/a/", "empty path segment"),
        ("spiffe://example.org/a/../b", r"'\.' and '\.\.'"),
        ("spiffe://example.org/a?x=1", "path segment"),
        ("spiffe://example.org/a%20b", "path segment"),
        ("SPIFFE://example.org/a", "lowercase"),
        ("spiffe:///a", "trust domain is empty"),
        ("spiffe://example.org/" + "a" * 2048, "2048"),
    ],
)
def test_bad_spiffe_ids_are_refused_with_reason(given: str, reason: str) -> None:
    with pytest.raises(IssuanceError, match=reason):
        parse_uri(given)


def test_other_uris_need_a_scheme() -> None:
    assert parse_uri("https://orders.example/api") == "https://orders.example/api"
    with pytest.raises(IssuanceError, match="needs a scheme"):
        parse_uri("orders.example/api")


def test_identities_are_sorted_into_kinds_in_order_without_duplicates() -> None:
    names = SubjectAltNames.from_identities(
        [
            "localhost",
            "127.0.0.1",
            "::1",
            "spiffe://example.org/svc/orders",
            "ops@example.org",
            "LOCALHOST",
        ]
    )
    assert names.dns == ("localhost",)
    assert names.ips == (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
    assert names.uris == ("spiffe://example.org/svc/orders",)
    assert names.emails == ("ops@example.org",)
    assert names.spiffe_id == "spiffe://example.org/svc/orders"
    assert names.as_strings()[0] == "DNS:localhost"


def test_identity_that_looks_like_a_broken_ip_is_an_ip_error_not_a_dns_name() -> None:
    with pytest.raises(IssuanceError, match="invalid IP address"):
        SubjectAltNames.from_identities(["300.1.1.1"])


def test_spiffe_id_needs_exactly_one_uri() -> None:
    two = SubjectAltNames.build(uris=["spiffe://a.org/x", "spiffe://a.org/y"])
    assert two.spiffe_id is None
    other = SubjectAltNames.build(uris=["https://a.org/x"])
    assert other.spiffe_id is None


def test_bad_email_is_refused() -> None:
    with pytest.raises(IssuanceError, match="e-mail"):
        SubjectAltNames.build(emails=["not-an-address"])


@pytest.mark.parametrize(
    ("identity", "kind"),
    [
        ("urn:x:y", "URI"),
        ("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "URI"),
        ("spiffe://example.org/a", "URI"),
        ("fe80::1", "IP"),  # hex-only "scheme": an IPv6 address, not a URI
        ("::1", "IP"),
        ("10.0.0.1", "IP"),
        ("svc.internal", "DNS"),
    ],
)
def test_identities_with_a_uri_scheme_are_uris(identity: str, kind: str) -> None:
    """``init --client urn:x:y`` used to fail as "invalid IP address" (issue 16)."""
    (name,) = SubjectAltNames.from_identities([identity]).as_strings()
    assert name.split(":", 1)[0] == kind


def test_requested_names_put_sorted_hosts_first_then_each_explicit_kind() -> None:
    names = SubjectAltNames.requested(
        hosts=["svc.example", "10.0.0.1", "ops@example.com"],
        dns=["extra.example", "svc.example"],
        ips=["::1"],
        uris=["urn:example:a"],
        spiffe_ids=["spiffe://acme/orders"],
        emails=["dev@example.com"],
    )
    assert names.dns == ("svc.example", "extra.example")  # duplicates dropped, order kept
    assert [str(ip) for ip in names.ips] == ["10.0.0.1", "::1"]
    assert names.uris == ("urn:example:a", "spiffe://acme/orders")
    assert names.emails == ("ops@example.com", "dev@example.com")
    assert SubjectAltNames.requested().empty


def test_requested_spiffe_ids_are_checked_as_spiffe_ids() -> None:
    with pytest.raises(IssuanceError, match="SPIFFE"):
        SubjectAltNames.requested(spiffe_ids=["https://acme/orders"])
    # negative control: the same text as a plain URI is a valid URI SAN
    assert SubjectAltNames.requested(uris=["https://acme/orders"]).uris == ("https://acme/orders",)
