"""Plain-socket probes: resolve and connect (TCP), and a plaintext HTTP/2 sniff. No grpc.

Each is bounded by ``timeout`` seconds, never raises for a network outcome, and returns a
frozen value. A name is resolved on a helper thread so a stuck resolver cannot outlast the
timeout (the thread is then abandoned to finish on its own).
"""

from __future__ import annotations

import enum
import ipaddress
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = [
    "H2_PREFACE",
    "Endpoint",
    "SniffOutcome",
    "SniffResult",
    "TcpOutcome",
    "TcpResult",
    "open_connection",
    "sniff_h2c",
    "tcp_connect",
]

#: The HTTP/2 client connection preface followed by an empty SETTINGS frame.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
H2_SETTINGS = 4
_TLS_RECORD_TYPES = {21, 22}  # alert, handshake


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A resolved socket address (the one that accepted the TCP connection)."""

    family: int
    sockaddr: tuple[Any, ...]

    def __str__(self) -> str:
        host, port = self.sockaddr[0], self.sockaddr[1]
        return f"[{host}]:{port}" if self.family == socket.AF_INET6 else f"{host}:{port}"


class TcpOutcome(str, enum.Enum):
    """How a TCP connect ended."""

    CONNECTED = "connected"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    DNS_FAILED = "dns_failed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpResult:
    """The TCP probe: the outcome, the address that answered, and the error text."""

    outcome: TcpOutcome
    endpoint: Endpoint | None = None
    error: str | None = None
    seconds: float = 0.0


def _resolve(host: str, port: int, timeout: float) -> list[Endpoint] | TcpResult:
    """Addresses for ``host``; a name is resolved on a helper thread so a stuck resolver
    cannot outlast ``timeout`` (the thread is left to finish on its own)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        numeric = False
    else:
        numeric = True
    box: list[list[Any] | OSError] = []

    def lookup() -> None:
        flags = socket.AI_NUMERICHOST if numeric else 0
        try:
            box.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=flags))
        except OSError as exc:
            box.append(exc)

    if numeric:
        lookup()
    else:
        worker = threading.Thread(target=lookup, name="grpcsec-doctor-resolve", daemon=True)
        worker.start()
        worker.join(timeout)
    if not box:
        return TcpResult(
            outcome=TcpOutcome.TIMEOUT, error=f"resolving {host} took longer than {timeout:g} s"
        )
    found = box[0]
    if isinstance(found, OSError):
        return TcpResult(outcome=TcpOutcome.DNS_FAILED, error=f"{host}: {found}")
    return [Endpoint(family, sockaddr) for family, _, _, _, sockaddr in found]


def open_connection(endpoint: Endpoint, timeout: float) -> socket.socket:
    """A connected socket to ``endpoint`` (raises ``OSError``)."""
    sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(endpoint.sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


def tcp_connect(host: str, port: int, *, timeout: float) -> TcpResult:
    """Resolve ``host`` and connect to each address in turn until one accepts, all within
    ``timeout`` seconds. A connect that times out (SYNs dropped: a firewall, or a listener
    whose accept queue is full) is ``TIMEOUT``."""
    start = time.monotonic()
    resolved = _resolve(host, port, timeout)
    if isinstance(resolved, TcpResult):
        return resolved
    outcomes: list[tuple[TcpOutcome, str]] = []
    for endpoint in resolved:
        remaining = timeout - (time.monotonic() - start)
        if remaining <= 0:
            outcomes.append((TcpOutcome.TIMEOUT, f"{endpoint}: no time left"))
            break
        try:
            open_connection(endpoint, remaining).close()
        except ConnectionRefusedError:
            outcomes.append((TcpOutcome.REFUSED, f"{endpoint}: connection refused"))
        except TimeoutError:
            outcomes.append(
                (TcpOutcome.TIMEOUT, f"{endpoint}: no answer to the TCP connect in time")
            )
        except OSError as exc:
            text = os.strerror(exc.errno) if exc.errno else str(exc)
            outcomes.append((TcpOutcome.FAILED, f"{endpoint}: {text}"))
        else:
            return TcpResult(
                outcome=TcpOutcome.CONNECTED,
                endpoint=endpoint,
                seconds=time.monotonic() - start,
            )
    kinds = [kind for kind, _ in outcomes]
    worst = next(
        (k for k in (TcpOutcome.TIMEOUT, TcpOutcome.FAILED) if k in kinds), TcpOutcome.REFUSED
    )
    return TcpResult(
        outcome=worst,
        error="; ".join(text for _, text in outcomes) or "no address",
        seconds=time.monotonic() - start,
    )


class SniffOutcome(str, enum.Enum):
    """What answered an HTTP/2 preface sent in plaintext."""

    HTTP2 = "http2"
    TLS = "tls"
    CLOSED = "closed"
    OTHER = "other"
    TIMEOUT = "timeout"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class SniffResult:
    """The plaintext probe's outcome and, for ``OTHER``, the first bytes (printable only)."""

    outcome: SniffOutcome
    detail: str | None = None


def sniff_h2c(endpoint: Endpoint, *, timeout: float) -> SniffResult:  # noqa: PLR0911 (a decision table: one return per case)
    """Send the HTTP/2 preface in plaintext and classify the first answer: a SETTINGS frame is
    a plaintext gRPC (h2c) server; a TLS record or a close is a TLS server."""
    try:
        with open_connection(endpoint, timeout) as sock:
            sock.sendall(H2_PREFACE)
            data = sock.recv(64)
    except TimeoutError:
        return SniffResult(outcome=SniffOutcome.TIMEOUT)
    except (ConnectionResetError, BrokenPipeError):
        return SniffResult(outcome=SniffOutcome.CLOSED)
    except OSError as exc:
        return SniffResult(outcome=SniffOutcome.FAILED, detail=str(exc))
    if not data:
        return SniffResult(outcome=SniffOutcome.CLOSED)
    if len(data) >= 9 and data[3] == H2_SETTINGS:
        return SniffResult(outcome=SniffOutcome.HTTP2)
    if data[0] in _TLS_RECORD_TYPES and data[1:2] == b"\x03":
        return SniffResult(outcome=SniffOutcome.TLS)
    shown = "".join(chr(b) if 32 <= b < 127 else "." for b in data[:32])
    return SniffResult(outcome=SniffOutcome.OTHER, detail=shown)
