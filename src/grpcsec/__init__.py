"""grpcsec: TLS and mutual TLS for gRPC services that are right by default.

The public surface is re-exported here; ``__all__`` is pinned by ``tests/test_public_api.py``.
"""

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from grpcsec.credentials import (
        ChannelTLS,
        ServerTLS,
        channel_credentials,
        server_credentials,
    )
    from grpcsec.identity import Peer, TransportSecurity, peer
    from grpcsec.material import KeyPair, TrustBundle, load_key_pair
    from grpcsec.server import (
        AioSecureServer,
        SecureServer,
        SecurityConfig,
        aio_secure_server,
        secure_server,
    )

# Names whose modules import grpc are loaded on first use, so ``import grpcsec`` (and the pki
# tools) do not start grpc core, and the CLI can set GRPC_VERBOSITY before it does.
_LAZY = {
    "ChannelTLS": "grpcsec.credentials",
    "ServerTLS": "grpcsec.credentials",
    "channel_credentials": "grpcsec.credentials",
    "server_credentials": "grpcsec.credentials",
    "Peer": "grpcsec.identity",
    "TransportSecurity": "grpcsec.identity",
    "peer": "grpcsec.identity",
    "KeyPair": "grpcsec.material",
    "TrustBundle": "grpcsec.material",
    "load_key_pair": "grpcsec.material",
    "SecurityConfig": "grpcsec.server",
    "SecureServer": "grpcsec.server",
    "AioSecureServer": "grpcsec.server",
    "secure_server": "grpcsec.server",
    "aio_secure_server": "grpcsec.server",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'grpcsec' has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "AioSecureServer",
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
    "SecureServer",
    "SecurityConfig",
    "ServerTLS",
    "SubjectAltNames",
    "TransportSecurity",
    "TrustBundle",
    "Validity",
    "VerificationError",
    "VerifyReason",
    "__version__",
    "aio_secure_server",
    "channel_credentials",
    "load_key_pair",
    "peer",
    "secure_server",
    "server_credentials",
    "verify_certificate",
]
