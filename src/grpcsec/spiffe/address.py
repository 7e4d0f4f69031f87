"""Where the SPIFFE Workload API listens: one parser for the flag, the config key and
``SPIFFE_ENDPOINT_SOCKET``. No grpc import.

The SPIFFE Workload Endpoint specification names the address as a URI: ``unix:///path`` (a bare
absolute path and ``unix:path`` are read as paths too) or ``tcp://IP:PORT`` (an IP address, no
host name, no path). Query, fragment and user-info are refused, as the specification says. What
is not checked here: that the socket exists or that an agent answers on it
(:class:`grpcsec.spiffe.workload.WorkloadAPISource` does that, with a bounded wait). A TCP
Workload API has no way to tell workloads apart by their process, so agents offer it for tests
and special set-ups only; prefer the Unix socket.
"""

from __future__ import annotations

import enum
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from grpcsec.errors import ConfigurationError

__all__ = ["ENDPOINT_VARIABLE", "Transport", "WorkloadAPIAddress"]

ENDPOINT_VARIABLE = "SPIFFE_ENDPOINT_SOCKET"
"""The environment variable SPIRE, Istio and the SPIFFE helpers use for the address."""


class Transport(enum.Enum):
    """How the Workload API is reached."""

    UNIX = "unix"
    TCP = "tcp"


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadAPIAddress:
    """A parsed Workload API address: a Unix socket ``path``, or a TCP ``host`` and ``port``."""

    transport: Transport = Transport.UNIX
    path: Path | None = None
    host: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str, *, what: str = "--spiffe-socket") -> WorkloadAPIAddress:
        """``unix:///path``, ``unix:path``, an absolute path, or ``tcp://IP:PORT``. ``what``
        names the setting in errors."""
        value = text.strip()
        bad = f"{what}: {text!r} is not a Workload API address"
        if not value:
            raise ConfigurationError(f"{what}: empty Workload API address")
        if value.startswith("/"):
            return cls(path=Path(value))
        parts = urlsplit(value)
        if parts.scheme not in {"unix", "tcp"}:
            raise ConfigurationError(f"{bad} (use unix:///path/to/agent.sock or tcp://IP:PORT)")
        if parts.query or parts.fragment or "@" in parts.netloc:
            raise ConfigurationError(f"{bad} (no user, query or fragment allowed)")
        if parts.scheme == "tcp":
            return cls._tcp(parts.netloc, parts.path, bad)
        if parts.netloc:
            raise ConfigurationError(
                f"{bad} (unix://HOST/... has an authority; write unix:///absolute/path)"
            )
        if not parts.path:
            raise ConfigurationError(f"{bad} (no socket path)")
        return cls(path=Path(parts.path).absolute())

    @classmethod
    def _tcp(cls, netloc: str, path: str, bad: str) -> WorkloadAPIAddress:
        if path and path != "/":
            raise ConfigurationError(f"{bad} (tcp://IP:PORT takes no path)")
        if ":" not in netloc.rpartition("]")[2]:
            raise ConfigurationError(f"{bad} (tcp://IP:PORT needs a port from 1 to 65535)")
        host, _, port_text = netloc.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            address = ipaddress.ip_address(host)
        except ValueError as exc:
            raise ConfigurationError(f"{bad} (tcp://IP:PORT needs an IP address)") from exc
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigurationError(f"{bad} (tcp://IP:PORT needs a port from 1 to 65535)")
        return cls(transport=Transport.TCP, host=str(address), port=int(port_text))

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None
    ) -> WorkloadAPIAddress | None:
        """The address in ``SPIFFE_ENDPOINT_SOCKET``, or ``None`` when it is unset or empty."""
        value = (os.environ if environ is None else environ).get(ENDPOINT_VARIABLE, "")
        return cls.parse(value, what=ENDPOINT_VARIABLE) if value.strip() else None

    @property
    def hostport(self) -> str:
        """``IP:PORT`` (IPv6 in brackets) for TCP; empty for a Unix socket."""
        if self.transport is not Transport.TCP:
            return ""
        host = f"[{self.host}]" if self.host and ":" in self.host else str(self.host)
        return f"{host}:{self.port}"

    @property
    def uri(self) -> str:
        """``unix:///path`` or ``tcp://IP:PORT``: the form py-spiffe takes and messages show."""
        if self.transport is Transport.TCP:
            return f"tcp://{self.hostport}"
        return f"unix://{self.path}"

    def __str__(self) -> str:
        return self.uri
