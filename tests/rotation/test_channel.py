"""Client rotation: a reloading channel (sync and aio) swaps its certificate while calls flow.

The server reports the serial of the client certificate it saw, so "the server sees the new
identity" is read from real mTLS calls. Calls go through multicallables made *before* the
swaps, from several threads (or tasks), and none may fail. Negative controls: refused client
material (expired, foreign, garbage) never replaces the working identity.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from grpcsec.pki import Validity, utcnow
from grpcsec.rotation import (
    AioReloadingChannel,
    FailureKind,
    MemorySource,
    ReloadingChannel,
    ReloadingServerTLS,
    ReloadOutcome,
)
from tests.rotation.conftest import (
    STREAM,
    WHO,
    CertDir,
    Layout,
    RotPki,
    bundle,
    channel_credentials,
    client_leaf,
    refused,
    serial_of,
    serve,
    server_leaf,
    wait_until,
)

TIMEOUT = 5.0


def who(channel: grpc.Channel) -> str:
    return str(json.loads(channel.unary_unary(WHO)(b"", timeout=TIMEOUT))["serial"])


class Callers:
    """Threads calling through one multicallable made before any swap."""

    def __init__(self, channel: ReloadingChannel, threads: int = 4) -> None:
        self._call = channel.unary_unary(WHO)
        self._stop = threading.Event()
        self._deadline = time.monotonic() + 60
        self.failures: list[str] = []
        self.last: str = ""
        self.calls = 0
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _one(self) -> None:
        try:
            reply = self._call(b"", timeout=TIMEOUT)
        except (grpc.RpcError, ValueError) as exc:
            self.failures.append(repr(exc))
        else:
            self.calls += 1
            self.last = json.loads(reply)["serial"]

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            self._one()

    def __enter__(self) -> Callers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


@pytest.fixture
def mtls_server(rot_pki: RotPki) -> Any:
    """A server that accepts clients of CA A and of CA B (its leaf from ``server_ca``)."""

    def make(server_ca: Any = None) -> tuple[ReloadingServerTLS, MemorySource]:
        source = MemorySource.of(
            server_leaf(server_ca or rot_pki.ca), trust=bundle(rot_pki.ca, rot_pki.new_ca)
        )
        return ReloadingServerTLS(source), source

    return make


def test_the_server_sees_each_new_client_identity_and_no_call_fails(
    rot_pki: RotPki, make_dir: Callable[[Layout], CertDir], mtls_server: Any
) -> None:
    certs = make_dir(Layout.RENAME)
    first = client_leaf(rot_pki.ca, "client-0")
    certs.write(first, ca=bundle(rot_pki.ca))
    tls, _ = mtls_server()
    with serve("sync", tls.credentials) as server:
        channel = ReloadingChannel.from_files(
            server.target, ca=certs.ca, cert=certs.cert, key=certs.key, interval=0.05
        )
        with channel, Callers(channel) as callers:
            wait_until(lambda: callers.last == serial_of(first), what="the first identity")
            for index in range(1, 7):
                leaf = client_leaf(rot_pki.ca, f"client-{index}")
                certs.write(leaf)
                if index % 2:
                    assert channel.reload() in {ReloadOutcome.LOADED, ReloadOutcome.UNCHANGED}
                serial = serial_of(leaf)
                wait_until(lambda s=serial: callers.last == s, timeout=2.0, what="the swap")
                assert who(channel) == serial
            wait_until(lambda: channel.open_channels == 1, what="the old channels to drain")
            assert channel.channels_closed == 6
            assert channel.reload_successes == 6
            assert channel.generation == 7
            assert channel.status().healthy
        assert callers.failures == []
        assert callers.calls > 20
        with pytest.raises(ValueError, match="closed"):
            channel.unary_unary(WHO)(b"")


def test_a_stream_in_flight_finishes_on_the_old_channel(
    rot_pki: RotPki, make_dir: Callable[[Layout], CertDir], mtls_server: Any
) -> None:
    certs = make_dir(Layout.DATA_SYMLINK)
    certs.write(client_leaf(rot_pki.ca), ca=bundle(rot_pki.ca))
    tls, _ = mtls_server()
    with serve("sync", tls.credentials) as server:
        channel = ReloadingChannel.from_files(
            server.target, ca=certs.ca, cert=certs.cert, key=certs.key, interval=30.0
        )
        with channel:
            stream = channel.unary_stream(STREAM)(b"[5, 100]", timeout=TIMEOUT)
            first_item = next(stream)
            new = client_leaf(rot_pki.ca, "client-new")
            certs.write(new)
            # LOADED, or UNCHANGED when the channel's watcher got there first
            assert channel.reload() in {ReloadOutcome.LOADED, ReloadOutcome.UNCHANGED}
            assert who(channel) == serial_of(new)  # new calls: the new channel
            assert channel.open_channels == 2  # the old one carries the stream
            rest = list(stream)
            assert [first_item, *rest] == [b"0", b"1", b"2", b"3", b"4"]
            wait_until(lambda: channel.open_channels == 1, what="the drained channel to close")
            assert channel.channels_closed == 1


def test_a_channel_past_its_drain_timeout_is_closed_anyway(
    rot_pki: RotPki, mtls_server: Any
) -> None:
    """The bound on draining (negative control of the test above): a stream that outlives
    ``drain_timeout`` is cancelled with its channel."""
    source = MemorySource.of(client_leaf(rot_pki.ca), trust=rot_pki.ca)
    tls, _ = mtls_server()
    with serve("sync", tls.credentials) as server:
        channel = ReloadingChannel(server.target, source, interval=0.05, drain_timeout=0.2)
        with channel:
            stream = channel.unary_stream(STREAM)(b"[50, 100]", timeout=TIMEOUT)
            next(stream)
            source.set(client_leaf(rot_pki.ca), trust=rot_pki.ca)
            # LOADED, or UNCHANGED when the 50 ms poll got there first
            assert channel.reload() in {ReloadOutcome.LOADED, ReloadOutcome.UNCHANGED}
            assert channel.generation == 2  # swapped once
            with pytest.raises(grpc.RpcError) as info:
                list(stream)
            assert info.value.code() is grpc.StatusCode.CANCELLED
            wait_until(lambda: channel.channels_closed == 1, what="the overdue channel closed")


@pytest.mark.parametrize(
    ("bad", "kind"),
    [
        ("expired", FailureKind.EXPIRED),
        ("foreign", FailureKind.UNTRUSTED),
        ("garbage", FailureKind.INVALID),
        ("server", FailureKind.INVALID),
    ],
)
def test_refused_client_material_keeps_the_working_identity(
    bad: str,
    kind: FailureKind,
    rot_pki: RotPki,
    make_dir: Callable[[Layout], CertDir],
    mtls_server: Any,
) -> None:
    certs = make_dir(Layout.RENAME)
    good = client_leaf(rot_pki.ca)
    certs.write(good, ca=bundle(rot_pki.ca))
    now = utcnow()
    tls, _ = mtls_server()
    with serve("sync", tls.credentials) as server:
        channel = ReloadingChannel.from_files(
            server.target,
            ca=certs.ca,
            cert=certs.cert,
            key=certs.key,
            issuers=certs.ca,
            interval=0.05,
            attempts=2,
            retry_delay=0.01,
        )
        with channel, Callers(channel, threads=2) as callers:
            if bad == "expired":
                past = Validity(
                    not_before=now - dt.timedelta(hours=2), not_after=now - dt.timedelta(hours=1)
                )
                certs.write(client_leaf(rot_pki.ca, validity=past))
            elif bad == "foreign":
                certs.write(client_leaf(rot_pki.other_ca))
            elif bad == "server":
                certs.write(server_leaf(rot_pki.ca))
            else:
                certs.write_raw("tls.crt", b"\x00garbage")
            wait_until(
                lambda: channel.last_failure is not None and channel.last_failure.kind is kind,
                what=f"a {kind.value} refusal",
            )
            time.sleep(0.2)
            assert callers.last == serial_of(good)
            assert who(channel) == serial_of(good)
            assert channel.reload_failures == 1
            assert channel.generation == 1
        assert callers.failures == []


def test_a_server_ca_rollover_seen_from_the_client(
    rot_pki: RotPki, make_dir: Callable[[Layout], CertDir], mtls_server: Any, tmp_path: Path
) -> None:
    """The client's CA bundle goes {A} -> {A, B} before the server's leaf moves to B; a bundle
    sharing no CA with the one in service is refused. Both leaves move to B, the CA each side
    names as its next CA."""
    a, b = rot_pki.ca, rot_pki.new_ca
    certs = make_dir(Layout.RENAME)
    certs.write(client_leaf(a), ca=bundle(a))
    next_ca = tmp_path / "next-ca.crt"
    next_ca.write_bytes(bundle(b))
    tls, server_source = mtls_server()
    with serve("sync", tls.credentials) as server:
        channel = ReloadingChannel.from_files(
            server.target,
            ca=certs.ca,
            cert=certs.cert,
            key=certs.key,
            next_ca=next_ca,
            interval=30.0,
        )
        with channel:
            who(channel)
            certs.write(ca=bundle(b))
            assert channel.reload() is ReloadOutcome.REFUSED
            assert channel.last_failure is not None
            assert channel.last_failure.kind is FailureKind.TRUST_DROPPED

            # The channel's own watcher may get there first (UNCHANGED then); what counts is
            # the material in service afterwards.
            swapped = {ReloadOutcome.LOADED, ReloadOutcome.UNCHANGED}
            certs.write(ca=bundle(a, b))
            assert channel.reload() in swapped
            server_source.set(server_leaf(b), trust=bundle(a, b), next_ca=bundle(b))
            assert tls.reload() in swapped
            rotated = client_leaf(b, "client-b")  # a new channel, so a new handshake with B
            certs.write(rotated)
            assert channel.reload() in swapped
            assert who(channel) == serial_of(rotated)
        # Negative control: a client that trusts only A cannot reach the B server.
        error = refused(server.target, channel_credentials(bundle(a), client_leaf(a)))
        assert error.code() is grpc.StatusCode.UNAVAILABLE


def test_aio_channel_rotates_under_concurrent_tasks(
    rot_pki: RotPki, make_dir: Callable[[Layout], CertDir], mtls_server: Any
) -> None:
    certs = make_dir(Layout.DATA_SYMLINK)
    first = client_leaf(rot_pki.ca, "aio-0")
    certs.write(first, ca=bundle(rot_pki.ca))
    tls, _ = mtls_server()

    async def scenario(target: str) -> dict[str, Any]:
        failures: list[str] = []
        seen: list[str] = []
        stop = asyncio.Event()
        async with AioReloadingChannel.from_files(
            target, ca=certs.ca, cert=certs.cert, key=certs.key, interval=0.05
        ) as channel:
            call = channel.unary_unary(WHO)

            async def one() -> None:
                try:
                    reply = await call(b"", timeout=TIMEOUT)
                except grpc.RpcError as exc:
                    failures.append(repr(exc))
                else:
                    seen.append(json.loads(reply)["serial"])

            async def caller() -> None:
                for _ in range(100_000):
                    if stop.is_set():
                        return
                    await one()

            tasks = [asyncio.create_task(caller()) for _ in range(4)]
            stream = channel.unary_stream(STREAM)(b"[6, 100]", timeout=TIMEOUT)
            items = [await stream.read()]
            serials = [serial_of(first)]
            for index in range(1, 6):
                leaf = client_leaf(rot_pki.ca, f"aio-{index}")
                certs.write(leaf)
                serials.append(serial_of(leaf))
                if index % 2:
                    await channel.reload()
                for _ in range(200):  # the poll, at most 2 s
                    if seen and seen[-1] == serials[-1]:
                        break
                    await asyncio.sleep(0.01)
                assert seen[-1] == serials[-1], f"swap {index} not seen"
            for _ in range(10):
                item = await stream.read()
                if item is grpc.aio.EOF:
                    break
                items.append(item)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 10)
            for _ in range(200):
                if channel.open_channels == 1:
                    break
                await asyncio.sleep(0.01)
            return {
                "failures": failures,
                "serials": serials,
                "seen": set(seen),
                "items": items,
                "open": channel.open_channels,
                "closed": channel.channels_closed,
                "generation": channel.generation,
            }

    with serve("aio", tls.credentials) as server:
        result = asyncio.run(scenario(server.target))
    assert result["failures"] == []
    assert set(result["serials"]) <= result["seen"]
    assert result["items"] == [str(i).encode() for i in range(6)]
    assert result["open"] == 1
    assert result["closed"] == 5
    assert result["generation"] == 6
