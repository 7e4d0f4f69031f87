"""Inspection: every field read out, and chain order judged by signatures."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from grpcsec.pki import CertificateAuthority, CertificateInfo, KeyType, Profile, SubjectAltNames
from grpcsec.pki.inspect import inspect_bundle

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def root() -> CertificateAuthority:
    return CertificateAuthority.create("inspect root", organization="Acme", now=NOW)


def test_leaf_fields(root: CertificateAuthority) -> None:
    issued = root.issue(
        Profile.PEER,
        SubjectAltNames.from_identities(["api.example", "10.1.2.3", "spiffe://acme.org/api"]),
        key_type=KeyType.RSA_2048,
        now=NOW,
    )
    info = CertificateInfo.of(issued.certificate)
    assert info.subject == "CN=api.example"
    assert info.issuer == "CN=inspect root,O=Acme"
    assert info.issuer_common_name == "inspect root"
    assert info.serial == f"{issued.certificate.serial_number:x}"
    assert info.key_algorithm == "RSA"
    assert info.key_size == 2048
    assert info.key_usage == ("digitalSignature", "keyEncipherment")
    assert info.extended_key_usage == ("serverAuth", "clientAuth")
    assert not info.is_ca
    assert info.names.spiffe_id == "spiffe://acme.org/api"
    assert info.subject_key_id is not None
    assert info.authority_key_id == CertificateInfo.of(root.certificate).subject_key_id
    assert len(info.fingerprint_sha256.split(":")) == 32
    assert info.signature_algorithm == "ecdsa-with-SHA256"
    assert info.status(NOW) == "valid"
    assert info.time_left(NOW) == dt.timedelta(days=90)
    doc = info.to_json(NOW)
    json.dumps(doc)  # serialisable
    assert doc["san"] == {
        "dns": ["api.example"],
        "ip": ["10.1.2.3"],
        "uri": ["spiffe://acme.org/api"],
        "email": [],
    }
    assert doc["not_after"] == "2027-02-19T12:00:00Z"


def test_lifetime_used_and_status(root: CertificateAuthority) -> None:
    info = CertificateInfo.of(
        root.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.example"]), now=NOW).certificate
    )
    assert info.lifetime_used(NOW - dt.timedelta(days=1)) == 0.0
    assert info.status(NOW - dt.timedelta(days=1)) == "not_yet_valid"
    assert info.status(NOW + dt.timedelta(days=91)) == "expired"
    assert 0.49 < info.lifetime_used(NOW + dt.timedelta(days=45)) < 0.51


def test_ca_fields(root: CertificateAuthority) -> None:
    info = CertificateInfo.of(root.certificate)
    assert info.is_ca
    assert info.self_signed
    assert info.key_usage == ("keyCertSign", "cRLSign")
    assert info.key_algorithm == "ECDSA P-256"
    assert not info.has_san_extension


def test_chain_order(root: CertificateAuthority) -> None:
    inter = root.create_intermediate("issuing", now=NOW)
    leaf = inter.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.example"]), now=NOW)
    good = inspect_bundle([leaf.certificate, inter.certificate, root.certificate])
    assert good.chain_ordered
    assert len(good.certificates) == 3
    reversed_report = inspect_bundle([inter.certificate, leaf.certificate])
    assert not reversed_report.chain_ordered
    assert "its issuer is not in the file" in reversed_report.problems[0]
    swapped = inspect_bundle([leaf.certificate, root.certificate, inter.certificate])
    assert not swapped.chain_ordered
    assert "its issuer is certificate 3" in swapped.problems[0]
