"""Verification: accepted chains, and the specific reason for each rejection."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from grpcsec.errors import VerificationError, VerifyReason
from grpcsec.pki import (
    CertificateAuthority,
    KeyType,
    Profile,
    Role,
    SubjectAltNames,
    Validity,
    host_matches,
    verify_certificate,
)

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def root() -> CertificateAuthority:
    return CertificateAuthority.create("verify root", now=NOW)


@pytest.fixture(scope="module")
def inter(root: CertificateAuthority) -> CertificateAuthority:
    return root.create_intermediate("verify issuing", now=NOW)


@pytest.fixture(scope="module")
def server(inter: CertificateAuthority) -> x509.Certificate:
    names = SubjectAltNames.from_identities(["localhost", "*.svc.example", "127.0.0.1", "::1"])
    return inter.issue(Profile.SERVER, names, now=NOW).certificate


def reason_of(**kwargs: object) -> VerifyReason:
    with pytest.raises(VerificationError) as info:
        verify_certificate(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    return info.value.reason


@pytest.mark.parametrize("host", ["localhost", "a.svc.example", "127.0.0.1", "::1", "[::1]"])
def test_server_chain_verifies_for_each_of_its_names(
    root: CertificateAuthority, inter: CertificateAuthority, server: x509.Certificate, host: str
) -> None:
    result = verify_certificate(
        server, trust=[root.certificate], intermediates=[inter.certificate], host=host, now=NOW
    )
    assert result.chain == (server, inter.certificate, root.certificate)
    assert result.anchor == root.certificate
    assert result.role is Role.SERVER


def test_missing_intermediate_is_unknown_authority(
    root: CertificateAuthority, server: x509.Certificate
) -> None:
    assert (
        reason_of(leaf=server, trust=[root.certificate], now=NOW) is VerifyReason.UNKNOWN_AUTHORITY
    )


def test_other_ca_is_unknown_authority(
    inter: CertificateAuthority, server: x509.Certificate
) -> None:
    other = CertificateAuthority.create("other", now=NOW)
    assert (
        reason_of(
            leaf=server, trust=[other.certificate], intermediates=[inter.certificate], now=NOW
        )
        is VerifyReason.UNKNOWN_AUTHORITY
    )


def test_same_name_different_key_ca_is_not_trusted(
    inter: CertificateAuthority, server: x509.Certificate
) -> None:
    impostor = CertificateAuthority.create("verify root", now=NOW)
    assert (
        reason_of(
            leaf=server, trust=[impostor.certificate], intermediates=[inter.certificate], now=NOW
        )
        is VerifyReason.UNKNOWN_AUTHORITY
    )


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("other.example", False),
        ("svc.example", False),
        ("a.b.svc.example", False),
        ("10.0.0.1", False),
        ("LOCALHOST", True),
        ("x.svc.example", True),
    ],
)
def test_host_matching_rules(server: x509.Certificate, host: str, expected: bool) -> None:
    assert host_matches(server, host) is expected


def test_hostname_mismatch_names_the_sans(
    root: CertificateAuthority, inter: CertificateAuthority, server: x509.Certificate
) -> None:
    with pytest.raises(VerificationError) as info:
        verify_certificate(
            server,
            trust=[root.certificate],
            intermediates=[inter.certificate],
            host="orders.example",
            now=NOW,
        )
    assert info.value.reason is VerifyReason.HOSTNAME_MISMATCH
    assert "DNS:localhost" in str(info.value)
    assert "--host orders.example" in str(info.value)


def test_uri_only_certificate_explains_grpc_limit(root: CertificateAuthority) -> None:
    spiffe_only = root.issue(
        Profile.SERVER, SubjectAltNames.build(uris=["spiffe://acme.org/orders"]), now=NOW
    ).certificate
    with pytest.raises(VerificationError, match="only names are URIs") as info:
        verify_certificate(spiffe_only, trust=[root.certificate], host="orders", now=NOW)
    assert info.value.reason is VerifyReason.HOSTNAME_MISMATCH


def test_expired_and_not_yet_valid_at_the_edges(root: CertificateAuthority) -> None:
    window = Validity(not_before=NOW, not_after=NOW + dt.timedelta(hours=1))
    leaf = root.issue(
        Profile.CLIENT, SubjectAltNames.build(dns=["c.example"]), validity=window, now=NOW
    ).certificate
    trust = [root.certificate]
    second = dt.timedelta(seconds=1)
    assert verify_certificate(leaf, trust=trust, role=Role.CLIENT, now=NOW).chain[0] == leaf
    verify_certificate(leaf, trust=trust, role=Role.CLIENT, now=window.not_after)
    assert reason_of(leaf=leaf, trust=trust, now=NOW - second) is VerifyReason.NOT_YET_VALID
    assert reason_of(leaf=leaf, trust=trust, now=window.not_after + second) is VerifyReason.EXPIRED


def test_intermediate_outside_its_window_is_reported_as_such(root: CertificateAuthority) -> None:
    """A leaf may not outlive its issuer, so a still-valid leaf under an invalid intermediate
    is built with an intermediate that only becomes valid tomorrow."""
    future = root.create_intermediate(
        "not yet",
        validity=Validity(
            not_before=NOW + dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=9)
        ),
        now=NOW,
    )
    leaf = future.issue(
        Profile.SERVER,
        SubjectAltNames.build(dns=["a.example"]),
        validity=Validity.lasting(dt.timedelta(days=5), now=NOW),
        now=NOW,
    ).certificate
    with pytest.raises(VerificationError, match="intermediate 'CN=not yet'") as info:
        verify_certificate(
            leaf, trust=[root.certificate], intermediates=[future.certificate], now=NOW
        )
    assert info.value.reason is VerifyReason.NOT_YET_VALID


def test_eku_is_checked_per_role(root: CertificateAuthority, server: x509.Certificate) -> None:
    client = root.issue(
        Profile.CLIENT, SubjectAltNames.build(dns=["c.example"]), now=NOW
    ).certificate
    trust = [root.certificate]
    verify_certificate(client, trust=trust, role=Role.CLIENT, now=NOW)
    assert reason_of(leaf=client, trust=trust, role=Role.SERVER, now=NOW) is VerifyReason.WRONG_EKU
    assert reason_of(leaf=client, trust=trust, host="c.example", now=NOW) is VerifyReason.WRONG_EKU
    peer = root.issue(Profile.PEER, SubjectAltNames.build(dns=["p.example"]), now=NOW).certificate
    verify_certificate(peer, trust=trust, role=Role.CLIENT, now=NOW)
    verify_certificate(peer, trust=trust, host="p.example", now=NOW)


def test_role_less_verification_accepts_any_eku(root: CertificateAuthority) -> None:
    server_leaf = root.issue(
        Profile.SERVER, SubjectAltNames.build(dns=["s.example"]), now=NOW
    ).certificate
    result = verify_certificate(server_leaf, trust=[root.certificate], now=NOW)
    assert result.role is None
    assert (
        reason_of(leaf=server_leaf, trust=[root.certificate], role=Role.CLIENT, now=NOW)
        is VerifyReason.WRONG_EKU
    )


def test_ca_certificate_is_not_a_leaf(
    root: CertificateAuthority, inter: CertificateAuthority
) -> None:
    assert (
        reason_of(leaf=inter.certificate, trust=[root.certificate], now=NOW)
        is VerifyReason.NOT_A_LEAF
    )


def test_empty_trust_bundle_is_refused(server: x509.Certificate) -> None:
    assert reason_of(leaf=server, trust=[], now=NOW) is VerifyReason.UNKNOWN_AUTHORITY


def test_ed25519_ca_is_rejected_by_the_web_pki_profile() -> None:
    ed_root = CertificateAuthority.create("ed root", key_type=KeyType.ED25519, now=NOW)
    leaf = ed_root.issue(Profile.SERVER, SubjectAltNames.build(dns=["e.example"]), now=NOW)
    with pytest.raises(VerificationError, match="Forbidden public key algorithm") as info:
        verify_certificate(leaf.certificate, trust=[ed_root.certificate], now=NOW)
    assert info.value.reason is VerifyReason.INVALID_CHAIN
