"""pki.crl: a CRL built for a CA reads back with its entries, number and key identifier; a CRL
is only "signed by" the CA whose key signed it (not another CA with the same name); garbage and
truncated input are one MaterialError; time windows are judged at the ``now`` given."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization

from grpcsec.errors import MaterialError
from grpcsec.pki import CertificateAuthority
from grpcsec.pki.crl import Revocation, RevocationReason, build_crl, crl_pem, load_crl

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


def _crl(ca: CertificateAuthority, *serials: int, number: int = 7) -> bytes:
    revocations = [
        Revocation(serial=s, revoked_at=NOW - DAY, reason=RevocationReason.KEY_COMPROMISE)
        for s in serials
    ]
    return crl_pem(
        build_crl(
            ca.certificate,
            ca.key,
            revocations,
            number=number,
            this_update=NOW,
            next_update=NOW + DAY,
        )
    )


def test_a_built_crl_reads_back() -> None:
    ca = CertificateAuthority.create("crl test CA", now=NOW)
    parsed = load_crl(_crl(ca, 0x1234, 0x99), source="ca.crl")
    assert parsed.number == 7
    assert parsed.issuer == ca.certificate.subject
    assert parsed.authority_key_id is not None
    assert set(parsed.entries) == {0x1234, 0x99}
    found = parsed.lookup(0x1234)
    assert found is not None
    assert found.reason is RevocationReason.KEY_COMPROMISE
    assert parsed.lookup(0x1235) is None
    assert parsed.to_json()["revoked"] == 2


def test_only_the_signing_ca_signed_it_not_a_namesake() -> None:
    ca = CertificateAuthority.create("same name", now=NOW)
    namesake = CertificateAuthority.create("same name", now=NOW)
    parsed = load_crl(_crl(ca, 1))
    assert parsed.is_signed_by(ca.certificate)
    assert not parsed.is_signed_by(namesake.certificate)
    forged = load_crl(_crl(namesake, 1))
    assert not forged.is_signed_by(ca.certificate)


def test_windows_are_judged_at_the_time_given() -> None:
    ca = CertificateAuthority.create("window CA", now=NOW)
    parsed = load_crl(_crl(ca))
    assert not parsed.expired(NOW + DAY)
    assert parsed.expired(NOW + DAY + dt.timedelta(seconds=1))
    assert parsed.not_yet_valid(NOW - dt.timedelta(seconds=1))
    assert not parsed.not_yet_valid(NOW)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        b"\x30\x03\x02\x01",
    ],
)
def test_garbage_is_one_material_error(data: bytes) -> None:
    with pytest.raises(MaterialError, match="not a valid CRL") as caught:
        load_crl(data, source="bad.crl")
    assert str(caught.value).startswith("bad.crl: ")
    assert "\n" not in str(caught.value)


def test_a_truncated_crl_is_refused() -> None:
    ca = CertificateAuthority.create("trunc CA", now=NOW)
    der = load_crl(_crl(ca, 1, 2, 3)).crl.public_bytes(serialization.Encoding.DER)
    with pytest.raises(MaterialError):
        load_crl(der[:-10])
