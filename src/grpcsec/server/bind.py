"""Binding the listening ports, with errors that say what is wrong instead of grpcio's
``Failed to bind``: a port already taken (grpcsec turns ``SO_REUSEPORT`` off, so a second
server cannot silently share it) or an address this machine does not have."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any

from grpcsec.errors import ConfigurationError
from grpcsec.target import Target

__all__ = ["bind_all", "port_in_use"]


def port_in_use(target: Target) -> bool:
    """Whether a test bind of ``target`` fails (so the port is taken, or the host absent)."""
    family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((target.host, target.port))
        except OSError:
            return True
    return False


def _bind(server: Any, target: Target, credentials: Callable[[], Any] | None) -> Target:  # noqa: ANN401 (grpc)
    address = str(target)
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:  # grpcio's credentials serve one port each
            port = server.add_secure_port(address, credentials())
    except RuntimeError as exc:
        if target.port and port_in_use(target):
            reason = "the port is already in use"
        else:
            reason = "the address is not available on this machine"
        raise ConfigurationError(f"cannot listen on {address}: {reason}") from exc
    if port == 0:
        raise ConfigurationError(f"cannot listen on {address}")
    return target.with_port(port)


def bind_all(
    server: Any,  # noqa: ANN401 (grpc servers are untyped)
    targets: Sequence[Target],
    credentials: Callable[[], Any] | None,
) -> list[Target]:
    """Add every address to ``server`` with fresh ``credentials()`` each (``None``:
    plaintext, which the configuration only allows when asked for by name); the bound
    addresses, with real ports."""
    return [_bind(server, target, credentials) for target in targets]
