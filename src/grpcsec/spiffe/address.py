"""Where the SPIFFE Workload API listens: one parser for the flag, the config key and
``SPIFFE_ENDPOINT_SOCKET``. No grpc import.

The SPIFFE Workload Endpoint specification names the address as a URI: ``unix:///path`` (or the
relative-looking ``unix:path``, which is read as a path too) or ``tcp://IP:PORT``. py-spiffe
0.3.2, which grpcsec uses as the client, dials Unix sockets only, so a ``tcp://`` address is
parsed (for a precise message) and refused with one line instead of failing deep inside the
client. What is not checked here: that the socket exists or that an agent answers on it
(:class:`grpcsec.spiffe.workload.WorkloadAPISource` does that, with a bounded wait).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from grpcsec.errors import ConfigurationError

__all__ = ["ENDPOINT_VARIABLE", "WorkloadAPIAddress"]

ENDPOINT_VARIABLE = "SPIFFE_ENDPOINT_SOCKET"
"""The environment variable SPIRE, Istio and the SPIFFE helpers use for the address."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadAPIAddress:
    """A parsed Workload API address: a Unix socket path (the only kind that can be dialled)."""

    path: Path

    @classmethod
    def parse(cls, text: str, *, what: str = "--spiffe-socket") -> WorkloadAPIAddress:
        """``unix:///path``, ``unix:path`` or an absolute path; ``tcp://IP:PORT`` is recognised
        and refused (py-spiffe speaks Unix sockets only). ``what`` names the setting in errors."""
        value = text.strip()
        bad = f"{what}: {text!r} is not a Workload API address"
        if not value:
            raise ConfigurationError(f"{what}: empty Workload API address")
        if value.startswith("/"):
            return cls(path=Path(value))
        parts = urlsplit(value)
        if parts.scheme == "tcp":
            try:
                ipaddress.ip_address(parts.hostname or "")
                port = parts.port
            except ValueError as exc:
                raise ConfigurationError(f"{bad} (tcp://IP:PORT needs an IP address)") from exc
            if port is None:
                raise ConfigurationError(f"{bad} (tcp://IP:PORT needs a port)")
            raise ConfigurationError(
                f"{what}: {text!r} is a TCP Workload API address; the SPIFFE client grpcsec "
                "uses (py-spiffe) dials Unix sockets only: give unix:///path/to/agent.sock"
            )
        if parts.scheme != "unix":
            raise ConfigurationError(f"{bad} (use unix:///path/to/agent.sock)")
        if parts.query or parts.fragment:
            raise ConfigurationError(f"{bad} (no query or fragment allowed)")
        if parts.netloc:
            raise ConfigurationError(
                f"{bad} (unix://HOST/... has an authority; write unix:///absolute/path)"
            )
        if not parts.path:
            raise ConfigurationError(f"{bad} (no socket path)")
        return cls(path=Path(parts.path).absolute())

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None
    ) -> WorkloadAPIAddress | None:
        """The address in ``SPIFFE_ENDPOINT_SOCKET``, or ``None`` when it is unset or empty."""
        value = (os.environ if environ is None else environ).get(ENDPOINT_VARIABLE, "")
        return cls.parse(value, what=ENDPOINT_VARIABLE) if value.strip() else None

    @property
    def uri(self) -> str:
        """``unix:///path``: the form py-spiffe takes and the one shown in messages."""
        return f"unix://{self.path}"

    def __str__(self) -> str:
        return self.uri
