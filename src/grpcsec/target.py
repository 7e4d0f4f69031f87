"""Network targets: ``HOST:PORT`` parsed once, for listening, dialling and probing. No grpc.

Accepted: ``name:port``, ``1.2.3.4:port``, ``[::1]:port``. A bare IPv6 address without brackets
is refused because its last colon is ambiguous. Port 0 is accepted only where the caller allows
it (listening). To listen, :meth:`Target.listen` also takes ``:PORT`` for all interfaces, as
grpc-go and ``net.Listen`` do (``[::]``, which grpc core binds dual-stack). Not checked: that
the name resolves.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from grpcsec.errors import ConfigurationError

__all__ = ["Target"]

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-_]*[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Target:
    """A host (name, IPv4 or IPv6 address, without brackets) and a port."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str, *, allow_port_zero: bool = False) -> Target:
        """Parse ``HOST:PORT``; raises :class:`ConfigurationError` naming what is wrong."""
        raw = text.strip()
        if raw.startswith("["):
            host, sep, port_text = raw[1:].partition("]:")
            if not sep:
                raise ConfigurationError(f"invalid address {text!r}: use [IPv6]:PORT")
            try:
                ipaddress.IPv6Address(host)
            except ValueError as exc:
                raise ConfigurationError(
                    f"invalid address {text!r}: {host!r} is not an IPv6 address"
                ) from exc
        else:
            host, sep, port_text = raw.rpartition(":")
            if not sep or not host:
                raise ConfigurationError(f"invalid address {text!r}: use HOST:PORT")
            if ":" in host:
                raise ConfigurationError(
                    f"invalid address {text!r}: put an IPv6 address in brackets, [{host}]:PORT"
                )
            if not _NAME.match(host):
                raise ConfigurationError(f"invalid address {text!r}: bad host name {host!r}")
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ConfigurationError(f"invalid address {text!r}: the port must be 0-65535")
        port = int(port_text)
        if port == 0 and not allow_port_zero:
            raise ConfigurationError(f"invalid address {text!r}: port 0 only makes sense to listen")
        return cls(host=host, port=port)

    @classmethod
    def listen(cls, text: str) -> Target:
        """A listening address: ``HOST:PORT`` with port 0 allowed, or ``:PORT`` for all
        interfaces (``[::]:PORT``)."""
        raw = text.strip()
        if raw.startswith(":") and raw[1:].isdigit():
            raw = f"[::]{raw}"
        return cls.parse(raw, allow_port_zero=True)

    @property
    def is_ip(self) -> bool:
        """Whether the host is an IP address (so TLS name checks need an IP SAN)."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def is_loopback(self) -> bool:
        """Whether the host is a loopback address or ``localhost``."""
        if self.host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def with_port(self, port: int) -> Target:
        """The same host with another port (the real port after binding port 0)."""
        return Target(self.host, port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
