"""Renewal planning: when a certificate is due, what the new one looks like, how long to back off.

Pure decisions over values, with time passed in (``now``) and the jitter drawn by the caller
(``draw``): :func:`renewal_time` (2/3 of the lifetime, or ``every`` when that comes sooner,
plus or minus a jitter of 1/20 so that fleets issued together do not renew together;
cert-manager and step-ca use the same point), the :class:`RenewalPlan` and
:class:`RenewalResult` values, :class:`Backoff` delays and :func:`reissue`, which issues a new
leaf like the old one (names, subject CN and organization, profile from the extended key usage,
key type, lifetime) **with a new key**. Reading and writing files and running the hook are
:mod:`grpcsec.rotation.renew`'s.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from grpcsec.errors import ConfigurationError, GrpcsecError, RotationError
from grpcsec.pki import (
    CertificateAuthority,
    IssuedCertificate,
    KeyType,
    Profile,
    SubjectAltNames,
    Validity,
    format_duration,
)
from grpcsec.pki.keys import key_type_of
from grpcsec.pki.validity import BACKDATE

__all__ = [
    "AgentStep",
    "Backoff",
    "RenewalPlan",
    "RenewalResult",
    "check_issuer",
    "check_not_expired",
    "plan_for",
    "reissue",
    "renewal_backdate",
    "renewal_time",
    "rfc3339",
]

RENEW_FRACTION = 2 / 3
JITTER = 1 / 20


def rfc3339(when: dt.datetime) -> str:
    """``when`` as RFC 3339 UTC text with a ``Z`` (the JSON form of every renewal time)."""
    return when.isoformat().replace("+00:00", "Z")


def renewal_time(
    not_before: dt.datetime,
    not_after: dt.datetime,
    *,
    every: dt.timedelta | None = None,
    fraction: float = RENEW_FRACTION,
    jitter: float = JITTER,
    draw: float = 0.5,
) -> dt.datetime:
    """When to renew a certificate valid from ``not_before`` to ``not_after``.

    At ``fraction`` of the lifetime, or ``every`` after ``not_before`` when that is sooner,
    moved by up to ``jitter`` of that period either way; ``draw`` in [0, 1) picks where (0.5 is
    the middle). Never before ``not_before``, never after ``not_after``.
    """
    if not 0 < fraction < 1 or not 0 <= jitter < fraction:
        raise ConfigurationError("fraction must be in (0, 1) and jitter in [0, fraction)")
    lifetime = not_after - not_before
    period = lifetime * fraction
    if every is not None:
        if every <= dt.timedelta(0):
            raise ConfigurationError("the renewal period must be positive")
        period = min(period, every)
    spread = period * (jitter / fraction)
    when = not_before + period + spread * (2 * draw - 1)
    return min(max(when, not_before), not_after)


@dataclass(frozen=True, slots=True, kw_only=True)
class RenewalPlan:
    """What the agent knows about the certificate on disk at ``now``."""

    path: str
    serial: str
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    renew_at: dt.datetime
    now: dt.datetime

    @property
    def due(self) -> bool:
        """Whether the renewal point has passed."""
        return self.now >= self.renew_at

    @property
    def expired(self) -> bool:
        """Whether the certificate has already expired."""
        return self.now > self.not_after

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (times RFC 3339 UTC)."""
        return {
            "cert": self.path,
            "serial": self.serial,
            "subject": self.subject,
            "not_before": rfc3339(self.not_before),
            "not_after": rfc3339(self.not_after),
            "renew_at": rfc3339(self.renew_at),
            "due": self.due,
            "expired": self.expired,
        }


def plan_for(
    leaf: x509.Certificate, path: str | Path, *, renew_at: dt.datetime, now: dt.datetime
) -> RenewalPlan:
    """The plan for ``leaf`` (read from ``path``) renewed at ``renew_at``, seen at ``now``."""
    return RenewalPlan(
        path=str(path),
        serial=f"{leaf.serial_number:x}",
        subject=leaf.subject.rfc4514_string(),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        renew_at=renew_at,
        now=now,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RenewalResult:
    """One renewal: the files written, the new and the previous serial, the new dates, when
    the new certificate will be renewed, and whether the hook failed (``hook_error``)."""

    cert: str
    key: str
    serial: str
    previous_serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    renew_at: dt.datetime
    renewed_at: dt.datetime
    hook_ran: bool = False
    hook_error: str | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (times RFC 3339 UTC)."""
        return {
            "cert": self.cert,
            "key": self.key,
            "serial": self.serial,
            "previous_serial": self.previous_serial,
            "not_before": rfc3339(self.not_before),
            "not_after": rfc3339(self.not_after),
            "next_renewal": rfc3339(self.renew_at),
            "renewed_at": rfc3339(self.renewed_at),
            "hook": {"ran": self.hook_ran, "error": self.hook_error},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStep:
    """What one step of the renewal agent did: the renewal it made (``renewed``), or the
    failure it met (``error``, only when it is a new one; ``failures`` counts consecutive
    ones), and the seconds until the next step (``delay``)."""

    renewed: RenewalResult | None = None
    error: GrpcsecError | None = None
    failures: int = 0
    delay: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Delays between failed attempts: ``initial`` seconds, times ``factor`` per failure, at
    most ``maximum``, each moved by up to ``jitter`` of itself."""

    initial: float = 5.0
    factor: float = 2.0
    maximum: float = 300.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.maximum < self.initial:
            raise ConfigurationError("backoff needs initial > 0, factor >= 1, maximum >= initial")
        if not 0 <= self.jitter < 1:
            raise ConfigurationError("backoff jitter must be in [0, 1)")

    def delay(self, failures: int, draw: float = 0.5) -> float:
        """Seconds to wait after ``failures`` consecutive failures (1 for the first)."""
        exponent = min(max(failures - 1, 0), 64)
        base = min(self.maximum, self.initial * self.factor**exponent)
        return base * (1 + self.jitter * (2 * draw - 1))


def _profile_of(leaf: x509.Certificate) -> Profile:
    try:
        usages = set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return Profile.PEER
    server = ExtendedKeyUsageOID.SERVER_AUTH in usages
    client = ExtendedKeyUsageOID.CLIENT_AUTH in usages
    if server and not client:
        return Profile.SERVER
    if client and not server:
        return Profile.CLIENT
    return Profile.PEER


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def reissue(
    ca: CertificateAuthority,
    leaf: x509.Certificate,
    *,
    now: dt.datetime,
    lifetime: dt.timedelta | None = None,
    backdate: dt.timedelta = BACKDATE,
) -> IssuedCertificate:
    """A new certificate like ``leaf`` (names, CN, organization, profile, key type) with a new
    key, valid from ``now - backdate`` for ``lifetime`` after ``now`` (default: the same span
    from not-before to not-after as ``leaf``)."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise RotationError(
            "the certificate has no subject alternative names; re-issue it with grpcsec issue"
        ) from exc
    raw = SubjectAltNames.from_extension(san)
    names = SubjectAltNames.build(dns=raw.dns, ips=raw.ips, uris=raw.uris, emails=raw.emails)
    if lifetime is None:
        start = now - backdate
        span = leaf.not_valid_after_utc - leaf.not_valid_before_utc
        validity = Validity(not_before=start, not_after=start + span)
    else:
        validity = Validity.lasting(lifetime, now=now, backdate=backdate)
    public_key = leaf.public_key()
    key_type = KeyType.ECDSA_P256
    if isinstance(
        public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
    ):
        key_type = key_type_of(public_key) or KeyType.ECDSA_P256
    return ca.issue(
        _profile_of(leaf),
        names,
        common_name=_attribute(leaf.subject, NameOID.COMMON_NAME) or "",
        organization=_attribute(leaf.subject, NameOID.ORGANIZATION_NAME),
        key_type=key_type,
        validity=validity,
        now=now,
        allow_unsupported_key=key_type is KeyType.ED25519,
    )


def check_issuer(
    leaf: x509.Certificate,
    issuer: x509.Certificate,
    *,
    allow_other_issuer: bool = False,
    path: str | Path | None = None,
) -> None:
    """Raise :class:`RotationError` unless ``issuer`` signed ``leaf`` directly (same name and a
    signature that verifies), or ``allow_other_issuer`` (a CA rollover re-issues a certificate
    from the previous CA under the new one). Only the direct signature is checked, not a path
    to a trust anchor, validity or usages."""
    signed = leaf.issuer == issuer.subject
    if signed:
        try:
            leaf.verify_directly_issued_by(issuer)
        except Exception:  # noqa: BLE001 (InvalidSignature, unsupported algorithms)
            signed = False
    if not signed and not allow_other_issuer:
        raise RotationError(
            f"the certificate was issued by '{leaf.issuer.rfc4514_string()}', not by this "
            f"CA ('{issuer.subject.rfc4514_string()}'); pass allow_other_issuer=True "
            "(--new-issuer) to re-issue it under this CA, as in a CA rollover",
            path=path,
        )


def check_not_expired(
    leaf: x509.Certificate, now: dt.datetime, *, path: str | Path | None = None
) -> None:
    """Raise :class:`RotationError` when ``leaf`` expired before ``now``: renewal stopped for a
    whole lifetime or the clock is wrong, and issuing under a wrong clock makes things worse.
    The last second of the certificate's life (``now == not_after``) still renews."""
    if now > leaf.not_valid_after_utc:
        ago = format_duration(now - leaf.not_valid_after_utc)
        raise RotationError(
            f"the certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M:%SZ} "
            f"({ago} ago) and was not renewed in time; renewing an expired certificate is "
            "refused by default (check the clock and why renewal stopped), then pass "
            "--allow-expired or re-issue it with grpcsec issue",
            path=path,
        )


def renewal_backdate(
    leaf: x509.Certificate,
    *,
    every: dt.timedelta | None = None,
    lifetime: dt.timedelta | None = None,
) -> dt.timedelta:
    """How far before ``now`` the replacement of ``leaf`` starts: a minute (clock skew), but a
    tenth of the renewal period when that is shorter, or the renewal point of a fresh
    certificate renewed seconds apart would already be in the past."""
    span = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    period = min(every or span, lifetime or span)
    return min(BACKDATE, period / 10)
