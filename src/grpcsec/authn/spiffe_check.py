"""The guard check that holds SPIFFE IDs to their own trust domain, with its verdict cache.

:class:`SpiffeBindingCheck` runs before the allow-lists (after revocation) for every call over
mTLS. For a client certificate that claims a SPIFFE identity (a ``spiffe:`` URI SAN):

* it must be a usable X.509 SVID: exactly one URI SAN, a valid SPIFFE ID
  (``spiffe_id_invalid``, UNAUTHENTICATED). Enforced when a SPIFFE allow-list is configured
  (``require_svid``) or trust domains are bound; without either, a server that does not use
  SPIFFE IDs keeps accepting such certificates as before;
* when trust domains are bound (:class:`~grpcsec.authn.trust_domains.TrustDomainBundles`), its
  chain must verify against the anchors of the trust domain in its ID alone
  (``trust_domain_mismatch``, UNAUTHENTICATED), whichever allow-list entry later matches it:
  an authorization policy and the handler read ``peer.spiffe_id`` too, so an ID that is not
  bound to its trust domain must not reach them at all.

A certificate without any ``spiffe:`` URI is left to the allow-lists (a CN- or DNS-named client
on a server that also accepts SPIFFE IDs). The bundles come from a callable: the client CAs in
service (:class:`ClientCABundles`, rebuilt when a rotated bundle is swapped in) or the SPIFFE
Workload API. Verdicts are cached under ``(chain digest, bundles digest)`` in a bounded LRU, and
judged again once a certificate of the chain expires. No grpc import.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from cryptography import x509

from grpcsec.authn.trust_domains import BindingVerdict, TrustDomainBundles, bind_chain, svid_problem
from grpcsec.call import CallInfo
from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import AuthenticationError
from grpcsec.identity import Peer, TransportSecurity
from grpcsec.text import get_logger
from grpcsec.verdict_cache import VerdictCache

__all__ = ["BundleSource", "ClientCABundles", "SpiffeBindingCheck", "claims_spiffe_id"]

log = get_logger("grpcsec.authn")

BundleSource = Callable[[], TrustDomainBundles]
"""Returns the bundles in service now; called on every checked call, so it must be cheap (a
memoized value), never block and never raise."""


def claims_spiffe_id(peer: Peer) -> bool:
    """Whether the peer's certificate carries a ``spiffe:`` URI SAN (valid or not)."""
    return any(uri[:7].lower() == "spiffe:" for uri in peer.uris)


class ClientCABundles:
    """:class:`TrustDomainBundles` of the client CAs in service (``anchors``) plus ``explicit``
    anchors by trust domain; rebuilt only when ``anchors`` returns a different bundle."""

    def __init__(
        self,
        anchors: Callable[[], Sequence[x509.Certificate]],
        explicit: Mapping[str, Sequence[x509.Certificate]] | None = None,
    ) -> None:
        self._anchors = anchors
        self._explicit = {td: tuple(found) for td, found in (explicit or {}).items()}
        self._lock = threading.Lock()
        self._seen: Sequence[x509.Certificate] | None = None
        self._value = TrustDomainBundles({})
        self()

    def __call__(self) -> TrustDomainBundles:
        anchors = self._anchors()
        if anchors is self._seen:
            return self._value
        with self._lock:
            if anchors is not self._seen:
                first = self._seen is None
                if first or tuple(anchors) != tuple(self._seen or ()):
                    self._value = TrustDomainBundles.from_anchors(anchors, self._explicit)
                    for problem in () if first else self._value.problems:  # (start: an error)
                        log.warning("SPIFFE trust domains: %s; that CA vouches for no ID", problem)
                self._seen = anchors
            return self._value


class SpiffeBindingCheck:
    """The guard check (module docstring). ``bundles`` returns the bundles in service;
    ``require_svid`` refuses malformed SVIDs even while no trust domain is bound."""

    def __init__(
        self,
        bundles: BundleSource,
        *,
        require_svid: bool,
        clock: Clock = SYSTEM_CLOCK,
        cache_size: int = 4096,
    ) -> None:
        self.bundles = bundles
        self.require_svid = require_svid
        self.clock = clock
        self._cache: VerdictCache[tuple[str, str], BindingVerdict] = VerdictCache(cache_size)

    @property
    def judged(self) -> int:
        """How many chains were judged (cache misses), for tests and benchmarks."""
        return self._cache.judged

    def verdict(self, peer: Peer, spiffe_id: str, bundles: TrustDomainBundles) -> BindingVerdict:
        """The verdict for the peer's chain, from the cache while it holds."""
        now = self.clock.now()
        key = (peer.chain_digest or "", bundles.digest)
        found = self._cache.get(key, lambda verdict: now <= verdict.until)
        if found is None:
            found = bind_chain(peer.chain, spiffe_id, bundles, now)
            self._cache.put(key, found)
        return found

    def clear(self) -> None:
        """Forget every cached verdict (benchmarks; new bundles do this by their digest)."""
        self._cache.clear()

    def check(self, call: CallInfo) -> None:
        """Raise :class:`AuthenticationError` for a malformed SVID or an unbound chain."""
        bundles = self.bundles()
        if not (self.require_svid or bundles.bound):
            return  # nothing to enforce: the peer need not even be built (it costs a few µs)
        peer = call.peer
        if peer.transport is not TransportSecurity.TLS or not peer.client_cert_presented:
            return
        if not claims_spiffe_id(peer):
            return
        problem = svid_problem(peer.uris, peer.spiffe_id)
        if problem is not None or peer.spiffe_id is None:
            raise AuthenticationError(
                f"client certificate (sha256 {peer.fingerprint_sha256}) is not a valid SPIFFE "
                f"SVID: {problem}",
                reason="spiffe_id_invalid",
            )
        if not bundles.bound:
            return
        if peer.chain_unreadable or peer.chain_digest is None or not peer.chain:
            raise AuthenticationError(
                f"{peer.spiffe_id}: the client's certificate chain could not be read, so its "
                "trust domain cannot be confirmed",
                reason="trust_domain_mismatch",
            )
        verdict = self.verdict(peer, peer.spiffe_id, bundles)
        if not verdict.bound:
            raise AuthenticationError(verdict.message, reason="trust_domain_mismatch")

    def __repr__(self) -> str:
        return f"SpiffeBindingCheck(require_svid={self.require_svid})"
