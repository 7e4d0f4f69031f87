"""Certificate authority and certificate tooling; never imports grpc.

Modules: :mod:`~grpcsec.pki.keys` (key types), :mod:`~grpcsec.pki.names` (SANs, SPIFFE IDs),
:mod:`~grpcsec.pki.validity` (durations and defaults), :mod:`~grpcsec.pki.profiles`
(extensions), :mod:`~grpcsec.pki.authority` (the CA and what it issues),
:mod:`~grpcsec.pki.signing` (subject names, key checks, the builder, the issued value),
:mod:`~grpcsec.pki.files` (reading and atomic writing), :mod:`~grpcsec.pki.layout` (which
files a CA directory, a leaf and the starter set are), :mod:`~grpcsec.pki.registry` (what a CA
directory issued and revoked), :mod:`~grpcsec.pki.crl` and :mod:`~grpcsec.pki.revoke`
(revocation lists), :mod:`~grpcsec.pki.inspect` and :mod:`~grpcsec.pki.verify`.
"""

from grpcsec.pki.anchors import anchor_problem, check_anchors
from grpcsec.pki.authority import CertificateAuthority
from grpcsec.pki.files import (
    CA_KEY_MODE,
    CERT_MODE,
    KEY_MODE,
    PendingFile,
    certificates_pem,
    load_certificate_file,
    load_certificates,
    load_csr,
    load_key_file,
    read_file,
    write_files,
)
from grpcsec.pki.inspect import BundleReport, CertificateInfo, fingerprint_sha256, inspect_bundle
from grpcsec.pki.keys import KeyType, PrivateKey, generate_key, load_private_key, private_key_pem
from grpcsec.pki.names import SpiffeId, SubjectAltNames
from grpcsec.pki.profiles import Profile
from grpcsec.pki.signing import IssuedCertificate, check_key_matches
from grpcsec.pki.validity import Validity, format_duration, parse_duration, utcnow
from grpcsec.pki.verify import Role, VerifiedChain, host_matches, verify_certificate

__all__ = [
    "CA_KEY_MODE",
    "CERT_MODE",
    "KEY_MODE",
    "BundleReport",
    "CertificateAuthority",
    "CertificateInfo",
    "IssuedCertificate",
    "KeyType",
    "PendingFile",
    "PrivateKey",
    "Profile",
    "Role",
    "SpiffeId",
    "SubjectAltNames",
    "Validity",
    "VerifiedChain",
    "anchor_problem",
    "certificates_pem",
    "check_anchors",
    "check_key_matches",
    "fingerprint_sha256",
    "format_duration",
    "generate_key",
    "host_matches",
    "inspect_bundle",
    "load_certificate_file",
    "load_certificates",
    "load_csr",
    "load_key_file",
    "load_private_key",
    "parse_duration",
    "private_key_pem",
    "read_file",
    "utcnow",
    "verify_certificate",
    "write_files",
]
