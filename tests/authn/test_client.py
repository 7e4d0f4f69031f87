"""Client tokens on the wire: the plaintext refusal, and the sync and aio interceptors against a
real guarded server over mTLS (and plaintext on loopback when the caller opts in by name)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from grpcsec.authn import (
    RefreshingToken,
    RequireBearerToken,
    TokenFile,
    aio_token_channel,
    token_channel,
)
from grpcsec.authn.token_transport import check_token_transport
from grpcsec.clock import ManualClock
from grpcsec.credentials import ChannelTLS, server_credentials
from grpcsec.errors import ConfigurationError
from grpcsec.interceptors import Guard
from tests.authn.conftest import (
    METHODS,
    SERVICE,
    SHAPES,
    UNARY,
    GuardedServer,
    Issuer,
    Keys,
    Minter,
    invoke,
    invoke_error,
    make_verifier,
    serve_guarded,
)
from tests.conftest import TIMEOUT, Pki

SECRET = "abc.def.ghi"


# -- the plaintext refusal -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ("127.0.0.1:50051", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("dns:///localhost:50051", True),
        ("ipv4:127.0.0.1:1,127.0.0.2:2", True),
        ("unix:/run/app.sock", True),
        ("10.0.0.7:50051", False),
        ("orders.internal:443", False),
        ("ipv4:127.0.0.1:1,10.0.0.1:2", False),
    ],
)
def test_plaintext_tokens_only_by_name_and_only_to_loopback(target: str, allowed: bool) -> None:
    check_token_transport(secure=True, target=target, allow_plaintext_token_on_loopback=False)
    with pytest.raises(ConfigurationError, match="plaintext"):
        check_token_transport(secure=False, target=target, allow_plaintext_token_on_loopback=False)
    if allowed:
        check_token_transport(secure=False, target=target, allow_plaintext_token_on_loopback=True)
    else:
        with pytest.raises(ConfigurationError, match="loopback"):
            check_token_transport(
                secure=False, target=target, allow_plaintext_token_on_loopback=True
            )


def test_token_channel_refuses_plaintext_before_any_call() -> None:
    with pytest.raises(ConfigurationError, match="plaintext"):
        token_channel("127.0.0.1:1", None, SECRET)


# -- against real servers --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def guarded(pki: Pki, keys: Keys) -> Iterator[dict[str, GuardedServer]]:
    guard = Guard(RequireBearerToken(make_verifier(keys)))
    with (
        serve_guarded("sync", server_credentials(pki.server, client_ca=pki.ca), guard) as mtls,
        serve_guarded("sync", None, guard) as plaintext,
    ):
        yield {"mtls": mtls, "plaintext": plaintext}


@pytest.mark.parametrize("shape", SHAPES)
def test_sync_channel_sends_the_token_on_every_shape(
    guarded: dict[str, GuardedServer], pki: Pki, mint: Minter, shape: str
) -> None:
    tls = ChannelTLS.create(ca=pki.ca, identity=pki.client)
    with token_channel(guarded["mtls"].target, tls, mint(subject="sync-client")) as channel:
        replies = invoke(channel, shape)
    assert {r["sub"] for r in replies} == {"sync-client"}


def test_sync_channel_with_a_token_file_follows_rotation(
    guarded: dict[str, GuardedServer], pki: Pki, mint: Minter, tmp_path: Path
) -> None:
    path = tmp_path / "token"
    path.write_text(mint(subject="before"))
    source = TokenFile(path, poll_interval=0.0)
    tls = ChannelTLS.create(ca=pki.ca, identity=pki.client)
    with token_channel(guarded["mtls"].target, tls, source) as channel:
        assert invoke(channel, UNARY)[0]["sub"] == "before"
        path.write_text(mint(subject="after"))
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
        assert invoke(channel, UNARY)[0]["sub"] == "after"


@pytest.mark.parametrize("shape", SHAPES)
def test_aio_channel_sends_the_token_on_every_shape(
    guarded: dict[str, GuardedServer], pki: Pki, mint: Minter, shape: str
) -> None:
    """grpc.aio client: a refreshing source whose first token is fetched off the event loop."""
    issued = Issuer(lifetime=600.0)
    token = mint(subject="aio-client")
    tls = ChannelTLS.create(ca=pki.ca, identity=pki.client)

    def fetch() -> tuple[str, float]:
        issued()
        return token, time.time() + 600

    async def run() -> list[Any]:
        with RefreshingToken(fetch) as source:
            async with aio_token_channel(guarded["mtls"].target, tls, source) as channel:
                path = f"/{SERVICE}/{METHODS[shape]}"
                if shape == "unary":
                    return [await channel.unary_unary(path)(b"r", timeout=TIMEOUT)]
                if shape == "server_stream":
                    return [r async for r in channel.unary_stream(path)(b"r", timeout=TIMEOUT)]
                if shape == "client_stream":
                    return [await channel.stream_unary(path)(iter([b"a", b"b"]), timeout=TIMEOUT)]
                call = channel.stream_stream(path)(iter([b"a", b"b"]), timeout=TIMEOUT)
                return [r async for r in call]

    replies = asyncio.run(run())
    assert replies
    assert all(b'"sub": "aio-client"' in reply for reply in replies)
    assert issued.calls == 1
    assert issued.threads[0] != threading.main_thread().name


def test_plaintext_loopback_by_name_delivers_the_token(
    guarded: dict[str, GuardedServer], mint: Minter
) -> None:
    target = guarded["plaintext"].target
    with token_channel(
        target, None, mint(subject="loopback"), allow_plaintext_token_on_loopback=True
    ) as channel:
        assert invoke(channel, UNARY)[0]["sub"] == "loopback"


def test_call_with_its_own_authorization_metadata_is_refused(
    guarded: dict[str, GuardedServer], pki: Pki, mint: Minter
) -> None:
    tls = ChannelTLS.create(ca=pki.ca, identity=pki.client)
    with (
        token_channel(guarded["mtls"].target, tls, mint()) as channel,
        pytest.raises(ConfigurationError, match="already has authorization"),
    ):
        invoke(channel, UNARY, metadata=[("authorization", "Bearer x.y.z")])


# -- time ------------------------------------------------------------------------------------------
def test_a_manual_clock_moves_client_and_server_past_expiry_without_sleeping(
    pki: Pki, keys: Keys, mint: Minter
) -> None:
    """One ManualClock drives the client's refreshing source and the server's verifier: when
    it passes the first token's expiry, the server refuses that token (the control, on a
    second channel) and the client fetches a new one for its next call. Nothing sleeps."""
    clock = ManualClock()
    guard = Guard(RequireBearerToken(make_verifier(keys, leeway=0, clock=clock)))
    fetched: list[str] = []

    def fetch() -> tuple[str, float]:
        lifetime = dt.timedelta(seconds=100)
        fetched.append(mint(subject=f"user-{len(fetched) + 1}", ttl=lifetime, clock=clock))
        return fetched[-1], clock.timestamp() + lifetime.total_seconds()

    tls = ChannelTLS.create(ca=pki.ca, identity=pki.client)
    credentials = server_credentials(pki.server, client_ca=pki.ca)
    with (
        serve_guarded("sync", credentials, guard) as server,
        RefreshingToken(fetch, refresh_before=0.0, clock=clock) as source,
        token_channel(server.target, tls, source, clock=clock) as channel,
    ):
        assert invoke(channel, UNARY)[0]["sub"] == "user-1"
        with token_channel(server.target, tls, fetched[0]) as first:
            assert invoke(first, UNARY)[0]["sub"] == "user-1"
            clock.advance(100)
            error = invoke_error(first, UNARY)
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        assert invoke(channel, UNARY)[0]["sub"] == "user-2"
    assert guard.stats.snapshot()["unauthenticated"] == {"expired": 1}
