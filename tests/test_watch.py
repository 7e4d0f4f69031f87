"""The one watcher (grpcsec.watch) on real files: changes are picked up, bad content and
hostile replacements keep the last good value and are counted by reason, a ManualClock stamps
every time exactly, and the polling thread starts, reloads on request and stops within bounds.
Each positive check has a negative control next to it (an unchanged file loads nothing, a
refused file is not loaded, a repeat is not counted twice)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from grpcsec.clock import ManualClock
from grpcsec.errors import ConfigurationError, MaterialError
from grpcsec.fileio import FileContents, FileKind, FileSet, WatchedFile
from grpcsec.watch import ReloadOutcome, Watch
from tests.hostile import Hostile, bounded, put, replaced_by
from tests.rotation.conftest import wait_until

LOG = logging.getLogger("grpcsec.test.watch")
START = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)


def parse(contents: FileContents, _now: dt.datetime, _current: int | None) -> int:
    """A file holding ``{"n": <int>}``; anything else is refused with a MaterialError."""
    try:
        value = json.loads(contents.data)["n"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MaterialError("not a counter document", path=contents.paths[0]) from exc
    if not isinstance(value, int):
        raise MaterialError("n is not an integer", path=contents.paths[0])
    return int(value)


def doc(n: int) -> bytes:
    return json.dumps({"n": n}).encode()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    target = tmp_path / "value.json"
    put(target, doc(1))
    return target


def watch(
    path: Path, clock: ManualClock | None = None, **options: object
) -> Watch[FileContents, int]:
    return Watch(
        FileSet([(path, FileKind.POLICY)]),
        load=parse,
        what="counter file",
        describe=lambda n: f"n={n}",
        log=LOG,
        clock=clock or ManualClock(START),
        retry_delay=0.0,
        **options,  # type: ignore[arg-type]
    )


# -- changes on disk ------------------------------------------------------------------------------
def test_a_file_changed_on_disk_is_picked_up_and_an_unchanged_one_is_not(path: Path) -> None:
    w = watch(path)
    assert (w.current, w.generation) == (1, 1)
    assert w.poll() is ReloadOutcome.UNCHANGED  # negative control: nothing changed
    put(path, doc(2))
    assert w.poll() is ReloadOutcome.LOADED
    assert (w.current, w.generation, w.reload_successes) == (2, 2, 1)
    put(path, doc(2))  # the same bytes again (a new inode): read, compared, not loaded
    assert w.poll() is ReloadOutcome.UNCHANGED
    assert (w.generation, w.reload_successes) == (2, 1)


def test_an_in_place_rewrite_with_the_same_stat_is_caught_by_the_full_check(path: Path) -> None:
    """A rewrite that keeps size and times leaves the token as it was; every
    ``full_check_every`` polls the content is read and compared anyway."""
    w = watch(path, full_check_every=3)
    st = path.stat()
    path.write_bytes(doc(7))  # same length as doc(1)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    outcomes = [w.poll() for _ in range(3)]
    assert w.current == 7
    assert outcomes.count(ReloadOutcome.LOADED) == 1


def test_the_first_load_raises_the_reason(tmp_path: Path) -> None:
    with pytest.raises(MaterialError, match="no such file"):
        watch(tmp_path / "missing.json")
    garbage = tmp_path / "garbage.json"
    put(garbage, b"not json")
    with pytest.raises(MaterialError, match="not a counter document"):
        watch(garbage)


@pytest.mark.parametrize(
    ("option", "value"), [("interval", 0), ("attempts", 0), ("full_check_every", 0)]
)
def test_bad_options_are_refused(path: Path, option: str, value: int) -> None:
    with pytest.raises(ConfigurationError):
        watch(path, **{option: value})


# -- refusals --------------------------------------------------------------------------------------
def test_garbage_keeps_the_last_good_value_and_is_counted_once_by_reason(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(START)
    w = watch(path, clock)
    clock.advance(10)
    put(path, b"{SECRET-CONTENT-7f3a")
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        assert w.poll() is ReloadOutcome.REFUSED
        for _ in range(12):  # includes full checks: the refused digest is not re-checked
            assert w.poll() is not ReloadOutcome.LOADED
    assert w.current == 1
    status = w.status()
    assert (status.reload_failures, status.failures_by_reason) == (1, {"invalid": 1})
    assert status.last_error == (
        f"counter file not reloaded (invalid), keeping n=1: {path}: not a counter document"
    )
    assert len(caplog.records) == 1
    assert "SECRET-CONTENT" not in caplog.text  # the content is never logged
    # An explicit reload checks again and reports again.
    assert w.reload() is ReloadOutcome.REFUSED
    assert w.reload_failures == 2
    # Back to the content in service: healthy, nothing swapped.
    put(path, doc(1))
    assert w.poll() is ReloadOutcome.UNCHANGED
    assert w.status().healthy
    assert w.generation == 1


@pytest.mark.parametrize("hostile", list(Hostile), ids=lambda k: k.name)
def test_a_fifo_device_or_loop_is_survived_without_blocking(path: Path, hostile: Hostile) -> None:
    w = watch(path)
    with replaced_by(path, hostile) as words:
        for _ in range(3):
            assert bounded(w.poll, release_path=path) is not ReloadOutcome.LOADED
        assert bounded(w.reload, release_path=path) is ReloadOutcome.REFUSED
        status = w.status()
        assert words in (status.last_error or "")
        assert status.failures_by_reason == {"unreadable": 2}  # once by polls, once by reload
        assert w.current == 1
    put(path, doc(3))
    assert w.poll() is ReloadOutcome.LOADED
    assert w.current == 3
    assert w.status().last_failure is None


def test_a_directory_or_a_vanished_file_is_survived(path: Path) -> None:
    w = watch(path)
    path.unlink()
    assert w.poll() is ReloadOutcome.REFUSED
    assert "no such file" in (w.status().last_error or "")
    assert w.poll() is ReloadOutcome.UNCHANGED  # the same problem, not reported again
    path.mkdir()
    assert w.poll() is ReloadOutcome.REFUSED
    assert "a directory" in (w.status().last_error or "")
    assert (w.current, w.reload_failures) == (1, 2)
    path.rmdir()
    put(path, doc(4))
    assert w.poll() is ReloadOutcome.LOADED
    assert w.current == 4


def test_refused_content_stays_refused_across_a_read_error(path: Path) -> None:
    loads: list[int] = []

    def counting(contents: FileContents, now: dt.datetime, current: int | None) -> int:
        loads.append(1)
        return parse(contents, now, current)

    w = Watch(FileSet([(path, FileKind.POLICY)]), load=counting, what="x", log=LOG, attempts=1)
    put(path, b"[]")
    assert w.poll() is ReloadOutcome.REFUSED
    path.unlink()
    assert w.poll() is ReloadOutcome.REFUSED
    put(path, b"[]")  # the same bad content: remembered, neither checked nor counted again
    assert w.poll() is ReloadOutcome.REFUSED
    assert len(loads) == 2  # the first load and the first look at "[]"
    assert w.status().failures_by_reason == {"invalid": 1, "unreadable": 1}
    assert "not a counter document" in (w.status().last_error or "")


def test_a_torn_read_is_retried_within_one_poll(path: Path) -> None:
    """The first read sees half a file (an in-place writer); the retry sees it whole."""
    reads: list[int] = []

    def flaky(contents: FileContents, now: dt.datetime, current: int | None) -> int:
        reads.append(1)
        if len(reads) == 2:  # the first re-read after the initial load
            raise MaterialError("truncated")
        return parse(contents, now, current)

    w = Watch(FileSet([(path, FileKind.POLICY)]), load=flaky, what="x", log=LOG, retry_delay=0)
    put(path, doc(5))
    assert w.poll() is ReloadOutcome.LOADED
    assert (len(reads), w.reload_failures, w.current) == (3, 0, 5)
    one_try = Watch(FileSet([(path, FileKind.POLICY)]), load=parse, what="x", log=LOG, attempts=1)
    put(path, b"{")
    assert one_try.poll() is ReloadOutcome.REFUSED  # negative control: no retry, refused


def test_time_dependent_reasons_are_rechecked_every_poll(path: Path) -> None:
    clock = ManualClock(START)
    ready_at = START + dt.timedelta(seconds=30)

    def not_before(contents: FileContents, now: dt.datetime, current: int | None) -> int:
        value = parse(contents, now, current)
        if value == 9 and now < ready_at:
            raise MaterialError("not yet valid")
        return value

    w = Watch(
        FileSet([(path, FileKind.POLICY)]),
        load=not_before,
        what="x",
        log=LOG,
        clock=clock,
        classify=lambda e: "not_yet_valid" if "not yet" in str(e) else "invalid",
        recheck=frozenset({"not_yet_valid"}),
    )
    put(path, doc(9))
    assert w.poll() is ReloadOutcome.REFUSED
    clock.advance(29)
    assert w.poll() is ReloadOutcome.REFUSED  # same token, checked again, not counted again
    assert w.reload_failures == 1
    clock.advance(1)
    assert w.poll() is ReloadOutcome.LOADED
    assert w.last_success_time == ready_at


# -- time ------------------------------------------------------------------------------------------
def test_a_manual_clock_stamps_every_time_exactly(path: Path) -> None:
    clock = ManualClock(START)
    seen: list[dt.datetime] = []

    def load(contents: FileContents, now: dt.datetime, current: int | None) -> int:
        seen.append(now)
        return parse(contents, now, current)

    w = Watch(
        FileSet([(path, FileKind.POLICY)]), load=load, what="x", log=LOG, clock=clock, attempts=1
    )
    assert w.status().last_success_time == START
    clock.advance(60)
    put(path, b"{")
    w.poll()
    clock.advance(15)
    put(path, doc(2))
    w.poll()
    status = w.status()
    assert seen == [START, START + dt.timedelta(seconds=60), START + dt.timedelta(seconds=75)]
    assert status.last_failure_time == START + dt.timedelta(seconds=60)
    assert status.last_success_time == START + dt.timedelta(seconds=75)
    body = status.to_json()
    assert body["last_failure_time"] == "2031-05-06T07:09:09Z"
    assert body["last_success_time"] == "2031-05-06T07:09:24Z"
    assert body["last_failure"] is None  # the good file cleared the refusal
    assert (body["generation"], body["reload_successes"], body["reload_failures"]) == (2, 1, 1)
    assert body["paths"] == [str(path)]
    assert body["failures_by_reason"] == {"invalid": 1}
    assert body["last_result"] == "loaded"
    json.dumps(body)


# -- the polling thread ----------------------------------------------------------------------------
def threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("grpcsec-watch")]


def test_start_polls_and_stop_is_bounded(path: Path) -> None:
    w = watch(path, interval=0.02)
    w.start()
    w.start()  # idempotent
    try:
        assert w.running
        assert threads() == ["grpcsec-watch counter file"]
        put(path, doc(2))
        wait_until(lambda: w.current == 2)
    finally:
        began = time.monotonic()
        w.stop(timeout=5.0)
        assert time.monotonic() - began < 2.0
    assert not w.running
    assert threads() == []
    put(path, doc(3))
    time.sleep(0.1)
    assert w.current == 2  # negative control: a stopped watch polls no more


def test_request_reload_from_another_thread_wakes_a_slow_watch(path: Path) -> None:
    w = watch(path, interval=3600)  # the interval alone would never poll in this test
    w.start()
    try:
        put(path, doc(5))
        time.sleep(0.05)
        assert w.current == 1  # negative control: nothing polls by itself
        other = threading.Thread(target=w.request_reload)
        other.start()
        other.join(5)
        wait_until(lambda: w.current == 5)
    finally:
        w.stop()


class CountingFiles(FileSet):
    """A file set that counts its reads (to tell a forced poll from a skipped one)."""

    __slots__ = ("reads",)

    def __init__(self, path: Path) -> None:
        super().__init__([(path, FileKind.POLICY)])
        self.reads = 0

    def read(self) -> FileContents:
        self.reads += 1
        return super().read()


def test_reload_inside_a_check_of_the_same_thread_is_deferred(path: Path) -> None:
    """What a signal handler interrupting a check sees: BUSY, and the next poll is forced."""
    outcomes: list[ReloadOutcome] = []
    holder: list[Watch[FileContents, int]] = []

    def load(contents: FileContents, now: dt.datetime, current: int | None) -> int:
        if holder:
            outcomes.append(holder[0].reload())
        return parse(contents, now, current)

    files = CountingFiles(path)
    w = Watch(files, load=load, what="x", log=LOG)
    holder.append(w)
    put(path, doc(6))
    assert w.poll() is ReloadOutcome.LOADED
    assert outcomes == [ReloadOutcome.BUSY]
    reads = files.reads
    assert w.poll() is ReloadOutcome.UNCHANGED  # forced: read, same digest as in service
    assert files.reads == reads + 1
    assert w.poll() is ReloadOutcome.UNCHANGED  # negative control: not forced, nothing read
    assert files.reads == reads + 1


def test_the_watch_module_loads_no_grpc() -> None:
    code = (
        "import sys, grpcsec.watch, grpcsec.fileio; "
        "print(sorted(m for m in sys.modules if m == 'grpc' or m.startswith('grpc.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_watched_file_is_the_same_watch_polled_on_use(path: Path) -> None:
    """fileio.WatchedFile (JWKS and token files) keeps its API on the core: value, check(),
    reloads, failures, last_error, and the core's status with the clock's times."""
    clock = ManualClock(START)
    watched: WatchedFile[int] = WatchedFile(
        path,
        kind=FileKind.JWKS,
        parse=lambda data: parse(FileContents((path,), (data,)), START, None),
        what="counter file",
        log=LOG,
        clock=clock,
    )
    assert (watched.value, watched.check()) == (1, False)
    clock.advance(5)
    put(path, b"[]")
    assert watched.check() is False
    assert (watched.value, watched.failures, watched.reloads) == (1, 1, 0)
    assert watched.last_error == "not a counter document"
    clock.advance(5)
    put(path, doc(8))
    assert watched.check() is True
    assert (watched.value, watched.reloads, watched.last_error) == (8, 1, None)
    status = watched.status()
    assert status.last_failure_time == START + dt.timedelta(seconds=5)
    assert status.last_success_time == START + dt.timedelta(seconds=10)
    assert status.paths == (str(path),)
