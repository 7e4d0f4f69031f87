"""A server TLS configuration and a client channel that follow the SPIFFE Workload API.

Both are the file-rotation classes (:class:`~grpcsec.rotation.ReloadingServerTLS`,
:class:`~grpcsec.rotation.ReloadingChannel`) fed by a
:class:`~grpcsec.spiffe.workload.WorkloadAPISource`, with the source's push wired to the
watcher's ``request_reload`` so a new SVID or bundle is checked and swapped at once, not at the
next poll. Every push is checked like a rotated file; a refused push (expired SVID, key that does
not match) leaves the last good material in service.

SPIFFE mode is always mutual: clients must present an SVID that verifies against the bundles
(own trust domain plus federated ones). The agent is the authority on the bundle, so a CA it
removes is dropped at once (``client_ca_grace=0``; the file mode keeps a CA that verified a
client recently). A bundle that shares no CA with the one in service is still refused (a total
replacement is not how SPIRE rotates; it looks like a different agent). Server SVIDs need a DNS
or IP SAN (SPIRE: ``-dns`` on the registration entry): grpcio clients verify nothing else.
What is not checked here: which SPIFFE IDs may call (the authn allow-lists and the SPIFFE
authorizer do that; :meth:`WorkloadAPISource.bundles` gives them the per-trust-domain bundles).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.rotation import ReloadingChannel, ReloadingServerTLS
from grpcsec.rotation.aio_channel import AioReloadingChannel
from grpcsec.spiffe.address import WorkloadAPIAddress
from grpcsec.spiffe.workload import WorkloadAPISource

__all__ = ["AioSpiffeChannel", "SpiffeChannel", "SpiffeServerTLS", "open_source"]


def open_source(address: WorkloadAPIAddress | str, **options: Any) -> WorkloadAPISource:  # noqa: ANN401
    """A started :class:`WorkloadAPISource` for ``address`` (text is parsed)."""
    parsed = WorkloadAPIAddress.parse(address) if isinstance(address, str) else address
    return WorkloadAPISource(parsed, **options)


class SpiffeServerTLS(ReloadingServerTLS):
    """Mutual server TLS from the Workload API (module docstring). Owns ``workload``: the
    source is closed by :meth:`close` (and when construction fails)."""

    def __init__(
        self,
        workload: WorkloadAPISource,
        *,
        interval: float = 1.0,
        allow_weak_keys: bool = False,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.workload = workload
        try:
            super().__init__(
                workload,
                mutual=True,
                interval=interval,
                allow_weak_keys=allow_weak_keys,
                client_ca_grace=0.0,
                clock=clock,
            )
        except BaseException:
            workload.close()
            raise
        workload.subscribe(self.request_reload)

    @classmethod
    def open(
        cls,
        address: WorkloadAPIAddress | str,
        *,
        start_timeout: float = 10.0,
        **options: Any,  # noqa: ANN401 (the keyword options of __init__)
    ) -> SpiffeServerTLS:
        """Connect to the Workload API at ``address`` and check its first SVID."""
        return cls(open_source(address, start_timeout=start_timeout), **options)

    def close(self) -> None:
        """Stop watching and close the Workload API connection (idempotent)."""
        self.stop()
        self.workload.close()


def _server_name(options: Sequence[tuple[str, Any]], name: str | None) -> tuple[Any, ...]:
    extra = (("grpc.ssl_target_name_override", name),) if name else ()
    return (*options, *extra)


def _open(  # noqa: PLR0917 (a constructor's arguments, passed through)
    parent_init: Callable[..., None],
    channel: ReloadingChannel | AioReloadingChannel,
    target: str,
    workload: WorkloadAPISource,
    server_name: str | None,
    options: Sequence[tuple[str, Any]],
    settings: dict[str, Any],
) -> None:
    """The reloading channel's own construction on ``workload``, shared by the sync and aio
    channels: the Workload API connection is closed if it fails, and every accepted push
    asks for a reload."""
    try:
        parent_init(target, workload, options=_server_name(options, server_name), **settings)
    except BaseException:
        workload.close()
        raise
    workload.subscribe(channel.request_reload)


class SpiffeChannel(ReloadingChannel):
    """A ``grpc.Channel`` to ``target`` with the workload's SVID as client certificate and the
    bundles as server CAs, swapped to a new channel on every accepted push. Closing it closes
    the Workload API connection. ``server_name`` is the DNS name to verify the server as (its
    SVID's DNS SAN) when it differs from the target's host."""

    def __init__(
        self,
        target: str,
        workload: WorkloadAPISource,
        *,
        server_name: str | None = None,
        options: Sequence[tuple[str, Any]] = (),
        **settings: Any,  # noqa: ANN401 (the keyword options of ReloadingChannel)
    ) -> None:
        self.workload = workload
        _open(super().__init__, self, target, workload, server_name, options, settings)

    def close(self) -> None:
        """Close every underlying channel and the Workload API connection."""
        try:
            super().close()
        finally:
            self.workload.close()


class AioSpiffeChannel(AioReloadingChannel):
    """:class:`SpiffeChannel` on ``grpc.aio``: create it in a running event loop and
    ``await channel.close()`` (which also closes the Workload API connection)."""

    def __init__(
        self,
        target: str,
        workload: WorkloadAPISource,
        *,
        server_name: str | None = None,
        options: Sequence[tuple[str, Any]] = (),
        **settings: Any,  # noqa: ANN401 (the keyword options of AioReloadingChannel)
    ) -> None:
        self.workload = workload
        _open(super().__init__, self, target, workload, server_name, options, settings)

    async def close(self, grace: float | None = None) -> None:
        """Close the channels (``grace`` as for the parent) and the Workload API connection."""
        try:
            await super().close(grace)
        finally:
            self.workload.close()
