"""Inputs the ``pem`` fuzz target found that escaped as third-party exceptions (issue 11, item 8).

Each is a valid certificate or key with a few DER bytes changed, so that cryptography still
frames it but cannot read a part it parses lazily (a duplicate extension, a point off the
curve, an unknown version, a negative serial number) or OpenSSL refuses the key bytes. Before
the fix ``load_certificates`` returned such a certificate and the first reader (``inspect``,
``grpcsec.identity``, ``KeyPair``) raised ``ValueError``/``DuplicateExtension``/... or printed
a ``CryptographyDeprecationWarning``; now loading refuses it with one ``MaterialError`` line.
The unmodified input is the control: it loads and inspects.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from fuzz import pem as pem_target
from grpcsec.errors import MaterialError
from grpcsec.material import KeyPair
from grpcsec.pki import (
    CertificateAuthority,
    CertificateInfo,
    IssuedCertificate,
    Profile,
    SubjectAltNames,
    load_private_key,
)
from grpcsec.pki.files import load_certificates, load_csr

DER = serialization.Encoding.DER


@pytest.fixture(scope="module")
def issued() -> IssuedCertificate:
    ca = CertificateAuthority.create("fuzz findings CA")
    return ca.issue(Profile.SERVER, SubjectAltNames.build(dns=["findings.example.org"]))


def replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1, (old, data.count(old))
    return data.replace(old, new)


def to_pem(der: bytes, label: str = "CERTIFICATE") -> bytes:
    body = base64.encodebytes(der).decode("ascii")
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode()


def duplicate_extension(cert: x509.Certificate) -> bytes:
    """The authority key id's OID (2.5.29.35) turned into the subject key id's (2.5.29.14)."""
    return replace_once(cert.public_bytes(DER), b"\x06\x03\x55\x1d\x23", b"\x06\x03\x55\x1d\x0e")


def point_off_curve(cert: x509.Certificate) -> bytes:
    point = cert.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    bad = point[:-1] + bytes([point[-1] ^ 1])
    return replace_once(cert.public_bytes(DER), point, bad)


def unknown_version(cert: x509.Certificate) -> bytes:
    return replace_once(cert.public_bytes(DER), b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x05")


def negative_serial(cert: x509.Certificate) -> bytes:
    serial = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 8) // 8, "big")
    encoded = b"\x02" + bytes([len(serial)]) + serial
    negative = b"\x02" + bytes([len(serial)]) + bytes([serial[0] | 0x80]) + serial[1:]
    return replace_once(cert.public_bytes(DER), encoded, negative)


BREAKERS: dict[str, Callable[[x509.Certificate], bytes]] = {
    "duplicate_extension": duplicate_extension,
    "point_off_curve": point_off_curve,
    "unknown_version": unknown_version,
    "negative_serial": negative_serial,
}


def test_the_unmodified_certificate_is_the_control(issued: IssuedCertificate) -> None:
    der = issued.certificate.public_bytes(DER)
    for data in (der, to_pem(der)):
        (certificate,) = load_certificates(data)
        assert CertificateInfo.of(certificate).common_name == "findings.example.org"
    pem_target.check(b"\x00" + to_pem(der))


@pytest.mark.parametrize("breaker", sorted(BREAKERS))
def test_malformed_certificates_are_refused_when_loaded(
    issued: IssuedCertificate, breaker: str
) -> None:
    der = BREAKERS[breaker](issued.certificate)
    for data in (der, to_pem(der)):
        with pytest.raises(MaterialError) as caught:
            load_certificates(data, source="bad.pem")
        assert "\n" not in str(caught.value)
        assert "bad.pem" in str(caught.value)
    with pytest.raises(MaterialError):
        KeyPair.from_pem(to_pem(der), issued.key_pem())
    pem_target.check(b"\x00" + to_pem(der))  # the fuzz oracle: nothing else escapes


def test_a_malformed_csr_is_refused(issued: IssuedCertificate) -> None:
    assert issued.key is not None
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(issued.key, issued.certificate.signature_hash_algorithm)  # type: ignore[arg-type]
    )
    good = csr.public_bytes(DER)
    assert load_csr(good).is_signature_valid
    point = issued.certificate.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    bad = replace_once(good, point, point[:-1] + bytes([point[-1] ^ 1]))
    with pytest.raises(MaterialError):
        load_csr(bad)


def test_a_key_openssl_cannot_set_up_is_material_error() -> None:
    """An Ed25519 PKCS#8 key relabelled as Ed448 (1.3.101.113): OpenSSL's ``InternalError``."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    der = key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert load_private_key(der) is not None
    relabelled = replace_once(der, b"\x06\x03\x2b\x65\x70", b"\x06\x03\x2b\x65\x71")
    for data in (relabelled, to_pem(relabelled, "PRIVATE KEY")):
        with pytest.raises(MaterialError, match="not a valid"):
            load_private_key(data, source="bad.key")


def test_cli_inspect_prints_one_line_and_exits_2(issued: IssuedCertificate, tmp_path: Path) -> None:
    good = tmp_path / "good.pem"
    good.write_bytes(to_pem(issued.certificate.public_bytes(DER)))
    command = [sys.executable, "-m", "grpcsec.cli", "inspect"]
    control = subprocess.run(
        [*command, str(good)], capture_output=True, text=True, timeout=60, check=False
    )
    assert control.returncode == 0, control.stderr
    for breaker in sorted(BREAKERS):
        path = tmp_path / f"{breaker}.pem"
        path.write_bytes(to_pem(BREAKERS[breaker](issued.certificate)))
        result = subprocess.run(
            [*command, str(path)], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 2, (breaker, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (breaker, result.stderr)
        assert lines[0].startswith("error:")
        assert "Traceback" not in result.stderr
        assert "Warning" not in result.stderr
