"""The CRLs in service, kept current by the one watcher, and the per-call check with its
verdict cache. No grpc import.

:class:`CRLStore` wraps a :class:`grpcsec.watch.Watch` over a
:class:`~grpcsec.revocation.crlset.CRLSource`: the first load happens at construction (a
missing, garbage or wrongly-signed CRL is a one-line :class:`~grpcsec.errors.MaterialError`
before anything binds); later a replacement that fails
:func:`~grpcsec.revocation.crlset.build_crl_set` is refused, logged once and counted, and the
last good set stays. Each swap bumps :attr:`CRLStore.generation`, read together with the set
(one tuple), so a verdict is never filed under a generation it was not judged with.

:class:`RevocationCheck` is a :class:`grpcsec.interceptors.Guard` check. The verdict for a chain
is cached under ``(chain digest, generation)`` in a bounded LRU: after the first call of a
connection, a call costs one dict lookup and one clock reading. A new CRL set (new generation) or
a new client-CA bundle makes old entries unreachable; a verdict whose ``recheck_at`` has passed
(a CRL's next update) is judged again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cryptography import x509

from grpcsec.call import CallInfo
from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import AuthenticationError
from grpcsec.fileio import FileContents
from grpcsec.identity import TransportSecurity
from grpcsec.pki.crl_set import CRLSet
from grpcsec.pki.crl_verdict import Outcome, Verdict, judge_chain
from grpcsec.revocation.crlset import CRLSource, build_crl_set
from grpcsec.text import get_logger
from grpcsec.verdict_cache import VerdictCache
from grpcsec.watch import Watch, WatchStatus

__all__ = ["CRLStore", "RevocationCheck"]

log = get_logger("grpcsec.revocation")

Anchors = Callable[[], Sequence[x509.Certificate]]


class CRLStore:
    """The configured CRLs, watched (module docstring). ``anchors`` returns the client CAs
    now trusted (a rotated bundle is picked up at the next reload)."""

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        anchors: Anchors,
        interval: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
        logger: logging.Logger = log,
    ) -> None:
        self.anchors = anchors
        self._state: tuple[CRLSet, int] | None = None
        self._count = 0
        self._watch: Watch[FileContents, CRLSet] = Watch(
            CRLSource(paths),
            load=self._load,
            apply=self._apply,
            what="CRLs",
            describe=lambda crls: crls.describe(),
            log=logger,
            interval=interval,
            clock=clock,
        )

    def _load(self, contents: FileContents, _now: object, current: CRLSet | None) -> CRLSet:
        return build_crl_set(contents, self.anchors(), current)

    def _apply(self, crls: CRLSet) -> None:
        self._count += 1
        self._state = (crls, self._count)

    @property
    def state(self) -> tuple[CRLSet, int]:
        """The set in service and its generation, read together."""
        state = self._state
        if state is None:  # pragma: no cover (the constructor loads or raises)
            raise RuntimeError("no CRLs loaded")
        return state

    @property
    def crls(self) -> CRLSet:
        """The set in service."""
        return self.state[0]

    @property
    def generation(self) -> int:
        """Goes up by one with each set put in service (1 after construction)."""
        return self.state[1]

    def start(self) -> None:
        """Poll the files in a background thread (idempotent)."""
        self._watch.start()

    def stop(self) -> None:
        """Stop polling (idempotent)."""
        self._watch.stop()

    def reload(self) -> str:
        """Read and check now; what it did (``loaded``, ``unchanged``, ``refused``)."""
        return self._watch.reload().value

    def request_reload(self) -> None:
        """Ask for a reload at the next poll (signal-safe)."""
        self._watch.request_reload()

    def status(self) -> WatchStatus:
        """The watcher's status (last reload result, refusals by reason)."""
        return self._watch.status()

    def to_json(self) -> dict[str, Any]:
        """Every CRL in service (source, issuer, number, next update, entries) and the last
        reload result."""
        return {
            "crls": [crl.to_json() for crl in self.crls.crls],
            "generation": self.generation,
            "reload": self.status().to_json(),
        }


class RevocationCheck:
    """The guard check: refuse a caller whose chain has a revoked certificate
    (``reason="revoked"``) or whose revocation cannot be determined
    (``reason="revocation_undetermined"``, unless ``allow_undetermined``: then it is logged
    and allowed). A caller that presented no certificate is left to the other checks."""

    def __init__(
        self,
        store: CRLStore,
        *,
        allow_undetermined: bool = False,
        clock: Clock = SYSTEM_CLOCK,
        cache_size: int = 4096,
    ) -> None:
        self.store = store
        self.allow_undetermined = allow_undetermined
        self.clock = clock
        self._cache: VerdictCache[tuple[str, int], Verdict] = VerdictCache(cache_size)
        self._anchors: Sequence[x509.Certificate] | None = None
        self._lock = threading.Lock()

    @property
    def judged(self) -> int:
        """How many verdicts were judged (cache misses), for tests and benchmarks."""
        return self._cache.judged

    def verdict(self, chain_digest: str, chain: Sequence[x509.Certificate]) -> Verdict:
        """The verdict for a chain, from the cache when it still holds."""
        crls, generation = self.store.state
        anchors = self.store.anchors()
        now = self.clock.now()
        key = (chain_digest, generation)
        with self._lock:
            if anchors is not self._anchors:
                if tuple(anchors) != tuple(self._anchors or ()):  # a new client-CA bundle
                    self._cache.clear()
                self._anchors = anchors
        found = self._cache.get(key, lambda verdict: verdict.current(now))
        if found is not None:
            return found
        verdict = judge_chain(chain, crls, anchors, now)
        self._cache.put(key, verdict)
        if verdict.outcome is Outcome.UNDETERMINED and self.allow_undetermined:
            log.warning("%s; allowed (allow_undetermined)", verdict.message)
        return verdict

    def clear(self) -> None:
        """Forget every cached verdict (benchmarks; a new generation does this by itself)."""
        self._cache.clear()

    def check(self, call: CallInfo) -> None:
        """Raise :class:`AuthenticationError` for a revoked or undetermined chain."""
        peer = call.peer
        if peer.transport is not TransportSecurity.TLS or not peer.client_cert_presented:
            return
        if peer.chain_unreadable or peer.chain_digest is None or not peer.chain:
            raise AuthenticationError(
                "revocation undetermined: the client's certificate chain could not be read",
                reason="revocation_undetermined",
            )
        verdict = self.verdict(peer.chain_digest, peer.chain)
        if verdict.outcome is Outcome.REVOKED:
            raise AuthenticationError(verdict.message, reason="revoked")
        if verdict.outcome is Outcome.UNDETERMINED and not self.allow_undetermined:
            raise AuthenticationError(verdict.message, reason="revocation_undetermined")

    def __repr__(self) -> str:
        return (
            f"RevocationCheck({self.store.crls.describe()!r}, "
            f"allow_undetermined={self.allow_undetermined})"
        )
