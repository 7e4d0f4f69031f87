"""Which CAs speak for which SPIFFE trust domain, and whether a client's chain leads to its own.

grpcio verifies a client certificate against the *union* of the client CAs it was given. With
a federated bundle (``a.test`` and ``b.test`` in one file), ``b.test``'s CA can therefore sign a
certificate saying ``spiffe://a.test/...`` and grpcio accepts it; an allow-list that trusts
``a.test`` would let it in. The SPIFFE rule (go-spiffe's ``x509svid.Verify``) is that an SVID
is verified against the bundle *of the trust domain named in its own ID*, and that is what
:func:`bind_chain` decides here, over values:

* :class:`TrustDomainBundles` maps a trust domain to its anchors. From a client-CA file each
  anchor belongs to the trust domain named by its own URI SAN ``spiffe://T`` (as SPIRE's CAs
  carry); an explicit mapping (``[authn] trust_bundles``) adds anchors by name; the Workload
  API gives the mapping directly.
* Once *any* anchor is bound (``bound``), a SPIFFE ID whose trust domain has no anchors is
  refused. When no anchor names a trust domain (one private CA, the single-domain set-up that
  predates this rule) nothing is bound and the check is skipped: a client CA can then not be
  told apart from another, so that set-up must not mix trust domains in one file (the server
  logs a warning when a SPIFFE allow-list meets several unbound CAs).
* An anchor whose SPIFFE URI SANs name several trust domains, or a path, or an explicit
  mapping that contradicts its own SAN, is bound to none and listed in ``problems`` (the server
  refuses such a configuration at start; a later rotated file keeps the strict mode).

The chain test is :func:`grpcsec.pki.verify_certificate` (``cryptography.x509.verification``)
with *only* that trust domain's anchors as the store and the certificates the peer sent as
intermediates. Not checked here: what TLS already checked (EKU, the handshake-time path against
the union), revocation, and whether the ID is on an allow-list. No grpc import.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from grpcsec.errors import IssuanceError, MaterialError, VerificationError
from grpcsec.pki.names import SpiffeId
from grpcsec.pki.verify import verify_certificate
from grpcsec.text import inert

__all__ = [
    "BindingVerdict",
    "TrustDomainBundles",
    "bind_chain",
    "parse_trust_domain",
    "svid_problem",
]


def parse_trust_domain(text: str) -> str:
    """A trust domain name from ``a.test`` or ``spiffe://a.test``; raises
    :class:`~grpcsec.errors.IssuanceError` when it is not a valid one (SPIFFE-ID rules)."""
    cleaned = text.strip()
    if cleaned.startswith("spiffe://"):
        cleaned = cleaned[len("spiffe://") :]
        if cleaned.endswith("/"):
            cleaned = cleaned[:-1]
    bad = f"invalid SPIFFE trust domain {text!r}"
    if not cleaned or "/" in cleaned:
        raise IssuanceError(f"{bad}: give the name alone (a.test) or spiffe://a.test")
    try:
        return SpiffeId.parse(f"spiffe://{cleaned}/x").trust_domain
    except IssuanceError as exc:
        raise IssuanceError(f"{bad}: {exc.message.partition(': ')[2]}") from exc


def _uris(certificate: x509.Certificate) -> list[str]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def _named_domains(anchor: x509.Certificate) -> tuple[set[str], str | None]:
    """The trust domains ``anchor``'s SPIFFE URI SANs name, and a problem when they are not
    plain ``spiffe://T`` names."""
    named: set[str] = set()
    for uri in _uris(anchor):
        if not uri.lower().startswith("spiffe:"):
            continue
        try:
            named.add(parse_trust_domain(uri))
        except IssuanceError:
            return named, f"its URI SAN {inert(uri)!r} is not a trust domain ('spiffe://T')"
    if len(named) > 1:
        return named, f"it names several trust domains ({', '.join(sorted(named))})"
    return named, None


def _subject(anchor: x509.Certificate) -> str:
    return inert(anchor.subject.rfc4514_string()) or "empty subject"


@dataclass(frozen=True, slots=True)
class TrustDomainBundles:
    """Trust domain → the anchors that may issue its SVIDs (see the module docstring).

    ``digest`` identifies the content (verdicts are cached under it), ``problems`` lists the
    anchors that could not be bound and why.
    """

    domains: Mapping[str, tuple[x509.Certificate, ...]]
    problems: tuple[str, ...] = ()
    digest: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        frozen = {td: tuple(anchors) for td, anchors in sorted(self.domains.items())}
        object.__setattr__(self, "domains", MappingProxyType(frozen))
        if not self.digest:
            sha = hashlib.sha256()
            for td, anchors in frozen.items():
                sha.update(td.encode() + b"\0")
                for anchor in anchors:
                    sha.update(anchor.public_bytes(serialization.Encoding.DER))
            sha.update(repr(self.problems).encode())
            object.__setattr__(self, "digest", sha.hexdigest())

    @classmethod
    def from_anchors(
        cls,
        anchors: Iterable[x509.Certificate],
        explicit: Mapping[str, Sequence[x509.Certificate]] | None = None,
    ) -> TrustDomainBundles:
        """Bind each of ``anchors`` (a client-CA bundle) to the trust domain its own SPIFFE URI
        SAN names, and each of ``explicit[T]`` to ``T``. Never raises: an anchor that cannot
        be bound is left out and described in ``problems``."""
        domains: dict[str, list[x509.Certificate]] = {}
        problems: list[str] = []
        for td, listed in (explicit or {}).items():
            domain = parse_trust_domain(td)
            for anchor in listed:
                named, problem = _named_domains(anchor)
                if problem is None and named and named != {domain}:
                    problem = f"it names trust domain {next(iter(named))}, not {domain}"
                if problem is not None:
                    problems.append(f"CA {_subject(anchor)} given for {domain}: {problem}")
                    continue
                domains.setdefault(domain, []).append(anchor)
        for anchor in anchors:
            named, problem = _named_domains(anchor)
            if problem is not None:
                problems.append(f"CA {_subject(anchor)}: {problem}")
            elif named:
                bucket = domains.setdefault(next(iter(named)), [])
                if anchor not in bucket:
                    bucket.append(anchor)
        return cls({td: tuple(found) for td, found in domains.items()}, tuple(problems))

    @property
    def bound(self) -> bool:
        """Whether trust domains are bound at all (otherwise the single-domain set-up)."""
        return bool(self.domains or self.problems)

    def anchors_for(self, trust_domain: str) -> tuple[x509.Certificate, ...]:
        """The anchors of ``trust_domain`` (empty when it has none)."""
        return self.domains.get(trust_domain, ())

    def describe(self) -> dict[str, object]:
        """JSON-ready: each trust domain with its anchors' subjects, and the problems."""
        domains = self.domains.items()
        return {
            "trust_domains": {td: [_subject(a) for a in anchors] for td, anchors in domains},
            "problems": list(self.problems),
        }


def svid_problem(uris: Sequence[str], spiffe_id: str | None) -> str | None:
    """Why a certificate with these URI SANs is not a usable X.509 SVID, or ``None``.

    The SVID rule (and gRPC's): exactly one URI SAN, and it is a valid SPIFFE ID
    (``spiffe_id`` is :attr:`grpcsec.identity.Peer.spiffe_id`, set only then).
    """
    if not uris:
        return "it has no URI SAN (an X.509 SVID has exactly one, its SPIFFE ID)"
    if len(uris) > 1:
        shown = ", ".join(inert(u)[:80] for u in uris[:3])
        return f"it has {len(uris)} URI SANs ({shown}); an X.509 SVID has exactly one"
    if spiffe_id is None:
        return f"its URI SAN {inert(uris[0])[:120]!r} is not a valid SPIFFE ID"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingVerdict:
    """Whether a chain leads to its own trust domain's anchors, with the reason in words.
    ``until`` is when the verdict must be judged again (the first certificate's expiry)."""

    bound: bool
    message: str
    until: dt.datetime


def _expiry(chain: Sequence[x509.Certificate], now: dt.datetime) -> dt.datetime:
    return min((c.not_valid_after_utc for c in chain), default=now)


def bind_chain(
    chain: Sequence[x509.Certificate],
    spiffe_id: str,
    bundles: TrustDomainBundles,
    now: dt.datetime,
) -> BindingVerdict:
    """Whether ``chain`` (leaf first, then what the peer sent) verifies at ``now`` against the
    anchors of the trust domain in ``spiffe_id`` alone. Fails closed: an empty chain, a trust
    domain without anchors, or any verification error is ``bound=False``."""
    until = _expiry(chain, now)
    try:
        domain = SpiffeId.parse(spiffe_id).trust_domain
    except IssuanceError:
        return BindingVerdict(bound=False, message=f"{spiffe_id!r} is not a SPIFFE ID", until=until)
    anchors = bundles.anchors_for(domain)
    if not anchors:
        known = ", ".join(bundles.domains) or "none"
        return BindingVerdict(
            bound=False,
            message=f"{spiffe_id}: no CA of trust domain {domain} is configured "
            f"(trust domains with CAs: {known})",
            until=until,
        )
    if not chain:
        return BindingVerdict(bound=False, message=f"{spiffe_id}: no chain", until=until)
    try:
        verified = verify_certificate(chain[0], trust=anchors, intermediates=chain[1:], now=now)
    except (VerificationError, MaterialError) as exc:
        return BindingVerdict(
            bound=False,
            message=f"{spiffe_id}: the chain does not lead to a CA of trust domain {domain} "
            f"({exc.message})",
            until=until,
        )
    return BindingVerdict(
        bound=True,
        message=f"{spiffe_id}: chain leads to {_subject(verified.anchor)} of {domain}",
        until=min(until, _expiry(verified.chain, now)),
    )
