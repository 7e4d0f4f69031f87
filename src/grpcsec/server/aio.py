"""``aio_secure_server``: :func:`~grpcsec.server.secure_server` on ``grpc.aio``.

The same checks, ports, health, reflection, status and background work; ``start``, ``stop``
and ``wait_for_termination`` are coroutines. Build it inside the event loop that will run it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.server._view import AioServerView
from grpcsec.server.config import SecurityConfig
from grpcsec.server.core import ServerCore
from grpcsec.server.handle import ServerHandle
from grpcsec.target import Target

__all__ = ["AioSecureServer", "aio_secure_server"]


class AioSecureServer(ServerHandle):
    """A bound, not yet started, secured ``grpc.aio`` server."""

    def __init__(self, core: ServerCore, server: grpc.aio.Server, addresses: list[Target]) -> None:
        super().__init__(core, addresses)
        self._grpc = server
        self.server: AioServerView = AioServerView(server, owner=self)
        self._health: Any = None  # grpc_health.v1.health.aio.HealthServicer (untyped)
        if core.config.health:
            self._health = health.aio.HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(self._health, self.server)

    async def start(self) -> None:
        """Start background work, health and reflection, then serving; idempotent."""
        if self._started:
            return
        self._started = True
        serving = self._start_services(self.server.registry.names, self._grpc)
        try:
            if self._health is not None:
                for name in serving:
                    await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
            await self._grpc.start()
        except BaseException:
            self._core.stop_background()
            raise

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, drain for ``grace`` seconds (default ``shutdown_grace``), stop
        background work."""
        first = not self._stopped
        self._stopped = True
        if grace is None:
            grace = self._core.config.shutdown_grace
        if first and self._health is not None:
            await self._health.enter_graceful_shutdown()
        await self._grpc.stop(grace)
        if first:
            # Joining the watcher and exporter threads blocks: off the event loop.
            await asyncio.to_thread(self._core.stop_background)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Wait until the server stops (or ``timeout``); ``True`` on timeout, as grpcio."""
        return bool(await self._grpc.wait_for_termination(timeout))

    async def __aenter__(self) -> AioSecureServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def aio_secure_server(
    config: SecurityConfig,
    *,
    interceptors: Sequence[Any] = (),
    options: Sequence[tuple[str, Any]] = (),
    clock: Clock = SYSTEM_CLOCK,
    key_password: bytes | None = None,
) -> AioSecureServer:
    """Check everything ``config`` names, then build and bind a ``grpc.aio.server``."""
    core = ServerCore(
        config,
        aio=True,
        interceptors=interceptors,
        options=options,
        clock=clock,
        key_password=key_password,
    )
    try:
        server = grpc.aio.server(interceptors=list(core.interceptors), options=list(core.options))
        addresses = core.bind(server)
    except BaseException:
        core.close()
        raise
    return AioSecureServer(core, server, addresses)
