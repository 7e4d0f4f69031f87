"""Certificates and CRLs for the revocation tests: a root CA with a client, an intermediate CA
with clients, a second intermediate that gets revoked, and a namesake of the root (another
key, the same name). CRLs are written as files the way ``ca crl`` publishes them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from grpcsec.pki import CertificateAuthority, IssuedCertificate, utcnow
from grpcsec.pki.crl import Revocation, RevocationReason, build_crl, crl_pem
from grpcsec.pki.files import CERT_MODE, KEY_MODE, PendingFile, write_files
from tests.conftest import issue_client, issue_server

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Material:
    """Everything the revocation tests use; ``dir`` holds the server files and ``ca.crt``."""

    dir: Path
    now: dt.datetime
    root: CertificateAuthority
    inter: CertificateAuthority
    inter2: CertificateAuthority  # revoked by the root in the "intermediate revoked" case
    namesake: CertificateAuthority  # another key, the root's name
    inter_namesake: CertificateAuthority  # another key, the intermediate's name
    server: IssuedCertificate
    good: IssuedCertificate  # root-issued, never revoked
    revoked: IssuedCertificate  # root-issued, revoked in the root's CRLs
    inter_good: IssuedCertificate
    inter_revoked: IssuedCertificate  # revoked in the intermediate's CRL
    under_inter2: IssuedCertificate

    def path(self, name: str) -> Path:
        return self.dir / name

    def clients(self) -> dict[str, IssuedCertificate]:
        return {
            "good": self.good,
            "revoked": self.revoked,
            "inter_good": self.inter_good,
            "inter_revoked": self.inter_revoked,
            "under_inter2": self.under_inter2,
        }


def make_material(directory: Path) -> Material:
    now = utcnow()
    root = CertificateAuthority.create("revocation root CA", organization="Acme", now=now)
    inter = root.create_intermediate("revocation intermediate CA", now=now)
    inter2 = root.create_intermediate("revocation second intermediate", now=now)
    namesake = CertificateAuthority.create("revocation root CA", organization="Acme", now=now)
    material = Material(
        dir=directory,
        now=now,
        root=root,
        inter=inter,
        inter2=inter2,
        namesake=namesake,
        inter_namesake=CertificateAuthority.create("revocation intermediate CA", now=now),
        server=issue_server(root, now=now),
        good=issue_client(root, common_name="good", now=now),
        revoked=issue_client(root, common_name="revoked", now=now),
        inter_good=issue_client(inter, common_name="inter-good", now=now),
        inter_revoked=issue_client(inter, common_name="inter-revoked", now=now),
        under_inter2=issue_client(inter2, common_name="under-inter2", now=now),
    )
    write_files(
        [
            PendingFile(directory / "ca.crt", root.certificate_pem(), CERT_MODE),
            PendingFile(directory / "server.crt", material.server.chain_pem(), CERT_MODE),
            PendingFile(directory / "server.key", material.server.key_pem(), KEY_MODE),
        ]
    )
    for name, client in material.clients().items():
        write_files(
            [
                PendingFile(directory / f"{name}.crt", client.chain_pem(), CERT_MODE),
                PendingFile(directory / f"{name}.key", client.key_pem(), KEY_MODE),
            ]
        )
    return material


def crl_bytes(
    ca: CertificateAuthority,
    *revoked: x509.Certificate,
    number: int = 1,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    reason: RevocationReason = RevocationReason.KEY_COMPROMISE,
) -> bytes:
    """A PEM CRL of ``ca`` listing ``revoked`` (valid from an hour ago for a day by default)."""
    start = this_update or utcnow() - HOUR
    entries = [Revocation(serial=c.serial_number, revoked_at=start, reason=reason) for c in revoked]
    return crl_pem(
        build_crl(
            ca.certificate,
            ca.key,
            entries,
            number=number,
            this_update=start,
            next_update=next_update or start + DAY,
        )
    )


def forged_crl_bytes(claimed: CertificateAuthority, signer: CertificateAuthority) -> bytes:
    """A CRL naming ``claimed`` as issuer, with ``claimed``'s key identifier, signed by
    ``signer``'s key: the name and key identifier match, the signature does not."""
    start = utcnow() - HOUR
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(claimed.certificate.subject)
        .last_update(start)
        .next_update(start + DAY)
        .add_extension(x509.CRLNumber(99), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(claimed.key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(signer.key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return crl_pem(crl)


def write(path: Path, data: bytes) -> Path:
    """Replace ``path`` atomically (a CRL is re-published in place)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
    return path
