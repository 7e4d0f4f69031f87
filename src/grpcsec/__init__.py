"""grpcsec: TLS and mutual TLS for gRPC services that are right by default.

The public surface is re-exported here; ``__all__`` is pinned by ``tests/test_public_api.py``.
"""

from grpcsec.errors import (
    ConfigurationError,
    GrpcsecError,
    IssuanceError,
    KeyMismatchError,
    MaterialError,
    PasswordError,
    VerificationError,
    VerifyReason,
)
from grpcsec.pki import (
    CertificateAuthority,
    CertificateInfo,
    IssuedCertificate,
    KeyType,
    Profile,
    Role,
    SubjectAltNames,
    Validity,
    verify_certificate,
)

__version__ = "0.1.0"

__all__ = [
    "CertificateAuthority",
    "CertificateInfo",
    "ConfigurationError",
    "GrpcsecError",
    "IssuanceError",
    "IssuedCertificate",
    "KeyMismatchError",
    "KeyType",
    "MaterialError",
    "PasswordError",
    "Profile",
    "Role",
    "SubjectAltNames",
    "Validity",
    "VerificationError",
    "VerifyReason",
    "__version__",
    "verify_certificate",
]
