"""Check the SPIFFE ID a server presents, for Python clients that cannot. No grpc import.

grpcio's Python channel verifies the server's chain and its DNS/IP SAN, and offers no hook to
read or check the URI SAN (the SPIFFE ID) of the certificate it accepted. So ``grpcsec call
--server-spiffe-id`` makes one extra TLS handshake with Python's ``ssl`` to the same address,
with the same client SVID, the same bundles and the same server name, reads the leaf the server
presents, and compares its SPIFFE ID (gRPC's rule: exactly one URI SAN, a valid SPIFFE ID) with
the expected one. What it does not prove: that the connection of the gRPC call reaches the same
server process (behind a load balancer two connections can land on different backends). Use
the server-side allow-lists for access decisions; this check catches a wrong or impostor
service behind the name. The private key is written for ``ssl`` (which only loads keys from
files) to a private temporary directory (0700, key 0600) and removed at once.
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
from pathlib import Path

from cryptography import x509

from grpcsec.errors import AuthenticationError, ConfigurationError, IssuanceError
from grpcsec.identity import Peer
from grpcsec.pki.names import SpiffeId
from grpcsec.rotation.sources import RawMaterial
from grpcsec.target import Target

__all__ = ["check_server_spiffe_id", "presented_spiffe_id"]


def presented_spiffe_id(
    target: Target, material: RawMaterial, *, server_name: str | None, timeout: float
) -> str | None:
    """The SPIFFE ID of the leaf ``target`` presents to a verified handshake with ``material``
    (``None`` when it has none); :class:`AuthenticationError` when the handshake fails."""
    if material.chain is None or material.key is None or material.trust is None:
        raise ConfigurationError("checking the server's SPIFFE ID needs an SVID and bundles")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=material.trust.decode("ascii"))
    context.set_alpn_protocols(["h2"])
    with tempfile.TemporaryDirectory(prefix="grpcsec-svid-") as directory:
        cert, key = Path(directory) / "svid.pem", Path(directory) / "svid.key"
        cert.write_bytes(material.chain)
        descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(material.key)
        context.load_cert_chain(cert, key)
    try:
        with (
            socket.create_connection((target.host, target.port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=server_name or target.host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        raise AuthenticationError(
            f"cannot check the server's SPIFFE ID: the TLS handshake with {target} failed: {exc}",
            reason="handshake_failed",
        ) from exc
    if der is None:  # pragma: no cover (a verified handshake always has a peer certificate)
        return None
    return Peer.from_certificate(x509.load_der_x509_certificate(der)).spiffe_id


def check_server_spiffe_id(
    expected: str,
    target: Target,
    material: RawMaterial,
    *,
    server_name: str | None,
    timeout: float,
) -> str:
    """Raise :class:`AuthenticationError` unless ``target`` presents ``expected``; returns it."""
    try:
        wanted = str(SpiffeId.parse(expected))
    except IssuanceError as exc:
        raise ConfigurationError(f"--server-spiffe-id: {exc.message}") from exc
    found = presented_spiffe_id(target, material, server_name=server_name, timeout=timeout)
    if found != wanted:
        shown = found or "no SPIFFE ID"
        raise AuthenticationError(
            f"the server at {target} presented {shown}, not {wanted}", reason="wrong_server"
        )
    return found
