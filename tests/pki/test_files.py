"""Reading material with clear reasons, and atomic all-or-nothing writes with safe modes."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from grpcsec.errors import MaterialError
from grpcsec.pki import (
    CA_KEY_MODE,
    CERT_MODE,
    KEY_MODE,
    CertificateAuthority,
    PendingFile,
    Profile,
    SubjectAltNames,
    load_certificate_file,
    load_certificates,
    load_csr,
    load_key_file,
    write_files,
)

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("files root", now=NOW)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_files_sets_modes_exactly_even_with_a_permissive_umask(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    old = os.umask(0)
    try:
        write_files(
            [
                PendingFile(tmp_path / "ca.crt", ca.certificate_pem(), CERT_MODE),
                PendingFile(tmp_path / "ca.key", b"secret", CA_KEY_MODE),
                PendingFile(tmp_path / "sub" / "tls.key", b"secret", KEY_MODE),
            ]
        )
    finally:
        os.umask(old)
    assert mode(tmp_path / "ca.crt") == 0o644
    assert mode(tmp_path / "ca.key") == 0o400
    assert mode(tmp_path / "sub" / "tls.key") == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.crt", "ca.key", "sub"]


def test_existing_target_refuses_the_whole_set(tmp_path: Path) -> None:
    (tmp_path / "b.key").write_bytes(b"old")
    with pytest.raises(MaterialError, match="--force") as info:
        write_files(
            [
                PendingFile(tmp_path / "a.crt", b"new", CERT_MODE),
                PendingFile(tmp_path / "b.key", b"new", KEY_MODE),
            ]
        )
    assert "b.key" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.key"]  # a.crt not written
    assert (tmp_path / "b.key").read_bytes() == b"old"


def test_force_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a.key"
    target.write_bytes(b"old")
    write_files([PendingFile(target, b"new", KEY_MODE)], force=True)
    assert target.read_bytes() == b"new"
    assert mode(target) == 0o600


def test_failed_write_leaves_no_partial_files(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"a file where a directory is needed")
    with pytest.raises(MaterialError, match="cannot write"):
        write_files(
            [
                PendingFile(tmp_path / "ok.crt", b"x", CERT_MODE),
                PendingFile(blocker / "inner.key", b"x", KEY_MODE),
            ]
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_pending_file_repr_hides_data() -> None:
    text = repr(PendingFile(Path("k.key"), b"-----BEGIN " + b"PRIVATE KEY-----", KEY_MODE))
    assert "BEGIN" not in text
    assert "bytes=" in text


def test_bundle_loads_in_order_and_der_is_accepted(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    inter = ca.create_intermediate("inter", now=NOW)
    leaf = inter.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.example"]), now=NOW)
    bundle = tmp_path / "chain.pem"
    bundle.write_bytes(leaf.chain_pem())
    assert load_certificate_file(bundle) == [leaf.certificate, inter.certificate]
    der = tmp_path / "leaf.der"
    der.write_bytes(leaf.certificate.public_bytes(serialization.Encoding.DER))
    assert load_certificate_file(der) == [leaf.certificate]
    with pytest.raises(MaterialError, match="is DER, but PEM is required"):
        load_certificate_file(der, allow_der=False)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"just some text\n", "no PEM certificate"),
        (b"\x30\x82\x01\x00garbage", "neither PEM nor a valid DER"),
        (b"-----BEGIN CERTIFICATE-----\nMIIB\n", "truncated PEM"),
        (b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "corrupt"),
        (b"-----BEGIN " + b"PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "private key"),
        (b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", "X509 CRL"),
    ],
)
def test_bad_certificate_files_name_file_and_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "bad.pem"
    path.write_bytes(content)
    with pytest.raises(MaterialError, match=reason) as info:
        load_certificate_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message


def test_missing_file_and_directory_are_reported(tmp_path: Path) -> None:
    with pytest.raises(MaterialError, match="no such file"):
        load_certificate_file(tmp_path / "nope.pem")
    with pytest.raises(MaterialError, match="is a directory"):
        load_certificate_file(tmp_path)


def test_key_file_mixups_are_reported(tmp_path: Path, ca: CertificateAuthority) -> None:
    cert_path = tmp_path / "ca.crt"
    cert_path.write_bytes(ca.certificate_pem())
    with pytest.raises(MaterialError, match="is a certificate, expected a private key"):
        load_key_file(cert_path)


def test_truncated_truncated_bundle_second_certificate(ca: CertificateAuthority) -> None:
    pem = ca.certificate_pem()
    with pytest.raises(MaterialError, match="truncated"):
        load_certificates(pem + pem[:40])


def test_csr_garbage_is_reported() -> None:
    with pytest.raises(MaterialError, match="not a valid certificate signing request"):
        load_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")


def test_issued_certificate_writes_chain_and_key_atomically(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    issued = ca.issue(Profile.CLIENT, SubjectAltNames.build(dns=["w.example"]), now=NOW)
    issued.write(tmp_path / "c.crt", tmp_path / "c.key")
    assert load_certificate_file(tmp_path / "c.crt") == [issued.certificate]
    assert mode(tmp_path / "c.key") == 0o600
    with pytest.raises(MaterialError, match="--force"):
        issued.write(tmp_path / "c.crt", tmp_path / "c.key")
    issued.write(tmp_path / "c.crt", tmp_path / "c.key", force=True)
