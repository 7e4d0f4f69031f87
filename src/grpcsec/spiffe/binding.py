"""The Workload API's bundles as the trust-domain binding of SPIFFE IDs (issue 15 item 4).

The agent names each bundle's trust domain itself (own and federated), so in SPIFFE mode a
client's SPIFFE ID is bound to exactly the CAs the agent gave for that trust domain:
:class:`WorkloadBundles` is the ``bundles`` callable of
:class:`~grpcsec.authn.SpiffeBindingCheck`. It follows the latest push (rebuilt when the
source's version changes, so each call is one comparison). Using the latest push rather than the
bundle the rotation watcher put in service can only refuse more: grpc core still verifies the
chain against the bundle in service, and a client must pass both. No grpc import.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping, Sequence
from typing import Protocol

from cryptography import x509

from grpcsec.authn.trust_domains import TrustDomainBundles

__all__ = ["WorkloadBundles"]


class _BundleSource(Protocol):
    def version(self) -> Hashable: ...

    def bundles(self) -> Mapping[str, Sequence[x509.Certificate]]: ...


class WorkloadBundles:
    """:class:`TrustDomainBundles` of a Workload API source, as last pushed."""

    def __init__(self, source: _BundleSource) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._seen: Hashable = object()
        self._value = TrustDomainBundles({})
        self()

    def __call__(self) -> TrustDomainBundles:
        version = self._source.version()
        if version == self._seen:
            return self._value
        with self._lock:
            if version != self._seen:
                domains = {td: tuple(cas) for td, cas in self._source.bundles().items()}
                self._value = TrustDomainBundles(domains)
                self._seen = version
            return self._value
