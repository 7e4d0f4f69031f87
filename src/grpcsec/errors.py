"""The whole grpcsec error tree.

Every error grpcsec raises is a :class:`GrpcsecError`, so callers can catch one class. Third-party
exceptions (``cryptography``, ``grpc``, ``OSError``) are re-raised as one of these with ``from``.
Each message is one line, names the file when there is one, and never contains key material,
passwords or tokens::

    GrpcsecError
    ├── ConfigurationError      bad options or usage (conflicting flags, a missing pair half)
    ├── MaterialError           a certificate, key or CSR cannot be read or used
    │   ├── KeyMismatchError    the private key does not belong to the certificate
    │   └── PasswordError       an encrypted key without a password, or with a wrong one
    ├── IssuanceError           a certificate cannot be issued as asked (bad SAN, validity, CA)
    │   └── AcmeError           an ACME CA did not issue one (unreachable, refused, invalid)
    ├── WorkloadAPIError        the SPIFFE Workload API cannot be reached or sent nothing usable
    └── VerificationError       a certificate does not verify; ``reason`` says which check failed

Later layers add ``AuthenticationError`` and ``AuthorizationError`` under the same root; the gRPC
boundary maps them to status codes with a generic message for the peer.
"""

from __future__ import annotations

import enum
from pathlib import Path

__all__ = [
    "AcmeError",
    "AuthenticationError",
    "AuthorizationError",
    "ConfigurationError",
    "GrpcsecError",
    "IssuanceError",
    "KeyMismatchError",
    "MaterialError",
    "PasswordError",
    "PolicyError",
    "RotationError",
    "UntrustedIssuerError",
    "VerificationError",
    "VerifyReason",
    "WorkloadAPIError",
]


class GrpcsecError(Exception):
    """Root of every error grpcsec raises.

    ``path`` is the file the problem is about, when there is one; ``str()`` puts it first so a
    CLI can print the error as its one-line reason.
    """

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path else message)


class ConfigurationError(GrpcsecError):
    """Options that cannot work together, or a required option that is missing."""


class MaterialError(GrpcsecError):
    """A certificate, key, bundle or CSR that cannot be read, parsed or used."""


class KeyMismatchError(MaterialError):
    """A private key that does not belong to the certificate it is paired with."""


class PasswordError(MaterialError):
    """An encrypted private key with no password, or a password that does not decrypt it."""


class IssuanceError(GrpcsecError):
    """A request the CA refuses: bad names, impossible validity, a non-CA issuer."""


class AcmeError(IssuanceError):
    """An ACME exchange that did not end in a certificate: the directory unreachable or not
    trusted, the order or a challenge refused, polling that did not finish. The files on disk
    are left as they were."""


class VerifyReason(enum.Enum):
    """Why a certificate failed verification. Values are stable and appear in ``--json`` output."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    UNKNOWN_AUTHORITY = "unknown_authority"
    HOSTNAME_MISMATCH = "hostname_mismatch"
    WRONG_EKU = "wrong_eku"
    NOT_A_LEAF = "not_a_leaf"
    INVALID_CHAIN = "invalid_chain"
    KEY_MISMATCH = "key_mismatch"
    REVOKED = "revoked"
    REVOCATION_UNDETERMINED = "revocation_undetermined"


class VerificationError(GrpcsecError):
    """A certificate that does not verify; ``reason`` names the specific check that failed."""

    def __init__(
        self, reason: VerifyReason, message: str, *, path: str | Path | None = None
    ) -> None:
        self.reason = reason
        super().__init__(message, path=path)


class RotationError(GrpcsecError):
    """New certificate material that was not swapped in; the last good material keeps serving."""


class UntrustedIssuerError(RotationError):
    """A rotated certificate whose chain does not lead to a CA served before or configured next."""


class WorkloadAPIError(GrpcsecError):
    """The SPIFFE Workload API (a SPIRE or Istio agent) did not answer, or sent no usable SVID."""


class PolicyError(GrpcsecError):
    """An invalid authorization policy. ``location`` is the JSON path of the first error
    (``allow_rules[2].request.headers[0].key``), or empty for a document-level problem."""

    def __init__(self, message: str, *, location: str = "", path: str | Path | None = None) -> None:
        self.location = location
        super().__init__(f"{location}: {message}" if location else message, path=path)


class AuthenticationError(GrpcsecError):
    """Missing or invalid caller credentials. ``reason`` is a short stable code for metrics and
    logs (``missing_token``, ``expired``...); the message is for the server log only."""

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        self.reason = reason
        super().__init__(message)


class AuthorizationError(GrpcsecError):
    """An authenticated caller that may not make this call; the message is for the log only.
    ``reason`` is a short stable code (:class:`grpcsec.denial.DenialReason`)."""

    def __init__(self, message: str, *, reason: str = "denied") -> None:
        self.reason = reason
        super().__init__(message)
