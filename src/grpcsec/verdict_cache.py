"""A bounded, thread-safe cache of verdicts about client chains, for the guard's chain checks.

Why: a connection carries many calls with the same certificate chain, and judging a chain
(revocation, the SPIFFE trust-domain binding) costs signature checks, while a lookup costs a
hash and a dictionary read. Used by :class:`~grpcsec.revocation.RevocationCheck` and
:class:`~grpcsec.authn.spiffe_check.SpiffeBindingCheck`, each with a key that changes when what
the verdict depends on changes (the chain digest plus a CRL generation or a bundle digest).

The cache only stores, orders and evicts (least recently used first); whether a hit may still be
used (a CRL's next update, a certificate's expiry) is the caller's ``current`` test. No grpc.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["VerdictCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class VerdictCache(Generic[K, V]):
    """At most ``size`` verdicts (``size`` ≥ 1); ``judged`` counts the verdicts stored (cache
    misses), for tests and benchmarks."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("cache_size must be at least 1")
        self.size = size
        self.judged = 0
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, current: Callable[[V], bool]) -> V | None:
        """The verdict under ``key`` when there is one and ``current(verdict)`` holds."""
        with self._lock:
            found = self._entries.get(key)
            if found is None or not current(found):
                return None
            self._entries.move_to_end(key)
            return found

    def put(self, key: K, verdict: V) -> None:
        """Store a verdict just judged, evicting the least recently used beyond ``size``."""
        with self._lock:
            self.judged += 1
            self._entries[key] = verdict
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every verdict."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
