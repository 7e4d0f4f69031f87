"""Certificates for the SPIFFE trust-domain tests: CAs that name their trust domain in a URI SAN
(``spiffe://T``, as SPIRE's CAs do), CAs that name none, and client certificates with whatever
URI SANs a test needs, including ones grpcsec's own issuance refuses (two URIs, upper case,
``..``, a query). Everything is signed with cryptography through grpcsec.pki's signing helper."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from grpcsec.pki import CertificateAuthority, IssuedCertificate, Profile, certificates_pem, utcnow
from grpcsec.pki.keys import generate_key
from grpcsec.pki.profiles import ca_extensions, leaf_extensions
from grpcsec.pki.signing import sign_certificate, subject_name
from grpcsec.pki.validity import Validity
from tests.conftest import issue_server

DAY = dt.timedelta(days=1)


def spiffe_ca(
    trust_domains: Sequence[str], name: str, *, uris: Sequence[str] = ()
) -> CertificateAuthority:
    """A root CA whose URI SANs are ``spiffe://T`` for each of ``trust_domains`` (plus ``uris``
    verbatim); none at all gives a CA that names no trust domain."""
    key = generate_key()
    subject = subject_name(name, "SPIFFE test")
    extensions = ca_extensions(key.public_key(), path_length=None, issuer_ski=None)
    names = [f"spiffe://{td}" for td in trust_domains] + list(uris)
    if names:
        san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in names])
        extensions.append((san, False))
    certificate = sign_certificate(
        subject=subject,
        issuer=subject,
        public_key=key.public_key(),
        window=Validity.lasting(3650 * DAY, now=utcnow()),
        extensions=extensions,
        signing_key=key,
    )
    return CertificateAuthority(certificate, key)


def svid(
    ca: CertificateAuthority, uris: Sequence[str], *, dns: Sequence[str] = ()
) -> IssuedCertificate:
    """A client certificate from ``ca`` with exactly these URI SANs (unvalidated) and DNS
    names, served with ``ca``'s chain."""
    key = generate_key()
    general: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    general += [x509.UniformResourceIdentifier(u) for u in uris]
    ski = x509.SubjectKeyIdentifier.from_public_key(ca.certificate.public_key())  # type: ignore[arg-type]
    certificate = sign_certificate(
        subject=subject_name("svid", None),
        issuer=ca.certificate.subject,
        public_key=key.public_key(),
        window=Validity.lasting(DAY, now=utcnow()),
        extensions=leaf_extensions(
            Profile.CLIENT, key.public_key(), x509.SubjectAlternativeName(general), ski
        ),
        signing_key=ca.key,
    )
    return IssuedCertificate(certificate, (certificate, *ca.serving_chain), key)


@dataclass(frozen=True)
class Federation:
    """Two trust domains' CAs (``a`` for a.test, ``b`` for b.test, each naming its trust
    domain), an intermediate under each, two CAs that name none (``p``, ``q``), the server's
    files (issued by ``a``) and the client-CA files: ``federated.pem`` (a + b),
    ``plain.pem`` (p + q), ``p.pem``, ``q.pem``, ``a.pem``, ``b.pem``."""

    dir: Path
    a: CertificateAuthority
    b: CertificateAuthority
    a_inter: CertificateAuthority
    b_inter: CertificateAuthority
    p: CertificateAuthority
    q: CertificateAuthority

    def file(self, name: str) -> Path:
        return self.dir / name


def make_federation(directory: Path) -> Federation:
    a = spiffe_ca(["a.test"], "a.test CA")
    b = spiffe_ca(["b.test"], "b.test CA")
    fed = Federation(
        dir=directory,
        a=a,
        b=b,
        a_inter=a.create_intermediate("a.test intermediate"),
        b_inter=b.create_intermediate("b.test intermediate"),
        p=spiffe_ca([], "plain CA p"),
        q=spiffe_ca([], "plain CA q"),
    )
    server = issue_server(a)
    (directory / "server.crt").write_bytes(server.chain_pem())
    (directory / "server.key").write_bytes(server.key_pem())
    files = {
        "federated.pem": (a, b),
        "plain.pem": (fed.p, fed.q),
        "a.pem": (a,),
        "b.pem": (b,),
        "p.pem": (fed.p,),
        "q.pem": (fed.q,),
    }
    for name, cas in files.items():
        (directory / name).write_bytes(certificates_pem([ca.certificate for ca in cas]))
    return fed
