"""Where a bearer token may be sent: never in clear, except by name to a loopback target.

No grpc. Client interceptors are not held back by grpcio's security-level gate (a
``grpc.metadata_call_credentials`` plugin is, but costs a thread per call), so grpcsec applies
its own: :func:`check_token_transport` refuses a plaintext channel unless the caller passes
``allow_plaintext_token_on_loopback=True`` *and* the target is a loopback address or a Unix
socket. Not checked here: whether a TLS channel verifies its server (the channel credentials do).
"""

from __future__ import annotations

from grpcsec.errors import ConfigurationError
from grpcsec.target import Target

__all__ = ["check_token_transport"]


def _is_local_target(target: str) -> bool:
    text = target.strip()
    lowered = text.lower()
    if lowered.startswith(("unix:", "unix-abstract:")):
        return True
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if lowered.startswith(prefix):
            text = text[len(prefix) :]
            break
    if "," in text:
        return all(_is_local_target(part) for part in text.split(","))
    try:
        return Target.parse(text).is_loopback
    except ConfigurationError:
        return False


def check_token_transport(
    *, secure: bool, target: str, allow_plaintext_token_on_loopback: bool
) -> None:
    """Refuse to send tokens in clear: a plaintext channel is allowed only with
    ``allow_plaintext_token_on_loopback`` *and* a loopback or Unix-socket ``target``."""
    if secure:
        return
    if not allow_plaintext_token_on_loopback:
        raise ConfigurationError(
            f"refusing to send a bearer token over a plaintext channel to {target}: use TLS, or "
            "for a loopback test server pass allow_plaintext_token_on_loopback=True"
        )
    if not _is_local_target(target):
        raise ConfigurationError(
            f"refusing to send a bearer token in clear to {target}: "
            "allow_plaintext_token_on_loopback only allows loopback addresses and Unix sockets"
        )
