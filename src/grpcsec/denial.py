"""One vocabulary for refused calls: a status code, a reason from a closed list, one value.

Every check that refuses a call raises :class:`~grpcsec.errors.AuthenticationError` or
:class:`~grpcsec.errors.AuthorizationError` with a ``reason`` string; the guard turns the
error into one :class:`Denial`, and that value is what the server log line, the counters
(:class:`~grpcsec.interceptors.AuthStats`), Prometheus (``grpcsec_denied_calls_total{code,
reason}``) and ``/status`` are made from. So a reason means the same thing everywhere, and a
dashboard, an alert and a log search use the same words.

The reasons are a closed enum on purpose: a label value that a caller could choose (or a bug
could invent) would let the number of Prometheus series grow without bound. A custom check
may raise with a reason that is not listed; its message still reaches the log, and it is
counted under the generic reason of its status (``invalid``, ``denied``, ``internal_error``).

The peer never sees a reason: it gets the status code and a generic text. No grpc import.
"""

from __future__ import annotations

import enum
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from grpcsec.errors import AuthenticationError, AuthorizationError

__all__ = ["AuthStats", "Denial", "DenialCode", "DenialReason", "denial_of"]


class DenialCode(enum.Enum):
    """The gRPC status a refused call gets (by name, so this module needs no grpc)."""

    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    INTERNAL = "internal"

    @property
    def details(self) -> str:
        """The only text the peer gets."""
        return _DETAILS[self]


_DETAILS = {
    DenialCode.UNAUTHENTICATED: "authentication failed",
    DenialCode.PERMISSION_DENIED: "permission denied",
    DenialCode.INTERNAL: "internal error",
}


class DenialReason(enum.Enum):
    """Why a call was refused (docs/server.md#denial-reasons has the table)."""

    # the transport (client certificates)
    NO_TRANSPORT_SECURITY = "no_transport_security"
    NO_CLIENT_CERTIFICATE = "no_client_certificate"
    CERTIFICATE_NOT_ALLOWED = "certificate_not_allowed"
    # the transport: revocation (CRLs)
    REVOKED = "revoked"
    REVOCATION_UNDETERMINED = "revocation_undetermined"
    # the transport: SPIFFE IDs (an X.509 SVID's form, its chain to its own trust domain)
    SPIFFE_ID_INVALID = "spiffe_id_invalid"
    TRUST_DOMAIN_MISMATCH = "trust_domain_mismatch"
    # bearer tokens: presence and form
    MISSING_TOKEN = "missing_token"
    DUPLICATE_AUTHORIZATION = "duplicate_authorization"
    NOT_BEARER = "not_bearer"
    TOKEN_TOO_LARGE = "token_too_large"
    MALFORMED_TOKEN = "malformed_token"
    # bearer tokens: keys and signature
    ALGORITHM_NOT_ALLOWED = "algorithm_not_allowed"
    MISSING_KID = "missing_kid"
    UNKNOWN_KID = "unknown_kid"
    KEY_ALGORITHM_MISMATCH = "key_algorithm_mismatch"
    INVALID_SIGNATURE = "invalid_signature"
    KEYS_UNAVAILABLE = "keys_unavailable"
    # bearer tokens: claims
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    ISSUED_IN_FUTURE = "issued_in_future"
    INVALID_ISSUER = "invalid_issuer"
    INVALID_AUDIENCE = "invalid_audience"
    MISSING_CLAIM = "missing_claim"
    INVALID_NUMERIC_DATE = "invalid_numeric_date"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    # the client side could not get a token to send
    TOKEN_UNAVAILABLE = "token_unavailable"
    # authorization policy
    POLICY_DENIED = "policy_denied"
    # generic: a check that gave no (known) reason
    INVALID = "invalid"
    DENIED = "denied"
    INTERNAL_ERROR = "internal_error"

    @classmethod
    def parse(cls, value: object, code: DenialCode) -> DenialReason:
        """The reason named ``value``, or the generic reason of ``code`` when it names none."""
        if isinstance(value, DenialReason):
            return value
        try:
            return cls(value)
        except ValueError:
            return _GENERIC[code]


_GENERIC = {
    DenialCode.UNAUTHENTICATED: DenialReason.INVALID,
    DenialCode.PERMISSION_DENIED: DenialReason.DENIED,
    DenialCode.INTERNAL: DenialReason.INTERNAL_ERROR,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Denial:
    """One refused call: what the peer gets (``code``), why (``reason``), and the server-side
    ``message`` (for the log only; it never holds a token or key)."""

    code: DenialCode
    reason: DenialReason
    method: str
    message: str

    def to_json(self) -> dict[str, str]:
        """JSON-ready (audit and log shippers)."""
        return {
            "code": self.code.value,
            "reason": self.reason.value,
            "method": self.method,
            "message": self.message,
        }


def denial_of(error: BaseException, method: str) -> Denial:
    """The :class:`Denial` a check's exception stands for."""
    if isinstance(error, AuthenticationError):
        code = DenialCode.UNAUTHENTICATED
    elif isinstance(error, AuthorizationError):
        code = DenialCode.PERMISSION_DENIED
    else:
        code = DenialCode.INTERNAL
    if code is DenialCode.INTERNAL:
        reason, message = DenialReason.INTERNAL_ERROR, f"check failed with {type(error).__name__}"
    else:
        reason, message = DenialReason.parse(getattr(error, "reason", None), code), str(error)
    return Denial(code=code, reason=reason, method=method, message=message)


class AuthStats:
    """Counters of one :class:`~grpcsec.interceptors.Guard`, safe across threads: allowed
    calls, and denials by code and :class:`DenialReason` (``unauthenticated["expired"]``).
    :meth:`snapshot` is JSON-ready."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.allowed = 0
        self.unauthenticated: Counter[str] = Counter()
        self.permission_denied: Counter[str] = Counter()
        self.internal = 0

    def record_allowed(self) -> None:
        """One call passed every check."""
        with self._lock:
            self.allowed += 1

    def record_denial(self, denial: Denial) -> None:
        """One call was refused."""
        with self._lock:
            if denial.code is DenialCode.UNAUTHENTICATED:
                self.unauthenticated[denial.reason.value] += 1
            elif denial.code is DenialCode.PERMISSION_DENIED:
                self.permission_denied[denial.reason.value] += 1
            else:
                self.internal += 1

    @property
    def failures(self) -> int:
        """Every refused call."""
        with self._lock:
            return (
                sum(self.unauthenticated.values())
                + sum(self.permission_denied.values())
                + self.internal
            )

    def snapshot(self) -> dict[str, Any]:
        """``{"allowed": n, "unauthenticated": {reason: n}, "permission_denied": {...},
        "internal": n}``."""
        with self._lock:
            return {
                "allowed": self.allowed,
                "unauthenticated": dict(self.unauthenticated),
                "permission_denied": dict(self.permission_denied),
                "internal": self.internal,
            }
