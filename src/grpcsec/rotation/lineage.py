"""The CA lineage of rotating material: a new pair must come from a CA already in service.

A watched certificate file can be overwritten by anything that is valid by itself: a
self-signed pair, or a pair from another CA. Serving it would be a silent change of trust
(clients that pin the old CA fail; clients that trust too much accept an impostor). So every
rotating server and channel keeps a :class:`Lineage`, the issuers established by the first
served generation, and :meth:`Lineage.admit` refuses a new chain that does not lead to one of
them (:class:`~grpcsec.errors.UntrustedIssuerError`, failure kind ``untrusted_issuer``).

The first generation establishes:

* the CA certificates served in its chain (intermediates, and a root when it is served);
* the issuer of the chain's top certificate, by certificate, when a configured bundle (the
  ``issuers`` bundle, the next-CA bundle, or this side's peer bundle) holds a CA that signed it;
* a self-signed leaf itself (a re-issue with the same key is then accepted);
* otherwise, for a single-certificate chain only, the leaf's issuer by **name and authority key
  identifier**: the fallback when the issuer certificate is nowhere to be seen.

A later chain is admitted when, walking up from the leaf, each certificate is signed by the
next one in the chain (signatures verified), until one is signed by a known CA certificate
(verified with ``verify_directly_issued_by``), or the ``issuers`` / next-CA bundles configured
now; only when the top of the chain is reached without such a signature may it match a name +
AKI fallback. Admitted chains grow the lineage by the CA certificates they bring and by the
configured CA that signed them (so a next CA, once served, stays trusted).

What the fallback does not prove: that the new issuer holds the old CA's key. Name and AKI are
plain fields anyone can copy into a certificate of their own, so it stops accidents (a pair
from another CA, a self-signed pair) and not a writer forging a look-alike CA. Serve the chain
with its CA, or configure ``issuers``, to have signatures checked instead.

Decisions: a leaf re-issued by the same CA is admitted; a chain moving from intermediate A to
intermediate B under the same root is admitted only when the root certificate is known (served
in the first chain, or in the ``issuers`` or next-CA bundle), because nothing else proves that B
belongs to the same root; a pair from a CA with the same name and another key is refused. Not
checked here: validity dates, roles and key strength (see :mod:`grpcsec.rotation.checks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from grpcsec.errors import UntrustedIssuerError
from grpcsec.pki.strength import issued_by, self_issued
from grpcsec.rotation.trust import CaRef

__all__ = ["Lineage"]

_MAX_CAS = 64
"""Most CA certificates remembered (oldest forgotten first): rotation adds a few per CA change."""


def _unique(cas: Sequence[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    kept: dict[bytes, x509.Certificate] = {}
    for ca in cas:
        kept.setdefault(ca.fingerprint(hashes.SHA256()), ca)
    return tuple(kept.values())[-_MAX_CAS:]


def _name(certificate: x509.Certificate) -> str:
    return certificate.issuer.rfc4514_string() or "<empty issuer>"


@dataclass(frozen=True, slots=True)
class Lineage:
    """The issuers a rotating identity may move between (see the module docstring)."""

    cas: tuple[x509.Certificate, ...]
    """CA certificates, trusted by signature."""
    fallback: tuple[CaRef, ...] = ()
    """Issuers known only by name and key identifier (no certificate was available)."""

    @classmethod
    def seed(
        cls, chain: Sequence[x509.Certificate], *, candidates: Sequence[x509.Certificate]
    ) -> Lineage:
        """The lineage a first served ``chain`` establishes; ``candidates`` are configured CAs
        that may have signed its top certificate."""
        top = chain[-1]
        cas = list(chain[1:])
        if self_issued(top) and issued_by(top, top):
            return cls(_unique([*cas, top]))
        signers = [ca for ca in candidates if issued_by(top, ca)]
        if signers:
            return cls(_unique(cas + signers))
        if len(chain) == 1:
            return cls((), (CaRef.issuer_of(top),))
        return cls(_unique(cas))

    def admit(
        self,
        chain: Sequence[x509.Certificate],
        *,
        configured: Sequence[x509.Certificate],
        source: str,
    ) -> Lineage:
        """The grown lineage if ``chain`` leads to a known or ``configured`` CA; otherwise raise
        :class:`UntrustedIssuerError` naming the chain's top issuer."""
        known = (*self.cas, *configured)
        for index, certificate in enumerate(chain):
            signer = next((ca for ca in known if issued_by(certificate, ca)), None)
            if signer is not None:
                return Lineage(_unique([*self.cas, *chain[1 : index + 1], signer]), self.fallback)
            if index + 1 < len(chain):
                if not issued_by(certificate, chain[index + 1]):
                    raise UntrustedIssuerError(
                        f"chain certificate {index + 1} is not signed by certificate {index + 2} "
                        "(the chain is out of order or mixes two chains); the certificate in "
                        "service stays",
                        path=source,
                    )
                continue
            issuer = CaRef.issuer_of(certificate)
            if any(ref.covers(issuer) for ref in self.fallback):
                return Lineage(_unique([*self.cas, *chain[1:]]), self.fallback)
        raise UntrustedIssuerError(
            f"the new chain leads to '{_name(chain[-1])}', not to a CA this identity was served "
            "from; the certificate in service stays (for a planned CA change, configure the new "
            "CA as the next CA: next_ca= or --next-ca)",
            path=source,
        )
