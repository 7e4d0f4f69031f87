"""Pins the public surface: a name added to or dropped from ``grpcsec.__all__`` is a decision,
so this test has to change with it (and the CHANGELOG)."""

from __future__ import annotations

import grpcsec

EXPECTED = [
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


def test_all_is_pinned_and_sorted() -> None:
    assert grpcsec.__all__ == EXPECTED
    assert sorted(grpcsec.__all__) == grpcsec.__all__


def test_every_exported_name_exists() -> None:
    for name in grpcsec.__all__:
        assert hasattr(grpcsec, name), name


def test_every_error_is_rooted() -> None:
    errors = [getattr(grpcsec, n) for n in grpcsec.__all__ if n.endswith("Error")]
    assert errors
    for error in errors:
        assert issubclass(error, grpcsec.GrpcsecError)
