"""Checks of the certificate the server presented: trust, validity, name, usage, strength.

Pure functions of :class:`~grpcsec.doctor.observations.Inputs`, the served chain and ``now``.
The trust check follows grpcio (BoringSSL): the chain must lead to a self-signed root in the
bundle; certificates only the bundle supplied make the chain *incomplete*, because clients that
hold just the root (the usual set-up) then fail. When the issuer of the served chain's top is
simply unknown, nobody can tell a wrong ``--ca`` from a missing intermediate without the
intermediate itself, so that case is ``unknown_authority`` and its fix names both.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from grpcsec.clock import format_moment
from grpcsec.doctor.chain import (
    PathResult,
    build_path,
    describe,
    grpc_name_match,
    has_usage,
    lifetime_problem,
    validity_problem,
    weak_points,
)
from grpcsec.doctor.observations import Inputs
from grpcsec.doctor.report import Check
from grpcsec.doctor.roots import Roots
from grpcsec.errors import MaterialError
from grpcsec.pki import CertificateInfo, inspect_bundle
from grpcsec.pki.files import load_certificates
from grpcsec.pki.validity import format_duration

__all__ = [
    "ServedChain",
    "check_chain",
    "check_hostname",
    "check_key_strength",
    "check_server_eku",
    "check_validity",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServedChain:
    """The served certificates, parsed, and the walk from the leaf to the roots."""

    certificates: tuple[x509.Certificate, ...]
    path: PathResult
    roots: Roots
    whole: bool = True

    @classmethod
    def of(
        cls, chain_der: tuple[bytes, ...], roots: Roots, *, whole: bool = True
    ) -> ServedChain | None:
        """Parse the served chain (``whole=False``: only its leaf could be read); ``None`` when
        there is none or it does not parse."""
        try:  # the one loader: a malformed served certificate is "does not parse", not a crash
            certificates = tuple(
                load_certificates(der, source="the served chain")[0] for der in chain_der
            )
        except (ValueError, MaterialError):
            return None
        if not certificates:
            return None
        path = build_path(certificates[0], certificates[1:], roots.certificates)
        return cls(certificates=certificates, path=path, roots=roots, whole=whole)

    @property
    def leaf(self) -> x509.Certificate:
        """The server's own certificate."""
        return self.certificates[0]

    @property
    def judged(self) -> tuple[x509.Certificate, ...]:
        """The certificates a client checks: the path when one was built, plus the served."""
        seen = list(self.path.path)
        seen += [c for c in self.certificates if c not in seen]
        return tuple(seen)


def _arrow(certificates: tuple[x509.Certificate, ...]) -> str:
    return " <- ".join(CertificateInfo.of(c).common_name or describe(c) for c in certificates)


def check_chain(inputs: Inputs, served: ServedChain) -> Check:
    """Trust and completeness of the served chain (``chain``)."""
    path, roots = served.path, served.roots
    order = inspect_bundle(served.certificates).problems
    if path.trusted and path.from_bundle:
        missing = ", ".join(describe(c) for c in path.from_bundle)
        return Check.failed(
            "chain",
            "incomplete_chain",
            f"the server sends {len(served.certificates)} certificate(s) but not the "
            f"intermediate CA {missing}; it verifies here only because {roots.describe()} "
            "holds it, and clients that trust only the root fail with 'unable to get local "
            "issuer certificate'",
            "serve the full chain: the server's --cert file must hold its certificate followed "
            f"by {missing} (leaf first, root optional; grpcsec issue writes it that way)",
        )
    if path.trusted:
        message = f"{_arrow(path.path)}: trusted through {roots.describe()}"
        if order:
            return Check.warned(
                "chain",
                "chain_order",
                f"{message}; but the served chain is out of order: {order[0]}",
                "list the chain leaf first, each certificate followed by its issuer",
            )
        return Check.passed("chain", message)
    if not served.whole and path.missing_issuer is not None:
        return Check.warned(
            "chain",
            "chain_not_read",
            "only the leaf of the served chain could be read (this Python's ssl has neither "
            "the handshake message hook nor get_unverified_chain), and the leaf's issuer "
            f"'{path.missing_issuer.rfc4514_string()}' is not in {roots.describe()}: trust is "
            "judged by the gRPC call instead",
            "run the doctor on CPython 3.10+ to see the whole chain",
        )
    return Check.failed("chain", "unknown_authority", *_untrusted(inputs, served))


def _untrusted(inputs: Inputs, served: ServedChain) -> tuple[str, str]:
    path, roots = served.path, served.roots
    default = roots.origin != "explicit"
    use_ca = (
        "pass the CA that issued the server certificate with --ca FILE (without --ca, "
        f"grpcio clients use {roots.describe()})"
        if default
        else "pass the CA that issued the server certificate with --ca"
    )
    if path.untrusted_root is not None:
        message = (
            f"the server's chain ends at the root {describe(path.untrusted_root)}, which is not "
            f"in {roots.describe()}"
        )
        return message, f"{use_ca}; check that {inputs.target} is the server you meant"
    if path.anchor_not_root is not None:
        top = path.anchor_not_root
        message = (
            f"{roots.describe()} holds the intermediate {describe(top)} but not the root that "
            "issued it; grpcio, like OpenSSL, only trusts a chain that ends at a self-signed root"
        )
        return message, f"add the root CA '{top.issuer.rfc4514_string()}' to the --ca file"
    issuer = path.missing_issuer.rfc4514_string() if path.missing_issuer is not None else "?"
    sent = "only its own certificate" if len(served.certificates) == 1 else "its chain"
    message = (
        f"the server's {'certificate' if len(path.path) == 1 else 'chain'} "
        f"({_arrow(path.path)}) is issued by '{issuer}', which "
        f"is neither in {roots.describe()} nor sent by the server (it sends {sent})"
    )
    fix = (
        f"{use_ca}; if '{issuer}' is an intermediate CA, the server must also send it (its "
        "--cert file must hold leaf + intermediate), or every client that trusts only the root "
        "fails"
    )
    return message, fix


def check_validity(inputs: Inputs, served: ServedChain, now: dt.datetime) -> Check:
    """Validity of the leaf and the CAs above it at ``now`` (``validity``)."""
    del inputs
    for certificate in served.judged:
        problem = validity_problem(certificate, now)
        what = "the server certificate" if certificate is served.leaf else describe(certificate)
        if problem == "expired":
            return Check.failed(
                "validity",
                "server_cert_expired",
                f"{what} expired on {format_moment(certificate.not_valid_after_utc)} (now is "
                f"{format_moment(now)})",
                "renew it (grpcsec issue server ...) and restart or reload the server; if it "
                "should still be valid, check this machine's clock",
            )
        if problem == "not_yet_valid":
            return Check.failed(
                "validity",
                "server_cert_not_yet_valid",
                f"{what} is valid only from "
                f"{format_moment(certificate.not_valid_before_utc)} (now is {format_moment(now)})",
                "check the clocks of this machine, the server and the CA (one is behind, or the "
                "certificate was issued for later); grpcsec backdates not-before by one minute",
            )
    info = CertificateInfo.of(served.leaf)
    message = (
        f"valid until {format_moment(info.not_after)} "
        f"({format_duration(info.time_left(now))} left, "
        f"{info.lifetime_used(now):.0%} of its lifetime used)"
    )
    due = [p for p in (lifetime_problem(c, now) for c in served.judged) if p]
    if due:
        return Check.warned(
            "validity",
            "renewal_due",
            f"{message}; {due[0]}",
            "renew it before it expires (grpcsec issue server ...)",
        )
    return Check.passed("validity", message)


def check_hostname(inputs: Inputs, served: ServedChain) -> Check:
    """The server name against the leaf, as grpcio checks it (``hostname``)."""
    name = inputs.server_name
    leaf = served.leaf
    names = CertificateInfo.of(leaf).names
    listed = ", ".join(names.as_strings()) or "no subject alternative names"
    match = grpc_name_match(leaf, name)
    origin = " (from --server-name)" if inputs.server_name_given else ""
    if match == "san":
        return Check.passed("hostname", f"'{name}'{origin} is among its names ({listed})")
    if match == "cn":
        return Check.warned(
            "hostname",
            "cn_only_cert",
            f"'{name}' matches only the subject CN: grpcio accepts that (it falls back to the CN "
            "when there is no DNS SAN), but grpc-go, Python's ssl and browsers refuse it",
            f"reissue the certificate with a SAN: grpcsec issue server --host {name}",
        )
    if names.uris and not names.dns and not names.ips:
        return Check.failed(
            "hostname",
            "uri_only_server_cert",
            f"the certificate's only names are URIs ({listed}); grpcio and Python's ssl never "
            "match a URI SAN, so no client in Python can verify this server, and "
            "--server-name cannot help",
            "reissue the server certificate with a DNS name or IP next to its SPIFFE ID "
            f"(grpcsec issue server --host {name} --host {names.uris[0]}); authorize peers by "
            "SPIFFE ID on the server side",
        )
    candidates = [n for n in names.dns if not n.startswith("*.")] + [str(ip) for ip in names.ips]
    by_ip = " (dialling by IP address needs an IP SAN)" if _is_ip(name) and names.dns else ""
    message = f"'{name}'{origin} is not among the certificate's names ({listed}){by_ip}"
    reissue = f"reissue the certificate with --host {name}"
    if candidates:
        fix = (
            f"pass --server-name {candidates[0]} (grpcio: the grpc.ssl_target_name_override "
            f"option) if this address serves that name, dial one of its names, or {reissue}"
        )
    else:
        fix = reissue
    return Check.failed("hostname", "hostname_mismatch", message, fix)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def check_server_eku(inputs: Inputs, served: ServedChain) -> Check:
    """The leaf's extended key usage allows TLS servers (``server_eku``)."""
    del inputs
    info = CertificateInfo.of(served.leaf)
    if has_usage(served.leaf, ExtendedKeyUsageOID.SERVER_AUTH):
        usages = ", ".join(info.extended_key_usage) or "no EKU extension (any usage)"
        return Check.passed("server_eku", f"usable by a TLS server ({usages})")
    return Check.failed(
        "server_eku",
        "server_cert_wrong_eku",
        f"its extended key usage is {', '.join(info.extended_key_usage)}, without serverAuth: "
        "clients refuse it with 'unsupported certificate purpose'",
        "reissue it with the server or peer profile (grpcsec issue server ...)",
    )


def check_key_strength(inputs: Inputs, served: ServedChain) -> Check:
    """Key types and sizes, and signature hashes, of the served chain (``key_strength``)."""
    del inputs
    if isinstance(served.leaf.public_key(), ed25519.Ed25519PublicKey):
        return Check.failed(
            "key_strength",
            "unsupported_key_type",
            "the server certificate has an Ed25519 key, which grpcio cannot handshake with "
            "(NO_COMMON_SIGNATURE_ALGORITHMS)",
            "reissue it with an ECDSA P-256 key (the grpcsec default) or RSA",
        )
    weak = weak_points(served.judged)
    if weak:
        code = "weak_signature" if " signed with " in weak[0] else "weak_key"
        return Check.warned(
            "key_strength",
            code,
            "; ".join(weak),
            "reissue with ECDSA P-256 or RSA 2048+ keys and SHA-256 signatures",
        )
    info = CertificateInfo.of(served.leaf)
    return Check.passed(
        "key_strength", f"{info.key_algorithm} key, signed with {info.signature_algorithm}"
    )
