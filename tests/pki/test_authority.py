"""The certificate authority: what each profile puts in a certificate, and what it refuses."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from grpcsec.errors import IssuanceError, KeyMismatchError, MaterialError
from grpcsec.pki import (
    CertificateAuthority,
    KeyType,
    Profile,
    SubjectAltNames,
    Validity,
    generate_key,
)

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)


def ext(
    cert: x509.Certificate, kind: type[x509.ExtensionType]
) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(kind)


@pytest.fixture(scope="module")
def root() -> CertificateAuthority:
    return CertificateAuthority.create("test root", organization="Acme", now=NOW)


def test_root_ca_has_ca_extensions_and_ten_year_validity(root: CertificateAuthority) -> None:
    cert = root.certificate
    basic = ext(cert, x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca
    assert basic.value.path_length is None
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(root.key.public_key())
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.ExtendedKeyUsage)
    assert cert.not_valid_before_utc == NOW - dt.timedelta(minutes=1)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=3650)
    assert root.is_root
    assert isinstance(root.key, ec.EllipticCurvePrivateKey)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)


def test_root_repr_hides_the_key(root: CertificateAuthority) -> None:
    assert "PrivateKey" not in repr(root)
    assert "key=" not in repr(root)


@pytest.mark.parametrize(
    ("profile", "ekus"),
    [
        (Profile.SERVER, [ExtendedKeyUsageOID.SERVER_AUTH]),
        (Profile.CLIENT, [ExtendedKeyUsageOID.CLIENT_AUTH]),
        (Profile.PEER, [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
    ],
)
def test_leaf_profiles_set_usages(
    root: CertificateAuthority, profile: Profile, ekus: list[x509.ObjectIdentifier]
) -> None:
    issued = root.issue(profile, SubjectAltNames.from_identities(["svc.example"]), now=NOW)
    cert = issued.certificate
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == ekus
    basic = ext(cert, x509.BasicConstraints)
    assert basic.critical
    assert not basic.value.ca
    usage = ext(cert, x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_encipherment  # ECDSA keys do not encipher
    assert not usage.key_cert_sign
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(root.certificate, x509.SubjectKeyIdentifier).value.digest
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=90)
    assert issued.chain == (cert,)  # a root is never part of the served chain


def test_rsa_leaves_also_get_key_encipherment(root: CertificateAuthority) -> None:
    issued = root.issue(
        Profile.SERVER,
        SubjectAltNames.build(dns=["rsa.example"]),
        key_type=KeyType.RSA_2048,
        now=NOW,
    )
    assert isinstance(issued.key, rsa.RSAPrivateKey)
    assert ext(issued.certificate, x509.KeyUsage).value.key_encipherment


def test_every_leaf_has_a_san_extension_and_cn_from_first_name(root: CertificateAuthority) -> None:
    names = SubjectAltNames.from_identities(
        ["orders.internal", "10.0.0.7", "spiffe://acme.org/orders", "ops@acme.org"]
    )
    cert = root.issue(Profile.PEER, names, now=NOW).certificate
    san = ext(cert, x509.SubjectAlternativeName)
    assert not san.critical
    assert SubjectAltNames.from_extension(san.value) == names
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "orders.internal"


def test_cn_only_certificates_are_refused(root: CertificateAuthority) -> None:
    with pytest.raises(IssuanceError, match="CN-only"):
        root.issue(Profile.SERVER, SubjectAltNames(), common_name="localhost", now=NOW)


def test_long_spiffe_id_gives_empty_subject_and_critical_san(root: CertificateAuthority) -> None:
    long_id = "spiffe://acme.org/" + "/".join(["segment"] * 12)
    cert = root.issue(Profile.CLIENT, SubjectAltNames.build(uris=[long_id]), now=NOW).certificate
    assert len(cert.subject) == 0
    assert ext(cert, x509.SubjectAlternativeName).critical


def test_ed25519_leaf_is_refused_unless_asked_for(root: CertificateAuthority) -> None:
    names = SubjectAltNames.build(dns=["ed.example"])
    with pytest.raises(IssuanceError, match="NO_COMMON_SIGNATURE_ALGORITHMS"):
        root.issue(Profile.SERVER, names, key_type=KeyType.ED25519, now=NOW)
    issued = root.issue(
        Profile.SERVER, names, key_type=KeyType.ED25519, allow_unsupported_key=True, now=NOW
    )
    assert issued.certificate.signature_hash_algorithm is not None  # signed by the ECDSA root


def test_p384_issuer_signs_with_sha384() -> None:
    ca = CertificateAuthority.create("p384", key_type=KeyType.ECDSA_P384, now=NOW)
    assert isinstance(ca.certificate.signature_hash_algorithm, hashes.SHA384)


def test_intermediate_chain_and_path_length(root: CertificateAuthority) -> None:
    inter = root.create_intermediate("issuing", now=NOW)
    assert ext(inter.certificate, x509.BasicConstraints).value.path_length == 0
    assert inter.certificate.not_valid_after_utc == NOW + dt.timedelta(days=5 * 365)
    assert inter.root == root.certificate
    leaf = inter.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.example"]), now=NOW)
    assert leaf.chain == (leaf.certificate, inter.certificate)
    with pytest.raises(IssuanceError, match="path length 0"):
        inter.create_intermediate("too deep", now=NOW)


def test_parent_path_length_limits_child() -> None:
    ca = CertificateAuthority.create("limited", path_length=1, now=NOW)
    child = ca.create_intermediate("child", path_length=5, now=NOW)
    assert ext(child.certificate, x509.BasicConstraints).value.path_length == 0


def test_leaf_may_not_outlive_its_ca() -> None:
    short = CertificateAuthority.create(
        "short", validity=Validity.lasting(dt.timedelta(days=10), now=NOW), now=NOW
    )
    with pytest.raises(IssuanceError, match="outlive its CA"):
        short.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.example"]), now=NOW)


def test_expired_ca_cannot_issue() -> None:
    old = CertificateAuthority.create(
        "old",
        validity=Validity(
            not_before=NOW - dt.timedelta(days=20), not_after=NOW - dt.timedelta(days=1)
        ),
        now=NOW,
    )
    with pytest.raises(IssuanceError, match="expired"):
        old.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.example"]), now=NOW)


def test_explicit_windows_allow_already_expired_test_certificates(
    root: CertificateAuthority,
) -> None:
    window = Validity(not_before=NOW - dt.timedelta(days=2), not_after=NOW - dt.timedelta(days=1))
    cert = root.issue(
        Profile.CLIENT, SubjectAltNames.build(dns=["old.example"]), validity=window, now=NOW
    ).certificate
    assert cert.not_valid_after_utc == NOW - dt.timedelta(days=1)


def test_non_ca_certificate_cannot_be_a_ca(root: CertificateAuthority) -> None:
    leaf = root.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.example"]), now=NOW)
    assert leaf.key is not None
    with pytest.raises(IssuanceError, match="not a CA certificate"):
        CertificateAuthority(leaf.certificate, leaf.key)
    with pytest.raises(MaterialError, match="not a CA certificate"):
        CertificateAuthority.from_pem(leaf.chain_pem(), leaf.key, source="leaf.crt")


def test_ca_with_wrong_key_is_refused(root: CertificateAuthority) -> None:
    with pytest.raises(KeyMismatchError, match="does not match"):
        CertificateAuthority.from_pem(root.certificate_pem(), generate_key(), source="ca.crt")


def test_ca_round_trips_through_pem(root: CertificateAuthority) -> None:
    inter = root.create_intermediate("issuing", now=NOW)
    loaded = CertificateAuthority.from_pem(inter.certificate_pem(), inter.key)
    assert loaded.certificate == inter.certificate
    assert loaded.parents == (root.certificate,)
    assert loaded.serving_chain == (inter.certificate,)


def _csr(*, ca: bool, names: list[x509.GeneralName]) -> x509.CertificateSigningRequest:
    key = generate_key()
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "requester")])
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256())


def test_csr_cannot_obtain_ca_or_extra_usages(root: CertificateAuthority) -> None:
    csr = _csr(ca=True, names=[x509.DNSName("requester.example")])
    issued = root.sign_csr(csr, Profile.CLIENT, now=NOW)
    cert = issued.certificate
    assert issued.key is None
    assert not ext(cert, x509.BasicConstraints).value.ca
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.public_key() == csr.public_key()
    assert SubjectAltNames.from_extension(ext(cert, x509.SubjectAlternativeName).value).dns == (
        "requester.example",
    )
    with pytest.raises(IssuanceError, match="issued for a CSR"):
        issued.key_pem()


def test_csr_without_names_is_refused_unless_names_are_given(root: CertificateAuthority) -> None:
    csr = _csr(ca=False, names=[])
    with pytest.raises(IssuanceError, match="CN-only"):
        root.sign_csr(csr, Profile.SERVER, now=NOW)
    issued = root.sign_csr(
        csr, Profile.SERVER, names=SubjectAltNames.build(dns=["given.example"]), now=NOW
    )
    assert issued.certificate.subject.rfc4514_string() == "CN=requester"


def test_csr_with_malformed_names_is_refused(root: CertificateAuthority) -> None:
    csr = _csr(ca=False, names=[x509.UniformResourceIdentifier("spiffe://Bad/x")])
    with pytest.raises(IssuanceError, match="SPIFFE"):
        root.sign_csr(csr, Profile.CLIENT, now=NOW)


def test_csr_with_ed25519_key_is_refused_unless_asked_for(root: CertificateAuthority) -> None:
    key = generate_key(KeyType.ED25519)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ed")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("ed.example")]), critical=False)
        .sign(key, None)
    )
    with pytest.raises(IssuanceError, match="ed25519 key"):
        root.sign_csr(csr, Profile.SERVER, now=NOW)
    issued = root.sign_csr(csr, Profile.SERVER, now=NOW, allow_unsupported_key=True)
    assert issued.certificate.public_key() == key.public_key()
