"""A client channel that follows its certificate, key and CA bundle: swap in, drain out.

grpcio cannot reload a channel's credentials (grpcio-security.md §6 row 3, grpc#41779), so
:class:`ReloadingChannel` does the next best thing. A :class:`Watcher` thread checks new
material (:func:`~grpcsec.rotation.checks.check_channel_material`: the pair matches, the
certificate is valid now, the CA bundle parses and shares a CA with the one in service), builds
a new ``grpc.secure_channel`` from it and makes it *current*. New calls go to the current
channel; the previous one is closed once the calls it carries have finished, so no call fails
because of a swap. A call still running ``drain_timeout`` seconds after the swap is cancelled
with the old channel (default 10 minutes; ``None`` waits forever).

It is a ``grpc.Channel``: use it with generated stubs and ``grpc.intercept_channel``.
Connectivity subscriptions are passed to the channel current at subscription time and are not
carried over to later channels. Multicallables are resolved per call, so a stub made before a
swap uses the new channel after it. Each call costs one uncontended lock round trip more than
on a plain channel.

The asyncio twin is :class:`grpcsec.rotation.aio_channel.AioReloadingChannel`.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import grpc

from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import ConfigurationError
from grpcsec.material import StrPath
from grpcsec.rotation.checks import ChannelMaterial, check_channel_material
from grpcsec.rotation.sources import CertificateSource, FileSource, RawMaterial
from grpcsec.rotation.trust import check_trust_change
from grpcsec.rotation.watcher import (
    ReloadOutcome,
    RotationStatus,
    Watcher,
    WatcherCounters,
)
from grpcsec.text import get_logger

__all__ = ["ReloadingChannel", "channel_checker"]

log = get_logger("grpcsec.rotation")

_CLOSED = "Cannot invoke RPC: the reloading channel is closed"


def channel_checker(
    *, allow_ca_replacement: bool, allow_unsupported_key: bool, allow_weak_keys: bool = False
) -> Callable[[RawMaterial, dt.datetime, ChannelMaterial | None], ChannelMaterial]:
    """The ``load`` function of a channel watcher: material checks, then the CA-bundle rule
    (a new bundle must share a CA with the one in service unless ``allow_ca_replacement``), and
    the lineage rule for the client pair (:mod:`grpcsec.rotation.lineage`)."""

    def check(
        raw: RawMaterial, now: dt.datetime, current: ChannelMaterial | None
    ) -> ChannelMaterial:
        material = check_channel_material(
            raw,
            now=now,
            allow_unsupported_key=allow_unsupported_key,
            allow_weak_keys=allow_weak_keys,
            lineage=current.lineage if current is not None else None,
        )
        if current is not None:
            check_trust_change(
                current.server_cas,
                material.server_cas,
                what="CA bundle",
                source=raw.trust_name,
                allow_replacement=allow_ca_replacement,
            )
        return material

    return check


@dataclass(eq=False)
class _Generation:
    """One underlying channel and the calls it carries."""

    number: int
    channel: grpc.Channel
    material: ChannelMaterial
    inflight: int = 0
    retired_at: float | None = None
    callables: dict[tuple[Any, ...], Any] = field(default_factory=dict)


class ReloadingChannel(WatcherCounters, grpc.Channel):  # type: ignore[misc]  # grpc is untyped
    """A ``grpc.Channel`` to ``target`` whose TLS material follows ``source``.

    ``source`` yields the client certificate and key (optional: TLS without a client
    certificate) and, as ``trust``, the CA bundle for the server. Construction checks the
    material and raises :class:`RotationError` if it cannot be used; the watcher thread starts
    at once and stops with :meth:`close`. ``options`` and ``compression`` are passed to every
    ``grpc.secure_channel`` it creates.
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
        if drain_timeout is not None and drain_timeout < 0:
            raise ConfigurationError("drain_timeout must not be negative")
        self._target = target
        self._options = tuple(options)
        self._compression = compression
        self._drain_timeout = drain_timeout
        self._lock = threading.Lock()
        self._closed = False
        self._number = 0
        self._current: _Generation | None = None
        self._retired: list[_Generation] = []
        #: Channels closed after draining (or after the drain timeout).
        self.channels_closed = 0
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
            after_poll=self._close_drained,
        )
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
    ) -> ReloadingChannel:
        """Watch a CA bundle file and, for mTLS, a client chain and key file."""
        return cls(
            target, FileSource.of(cert, key, trust=ca, issuers=issuers, next_ca=next_ca), **options
        )

    # -- swapping ---------------------------------------------------------------------------------
    def _apply(self, material: ChannelMaterial) -> None:
        channel = grpc.secure_channel(
            self._target,
            material.tls.credentials(),
            options=list(self._options),
            compression=self._compression,
        )
        with self._lock:
            if self._closed:
                channel.close()
                return
            self._number += 1
            previous, self._current = self._current, _Generation(self._number, channel, material)
            if previous is not None:
                previous.retired_at = time.monotonic()
                self._retired.append(previous)
        self._watcher_wake()

    def _watcher_wake(self) -> None:
        watcher = getattr(self, "_watcher", None)  # absent during the first load
        if watcher is not None:
            watcher.wake()

    def _close_drained(self) -> None:
        """Close retired channels whose calls have finished, or whose drain time is up."""
        now = time.monotonic()
        to_close: list[tuple[_Generation, bool]] = []
        with self._lock:
            keep: list[_Generation] = []
            for generation in self._retired:
                overdue = (
                    self._drain_timeout is not None
                    and generation.retired_at is not None
                    and now - generation.retired_at >= self._drain_timeout
                )
                if generation.inflight == 0 or overdue:
                    to_close.append((generation, generation.inflight > 0))
                else:
                    keep.append(generation)
            self._retired = keep
            # counted with the removal, so open_channels and channels_closed always agree
            self.channels_closed += len(to_close)
        for generation, cancelled in to_close:
            if cancelled:
                log.warning(
                    "closing the previous channel to %s with %d call(s) still running after "
                    "the %ss drain timeout",
                    self._target,
                    generation.inflight,
                    self._drain_timeout,
                )
            generation.channel.close()

    def _enter(self) -> _Generation:
        with self._lock:
            if self._closed or self._current is None:
                raise ValueError(_CLOSED)
            generation = self._current
            generation.inflight += 1
            return generation

    def _exit(self, generation: _Generation) -> None:
        with self._lock:
            generation.inflight -= 1
            drained = generation.retired_at is not None and generation.inflight == 0
        if drained:
            self._watcher_wake()

    # -- grpc.Channel ---------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Any], None], try_to_connect: bool = False) -> None:
        """Subscribe to the connectivity of the channel current now (not carried over)."""
        self._now().channel.subscribe(callback, try_to_connect=try_to_connect)

    def unsubscribe(self, callback: Callable[[Any], None]) -> None:
        """Unsubscribe from every channel still open."""
        with self._lock:
            generations = [g for g in (self._current, *self._retired) if g is not None]
        for generation in generations:
            generation.channel.unsubscribe(callback)

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """A unary-unary multicallable resolved against the current channel at each call."""
        return _MultiCallable(self, "unary_unary", method, args, kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """A unary-stream multicallable resolved against the current channel at each call."""
        return _MultiCallable(self, "unary_stream", method, args, kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """A stream-unary multicallable resolved against the current channel at each call."""
        return _MultiCallable(self, "stream_unary", method, args, kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """A stream-stream multicallable resolved against the current channel at each call."""
        return _MultiCallable(self, "stream_stream", method, args, kwargs)

    def close(self) -> None:
        """Stop watching and close every channel (running calls are cancelled, as with any
        ``grpc.Channel.close``)."""
        self._watcher.stop()
        with self._lock:
            self._closed = True
            generations = [g for g in (self._current, *self._retired) if g is not None]
            self._current, self._retired = None, []
        for generation in generations:
            generation.channel.close()

    def __enter__(self) -> ReloadingChannel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- control and state ------------------------------------------------------------------------
    def _now(self) -> _Generation:
        with self._lock:
            if self._current is None or self._closed:
                raise ValueError(_CLOSED)
            return self._current

    def reload(self) -> ReloadOutcome:
        """Check the source now and swap if it changed. Never raises."""
        return self._watcher.reload()

    def request_reload(self) -> None:
        """Ask the watcher thread to reload now, without waiting."""
        self._watcher.request_reload()

    @property
    def material(self) -> ChannelMaterial:
        """The checked material of the current channel."""
        return self._now().material

    @property
    def generation(self) -> int:
        """1 for the first channel, +1 per swap."""
        return self._now().number

    @property
    def open_channels(self) -> int:
        """The current channel plus retired ones still draining."""
        with self._lock:
            return (0 if self._closed else 1) + len(self._retired)

    def status(self) -> RotationStatus:
        """A snapshot for status endpoints and metrics."""
        generation = self._now()
        return self._watcher.status(generation.material.leaf, generation=generation.number)


class _MultiCallable:
    """Resolves the current channel per call and holds it open until the call finishes."""

    def __init__(
        self,
        owner: ReloadingChannel,
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
        self._key = (kind, method, args, tuple(sorted(kwargs.items())))
        # unary_unary and stream_unary return the response from __call__ (the call is over);
        # the streaming kinds return a call object that finishes later.
        self._blocking = kind in {"unary_unary", "stream_unary"}

    def _resolve(self, generation: _Generation) -> Any:  # noqa: ANN401
        multicallable = generation.callables.get(self._key)
        if multicallable is None:
            factory = getattr(generation.channel, self._kind)
            multicallable = factory(self._method, *self._args, **self._kwargs)
            generation.callables[self._key] = multicallable
        return multicallable

    def _blocking_call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:  # noqa: ANN401
        generation = self._owner._enter()
        try:
            return getattr(self._resolve(generation), name)(*args, **kwargs)
        finally:
            self._owner._exit(generation)

    def _future_call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:  # noqa: ANN401
        owner = self._owner
        generation = owner._enter()
        try:
            call = getattr(self._resolve(generation), name)(*args, **kwargs)
        except BaseException:
            owner._exit(generation)
            raise
        call.add_done_callback(lambda _call: owner._exit(generation))
        return call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        if self._blocking:
            return self._blocking_call("__call__", args, kwargs)
        return self._future_call("__call__", args, kwargs)

    def with_call(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """Like ``grpc.UnaryUnaryMultiCallable.with_call`` (unary-unary and stream-unary)."""
        return self._blocking_call("with_call", args, kwargs)

    def future(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """Like ``grpc.UnaryUnaryMultiCallable.future`` (unary-unary and stream-unary)."""
        return self._future_call("future", args, kwargs)
