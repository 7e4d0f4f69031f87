"""Issuance helpers below the CA: subject names, key checks, the builder, the issued value."""

from __future__ import annotations

import datetime as dt
import stat
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from grpcsec.errors import IssuanceError, KeyMismatchError, MaterialError
from grpcsec.pki import CertificateAuthority, Profile, SubjectAltNames, Validity, generate_key
from grpcsec.pki.signing import (
    IssuedCertificate,
    check_key_matches,
    issuable_public_key,
    sign_certificate,
    subject_name,
)

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def root() -> CertificateAuthority:
    return CertificateAuthority.create("signing root", now=NOW)


def test_subject_name_puts_o_before_cn_and_omits_what_is_absent() -> None:
    assert subject_name("svc", "Acme").rfc4514_string() == "CN=svc,O=Acme"
    assert subject_name("svc", None).rfc4514_string() == "CN=svc"
    assert len(subject_name("", None)) == 0


@pytest.mark.parametrize(
    ("common_name", "organization", "needle"),
    [
        ("x" * 65, None, "longer than 64"),
        ("bad\x00cn", None, "common name"),
        ("ok", "o\n", "organization"),
    ],
)
def test_subject_name_refuses_unprintable_or_long_values(
    common_name: str, organization: str | None, needle: str
) -> None:
    with pytest.raises(IssuanceError, match=needle):
        subject_name(common_name, organization)
    subject_name("x" * 64, "Acme")  # negative control: 64 characters and printable pass


def test_check_key_matches_accepts_the_pair_and_refuses_another_key(
    root: CertificateAuthority,
) -> None:
    check_key_matches(root.certificate, root.key)
    with pytest.raises(KeyMismatchError, match="does not match") as caught:
        check_key_matches(root.certificate, generate_key(), source="ca.key")
    assert caught.value.path == "ca.key"


def test_only_issuable_public_key_types_pass() -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert issuable_public_key(key, "the CSR") is key
    with warnings.catch_warnings():  # cryptography >= 51 deprecates DSA: the point here
        warnings.simplefilter("ignore")
        from cryptography.hazmat.primitives.asymmetric import dsa  # noqa: PLC0415

        other = dsa.generate_private_key(2048).public_key()
    with pytest.raises(IssuanceError, match=r"the CSR has a .*DSA"):
        issuable_public_key(other, "the CSR")


def test_sign_certificate_writes_exactly_the_given_fields(root: CertificateAuthority) -> None:
    key = generate_key()
    window = Validity(not_before=NOW, not_after=NOW + dt.timedelta(days=1))
    extensions = [(x509.BasicConstraints(ca=False, path_length=None), True)]
    cert = sign_certificate(
        subject=subject_name("leaf", None),
        issuer=root.certificate.subject,
        public_key=key.public_key(),
        window=window,
        extensions=extensions,
        signing_key=root.key,
    )
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "leaf"
    assert cert.issuer == root.certificate.subject
    assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (NOW, window.not_after)
    assert len(cert.extensions) == 1
    cert.verify_directly_issued_by(root.certificate)


def test_serials_are_random_and_distinct(root: CertificateAuthority) -> None:
    names = SubjectAltNames.build(dns=["a.example"])
    serials = {
        root.issue(Profile.SERVER, names, now=NOW).certificate.serial_number for _ in range(5)
    }
    assert len(serials) == 5
    assert all(s.bit_length() > 64 for s in serials)


def test_issued_certificate_writes_both_files_with_their_modes(
    root: CertificateAuthority, tmp_path: Path
) -> None:
    issued = root.issue(Profile.CLIENT, SubjectAltNames.build(dns=["c.example"]), now=NOW)
    assert "key=" not in repr(issued)
    issued.write(tmp_path / "c.crt", tmp_path / "c.key")
    assert stat.S_IMODE((tmp_path / "c.crt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "c.key").stat().st_mode) == 0o600
    assert (tmp_path / "c.crt").read_bytes() == issued.chain_pem()
    with pytest.raises(MaterialError, match="already exists"):  # no overwrite without force
        issued.write(tmp_path / "c.crt", tmp_path / "c.key")
    issued.write(tmp_path / "c.crt", force=True)


def test_a_signed_csr_has_no_key_to_write(root: CertificateAuthority) -> None:
    leaf = root.issue(Profile.CLIENT, SubjectAltNames.build(dns=["c.example"]), now=NOW)
    without = IssuedCertificate(leaf.certificate, leaf.chain, None)
    with pytest.raises(IssuanceError, match="issued for a CSR"):
        without.key_pem()
