"""Well-signed certificates with malformed insides, for the hardening matrix (issue 11, item 4).

cryptography's builder refuses to write most of these, so each is made from a normal leaf by
changing bytes in its to-be-signed part and signing that again with the issuing CA's key
(``cryptography`` signs; only the outer DER SEQUENCE is put together here). The signature
therefore verifies: whatever refuses these certificates does so for what is inside them.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from grpcsec.pki import CertificateAuthority, IssuedCertificate, Profile, SubjectAltNames

_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def resign(ca: CertificateAuthority, tbs: bytes) -> bytes:
    """A certificate (DER) whose to-be-signed part is ``tbs``, signed by ``ca`` (ECDSA P-256)."""
    key = ca.key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return _tlv(0x30, tbs + _ECDSA_SHA256 + _tlv(0x03, b"\x00" + signature))


def _replace(tbs: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new), "same length keeps every DER length right"
    assert tbs.count(old) == 1, (old, tbs.count(old))
    return tbs.replace(old, new)


def base_leaf(ca: CertificateAuthority) -> IssuedCertificate:
    """The leaf every case starts from (server and client usage, names that get replaced)."""
    names = SubjectAltNames.build(
        dns=["localhost", "bxxcher.example", "xn--bcher-kva.example"], ips=["127.0.0.1"]
    )
    return ca.issue(Profile.PEER, names, common_name="nulxname")


def _duplicate_extension(tbs: bytes) -> bytes:
    # The authority key identifier's OID (2.5.29.35) becomes the subject key identifier's.
    return _replace(tbs, b"\x06\x03\x55\x1d\x23", b"\x06\x03\x55\x1d\x0e")


def _negative_serial(tbs: bytes) -> bytes:
    # The serial is the first INTEGER after the version: set its top bit.
    start = tbs.index(b"\xa0\x03\x02\x01\x02") + 5
    assert tbs[start] == 0x02
    first = start + 2
    return tbs[:first] + bytes([tbs[first] | 0x80]) + tbs[first + 1 :]


CASES: dict[str, Callable[[bytes], bytes]] = {
    "duplicate_extension": _duplicate_extension,
    "negative_serial": _negative_serial,
    "u_label_dns": lambda tbs: _replace(tbs, b"bxxcher", "bücher".encode()),
    "bad_a_label_dns": lambda tbs: _replace(tbs, b"xn--bcher-kva", b"xn--bcher-kv9"),
    "del_in_dns": lambda tbs: _replace(tbs, b"xn--bcher-kva", b"xn--bcher\x7fkva"),
    "nul_in_cn": lambda tbs: _replace(tbs, b"nulxname", b"nul\x00name"),
}
"""What each case breaks. Malformed framing (truncation, bad lengths) is the fuzz targets' job."""


def malformed(ca: CertificateAuthority, leaf: IssuedCertificate, case: str) -> bytes:
    """The PEM of ``leaf`` with ``case`` applied, signed by ``ca``."""
    der = resign(ca, CASES[case](leaf.certificate.tbs_certificate_bytes))
    return (
        x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
        if (case not in {"duplicate_extension", "negative_serial"})
        else _pem(der)
    )


def _pem(der: bytes) -> bytes:
    import base64  # noqa: PLC0415

    body = base64.encodebytes(der).decode("ascii")
    return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n".encode()
