"""What the sync and the aio secure server have in common: the read-only side.

:class:`~grpcsec.server.sync.SecureServer` and :class:`~grpcsec.server.aio.AioSecureServer`
differ in their lifecycle (plain calls vs coroutines); their configuration, ports, reload and
status are the same and live here, over one :class:`~grpcsec.server.core.ServerCore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grpc_reflection.v1alpha import reflection

from grpcsec.server.config import SecurityConfig
from grpcsec.server.core import ServerCore
from grpcsec.server.status import status_document
from grpcsec.target import Target

__all__ = ["ServerHandle"]


class ServerHandle:
    """Configuration, addresses, reload and status of one secured server."""

    def __init__(self, core: ServerCore, addresses: list[Target]) -> None:
        self._core = core
        self.addresses: tuple[Target, ...] = tuple(addresses)
        self._started = False
        self._stopped = False

    @property
    def config(self) -> SecurityConfig:
        """The configuration this server was built from."""
        return self._core.config

    @property
    def port(self) -> int:
        """The first bound port (the real one when the configuration said 0)."""
        return self.addresses[0].port

    @property
    def metrics_port(self) -> int | None:
        """The ``/metrics`` + ``/status`` port once started (``None`` without metrics)."""
        address = self._core.metrics_address
        return None if address is None else address.port

    def _start_services(self, names: Sequence[str], server: Any) -> tuple[str, ...]:  # noqa: ANN401
        """Start background work, then reflection for ``names`` on ``server`` (the grpcio
        server, not yet started); the names health reports SERVING for. Background work stops
        again when this fails; the caller stops it when its own start fails."""
        self._core.start_background(self.status)
        try:
            if self._core.config.reflection:
                reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server)
        except BaseException:
            self._core.stop_background()
            raise
        return ("", *names)

    def reload(self) -> dict[str, str]:
        """Check the certificate, CRL and policy files now; what each check did."""
        return self._core.reload()

    def request_reload(self) -> None:
        """Ask for a check of the watched files soon (safe from a signal handler)."""
        self._core.request_reload()

    def status(self) -> dict[str, Any]:
        """The status document (:mod:`grpcsec.server.status`)."""
        return status_document(self._core, addresses=list(self.addresses), started=self._started)

    def __repr__(self) -> str:
        where = ", ".join(str(a) for a in self.addresses)
        return f"<{type(self).__name__} {self._core.config.mode} on {where}>"
