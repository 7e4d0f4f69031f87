"""Client token sources: static, file (and hostile replacements), refreshing."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grpcsec.authn import (
    RefreshingToken,
    StaticToken,
    TokenFile,
)
from grpcsec.clock import ManualClock
from grpcsec.errors import AuthenticationError, ConfigurationError, MaterialError
from tests.authn.conftest import (
    Issuer,
    wait_for,
)
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


def test_refreshing_token_measures_expiry_on_its_clock() -> None:
    """A ManualClock takes a refreshing source past its token's expiry with no sleep (the next
    call fetches); an expiry that is past on the source's clock is refused even though the
    machine's clock (the control, a source on SYSTEM_CLOCK) still finds it in the future."""
    clock = ManualClock()
    issued: list[str] = []

    def fetch() -> tuple[str, float]:
        issued.append(f"token.number.{len(issued) + 1}")
        return issued[-1], clock.timestamp() + 100

    with RefreshingToken(fetch, refresh_before=10.0, clock=clock) as source:
        assert source.token(clock.timestamp()) == "token.number.1"
        clock.advance(50)
        assert source.token(clock.timestamp()) == "token.number.1"
        clock.advance(50)
        assert source.token_nowait(clock.timestamp()) is None
        assert source.token(clock.timestamp()) == "token.number.2"
    behind_the_clock = ("late.token.value", clock.timestamp() - 1)
    assert behind_the_clock[1] > time.time()  # still in the future on the machine's clock
    with (
        RefreshingToken(lambda: behind_the_clock, clock=clock) as late,
        pytest.raises(AuthenticationError, match="expired"),
    ):
        late.token(clock.timestamp())
    with RefreshingToken(lambda: behind_the_clock) as control:
        assert control.token(time.time()) == "late.token.value"
