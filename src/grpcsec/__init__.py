"""grpcsec: TLS and mutual TLS for gRPC services that are right by default.

The public surface is re-exported here; ``__all__`` is pinned by ``tests/test_public_api.py``.
"""

from grpcsec.credentials import ChannelTLS, ServerTLS, channel_credentials, server_credentials
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
from grpcsec.identity import Peer, TransportSecurity, peer
from grpcsec.material import KeyPair, TrustBundle, load_key_pair
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
    "ChannelTLS",
    "ConfigurationError",
    "GrpcsecError",
    "IssuanceError",
    "IssuedCertificate",
    "KeyMismatchError",
    "KeyPair",
    "KeyType",
    "MaterialError",
    "PasswordError",
    "Peer",
    "Profile",
    "Role",
    "ServerTLS",
    "SubjectAltNames",
    "TransportSecurity",
    "TrustBundle",
    "Validity",
    "VerificationError",
    "VerifyReason",
    "__version__",
    "channel_credentials",
    "load_key_pair",
    "peer",
    "server_credentials",
    "verify_certificate",
]
