"""Test servers built from credential *objects* (Greeter, health, reflection; sync or asyncio).

Before ``grpcsec.server`` this module served ``grpcsec serve``; now the CLI, the demo and users
build servers from a :class:`~grpcsec.server.SecurityConfig`, and the tests that need a server
around an in-memory ``ServerTLS`` or a ``ReloadingServerTLS`` object use this one.

:class:`ServeConfig` is the parsed configuration; :func:`start_sync` and :func:`start_aio` build,
bind and start the server and return a handle with the real bound address (port 0 picks a free
port). Binding errors from grpcio ("Failed to bind to address") are re-raised as grpcsec errors
that say whether the port is taken; credentials were already validated when ``ServerTLS`` was
built. Plaintext needs ``tls=None`` *and* ``insecure=True``: there is no silent fallback.

Each ``SayHello`` logs the caller's identity (never keys) on the ``grpcsec.serve`` logger.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from grpcsec.demo.greeter import aio_greeter_handler, greeter_handler
from grpcsec.demo.helloworld import SERVICE_NAME
from grpcsec.errors import ConfigurationError
from grpcsec.server.bind import bind_all
from grpcsec.target import Target
from grpcsec.text import get_logger

__all__ = [
    "DEFAULT_SERVER_OPTIONS",
    "AioRunningServer",
    "RunningServer",
    "ServeConfig",
    "start_aio",
    "start_sync",
]

log = get_logger("grpcsec.serve")

# grpcio sets SO_REUSEPORT by default, so a second server on a busy port binds *too* and the
# kernel splits connections between them; grpcsec refuses to share a port silently.
DEFAULT_SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (("grpc.so_reuseport", 0),)

_HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class ServerCredentialSource(Protocol):
    """What serves TLS: a fixed :class:`~grpcsec.credentials.ServerTLS`, or a rotating source
    whose ``credentials()`` are grpcio dynamic credentials."""

    @property
    def mutual(self) -> bool:
        """Whether client certificates are required and verified."""
        ...

    def credentials(self) -> grpc.ServerCredentials:
        """The grpcio server credentials to bind with."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeConfig:
    """Where and how to serve. ``tls=None`` is refused unless ``insecure`` says so by name.

    ``interceptors`` are sync ``grpc.ServerInterceptor`` objects, or aio ones for
    :func:`start_aio` (authentication and authorization plug in here).
    """

    listen: Target
    tls: ServerCredentialSource | None
    insecure: bool = False
    interceptors: tuple[Any, ...] = ()
    workers: int = 8
    options: tuple[tuple[str, Any], ...] = DEFAULT_SERVER_OPTIONS

    def __post_init__(self) -> None:
        if self.tls is None and not self.insecure:
            raise ConfigurationError(
                "no TLS configuration: pass a certificate and key, or ask for plaintext with "
                "--insecure"
            )
        if self.tls is not None and self.insecure:
            raise ConfigurationError("--insecure and a certificate exclude each other")

    @property
    def mode(self) -> str:
        """``mtls``, ``tls`` or ``plaintext``, for the startup line."""
        if self.tls is None:
            return "plaintext"
        return "mtls" if self.tls.mutual else "tls"


def _bind(server: Any, config: ServeConfig) -> Target:
    """The library's binding, with its one-line errors."""
    tls = config.tls
    return bind_all(server, (config.listen,), None if tls is None else tls.credentials)[0]


def _add_services_sync(server: grpc.Server) -> health.HealthServicer:
    server.add_generic_rpc_handlers((greeter_handler(),))
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", SERVICE_NAME):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (SERVICE_NAME, _HEALTH_SERVICE, reflection.SERVICE_NAME), server
    )
    return health_servicer


@dataclass(slots=True)
class RunningServer:
    """A started sync server; ``address`` has the real port."""

    server: grpc.Server
    address: Target
    health: health.HealthServicer

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, let in-flight calls finish for ``grace`` seconds, then stop."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()


def start_sync(config: ServeConfig) -> RunningServer:
    """Build, bind and start a ``grpc.server`` (handlers run in a thread pool)."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=config.workers),
        interceptors=list(config.interceptors),
        options=list(config.options),
    )
    health_servicer = _add_services_sync(server)
    address = _bind(server, config)
    server.start()
    return RunningServer(server, address, health_servicer)


@dataclass(slots=True)
class AioRunningServer:
    """A started ``grpc.aio`` server; ``address`` has the real port."""

    server: grpc.aio.Server
    address: Target
    health: Any  # grpc_health.v1.health.aio.HealthServicer (untyped)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls and let in-flight calls finish for ``grace`` seconds."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def start_aio(config: ServeConfig) -> AioRunningServer:
    """Build, bind and start a ``grpc.aio.server`` on the running event loop."""
    server = grpc.aio.server(interceptors=list(config.interceptors), options=list(config.options))
    server.add_generic_rpc_handlers((aio_greeter_handler(),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (SERVICE_NAME, _HEALTH_SERVICE, reflection.SERVICE_NAME), server
    )
    address = _bind(server, config)
    await server.start()
    await asyncio.sleep(0)
    return AioRunningServer(server, address, health_servicer)
