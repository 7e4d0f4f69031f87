"""``secure_server``: a ``grpc.server`` with everything a :class:`SecurityConfig` asks for.

Usage::

    secure = secure_server(SecurityConfig.load("grpcsec.toml"))
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(), secure.server)
    secure.start()
    secure.wait_for_termination()

Everything is checked and every port bound when :func:`secure_server` returns (``.port`` is
known then); background work (rotation, the policy watcher, metrics) runs from :meth:`start`
to :meth:`stop`. Health (``grpc.health.v1``, exempt from authentication so load balancers can
call it) reports SERVING for every registered service from start, and NOT_SERVING once stop
begins; reflection, when on, lists the registered services and is *not* exempt.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.server._view import ServerView
from grpcsec.server.config import SecurityConfig
from grpcsec.server.core import ServerCore
from grpcsec.server.handle import ServerHandle
from grpcsec.target import Target

__all__ = ["HEALTH_SERVICE", "SecureServer", "secure_server"]

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class SecureServer(ServerHandle):
    """A bound, not yet started, secured ``grpc.server`` (see the module docstring)."""

    def __init__(
        self,
        core: ServerCore,
        server: grpc.Server,
        addresses: list[Target],
        executor: ThreadPoolExecutor | None,
    ) -> None:
        super().__init__(core, addresses)
        self._grpc = server
        self._executor = executor
        self._lock = threading.Lock()
        self.server: ServerView = ServerView(
            server, start=self.start, stop=self.stop, wait=self.wait_for_termination
        )
        self._health: health.HealthServicer | None = None
        if core.config.health:
            self._health = health.HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(self._health, self.server)

    def start(self) -> None:
        """Start background work, health and reflection, then serving; idempotent."""
        with self._lock:
            if self._started:
                return
            self._started = True
        serving = self._start_services(self.server.registry.names, self._grpc)
        try:
            if self._health is not None:
                for name in serving:
                    self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
            self._grpc.start()
        except BaseException:
            self._core.stop_background()
            raise

    def stop(self, grace: float | None = None) -> threading.Event:
        """Report NOT_SERVING, stop accepting calls, let in-flight calls finish for ``grace``
        seconds (default: the configuration's ``shutdown_grace``), then stop background work.
        Returns an event already set."""
        with self._lock:
            first = not self._stopped
            self._stopped = True
        if grace is None:
            grace = self._core.config.shutdown_grace
        if first and self._health is not None:
            self._health.enter_graceful_shutdown()
        done: threading.Event = self._grpc.stop(grace)
        done.wait()
        if first:
            self._core.stop_background()
            if self._executor is not None:
                self._executor.shutdown(wait=False)
        return done

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Block until the server stops (or ``timeout``); ``True`` on timeout, as grpcio."""
        return bool(self._grpc.wait_for_termination(timeout))

    def __enter__(self) -> SecureServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def secure_server(
    config: SecurityConfig,
    *,
    executor: ThreadPoolExecutor | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    options: Sequence[tuple[str, Any]] = (),
    clock: Clock = SYSTEM_CLOCK,
    key_password: bytes | None = None,
) -> SecureServer:
    """Check everything ``config`` names, then build and bind a ``grpc.server``.

    ``interceptors`` run after grpcsec's guard (they see only admitted calls); ``options`` are
    added after grpcsec's. ``key_password`` unlocks an encrypted key (then the files are served
    without rotation). Raises a :class:`~grpcsec.errors.GrpcsecError` with a one-line reason.
    """
    core = ServerCore(
        config,
        aio=False,
        interceptors=interceptors,
        options=options,
        clock=clock,
        key_password=key_password,
    )
    owned = None
    try:
        if executor is None:
            executor = owned = ThreadPoolExecutor(
                max_workers=config.workers, thread_name_prefix="grpcsec"
            )
        server = grpc.server(
            executor, interceptors=list(core.interceptors), options=list(core.options)
        )
        addresses = core.bind(server)
    except BaseException:
        core.close()
        if owned is not None:
            owned.shutdown(wait=False)
        raise
    return SecureServer(core, server, addresses, owned)
