"""The verifier's token cache: verified tokens by the SHA-256 of their text, bounded. No grpc.

Why: a client sends the same token on every call until it expires, and a signature check costs
far more than a hash and a dictionary lookup. The cache only stores and evicts; whether a hit
may still be used (not expired, its key still in the key set) is the verifier's decision
(:meth:`JWTVerifier._from_cache <grpcsec.authn.verifier.JWTVerifier>`). When full, expired
entries are swept (at most every ``sweep_interval`` seconds), then the oldest entries go.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from grpcsec.authn.keys import KeySet, VerificationKey
from grpcsec.authn.verified import VerifiedToken

__all__ = ["CacheEntry", "TokenCache"]


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A verified token, the key and key set that verified it, and when to forget it."""

    token: VerifiedToken
    key: VerificationKey
    keys: KeySet
    cache_until: float


class TokenCache:
    """At most ``size`` entries (``0``: the cache is off). Safe to share between threads."""

    __slots__ = ("_entries", "_lock", "_swept_at", "hits", "misses", "size", "sweep_interval")

    def __init__(self, size: int, *, sweep_interval: float = 10.0) -> None:
        self.size = size
        self.sweep_interval = sweep_interval
        self._entries: dict[bytes, CacheEntry] = {}
        self._lock = threading.Lock()
        self._swept_at = float("-inf")
        self.hits = 0
        self.misses = 0

    def get(self, digest: bytes) -> CacheEntry | None:
        """The entry for a token digest (no lock: a dictionary read is atomic)."""
        return self._entries.get(digest)

    def drop(self, digest: bytes) -> None:
        """Forget one entry."""
        self._entries.pop(digest, None)

    def store(self, digest: bytes, entry: CacheEntry, now: float) -> None:
        """Add an entry, making room first when full."""
        with self._lock:
            cache = self._entries
            if len(cache) >= self.size:
                if now - self._swept_at >= self.sweep_interval:
                    self._swept_at = now
                    for stale in [k for k, v in cache.items() if v.cache_until <= now]:
                        del cache[stale]
                while len(cache) >= self.size:
                    del cache[next(iter(cache))]  # the oldest entry
            cache[digest] = entry

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def info(self) -> dict[str, int]:
        """Hits, misses, current and maximum size."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "size": len(self._entries),
            "max_size": self.size,
        }
