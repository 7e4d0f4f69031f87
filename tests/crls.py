"""Writing CRLs for tests: a CA directory's (or a CA value's) CRL revoking some certificates,
with the window a test wants. Uses :func:`grpcsec.pki.crl.build_crl`, the library's builder, so
the files are what ``grpcsec ca crl`` publishes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509

from grpcsec.pki import CertificateAuthority, load_key_file, utcnow
from grpcsec.pki.crl import Revocation, RevocationReason, build_crl, crl_pem
from grpcsec.pki.layout import load_ca_dir

__all__ = ["ca_of_dir", "leaf_of", "write_crl"]

DAY = dt.timedelta(days=1)


def ca_of_dir(ca_dir: Path) -> CertificateAuthority:
    """The CA in a directory with ``ca.crt`` and an unencrypted ``ca.key``."""
    return load_ca_dir(ca_dir, load_key_file)


def leaf_of(path: Path) -> x509.Certificate:
    """The first certificate of a PEM file."""
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def write_crl(
    path: Path,
    ca: CertificateAuthority | Path,
    *revoked: x509.Certificate,
    reason: RevocationReason = RevocationReason.KEY_COMPROMISE,
    revoked_at: dt.datetime | None = None,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    number: int = 1,
) -> Path:
    """Write ``ca``'s PEM CRL listing ``revoked`` to ``path`` (default window: a day ago to a
    week from now) and return ``path``."""
    authority = ca if isinstance(ca, CertificateAuthority) else ca_of_dir(ca)
    now = utcnow()
    start = this_update or now - DAY
    entries = [
        Revocation(serial=c.serial_number, revoked_at=revoked_at or start, reason=reason)
        for c in revoked
    ]
    crl = build_crl(
        authority.certificate,
        authority.key,
        entries,
        number=number,
        this_update=start,
        next_update=next_update or now + 7 * DAY,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(crl_pem(crl))
    return path
