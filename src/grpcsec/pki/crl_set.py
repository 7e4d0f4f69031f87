"""The CRLs a check consults, indexed by issuer for one dict access per certificate. No grpc.

Shared by every revocation check (``grpcsec verify --crl``, ``grpcsec doctor --crl`` and the
servers' per-call check), so a CRL is matched to an issuer one way everywhere: by issuer name,
then key identifier. Where two CRLs speak for the same issuer, the higher CRL number wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography import x509

from grpcsec.pki.crl import RevocationList

__all__ = ["CRLSet", "IssuerKey", "issuer_key"]

_SIGNATURES_KEPT = 1024

IssuerKey = tuple[bytes, bytes | None]
"""An issuer as CRLs name it: the DER of its name and its key identifier (``None``: none)."""


def issuer_key(crl: RevocationList) -> IssuerKey:
    """The issuer a CRL speaks for."""
    return crl.issuer.public_bytes(), crl.authority_key_id


@dataclass(frozen=True, slots=True, kw_only=True)
class CRLSet:
    """The CRLs in service, indexed by issuer name (then key identifier) for one dict access
    per certificate. Where two CRLs speak for the same issuer, the higher CRL number wins.

    :meth:`signed_by` remembers each (CRL, issuer certificate) answer: verifying a CRL's
    signature re-encodes the whole list (milliseconds for 100,000 entries), and the answer
    cannot change while this set is in service."""

    crls: tuple[RevocationList, ...]
    by_name: Mapping[bytes, tuple[RevocationList, ...]]
    _signed: dict[tuple[int, x509.Certificate], bool] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def of(cls, crls: Iterable[RevocationList]) -> CRLSet:
        """Index ``crls`` (latest per issuer key first within a name)."""
        best: dict[IssuerKey, RevocationList] = {}
        for crl in crls:
            key = issuer_key(crl)
            held = best.get(key)
            if held is None or (crl.number or -1) > (held.number or -1):
                best[key] = crl
        by_name: dict[bytes, list[RevocationList]] = {}
        for (name, _aki), crl in best.items():
            by_name.setdefault(name, []).append(crl)
        kept = tuple(best.values())
        return cls(crls=kept, by_name=MappingProxyType({k: tuple(v) for k, v in by_name.items()}))

    def for_issuer(self, name: x509.Name, key_id: bytes | None) -> RevocationList | None:
        """The CRL of the issuer with ``name`` and subject key identifier ``key_id``: same name,
        and the same key identifier when both sides carry one."""
        for crl in self.by_name.get(name.public_bytes(), ()):
            aki = crl.authority_key_id
            if aki is None or key_id is None or aki == key_id:
                return crl
        return None

    def signed_by(self, crl: RevocationList, issuer: x509.Certificate) -> bool:
        """:meth:`RevocationList.is_signed_by`, remembered for this set (bounded)."""
        key = (id(crl), issuer)
        found = self._signed.get(key)
        if found is None:
            found = crl.is_signed_by(issuer)
            if len(self._signed) >= _SIGNATURES_KEPT:
                self._signed.clear()
            self._signed[key] = found
        return found

    def names_for(self, name: x509.Name) -> tuple[RevocationList, ...]:
        """Every CRL naming ``name`` as its issuer, whatever its key identifier."""
        return self.by_name.get(name.public_bytes(), ())

    def describe(self) -> str:
        """A short description for log lines."""
        parts = [f"{crl.source} (#{crl.number}, {len(crl.entries)} revoked)" for crl in self.crls]
        return ", ".join(parts) or "no CRLs"
