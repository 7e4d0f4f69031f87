"""Renewal planning as pure functions over values: when a certificate is due, what replaces it,
which certificates are refused, and how long to back off; every time passed in."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from grpcsec.errors import RotationError
from grpcsec.pki import CertificateAuthority, KeyType, Profile, SubjectAltNames, Validity
from grpcsec.pki.validity import BACKDATE
from grpcsec.rotation.renew_plan import (
    Backoff,
    check_issuer,
    check_not_expired,
    reissue,
    renewal_backdate,
    renewal_time,
)
from tests.rotation.conftest import RotPki

HOUR = dt.timedelta(hours=1)
SECOND = dt.timedelta(seconds=1)
START = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


def leaf_of(
    ca: CertificateAuthority,
    *,
    lifetime: dt.timedelta = 24 * HOUR,
    profile: Profile = Profile.PEER,
    key_type: KeyType = KeyType.ECDSA_P256,
) -> x509.Certificate:
    """A leaf issued at ``START`` (``ca`` must be valid then: the session CAs are)."""
    return ca.issue(
        profile,
        SubjectAltNames.build(dns=["svc.internal"], ips=["127.0.0.1"]),
        common_name="svc",
        organization="Acme",
        key_type=key_type,
        validity=Validity(not_before=START, not_after=START + lifetime),
        now=START,
    ).certificate


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create(
        "plan CA", validity=Validity(not_before=START - HOUR, not_after=START + 1000 * HOUR)
    )


def test_renewal_time_is_two_thirds_of_the_lifetime_give_or_take_a_twentieth() -> None:
    end = START + dt.timedelta(hours=24)
    assert renewal_time(START, end) == START + dt.timedelta(hours=16)
    assert renewal_time(START, end, draw=0.0) == START + dt.timedelta(hours=16, minutes=-72)
    assert renewal_time(START, end, draw=1.0) == START + dt.timedelta(hours=16, minutes=72)
    draws = [renewal_time(START, end, draw=random.random()) for _ in range(200)]  # noqa: S311
    assert all(START + dt.timedelta(hours=14.8) <= when <= START + HOUR * 17.2 for when in draws)
    # --every: sooner than 2/3 wins; later never does.
    assert renewal_time(START, end, every=HOUR) == START + HOUR
    assert renewal_time(START, end, every=dt.timedelta(days=30)) == START + HOUR * 16


def test_backoff_values() -> None:
    backoff = Backoff(initial=5, factor=2, maximum=300, jitter=0.1)
    assert backoff.delay(1) == 5
    assert backoff.delay(3) == 20
    assert backoff.delay(50) == 300
    assert backoff.delay(1, draw=0.0) == pytest.approx(4.5)
    assert backoff.delay(1, draw=1.0) == pytest.approx(5.5)


def test_an_expired_certificate_is_refused_from_the_second_after_not_after(
    ca: CertificateAuthority,
) -> None:
    leaf = leaf_of(ca)
    end = leaf.not_valid_after_utc
    check_not_expired(leaf, end - SECOND)
    check_not_expired(leaf, end)  # the last second still renews
    with pytest.raises(RotationError, match=r"expired on .* \(1s ago\)") as caught:
        check_not_expired(leaf, end + SECOND, path="svc.crt")
    assert caught.value.path == "svc.crt"


def test_only_the_direct_issuer_passes_the_issuer_check(
    ca: CertificateAuthority, rot_pki: RotPki
) -> None:
    leaf = leaf_of(ca)
    check_issuer(leaf, ca.certificate)
    with pytest.raises(RotationError, match="not by this CA"):
        check_issuer(leaf, rot_pki.other_ca.certificate)
    check_issuer(leaf, rot_pki.other_ca.certificate, allow_other_issuer=True)


def test_a_ca_with_the_same_name_but_another_key_is_not_the_issuer(
    ca: CertificateAuthority,
) -> None:
    """The name matches, the signature does not: refused (a lookalike CA is not the issuer)."""
    lookalike = CertificateAuthority.create(
        "plan CA", validity=Validity(not_before=START - HOUR, not_after=START + 1000 * HOUR)
    )
    leaf = leaf_of(ca)
    assert leaf.issuer == lookalike.certificate.subject
    with pytest.raises(RotationError, match="not by this CA"):
        check_issuer(leaf, lookalike.certificate)


def test_backdate_is_a_minute_or_a_tenth_of_a_short_period(ca: CertificateAuthority) -> None:
    day = leaf_of(ca)
    assert renewal_backdate(day) == BACKDATE
    assert renewal_backdate(day, every=60 * SECOND) == 6 * SECOND
    assert renewal_backdate(day, lifetime=100 * SECOND) == 10 * SECOND
    assert renewal_backdate(leaf_of(ca, lifetime=30 * SECOND)) == 3 * SECOND


@pytest.mark.parametrize(
    ("profile", "usages"),
    [
        (Profile.SERVER, [ExtendedKeyUsageOID.SERVER_AUTH]),
        (Profile.CLIENT, [ExtendedKeyUsageOID.CLIENT_AUTH]),
        (Profile.PEER, [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
    ],
)
def test_reissue_keeps_identity_profile_and_span_with_a_new_key(
    ca: CertificateAuthority, profile: Profile, usages: list[x509.ObjectIdentifier]
) -> None:
    old = leaf_of(ca, profile=profile, key_type=KeyType.ECDSA_P384)
    now = START + 16 * HOUR
    new = reissue(ca, old, now=now).certificate
    assert new.subject == old.subject
    assert new.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme"
    assert sorted(
        new.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value,
        key=lambda oid: oid.dotted_string,
    ) == sorted(usages, key=lambda oid: oid.dotted_string)
    assert new.extensions.get_extension_for_class(x509.SubjectAlternativeName).value == (
        old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    )
    assert new.public_key() != old.public_key()
    assert new.public_key().public_numbers().curve.name == "secp384r1"  # type: ignore[union-attr]
    assert new.not_valid_before_utc == now - BACKDATE
    assert new.not_valid_after_utc - new.not_valid_before_utc == 24 * HOUR
    short = reissue(ca, old, now=now, lifetime=HOUR, backdate=SECOND).certificate
    assert short.not_valid_after_utc == now + HOUR
