"""Verification: is this certificate trusted, valid now, for this role and this host?

The trust decision is ``cryptography.x509.verification`` (RFC 5280 path building with the web PKI
profile): a server verifier when a host is given, a client verifier otherwise. Before it runs,
a few cheap checks find the *specific* reason a certificate would fail (expired, not yet valid,
wrong EKU, host not among the SANs, issuer not in the bundle), because the library's own
messages ("candidates exhausted") do not tell a person what to fix. The pre-checks can only
reject; acceptance always comes from the library.

Revocation is checked only when CRLs are given, after the path validated: the verified path is
handed to :func:`grpcsec.pki.crl_check.check_path_revocation` (``revoked``, or
``revocation_undetermined`` for a missing, wrongly-signed, expired or not-yet-valid CRL of the
leaf's issuer; never a silent OK). Not checked: OCSP, name constraints beyond what the library
enforces, and Ed25519 chains, which the web PKI profile forbids (reported as
``invalid_chain``).
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509 import verification as xv
from cryptography.x509.oid import ExtendedKeyUsageOID

from grpcsec.clock import format_moment
from grpcsec.errors import VerificationError, VerifyReason
from grpcsec.pki.anchors import check_anchors
from grpcsec.pki.crl import RevocationList
from grpcsec.pki.crl_check import RevocationStatus, check_path_revocation
from grpcsec.pki.inspect import CertificateInfo
from grpcsec.pki.strength import issued_by

__all__ = ["Role", "VerifiedChain", "host_matches", "verify_certificate"]


class Role(enum.Enum):
    """What the certificate is for: a TLS server or a TLS client."""

    SERVER = "server"
    CLIENT = "client"

    @property
    def eku(self) -> x509.ObjectIdentifier:
        """The extended key usage this role needs."""
        if self is Role.SERVER:
            return ExtendedKeyUsageOID.SERVER_AUTH
        return ExtendedKeyUsageOID.CLIENT_AUTH

    @property
    def eku_name(self) -> str:
        """``serverAuth`` or ``clientAuth``."""
        return "serverAuth" if self is Role.SERVER else "clientAuth"


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedChain:
    """A successful verification: the path from the leaf to the trust anchor."""

    chain: tuple[x509.Certificate, ...]
    role: Role | None
    host: str | None

    @property
    def anchor(self) -> x509.Certificate:
        """The trusted root the path ends at."""
        return self.chain[-1]


def host_matches(certificate: x509.Certificate, host: str) -> bool:
    """Whether ``host`` (a DNS name or IP) is among the certificate's DNS or IP SANs.

    A wildcard matches exactly one left-most label. The CN is never consulted and URI SANs never
    match, which is how grpcio and every modern client behave.
    """
    info = CertificateInfo.of(certificate)
    candidate = host.strip().strip("[]").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        address = None
    if address is not None:
        return address in info.names.ips
    for name in info.names.dns:
        if name == candidate:
            return True
        if name.startswith("*.") and re.fullmatch(r"[^.]+" + re.escape(name[1:]), candidate):
            return True
    return False


def _check_window(certificate: x509.Certificate, now: dt.datetime, what: str) -> None:
    if now < certificate.not_valid_before_utc:
        raise VerificationError(
            VerifyReason.NOT_YET_VALID,
            f"{what} is not valid until {format_moment(certificate.not_valid_before_utc)} "
            f"(checked at {format_moment(now)}); check the clock or wait",
        )
    if now > certificate.not_valid_after_utc:
        raise VerificationError(
            VerifyReason.EXPIRED,
            f"{what} expired on {format_moment(certificate.not_valid_after_utc)} "
            f"(checked at {format_moment(now)}); renew it",
        )


def _check_eku(certificate: x509.Certificate, role: Role) -> None:
    try:
        usages = list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return  # no EKU means any usage, as RFC 5280 and grpcio treat it
    if role.eku in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages:
        return
    have = ", ".join(CertificateInfo.of(certificate).extended_key_usage) or "none"
    profile = "server" if role is Role.SERVER else "client"
    raise VerificationError(
        VerifyReason.WRONG_EKU,
        f"the certificate lacks {role.eku_name} in its extended key usage (has: {have}); "
        f"reissue it with the {profile} or peer profile",
    )


def _check_host(certificate: x509.Certificate, host: str) -> None:
    if host_matches(certificate, host):
        return
    names = CertificateInfo.of(certificate).names
    listed = ", ".join(names.as_strings()) or "no SANs"
    hint = (
        "; its only names are URIs, which gRPC clients never match against a host name"
        if names.uris and not names.dns and not names.ips
        else ""
    )
    raise VerificationError(
        VerifyReason.HOSTNAME_MISMATCH,
        f"{host!r} is not among the certificate's DNS/IP SANs ({listed}){hint}; "
        f"reissue it with --host {host} or connect with a name it has",
    )


def _find_issuer(
    certificate: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    return next((c for c in candidates if issued_by(certificate, c)), None)


def _check_path(
    leaf: x509.Certificate,
    trust: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    now: dt.datetime,
) -> None:
    current = leaf
    for _ in range(len(intermediates) + 1):
        if _find_issuer(current, trust) is not None or current in trust:
            return
        parent = _find_issuer(current, intermediates)
        if parent is None:
            raise VerificationError(
                VerifyReason.UNKNOWN_AUTHORITY,
                f"issued by '{current.issuer.rfc4514_string()}', which is not in the trust "
                "bundle and was not given as an intermediate; pass the right CA bundle, or "
                "include the intermediate in the chain file",
            )
        _check_window(parent, now, f"intermediate '{parent.subject.rfc4514_string()}'")
        current = parent


_NOISE = re.compile(r"\s*\(encountered processing <Certificate\(.*?\)>\)")


def verify_certificate(
    leaf: x509.Certificate,
    *,
    trust: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    role: Role | None = None,
    host: str | None = None,
    crls: Sequence[RevocationList] = (),
    now: dt.datetime,
) -> VerifiedChain:
    """Verify ``leaf`` against the ``trust`` anchors at ``now``.

    ``role`` checks the extended key usage; ``host`` (implies the server role) checks DNS/IP
    SANs; ``crls`` (when any) checks revocation of the verified path (module docstring).
    Raises :class:`VerificationError` whose ``reason`` is the first check that failed,
    and :class:`~grpcsec.errors.MaterialError` when an anchor is not a CA
    (:func:`~grpcsec.pki.anchors.check_anchors`): bad input, not a verdict on ``leaf``.
    """
    if not trust:
        raise VerificationError(VerifyReason.UNKNOWN_AUTHORITY, "the trust bundle is empty")
    check_anchors(trust)
    if host is not None:
        role = role or Role.SERVER
    info = CertificateInfo.of(leaf)
    if info.is_ca:
        raise VerificationError(
            VerifyReason.NOT_A_LEAF,
            "this is a CA certificate, not a server or client certificate; "
            "pass CA certificates with --ca",
        )
    _check_window(leaf, now, "the certificate")
    if role is not None:
        _check_eku(leaf, role)
    if host is not None:
        _check_host(leaf, host)
    _check_path(leaf, trust, intermediates, now)

    builder = xv.PolicyBuilder().store(xv.Store(list(trust))).time(now)
    try:
        if host is not None:
            subject: x509.DNSName | x509.IPAddress
            try:
                subject = x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
            except ValueError:
                subject = x509.DNSName(host.rstrip(".").lower())
            chain = builder.build_server_verifier(subject).verify(leaf, list(intermediates))
        else:
            if role is not Role.CLIENT:
                # The client verifier insists on clientAuth; for a role-less check (or a server
                # certificate verified without a host name) accept any EKU: _check_eku already
                # enforced the role's usage.
                builder = builder.extension_policies(
                    ca_policy=xv.ExtensionPolicy.webpki_defaults_ca(),
                    ee_policy=xv.ExtensionPolicy.webpki_defaults_ee().may_be_present(
                        x509.ExtendedKeyUsage, xv.Criticality.AGNOSTIC, None
                    ),
                )
            chain = builder.build_client_verifier().verify(leaf, list(intermediates)).chain
    except xv.VerificationError as exc:
        detail = _NOISE.sub("", str(exc)).removeprefix("validation failed: ")
        raise VerificationError(
            VerifyReason.INVALID_CHAIN, f"the chain does not validate: {detail}"
        ) from exc
    if crls:
        _check_revocation(chain, crls, now)
    return VerifiedChain(chain=tuple(chain), role=role, host=host)


def _check_revocation(
    chain: Sequence[x509.Certificate], crls: Sequence[RevocationList], now: dt.datetime
) -> None:
    verdict = check_path_revocation(chain, crls, now=now)
    if verdict.status is RevocationStatus.REVOKED:
        raise VerificationError(
            VerifyReason.REVOKED, f"{verdict.message}; reissue it and stop using the old one"
        )
    if verdict.status is RevocationStatus.UNDETERMINED:
        raise VerificationError(VerifyReason.REVOCATION_UNDETERMINED, verdict.message)
