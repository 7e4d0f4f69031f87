"""The ``grpc.Server`` a :class:`~grpcsec.server.SecureServer` hands to its user.

It is a real ``grpc.Server`` (``isinstance`` holds, generated ``add_*Servicer_to_server``
functions work) that forwards to the server grpcsec built, with three differences:

* it remembers the service names registered on it, so health and reflection can list them;
* ``add_insecure_port`` and ``add_secure_port`` are refused: the ports come from
  :class:`~grpcsec.server.SecurityConfig` (a port added by hand would skip the checked
  credentials, or serve plaintext that nobody asked for by name);
* ``start``, ``stop`` and ``wait_for_termination`` are the secure server's own, so rotation,
  metrics and the policy watcher start and stop with the server whichever object is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import grpc

from grpcsec.errors import ConfigurationError

__all__ = ["AioServerView", "ServerView", "service_names"]

_PORTS_REFUSED = (
    "ports come from SecurityConfig.listen (a port added by hand would skip grpcsec's "
    "credentials); add the address to listen instead"
)


def service_names(handlers: Iterable[Any]) -> list[str]:
    """The names of generic handlers that know theirs (``grpc.method_handlers_generic_handler``
    and generated code do)."""
    names = []
    for handler in handlers:
        name = getattr(handler, "service_name", None)
        if callable(name):
            value = name()
            if isinstance(value, str) and value:
                names.append(value)
    return names


class _Registry:
    """The registration half, shared by both views."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def record(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self.names:
                self.names.append(name)


class _Registering:
    """Registration and port refusal, the same for both views."""

    _grpcsec_server: Any
    registry: _Registry

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[Any]) -> None:
        handlers = tuple(generic_rpc_handlers)
        self.registry.record(service_names(handlers))
        self._grpcsec_server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Any) -> None:  # noqa: ANN401
        self.registry.record((service_name,))
        self._grpcsec_server.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        raise ConfigurationError(_PORTS_REFUSED)

    def add_secure_port(self, address: str, server_credentials: Any) -> int:  # noqa: ANN401
        raise ConfigurationError(_PORTS_REFUSED)


class ServerView(_Registering, grpc.Server):  # type: ignore[misc]  # grpc ships no types
    """The sync view (see the module docstring)."""

    def __init__(
        self,
        server: grpc.Server,
        *,
        start: Callable[[], None],
        stop: Callable[[float | None], Any],
        wait: Callable[[float | None], bool],
    ) -> None:
        self._grpcsec_server = server
        self._grpcsec_start = start
        self._grpcsec_stop = stop
        self._grpcsec_wait = wait
        self.registry = _Registry()

    def start(self) -> None:
        self._grpcsec_start()

    def stop(self, grace: float | None) -> Any:  # noqa: ANN401 (a threading.Event)
        return self._grpcsec_stop(grace)

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._grpcsec_wait(timeout)


class AioServerView(_Registering, grpc.aio.Server):  # type: ignore[misc]  # grpc ships no types
    """The ``grpc.aio`` view (see the module docstring); lifecycle methods are coroutines."""

    def __init__(self, server: grpc.aio.Server, *, owner: Any) -> None:  # noqa: ANN401
        self._grpcsec_server = server
        self._grpcsec_owner = owner
        self.registry = _Registry()

    async def start(self) -> None:
        await self._grpcsec_owner.start()

    async def stop(self, grace: float | None) -> None:
        await self._grpcsec_owner.stop(grace)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        result: bool = await self._grpcsec_owner.wait_for_termination(timeout)
        return result
