"""Client tokens: sources (static, file, refreshing), the plaintext refusal, and the sync and
aio interceptors against a real guarded server over mTLS (and plaintext on loopback when the
caller opts in by name)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grpcsec.authn import (
    RefreshingToken,
    RequireBearerToken,
    StaticToken,
    TokenFile,
    aio_token_channel,
    token_channel,
)
from grpcsec.authn.client import check_token_transport
from grpcsec.credentials import ChannelTLS, server_credentials
from grpcsec.errors import AuthenticationError, ConfigurationError, MaterialError
from grpcsec.interceptors import Guard
from tests.authn.conftest import (
    METHODS,
    SERVICE,
    SHAPES,
    UNARY,
    GuardedServer,
    Keys,
    Minter,
    invoke,
    make_verifier,
    serve_guarded,
    wait_for,
)
from tests.conftest import TIMEOUT, Pki
from tests.hostile import Hostile, bounded, put, replaced_by

SECRET = "abc.def.ghi"


# -- sources ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["", "   ", "a b", "line\nbreak", "ünï"])
def test_static_token_refuses_what_cannot_be_a_header(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        StaticToken(bad)


def test_sources_mask_the_token_in_repr(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(SECRET + "\n")
    refreshing = RefreshingToken(lambda: (SECRET, time.time() + 600))
    refreshing.token(time.time())
    for source in (StaticToken(SECRET), TokenFile(path), refreshing):
        assert SECRET not in repr(source)
        assert "sha256:" in repr(source)
    refreshing.close()


def test_token_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first.token.one\n")
    source = TokenFile(path, poll_interval=0.0)
    assert source.token(time.time()) == "first.token.one"
    path.write_text("second.token.two")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert source.token(time.time()) == "second.token.two"
    path.write_text("")  # a broken rewrite keeps the last good token
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000))
    assert source.token(time.time()) == "second.token.two"
    assert source.reloads == 1


def test_token_file_polls_at_most_every_interval(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first.token.one")
    source = TokenFile(path, poll_interval=60.0)
    path.write_text("second.token.two")
    assert source.token(time.time()) == "first.token.one"
    assert source.token(time.time() + 61) == "second.token.two"


def test_token_file_errors_at_construction(tmp_path: Path) -> None:
    with pytest.raises(MaterialError, match="no such file"):
        TokenFile(tmp_path / "missing")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(MaterialError, match="not a bearer token"):
        TokenFile(tmp_path / "empty")


class Issuer:
    """A token callable: counts calls, can block on an event or fail."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False
        self.threads: list[str] = []

    def __call__(self) -> tuple[str, float]:
        self.calls += 1
        self.threads.append(threading.current_thread().name)
        if not self.gate.wait(TIMEOUT):
            raise TimeoutError("gate never opened")
        if self.fail:
            raise OSError("token service down (secret detail)")
        return f"token.number.{self.calls}", time.time() + self.lifetime


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    yield Issuer(lifetime=100.0)


def test_refreshing_token_fetches_once_then_reuses(issuer: Issuer) -> None:
    with RefreshingToken(issuer, refresh_before=10.0) as source:
        now = time.time()
        assert source.token(now) == "token.number.1"
        assert source.token(now + 1) == "token.number.1"
        assert issuer.calls == 1


def test_refresh_happens_in_advance_without_blocking_calls(issuer: Issuer) -> None:
    """Inside the refresh window a call gets the current token at once while the refresh runs
    on a background thread; the next calls get the new token."""
    with RefreshingToken(issuer, refresh_before=10.0) as source:
        now = time.time()
        source.token(now)
        issuer.gate.clear()  # the next fetch blocks until the test opens the gate
        started = time.monotonic()
        assert source.token(now + 95) == "token.number.1"
        assert time.monotonic() - started < 0.5
        wait_for(lambda: issuer.calls == 2)
        assert issuer.threads[-1] == "grpcsec-token-refresh"
        issuer.gate.set()
        wait_for(lambda: source.token_nowait(now + 95) == "token.number.2")


def test_failed_refresh_keeps_the_current_token_then_fails_after_expiry(issuer: Issuer) -> None:
    with RefreshingToken(issuer, refresh_before=10.0, retry_interval=1.0) as source:
        now = time.time()
        source.token(now)
        issuer.fail = True
        assert source.token(now + 95) == "token.number.1"
        wait_for(lambda: source.failures == 1)
        with pytest.raises(AuthenticationError) as caught:
            source.token(now + 200)
    assert caught.value.reason == "token_unavailable"
    assert "secret detail" not in str(caught.value)


@pytest.mark.parametrize(
    "result",
    [("tok.en.x", time.time() - 1), ("bad token", time.time() + 60)],
    ids=["expired", "invalid"],
)
def test_refreshing_token_refuses_bad_results(result: tuple[str, float]) -> None:
    with RefreshingToken(lambda: result) as source, pytest.raises(AuthenticationError):
        source.token(time.time())


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


@pytest.mark.parametrize("hostile", list(Hostile), ids=lambda k: k.name)
def test_token_file_replaced_by_a_fifo_device_or_loop_keeps_the_last_token(
    tmp_path: Path, hostile: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "token"
    path.write_text("first.token.one\n")
    source = TokenFile(path, poll_interval=0.0)
    with caplog.at_level(logging.WARNING, logger="grpcsec.authn"), replaced_by(path, hostile):
        for _ in range(3):
            assert bounded(lambda: source.token(time.time()), release_path=path) == (
                "first.token.one"
            )
    assert source.reload_failures == 1
    assert [hostile.words in r.getMessage() for r in caplog.records] == [True]
    put(path, b"second.token.two")
    assert source.token(time.time()) == "second.token.two"
    assert source.reloads == 1
