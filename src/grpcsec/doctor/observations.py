"""The values a doctor run accumulates: what was asked, and what each probe saw. No grpc.

:class:`Inputs` is fixed before any network traffic; :class:`Observations` grows stage by stage
(an absent probe result means the probe did not run). :func:`grpcsec.doctor.checks.evaluate`
judges any combination of them without I/O, which is how most of the doctor is unit-tested.
"""

from __future__ import annotations

from dataclasses import dataclass

from grpcsec.doctor.client import ClientMaterial
from grpcsec.doctor.probe import TlsProbe
from grpcsec.doctor.roots import Roots
from grpcsec.doctor.tcp import SniffResult, TcpResult
from grpcsec.pki.crl import RevocationList
from grpcsec.target import Target

__all__ = ["CallResult", "Inputs", "Observations"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Inputs:
    """What the user asked for. ``server_name`` is the name verified and sent as SNI (the
    ``--server-name`` or the target's host); ``roots`` is ``None`` only for ``insecure``;
    ``crls`` are the ``--crl`` lists (revocation is checked only when there are some)."""

    target: Target
    server_name: str
    server_name_given: bool = False
    insecure: bool = False
    roots: Roots | None = None
    client: ClientMaterial | None = None
    token_given: bool = False
    timeout: float = 5.0
    crls: tuple[RevocationList, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CallResult:
    """The gRPC health call: status code name (``OK`` on success), details, the serving
    status when the call succeeded, and how long it took."""

    code: str
    details: str = ""
    health: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Observations:
    """Probe results so far. ``tls`` is the handshake without a client certificate;
    ``versions`` one handshake per TLS version; ``client_tls`` the handshake with the given
    client certificate; ``sniff`` the plaintext HTTP/2 probe."""

    tcp: TcpResult | None = None
    tls: TlsProbe | None = None
    sniff: SniffResult | None = None
    versions: tuple[TlsProbe, ...] = ()
    client_tls: TlsProbe | None = None
    call: CallResult | None = None

    def served_chain(self) -> tuple[tuple[bytes, ...], bool]:
        """The chain from the first handshake that recorded one, and whether it is whole
        (``False``: only the leaf could be read)."""
        for probe in (self.tls, self.client_tls, *self.versions):
            if probe is not None and probe.served_chain:
                return probe.served_chain, probe.served_chain_whole
        return (), False
