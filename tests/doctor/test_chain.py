"""Path building as BoringSSL does it, grpcio's name rules, validity at a given moment, strength."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from grpcsec.doctor.chain import (
    build_path,
    grpc_name_match,
    lifetime_problem,
    validity_problem,
    weak_points,
)
from grpcsec.pki import (
    CertificateAuthority,
    Profile,
    SubjectAltNames,
    generate_key,
    private_key_pem,
    utcnow,
)
from tests.doctor.conftest import forge

NOW = utcnow()
SECOND = dt.timedelta(seconds=1)


@pytest.fixture(scope="module")
def root() -> CertificateAuthority:
    return CertificateAuthority.create("chain root", now=NOW)


@pytest.fixture(scope="module")
def issuing(root: CertificateAuthority) -> CertificateAuthority:
    return root.create_intermediate("chain issuing", now=NOW)


def test_leaf_issued_by_a_trusted_root(root: CertificateAuthority) -> None:
    leaf = root.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.test"]), now=NOW).certificate
    path = build_path(leaf, [], [root.certificate])
    assert path.trusted
    assert path.path == (leaf, root.certificate)
    assert path.from_bundle == ()


def test_served_intermediate_completes_the_path(
    root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    leaf = issuing.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.test"]), now=NOW)
    path = build_path(leaf.certificate, [issuing.certificate], [root.certificate])
    assert path.trusted
    assert path.from_bundle == ()


def test_intermediate_only_in_the_bundle_is_remembered(
    root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    leaf = issuing.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.test"]), now=NOW)
    path = build_path(leaf.certificate, [], [issuing.certificate, root.certificate])
    assert path.trusted
    assert path.from_bundle == (issuing.certificate,)


def test_missing_intermediate_names_its_issuer(
    root: CertificateAuthority, issuing: CertificateAuthority
) -> None:
    leaf = issuing.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.test"]), now=NOW)
    path = build_path(leaf.certificate, [], [root.certificate])
    assert not path.trusted
    assert path.missing_issuer == issuing.certificate.subject


def test_a_bundle_with_the_intermediate_but_not_the_root_is_not_enough(
    issuing: CertificateAuthority,
) -> None:
    leaf = issuing.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.test"]), now=NOW)
    path = build_path(leaf.certificate, [], [issuing.certificate])
    assert not path.trusted
    assert path.anchor_not_root == issuing.certificate


def test_a_served_root_that_is_not_trusted(root: CertificateAuthority) -> None:
    other = CertificateAuthority.create("someone else", now=NOW)
    leaf = other.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.test"]), now=NOW)
    path = build_path(leaf.certificate, [other.certificate], [root.certificate])
    assert not path.trusted
    assert path.untrusted_root == other.certificate


@pytest.mark.parametrize(
    ("names", "host", "expected"),
    [
        (SubjectAltNames.build(dns=["a.test"]), "a.test", "san"),
        (SubjectAltNames.build(dns=["a.test"]), "A.TEST.", "san"),
        (SubjectAltNames.build(ips=["10.0.0.1"]), "10.0.0.1", "san"),
        (SubjectAltNames.build(ips=["::1"]), "[::1]", "san"),
        (SubjectAltNames.build(dns=["*.svc.test"]), "x.svc.test", "san"),
        (SubjectAltNames.build(dns=["*.svc.test"]), "x.y.svc.test", None),
        (SubjectAltNames.build(dns=["a.test"]), "127.0.0.1", None),
        (SubjectAltNames.build(uris=["spiffe://t/ns/a"]), "t", None),
    ],
)
def test_names_are_matched_like_grpcio(
    root: CertificateAuthority, names: SubjectAltNames, host: str, expected: str | None
) -> None:
    leaf = root.issue(Profile.SERVER, names, now=NOW).certificate
    assert grpc_name_match(leaf, host) == expected


def test_cn_counts_only_without_any_dns_san(root: CertificateAuthority) -> None:
    cn_only, _ = forge(root, common_name="legacy.test")
    assert grpc_name_match(cn_only, "legacy.test") == "cn"
    with_dns, _ = forge(
        root, common_name="legacy.test", names=SubjectAltNames.build(dns=["other.test"])
    )
    assert grpc_name_match(with_dns, "legacy.test") is None


def test_validity_is_judged_at_the_given_moment(root: CertificateAuthority) -> None:
    leaf = root.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.test"]), now=NOW).certificate
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    assert validity_problem(leaf, start - SECOND) == "not_yet_valid"
    assert validity_problem(leaf, start + SECOND) is None
    assert validity_problem(leaf, end - SECOND) is None
    assert validity_problem(leaf, end + SECOND) == "expired"


def test_renewal_is_due_after_two_thirds_of_the_lifetime(root: CertificateAuthority) -> None:
    leaf = root.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.test"]), now=NOW).certificate
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    renewal_point = start + (end - start) * 2 / 3
    assert lifetime_problem(leaf, renewal_point - SECOND) is None
    message = lifetime_problem(leaf, renewal_point + SECOND)
    assert message is not None
    assert "67%" in message


def _sha1_signed(root: CertificateAuthority, directory: Path) -> x509.Certificate:
    """cryptography refuses to sign with SHA-1; openssl still does."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    (directory / "ca.crt").write_bytes(root.certificate_pem())
    (directory / "ca.key").write_bytes(private_key_pem(root.key))
    (directory / "leaf.key").write_bytes(private_key_pem(generate_key()))
    run = [openssl, "req", "-new", "-key", "leaf.key", "-subj", "/CN=old", "-out", "leaf.csr"]
    subprocess.run(run, cwd=directory, check=True, capture_output=True, timeout=30)
    run = [openssl, "x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key"]
    run += ["-sha1", "-days", "1", "-set_serial", "7", "-out", "leaf.crt"]
    subprocess.run(run, cwd=directory, check=True, capture_output=True, timeout=30)
    return x509.load_pem_x509_certificate((directory / "leaf.crt").read_bytes())


def test_weak_keys_and_signatures_are_named(root: CertificateAuthority, tmp_path: Path) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (weak on purpose)
    weak_key, _ = forge(root, common_name="small", key=small)
    found = weak_points([weak_key, _sha1_signed(root, tmp_path), root.certificate])
    assert found == [
        "'CN=small' has a 1024-bit RSA key",
        "'CN=old' is signed with SHA1",
    ]
