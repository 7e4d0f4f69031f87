"""SpiffeChannel: a client channel whose SVID and bundles follow the Workload API, against a
server that also follows one. A pushed client SVID is presented on the next connection with
zero failed calls; a pushed SVID the bundle does not vouch for is refused and the last good one
kept; closing the channel closes the Workload API connection."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import grpc
import pytest

from grpcsec.pki import CertificateAuthority
from grpcsec.spiffe.tls import AioSpiffeChannel, SpiffeChannel, open_source
from tests.server.test_secure_server import run
from tests.spiffe.test_serve import spiffe_config, wait_until
from tests.spiffe.workload_api import CLIENT_ID, SERVER_DNS, FakeAgent, issue_svid

WHOAMI = "/grpcsec.test.Probe/WhoAmI"


def caller_serial(channel: grpc.Channel) -> str:
    reply = channel.unary_unary(WHOAMI)(b"", timeout=5)
    return str(json.loads(reply)["serial"])


def test_a_pushed_client_svid_is_presented_without_failed_calls(
    agent: FakeAgent, client_agent: FakeAgent, td_ca: CertificateAuthority
) -> None:
    with run(spiffe_config(agent), "sync") as running:
        source = open_source(client_agent.address)
        channel = SpiffeChannel(
            running.target, source, server_name=SERVER_DNS, interval=3600, drain_timeout=5
        )
        failures: list[str] = []
        calls = [0]
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    caller_serial(channel)
                except grpc.RpcError as exc:
                    failures.append(f"{exc.code()}: {exc.details()}")
                calls[0] += 1

        first = format(client_agent.state.svid.certificate.serial_number, "x")
        worker = threading.Thread(target=load, daemon=True)
        try:
            assert caller_serial(channel) == first
            worker.start()
            rotated = issue_svid(td_ca, CLIENT_ID)
            client_agent.push(svid=rotated)
            new = format(rotated.certificate.serial_number, "x")
            wait_until(lambda: caller_serial(channel) == new, timeout=5, what="the new client SVID")
            before = calls[0]
            wait_until(lambda: calls[0] > before + 10, what="calls after the swap")
            # negative control: an SVID from a CA outside the bundle is refused, the last kept
            client_agent.push(svid=issue_svid(CertificateAuthority.create("rogue"), CLIENT_ID))
            wait_until(lambda: channel.last_failure is not None, what="the rogue SVID refused")
            assert caller_serial(channel) == new
        finally:
            stop.set()
            if worker.ident is not None:  # the last call ends before the channel closes
                worker.join(10)
            channel.close()
        assert failures == [], failures[:3]
        assert source.status().updates == 3  # first, rotated, rogue
    with pytest.raises(ValueError, match="closed"):
        channel.unary_unary(WHOAMI)(b"", timeout=1)


def test_closing_the_channel_closes_the_workload_api_stream(client_agent: FakeAgent) -> None:
    source = open_source(client_agent.address)
    channel = SpiffeChannel("127.0.0.1:1", source, server_name=SERVER_DNS)
    channel.close()
    time.sleep(0.3)
    client_agent.push()  # nobody listens any more: the source must not see it
    time.sleep(0.3)
    assert source.status().updates == 1
    assert Path(client_agent.path).exists()


def test_the_aio_channel_follows_a_pushed_client_svid(
    agent: FakeAgent, client_agent: FakeAgent, td_ca: CertificateAuthority
) -> None:
    rotated = issue_svid(td_ca, CLIENT_ID)
    first = format(client_agent.state.svid.certificate.serial_number, "x")
    new = format(rotated.certificate.serial_number, "x")

    async def scenario(target: str) -> tuple[str, str, int]:
        source = open_source(client_agent.address)
        channel = AioSpiffeChannel(target, source, server_name=SERVER_DNS, interval=3600)
        try:
            call = channel.unary_unary(WHOAMI)
            before = json.loads(await call(b"", timeout=5))["serial"]
            client_agent.push(svid=rotated)
            after = before
            for _ in range(250):  # at most 5 s
                after = json.loads(await channel.unary_unary(WHOAMI)(b"", timeout=5))["serial"]
                if after == new:
                    break
                await asyncio.sleep(0.02)
            return before, after, source.status().updates
        finally:
            await channel.close()

    with run(spiffe_config(agent), "sync") as running:
        before, after, updates = asyncio.run(scenario(running.target))
    assert (before, after, updates) == (first, new, 2)
