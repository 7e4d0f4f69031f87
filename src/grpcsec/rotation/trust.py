"""Trust-bundle changes that would lock peers out, and the log of CAs that clients came from.

A rotated CA bundle can be perfectly valid and still cause an outage: drop the CA that signs the
clients that are calling right now and every new connection of theirs fails. A CA rollover
avoids that in three steps (serve a bundle with the old and the new CA; re-issue the leaves
under the new CA; remove the old CA once nothing uses it), and :func:`check_trust_change`
refuses the changes that skip a step:

1. **No overlap.** A new bundle that shares no CA with the bundle in service replaces every CA
   at once; that is a rollover without its first step. Refused unless
   ``allow_replacement=True`` (the explicit, named way to switch to an unrelated PKI).
2. **Required CAs.** A bundle that lacks a CA listed in ``required`` is refused (a static list
   for deployments that know their client issuers).
3. **CAs in use.** A bundle that drops a CA which verified a client within ``grace`` seconds
   is refused. The evidence comes from :class:`ClientIssuerLog`, which a server fills by calling
   ``observe`` from a handler or interceptor (grpcio does not tell the fetcher who connects).
   The refusal lifts by itself once that CA's clients have been quiet for ``grace``: the
   watcher re-checks refused bundles of this kind at every poll.

CAs are compared by subject and key identifier (SKI, or the SPKI hash when there is no SKI),
so a re-issued CA certificate with the same key counts as the same CA. A client leaf is
attributed to its issuer by issuer name and authority key identifier; a leaf without an AKI is
attributed to every CA with that name (so the rule errs towards refusing).

Not checked: whether *peers* trust the new bundle's CAs, expiry of the CAs, and clients that
never made a call (they leave no evidence; list their CA in ``required``).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from grpcsec.errors import MaterialError, RotationError
from grpcsec.pki import load_certificates

__all__ = ["CaRef", "ClientIssuerLog", "check_trust_change"]


@dataclass(frozen=True, slots=True)
class CaRef:
    """A CA's identity for bundle comparison: subject (DER) and key identifier."""

    subject: bytes
    key_id: bytes | None

    @classmethod
    def of(cls, ca: x509.Certificate) -> CaRef:
        """The reference of a CA certificate (its SKI, or SHA-1 of its public key as RFC 5280)."""
        try:
            key_id = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            spki = ca.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            key_id = hashlib.sha1(spki, usedforsecurity=False).digest()
        return cls(ca.subject.public_bytes(), key_id)

    @classmethod
    def issuer_of(cls, certificate: x509.Certificate) -> CaRef:
        """The reference of whoever issued ``certificate`` (issuer name and AKI, if any)."""
        try:
            aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
            key_id = aki.value.key_identifier
        except x509.ExtensionNotFound:
            key_id = None
        return cls(certificate.issuer.public_bytes(), key_id)

    def covers(self, issuer: CaRef) -> bool:
        """Whether this CA may be the issuer ``issuer`` refers to."""
        return self.subject == issuer.subject and (
            issuer.key_id is None or issuer.key_id == self.key_id
        )


def _name(ca: x509.Certificate) -> str:
    return ca.subject.rfc4514_string() or "<empty subject>"


class _AuthContextCarrier(Protocol):
    def auth_context(self) -> Mapping[str, Sequence[bytes]]: ...


class ClientIssuerLog:
    """When each CA last verified a client certificate, from evidence the server records.

    Call :meth:`observe` with the ``ServicerContext`` of an RPC (sync or aio) or
    :meth:`observe_pem` with a client certificate. The cost per call is a dictionary lookup
    after the first sight of a certificate (leaves are parsed once and cached, up to
    ``cache_size`` distinct leaves). ``clock`` is a monotonic clock in seconds. Thread-safe.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, cache_size: int = 4096
    ) -> None:
        self._clock = clock
        self._cache_size = cache_size
        self._issuers: dict[bytes, tuple[CaRef, ...]] = {}
        self._seen: dict[CaRef, float] = {}
        self._lock = threading.Lock()

    def observe(self, context: _AuthContextCarrier) -> None:
        """Record the issuers of the caller's certificate (nothing when it presented none)."""
        auth = context.auth_context()
        leaf = auth.get("x509_pem_cert")
        if not leaf:
            return
        chain = auth.get("x509_pem_cert_chain")
        self.observe_pem(bytes(leaf[0]), bytes(chain[0]) if chain else None)

    def observe_pem(self, leaf_pem: bytes, chain_pem: bytes | None = None) -> None:
        """Record the issuers of a client leaf and of the intermediates it sent."""
        key = leaf_pem + (chain_pem or b"")
        refs = self._issuers.get(key)
        if refs is None:
            refs = self._parse(leaf_pem, chain_pem)
            with self._lock:
                if len(self._issuers) >= self._cache_size:
                    self._issuers.clear()
                self._issuers[key] = refs
        now = self._clock()
        for ref in refs:
            self._seen[ref] = now

    @staticmethod
    def _parse(leaf_pem: bytes, chain_pem: bytes | None) -> tuple[CaRef, ...]:
        certificates: list[x509.Certificate] = []
        with contextlib.suppress(MaterialError):
            certificates.extend(load_certificates(leaf_pem))
            if chain_pem:
                certificates.extend(load_certificates(chain_pem))
        return tuple(CaRef.issuer_of(c) for c in certificates)

    def last_seen(self, ca: x509.Certificate) -> float | None:
        """The clock reading when ``ca`` last verified a client, or ``None``."""
        ref = CaRef.of(ca)
        times = [when for issuer, when in list(self._seen.items()) if ref.covers(issuer)]
        return max(times) if times else None

    def now(self) -> float:
        """The log's clock."""
        return self._clock()


def check_trust_change(
    previous: Sequence[x509.Certificate],
    new: Sequence[x509.Certificate],
    *,
    what: str,
    source: str,
    required: Iterable[x509.Certificate] = (),
    log: ClientIssuerLog | None = None,
    grace: float = 600.0,
    allow_replacement: bool = False,
) -> None:
    """Raise :class:`RotationError` if replacing ``previous`` by ``new`` would lock peers out.

    ``what`` names the bundle in the message (``client-CA bundle``); ``source`` is its file.
    The rules are in the module docstring.
    """
    new_refs = {CaRef.of(c) for c in new}
    for ca in required:
        if CaRef.of(ca) not in new_refs:
            raise RotationError(
                f"the new {what} lacks the required CA '{_name(ca)}'; add it back",
                path=source,
            )
    previous_refs = {CaRef.of(c) for c in previous}
    if previous and not allow_replacement and not previous_refs & new_refs:
        listed = ", ".join(f"'{_name(c)}'" for c in previous)
        raise RotationError(
            f"the new {what} shares no CA with the one in service ({listed}), so every peer "
            "would be locked out at once; roll over instead: serve the old and the new CA "
            "together, re-issue the certificates, then remove the old CA",
            path=source,
        )
    if log is None:
        return
    now = log.now()
    for ca in previous:
        if CaRef.of(ca) in new_refs:
            continue
        seen = log.last_seen(ca)
        if seen is not None and now - seen < grace:
            raise RotationError(
                f"the new {what} drops the CA '{_name(ca)}', which verified a client "
                f"{now - seen:.0f}s ago; re-issue those clients' certificates first (the "
                f"bundle is accepted once the CA has not been seen for {grace:.0f}s)",
                path=source,
            )
