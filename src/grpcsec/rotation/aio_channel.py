"""The asyncio twin of :class:`~grpcsec.rotation.channel.ReloadingChannel`.

The watcher thread reads and checks material off the event loop; the swap itself (creating the
new ``grpc.aio.secure_channel``) is scheduled onto the loop, because aio channels belong to the
loop they were made on. The previous channel is closed with ``close(grace=drain_timeout)``,
which lets the calls it carries finish first (grpcio's aio channel tracks them), so no call fails
because of a swap. Everything else (what is checked, the CA-bundle rule, the status
attributes) is as in :mod:`grpcsec.rotation.channel`.

Create it inside a running event loop (``async with AioReloadingChannel(...) as channel``) and
close it with ``await channel.close()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc

from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import ConfigurationError, RotationError
from grpcsec.material import StrPath
from grpcsec.rotation.channel import channel_checker
from grpcsec.rotation.checks import ChannelMaterial
from grpcsec.rotation.sources import CertificateSource, FileSource
from grpcsec.rotation.watcher import (
    ReloadOutcome,
    RotationStatus,
    Watcher,
    WatcherCounters,
)
from grpcsec.text import get_logger

__all__ = ["AioReloadingChannel"]

log = get_logger("grpcsec.rotation")


class AioReloadingChannel(WatcherCounters, grpc.aio.Channel):  # type: ignore[misc]  # grpc is untyped
    """A ``grpc.aio.Channel`` to ``target`` whose TLS material follows ``source``.

    Construction (inside a running loop) checks the material, raises :class:`RotationError`
    if it cannot be used, and starts the watcher thread. Options are those of
    :class:`~grpcsec.rotation.channel.ReloadingChannel`.
    """

    def __init__(
        self,
        target: str,
        source: CertificateSource,
        *,
        options: Sequence[tuple[str, Any]] = (),
        compression: grpc.Compression | None = None,
        interval: float = 1.0,
        drain_timeout: float | None = 600.0,
        allow_ca_replacement: bool = False,
        allow_unsupported_key: bool = False,
        allow_weak_keys: bool = False,
        attempts: int = 4,
        retry_delay: float = 0.1,
        full_check_every: int = 10,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError as exc:
            raise ConfigurationError(
                "create an AioReloadingChannel inside a running event loop"
            ) from exc
        if drain_timeout is not None and drain_timeout < 0:
            raise ConfigurationError("drain_timeout must not be negative")
        self._target = target
        self._options = tuple(options)
        self._compression = compression
        self._drain_timeout = drain_timeout
        self._closed = False
        self._number = 0
        self._channel: Any = None
        self._material: ChannelMaterial | None = None
        self._closing: set[asyncio.Task[None]] = set()
        #: Channels closed after draining.
        self.channels_closed = 0
        self._initial = True
        self._watcher: Watcher[ChannelMaterial] = Watcher(
            source,
            load=channel_checker(
                allow_ca_replacement=allow_ca_replacement,
                allow_unsupported_key=allow_unsupported_key,
                allow_weak_keys=allow_weak_keys,
            ),
            apply=self._apply,
            describe=ChannelMaterial.describe,
            what="client certificate",
            interval=interval,
            attempts=attempts,
            retry_delay=retry_delay,
            full_check_every=full_check_every,
            clock=clock,
        )
        self._initial = False
        self._watcher.start()

    @classmethod
    def from_files(
        cls,
        target: str,
        *,
        ca: StrPath,
        cert: StrPath | None = None,
        key: StrPath | None = None,
        issuers: StrPath | None = None,
        next_ca: StrPath | None = None,
        **options: Any,  # noqa: ANN401 (the keyword options of __init__)
    ) -> AioReloadingChannel:
        """Watch a CA bundle file and, for mTLS, a client chain and key file."""
        return cls(
            target, FileSource.of(cert, key, trust=ca, issuers=issuers, next_ca=next_ca), **options
        )

    # -- swapping ---------------------------------------------------------------------------------
    def _apply(self, material: ChannelMaterial) -> None:
        if self._initial:
            self._swap(material)  # the constructor runs on the loop
            return
        try:
            self._loop.call_soon_threadsafe(self._swap, material)
        except RuntimeError:  # the loop is closed: nothing left to serve
            log.debug("event loop closed; channel swap to %s dropped", self._target)

    def _swap(self, material: ChannelMaterial) -> None:
        if self._closed:
            return
        channel = grpc.aio.secure_channel(
            self._target,
            material.tls.credentials(),
            options=list(self._options),
            compression=self._compression,
        )
        previous, self._channel, self._material = self._channel, channel, material
        self._number += 1
        if previous is not None:
            task = self._loop.create_task(self._drain(previous))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _drain(self, channel: Any) -> None:  # noqa: ANN401 (a grpc.aio.Channel)
        await channel.close(grace=self._drain_timeout)
        self.channels_closed += 1

    def _now(self) -> Any:  # noqa: ANN401
        if self._closed or self._channel is None:
            raise ValueError("Cannot invoke RPC: the reloading channel is closed")
        return self._channel

    # -- grpc.aio.Channel -------------------------------------------------------------------------
    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """A multicallable resolved against the current channel at each call."""
        return _AioMultiCallable(self, "unary_unary", method, args, kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """A multicallable resolved against the current channel at each call."""
        return _AioMultiCallable(self, "unary_stream", method, args, kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """A multicallable resolved against the current channel at each call."""
        return _AioMultiCallable(self, "stream_unary", method, args, kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """A multicallable resolved against the current channel at each call."""
        return _AioMultiCallable(self, "stream_stream", method, args, kwargs)

    def get_state(self, try_to_connect: bool = False) -> Any:  # noqa: ANN401
        """The connectivity state of the current channel."""
        return self._now().get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: Any) -> None:  # noqa: ANN401
        """Wait for a state change of the channel current now."""
        await self._now().wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        """Wait until the current channel is ready."""
        await self._now().channel_ready()

    async def close(self, grace: float | None = None) -> None:
        """Stop watching, close the current channel (letting calls run for ``grace`` seconds)
        and wait for the channels still draining."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._watcher.stop)
        if self._channel is not None:
            await self._channel.close(grace)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def __aenter__(self) -> AioReloadingChannel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- control and state ------------------------------------------------------------------------
    async def reload(self) -> ReloadOutcome:
        """Check the source now (in a worker thread) and swap if it changed. Never raises.

        The swap itself runs on the loop right after; ``generation`` shows it once this returns
        and the loop has run once more (``await asyncio.sleep(0)``).
        """
        outcome = await asyncio.to_thread(self._watcher.reload)
        await asyncio.sleep(0)
        return outcome

    def request_reload(self) -> None:
        """Ask the watcher thread to reload now, without waiting."""
        self._watcher.request_reload()

    @property
    def material(self) -> ChannelMaterial:
        """The checked material of the current channel."""
        if self._material is None:  # pragma: no cover (set by the first load)
            raise RotationError("no material loaded")
        return self._material

    @property
    def generation(self) -> int:
        """1 for the first channel, +1 per swap."""
        return self._number

    @property
    def open_channels(self) -> int:
        """The current channel plus the ones still draining."""
        return (0 if self._closed else 1) + len(self._closing)

    def status(self) -> RotationStatus:
        """A snapshot for status endpoints and metrics."""
        return self._watcher.status(self.material.leaf, generation=self._number)


class _AioMultiCallable:
    """Creates the call on the channel current at call time (all on the loop: no race)."""

    def __init__(
        self,
        owner: AioReloadingChannel,
        kind: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._owner = owner
        self._kind = kind
        self._method = method
        self._args = args
        self._kwargs = kwargs
        self._channel: Any = None
        self._callable: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        channel = self._owner._now()
        if channel is not self._channel:
            factory = getattr(channel, self._kind)
            self._callable = factory(self._method, *self._args, **self._kwargs)
            self._channel = channel
        return self._callable(*args, **kwargs)
