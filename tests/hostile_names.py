"""Certificates whose names try to forge log lines, drive a terminal or restyle Rich output.

grpcsec refuses to *issue* such names, so these are built with ``cryptography`` directly and
signed with a grpcsec CA's key, the way another CA (or an attacker holding one) would.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from grpcsec.pki import CertificateAuthority, private_key_pem

ESCAPE_CN = "alice\x1b[31m\nINJECTED"
"""A terminal colour sequence plus a newline that would start a forged log line."""
MARKUP_CN = "[bold red]x[/] :smile: [link=https://evil.example]y[/link]"
"""Rich markup and an emoji code: must appear literally."""
BIDI_CN = "\u202eabc"
"""A right-to-left override: must appear as ``\\u202e``."""
HOSTILE_URI = "https://evil.example/\x1b]8;;x\x07\nforged"
"""A URI SAN holding an OSC hyperlink sequence and a newline (cryptography builds it)."""

RAW_CONTROLS = ("\x1b", "\x07", "\u202e")


def cn(value: str) -> x509.NameAttribute:
    return x509.NameAttribute(NameOID.COMMON_NAME, value)


def build_client(
    ca: CertificateAuthority,
    subject: Sequence[x509.RelativeDistinguishedName | x509.NameAttribute],
    *,
    uris: Sequence[str] = (),
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
) -> tuple[bytes, bytes]:
    """A leaf (clientAuth unless ``usage`` says otherwise) for ``subject`` signed by ``ca``:
    ``(cert PEM, key PEM)``.

    ``subject`` items are RDNs in order; a bare attribute is a single-valued RDN."""
    rdns = [
        item
        if isinstance(item, x509.RelativeDistinguishedName)
        else x509.RelativeDistinguishedName([item])
        for item in subject
    ]
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(rdns))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.certificate.public_key()),
            critical=False,
        )
    )
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    names += [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    certificate = builder.sign(ca.key, hashes.SHA256())
    return certificate.public_bytes(serialization.Encoding.PEM), private_key_pem(key)


def assert_inert(text: str) -> None:
    """No raw control/bidi character and no forged line: what a reader must be able to trust."""
    for raw in RAW_CONTROLS:
        assert raw not in text, (raw, text)
    assert "INJECTED" not in text or "\\nINJECTED" in text, text
    for line in text.splitlines():
        assert not line.startswith("INJECTED"), text
