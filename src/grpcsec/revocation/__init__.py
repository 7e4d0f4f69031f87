"""Certificate revocation enforced on a server: the configured CRLs (files and directories,
watched), the verdict for a client's chain, and the guard check that caches it. No grpc import.

* :mod:`grpcsec.revocation.crlset`: where CRLs are read from and what a set must satisfy;
* :mod:`grpcsec.pki.crl_verdict`: :func:`judge_chain`, a pure function of chain, CRLs,
  trusted client CAs and ``now``;
* :mod:`grpcsec.revocation.store`: :class:`CRLStore` (the watcher) and
  :class:`RevocationCheck` (the cached per-call check).

Parsing CRLs is :mod:`grpcsec.pki.crl`'s job; docs/revocation.md is the user's guide.
"""

from grpcsec.pki.crl_set import CRLSet
from grpcsec.pki.crl_verdict import Outcome, Verdict, judge_chain
from grpcsec.revocation.crlset import CRLSource, build_crl_set
from grpcsec.revocation.store import CRLStore, RevocationCheck

__all__ = [
    "CRLSet",
    "CRLSource",
    "CRLStore",
    "Outcome",
    "RevocationCheck",
    "Verdict",
    "build_crl_set",
    "judge_chain",
]
