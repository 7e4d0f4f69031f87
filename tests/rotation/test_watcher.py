"""The watcher's state machine with scripted sources and a settable clock (no servers)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Hashable
from typing import Any

import pytest

from grpcsec.clock import ManualClock
from grpcsec.errors import ConfigurationError, MaterialError, RotationError
from grpcsec.pki import IssuedCertificate, Validity, utcnow
from grpcsec.rotation import (
    FailureKind,
    MemorySource,
    RawMaterial,
    ReloadOutcome,
    ServerMaterial,
    Watcher,
    check_server_material,
)
from tests.rotation.conftest import RotPki, server_leaf


class Scripted:
    """A source whose reads follow a script (RawMaterial or an exception per read); its token
    changes only when told."""

    description = "scripted"

    def __init__(self, *reads: RawMaterial | Exception) -> None:
        self.reads = list(reads)
        self.token = 0
        self.count = 0

    def version(self) -> Hashable:
        return self.token

    def read(self) -> RawMaterial:
        self.count += 1
        item = self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]
        if isinstance(item, Exception):
            raise item
        return item


def raw(leaf: IssuedCertificate, key_of: IssuedCertificate | None = None) -> RawMaterial:
    return RawMaterial(chain=leaf.chain_pem(), key=(key_of or leaf).key_pem())


class Harness:
    def __init__(self, source: Any, *, now: dt.datetime | None = None, **options: Any) -> None:
        self.clock = ManualClock(now or utcnow())
        self.applied: list[ServerMaterial] = []
        options = {"retry_delay": 0.0, **options}
        self.watcher: Watcher[ServerMaterial] = Watcher(
            source,
            load=lambda r, now, _current: check_server_material(r, now=now, mutual=False),
            apply=self.applied.append,
            describe=ServerMaterial.describe,
            what="server certificate",
            clock=self.clock,
            **options,
        )


def test_a_torn_read_is_retried_within_the_same_poll(rot_pki: RotPki) -> None:
    first, second = server_leaf(rot_pki.ca), server_leaf(rot_pki.ca)
    source = Scripted(raw(first))
    h = Harness(source)
    source.reads = [raw(second, key_of=first), MaterialError("truncated PEM"), raw(second)]
    source.token = 1
    assert h.watcher.poll() is ReloadOutcome.LOADED
    assert source.count == 4  # the first load + three reads in one poll
    assert h.watcher.reload_failures == 0
    assert h.watcher.last_error is None
    assert h.applied[-1].leaf.serial_number == second.certificate.serial_number


def test_a_persistent_failure_is_refused_logged_once_and_rechecked_only_when_new(
    rot_pki: RotPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="grpcsec.rotation")
    first, second = server_leaf(rot_pki.ca), server_leaf(rot_pki.ca)
    source = Scripted(raw(first))
    h = Harness(source, attempts=3, full_check_every=2)
    source.reads = [raw(second, key_of=first)]
    source.token = 1
    assert h.watcher.poll() is ReloadOutcome.REFUSED
    reads = source.count
    for _ in range(6):  # unchanged token, plus full checks every other poll
        h.watcher.poll()
    assert source.count - reads == 3  # only the full checks read, and none re-checks
    assert h.watcher.reload_failures == 1
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    failure = h.watcher.last_failure
    assert failure is not None
    assert failure.kind is FailureKind.KEY_MISMATCH
    assert isinstance(h.watcher.last_error, RotationError)
    assert failure.to_json()["kind"] == "key_mismatch"
    # An explicit reload re-checks and reports again.
    assert h.watcher.reload() is ReloadOutcome.REFUSED
    assert h.watcher.reload_failures == 2
    # Going back to the material in service clears the error without a swap.
    source.reads = [raw(first)]
    source.token = 2
    assert h.watcher.poll() is ReloadOutcome.UNCHANGED
    assert h.watcher.last_error is None
    assert len(h.applied) == 1


def test_not_yet_valid_material_is_rechecked_every_poll_and_loads_when_valid(
    rot_pki: RotPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="grpcsec.rotation")
    now = utcnow().replace(microsecond=0)
    source = Scripted(raw(server_leaf(rot_pki.ca)))
    h = Harness(source, now=now)
    start = now + dt.timedelta(hours=1)
    future = server_leaf(
        rot_pki.ca, validity=Validity(not_before=start, not_after=start + dt.timedelta(days=1))
    )
    source.reads = [raw(future)]
    source.token = 1
    assert h.watcher.poll() is ReloadOutcome.REFUSED
    assert h.watcher.poll() is ReloadOutcome.REFUSED  # re-checked although the token is same
    assert len(caplog.records) == 1
    h.clock.set(start - dt.timedelta(seconds=1))
    assert h.watcher.poll() is ReloadOutcome.REFUSED
    h.clock.set(start)
    assert h.watcher.poll() is ReloadOutcome.LOADED
    assert h.watcher.reload_successes == 1


def test_the_first_load_fails_loudly(rot_pki: RotPki) -> None:
    with pytest.raises(RotationError, match="cannot load the initial server certificate") as info:
        Harness(Scripted(MaterialError("no such file", path="tls.crt")), attempts=2)
    assert "tls.crt" in str(info.value)
    assert isinstance(info.value.__cause__, MaterialError)  # the error itself, not a wrapper


def test_a_reload_inside_a_reload_in_the_same_thread_does_not_deadlock(rot_pki: RotPki) -> None:
    """What a signal handler that fires during a reload does: BUSY, and the watcher thread (if
    running) picks it up."""
    leaf = server_leaf(rot_pki.ca)
    nested: list[ReloadOutcome] = []

    class Reentrant(Scripted):
        def read(self) -> RawMaterial:
            if self.count == 1:  # the second read: a reload() call "from a signal handler"
                nested.append(h.watcher.reload())
            return super().read()

    source = Reentrant(raw(leaf))
    h = Harness(source)
    assert h.watcher.reload() is ReloadOutcome.UNCHANGED
    assert nested == [ReloadOutcome.BUSY]


def test_the_thread_polls_and_stops(rot_pki: RotPki) -> None:
    source = MemorySource.of(server_leaf(rot_pki.ca))
    h = Harness(source, interval=0.01)
    h.watcher.start()
    h.watcher.start()  # idempotent
    assert h.watcher.running
    source.set(server_leaf(rot_pki.ca))
    for _ in range(300):
        if h.watcher.reload_successes:
            break
        time.sleep(0.01)
    assert h.watcher.reload_successes == 1
    h.watcher.stop()
    assert not h.watcher.running


def test_bad_options_are_refused(rot_pki: RotPki) -> None:
    source = MemorySource.of(server_leaf(rot_pki.ca))
    for options in ({"interval": 0}, {"attempts": 0}, {"full_check_every": 0}):
        with pytest.raises(ConfigurationError):
            Harness(source, **options)


def test_a_broken_source_token_does_not_stop_the_watcher(rot_pki: RotPki) -> None:
    leaf = server_leaf(rot_pki.ca)

    class BrokenToken(Scripted):
        def version(self) -> Hashable:
            raise OSError("stat failed")

    source = BrokenToken(raw(leaf))
    h = Harness(source)
    assert h.watcher.poll() is ReloadOutcome.UNCHANGED  # read, same digest
