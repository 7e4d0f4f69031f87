"""What rotated material must pass, checked at explicit times (one second either side)."""

from __future__ import annotations

import datetime as dt

import pytest

from grpcsec.errors import (
    ConfigurationError,
    GrpcsecError,
    KeyMismatchError,
    MaterialError,
    RotationError,
    VerificationError,
    VerifyReason,
)
from grpcsec.pki import (
    CertificateAuthority,
    IssuedCertificate,
    Validity,
    private_key_pem,
    utcnow,
)
from grpcsec.rotation import FailureKind, RawMaterial, check_channel_material, check_server_material
from grpcsec.rotation.checks import classify
from tests.rotation.conftest import RotPki, bundle, client_leaf, server_leaf

SECOND = dt.timedelta(seconds=1)


def raw_of(leaf: IssuedCertificate, **parts: bytes | None) -> RawMaterial:
    return RawMaterial(chain=leaf.chain_pem(), key=leaf.key_pem(), **parts)


def test_a_valid_pair_passes_between_its_dates_and_fails_one_second_outside(
    rot_pki: RotPki,
) -> None:
    start = utcnow().replace(microsecond=0)
    leaf = server_leaf(
        rot_pki.ca, validity=Validity(not_before=start, not_after=start + dt.timedelta(hours=1))
    )
    raw = raw_of(leaf, trust=bundle(rot_pki.ca))
    inside = check_server_material(raw, now=start + SECOND, mutual=True)
    assert inside.leaf.serial_number == leaf.certificate.serial_number
    assert len(inside.client_cas) == 1
    with pytest.raises(VerificationError) as early:
        check_server_material(raw, now=start - SECOND, mutual=True)
    assert early.value.reason is VerifyReason.NOT_YET_VALID
    with pytest.raises(VerificationError) as late:
        check_server_material(raw, now=start + dt.timedelta(hours=1) + SECOND, mutual=True)
    assert late.value.reason is VerifyReason.EXPIRED
    assert classify(late.value) is FailureKind.EXPIRED
    assert classify(early.value) is FailureKind.NOT_YET_VALID
    assert FailureKind.NOT_YET_VALID.time_dependent
    assert not FailureKind.EXPIRED.time_dependent


def test_every_certificate_served_with_the_leaf_must_be_in_its_window(rot_pki: RotPki) -> None:
    """An intermediate that is not valid yet breaks the chain for peers even though the leaf
    is fine; it is refused and named."""
    now = utcnow().replace(microsecond=0)
    later = now + dt.timedelta(minutes=10)
    intermediate = rot_pki.ca.create_intermediate(
        validity=Validity(not_before=later, not_after=later + dt.timedelta(days=1)), now=now
    )
    leaf = server_leaf(
        intermediate, validity=Validity(not_before=now, not_after=now + dt.timedelta(hours=1))
    )
    raw = raw_of(leaf, trust=bundle(rot_pki.ca))
    check_server_material(raw, now=later + SECOND, mutual=True)  # positive control
    with pytest.raises(VerificationError, match="chain certificate 2") as info:
        check_server_material(raw, now=later - SECOND, mutual=True)
    assert info.value.reason is VerifyReason.NOT_YET_VALID


def test_a_torn_pair_is_a_key_mismatch_naming_both_files(rot_pki: RotPki) -> None:
    one, other = server_leaf(rot_pki.ca), server_leaf(rot_pki.ca)
    raw = RawMaterial(
        chain=one.chain_pem(), key=other.key_pem(), chain_name="tls.crt", key_name="tls.key"
    )
    with pytest.raises(KeyMismatchError) as info:
        check_server_material(raw, now=utcnow(), mutual=False)
    assert "tls.key" in str(info.value)
    assert "tls.crt" in str(info.value)
    assert classify(info.value) is FailureKind.KEY_MISMATCH


def test_issuers_accept_their_own_chains_and_refuse_others(rot_pki: RotPki) -> None:
    now = utcnow()
    own = raw_of(server_leaf(rot_pki.ca), issuers=bundle(rot_pki.ca))
    check_server_material(own, now=now, mutual=False)
    foreign = raw_of(server_leaf(rot_pki.other_ca), issuers=bundle(rot_pki.ca))
    with pytest.raises(VerificationError, match="does not verify against the issuers") as info:
        check_server_material(foreign, now=now, mutual=False)
    assert classify(info.value) is FailureKind.UNTRUSTED


def test_mtls_needs_a_client_ca_bundle_in_every_generation(rot_pki: RotPki) -> None:
    leaf = server_leaf(rot_pki.ca)
    with pytest.raises(MaterialError, match="client-CA bundle is missing"):
        check_server_material(raw_of(leaf), now=utcnow(), mutual=True)
    with pytest.raises(ConfigurationError, match="cannot be switched on by a reload"):
        check_server_material(raw_of(leaf, trust=bundle(rot_pki.ca)), now=utcnow(), mutual=False)
    with pytest.raises(MaterialError, match="not a CA"):
        check_server_material(
            raw_of(leaf, trust=leaf.chain_pem()), now=utcnow(), mutual=True
        )  # a leaf passed as the client CA


def test_role_checks_apply_to_rotated_material(rot_pki: RotPki) -> None:
    client = client_leaf(rot_pki.ca)
    with pytest.raises(MaterialError, match="serverAuth"):
        check_server_material(raw_of(client), now=utcnow(), mutual=False)
    server = server_leaf(rot_pki.ca)
    with pytest.raises(MaterialError, match="clientAuth"):
        check_channel_material(raw_of(server, trust=bundle(rot_pki.ca)), now=utcnow())


def test_channel_material_with_and_without_a_client_certificate(rot_pki: RotPki) -> None:
    now = utcnow()
    anonymous = check_channel_material(
        RawMaterial(chain=None, key=None, trust=bundle(rot_pki.ca)), now=now
    )
    assert anonymous.leaf is None
    assert "no client certificate" in anonymous.describe()
    client = client_leaf(rot_pki.ca)
    mutual = check_channel_material(
        raw_of(client, trust=bundle(rot_pki.ca), issuers=bundle(rot_pki.ca)), now=now
    )
    assert mutual.leaf is not None
    with pytest.raises(ConfigurationError, match="both the certificate and the key"):
        check_channel_material(
            RawMaterial(chain=client.chain_pem(), key=None, trust=bundle(rot_pki.ca)), now=now
        )
    with pytest.raises(MaterialError, match="CA bundle is missing"):
        check_channel_material(raw_of(client), now=now)


def test_classify_sorts_every_error_into_a_kind() -> None:
    assert classify(RotationError("dropped")) is FailureKind.TRUST_DROPPED
    assert classify(MaterialError("garbage")) is FailureKind.INVALID
    assert classify(GrpcsecError("other")) is FailureKind.INVALID
    assert classify(ValueError("bug")) is FailureKind.ERROR
    wrong = VerificationError(VerifyReason.UNKNOWN_AUTHORITY, "x")
    assert classify(wrong) is FailureKind.UNTRUSTED


def test_a_ca_certificate_is_never_accepted_as_the_served_leaf() -> None:
    ca = CertificateAuthority.create("leaf-looking CA", now=utcnow())
    raw = RawMaterial(chain=ca.certificate_pem(), key=private_key_pem(ca.key))
    with pytest.raises(MaterialError, match="is a CA certificate"):
        check_server_material(raw, now=utcnow(), mutual=False)
