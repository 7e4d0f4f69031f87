"""Policy providers (authz-a43.md §9): static creation, file-watcher creation errors, and the
reload scenarios upstream checks (valid to valid, valid to invalid keeps the old policy,
invalid to fixed, the update callback), driven tick by tick with ``reload()``; one test runs
the real polling thread.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from grpcsec.authz import (
    AuditLoggerRegistry,
    Authorizer,
    FileWatcherPolicyProvider,
    Policy,
    ReloadResult,
    StaticPolicyProvider,
    parse_policy,
)
from grpcsec.clock import ManualClock
from grpcsec.errors import ConfigurationError, PolicyError
from grpcsec.watch import ReloadOutcome
from tests.authz.conftest import METHOD, STREAMING, Capture, outcome, request
from tests.authz.test_conformance import GO_POLICIES
from tests.hostile import Hostile, replaced_by

# grpc-go's TestFileWatcher_ValidPolicyRefresh: A denies everything, B allows both methods.
POLICY_A = json.dumps(GO_POLICIES["DeniesRPCMatchInDenyAndAllow"])
POLICY_B = json.dumps(GO_POLICIES["AllowsRPCEmptyDenyMatchInAllow"])
INVALID = "{}"


def write(path: Path, text: str) -> None:
    """Replace the file atomically (a reader sees the old or the new bytes, never half)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(path)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "authz.json"
    write(path, POLICY_A)
    return path


class Updates:
    def __init__(self) -> None:
        self.policies: list[Policy] = []

    def __call__(self, policy: Policy) -> None:
        self.policies.append(policy)

    @property
    def names(self) -> list[list[str]]:
        return [[r.name for r in p.allow_rules] for p in self.policies]


def watcher(path: Path, **kwargs: object) -> FileWatcherPolicyProvider:
    kwargs.setdefault("interval", 3600)
    kwargs.setdefault("start", False)
    return FileWatcherPolicyProvider(path, **kwargs)  # type: ignore[arg-type]


def unary(provider: FileWatcherPolicyProvider | StaticPolicyProvider) -> tuple[str, str | None]:
    return outcome(provider.engine.evaluate(request(METHOD)))


# -- static ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "source",
    [POLICY_B, POLICY_B.encode(), json.loads(POLICY_B), parse_policy(POLICY_B)],
    ids=["str", "bytes", "mapping", "policy"],
)
def test_static_provider_accepts_text_bytes_mapping_or_policy(source: object) -> None:
    provider = StaticPolicyProvider(source)  # type: ignore[arg-type]
    assert unary(provider) == ("allow", "allow_UnaryCall")
    assert provider.policy.name == "authz"
    provider.close()


def test_static_provider_refuses_an_invalid_policy() -> None:
    with pytest.raises(PolicyError) as caught:
        StaticPolicyProvider(INVALID)
    assert caught.value.location == "name"


# -- file watcher: creation ------------------------------------------------------------------------
def test_file_watcher_requires_a_path(policy_file: Path) -> None:
    with pytest.raises(ConfigurationError, match="path is empty"):
        FileWatcherPolicyProvider("", interval=1)


@pytest.mark.parametrize("interval", [0, -1, dt.timedelta(0), float("nan")])
def test_file_watcher_requires_a_positive_interval(policy_file: Path, interval: object) -> None:
    with pytest.raises(ConfigurationError, match="greater than 0"):
        FileWatcherPolicyProvider(policy_file, interval=interval)  # type: ignore[arg-type]


def test_first_load_must_succeed(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(PolicyError, match="cannot read the policy") as caught:
        watcher(missing)
    assert caught.value.path == str(missing)
    bad = tmp_path / "bad.json"
    write(bad, INVALID)
    with pytest.raises(PolicyError) as caught:
        watcher(bad)
    assert caught.value.location == "name"
    assert caught.value.path == str(bad)


def test_first_load_is_synchronous_and_calls_back_once(policy_file: Path) -> None:
    updates = Updates()
    provider = watcher(policy_file, on_update=updates, interval=dt.timedelta(seconds=30))
    assert provider.interval == 30.0
    assert unary(provider) == ("deny", "deny_all")
    assert updates.names == [["allow_all"]]
    assert provider.last_error is None
    status = provider.status
    assert (status.loads, status.failures, status.checks, status.running) == (1, 0, 1, False)


# -- file watcher: reload scenarios ----------------------------------------------------------------
def test_valid_refresh_switches_to_the_new_policy(policy_file: Path) -> None:
    updates = Updates()
    provider = watcher(policy_file, on_update=updates)
    before = provider.engine
    write(policy_file, POLICY_B)
    assert provider.reload() is ReloadResult.UPDATED
    assert unary(provider) == ("allow", "allow_UnaryCall")
    assert outcome(provider.engine.evaluate(request(STREAMING))) == (
        "allow",
        "allow_StreamingInputCall",
    )
    # an RPC that started before the swap keeps the engine it read
    assert outcome(before.evaluate(request(METHOD))) == ("deny", "deny_all")
    assert updates.names == [["allow_all"], ["allow_UnaryCall", "allow_StreamingInputCall"]]
    assert provider.status.loads == 2


def test_invalid_refresh_is_skipped_and_reported_once(
    policy_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    updates = Updates()
    provider = watcher(policy_file, on_update=updates)
    write(policy_file, INVALID)
    with caplog.at_level(logging.WARNING, logger="grpcsec.authz"):
        assert provider.reload() is ReloadResult.FAILED
        assert provider.reload() is ReloadResult.UNCHANGED  # bad bytes were recorded as seen
        assert provider.reload() is ReloadResult.UNCHANGED
    assert unary(provider) == ("deny", "deny_all")  # the old policy stays in force
    error = provider.last_error
    assert error is not None
    assert error.location == "name"
    assert error.path == str(policy_file)
    status = provider.status
    assert (status.loads, status.failures, status.checks) == (1, 1, 4)
    assert status.last_error == f"{policy_file}: name: is required (the policy name)"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "keeping policy 'authz'" in warnings[0].getMessage()
    assert "name: is required" in warnings[0].getMessage()
    assert len(updates.policies) == 1  # no callback for a failed load


def test_recovers_after_a_failure(policy_file: Path) -> None:
    updates = Updates()
    provider = watcher(policy_file, on_update=updates)
    write(policy_file, INVALID)
    assert provider.reload() is ReloadResult.FAILED
    write(policy_file, POLICY_B)
    assert provider.reload() is ReloadResult.UPDATED
    assert unary(provider) == ("allow", "allow_UnaryCall")
    assert provider.last_error is None
    assert provider.status.to_json()["failures"] == 1
    assert len(updates.policies) == 2


def test_another_invalid_version_is_reported_again(policy_file: Path) -> None:
    provider = watcher(policy_file)
    write(policy_file, INVALID)
    provider.reload()
    write(policy_file, '{"name": "x"}')
    assert provider.reload() is ReloadResult.FAILED
    assert provider.last_error is not None
    assert provider.last_error.location == "allow_rules"
    assert provider.status.failures == 2


def test_unchanged_bytes_do_nothing(policy_file: Path) -> None:
    updates = Updates()
    provider = watcher(policy_file, on_update=updates)
    engine = provider.engine
    write(policy_file, POLICY_A)  # rewritten with the same bytes
    assert provider.reload() is ReloadResult.UNCHANGED
    assert provider.engine is engine
    assert len(updates.policies) == 1


def test_an_unreadable_file_keeps_the_policy_and_is_reported_once(
    policy_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    provider = watcher(policy_file)
    policy_file.unlink()
    with caplog.at_level(logging.WARNING, logger="grpcsec.authz"):
        assert provider.reload() is ReloadResult.FAILED
        assert provider.reload() is ReloadResult.UNCHANGED
    assert unary(provider) == ("deny", "deny_all")
    assert provider.last_error is not None
    assert "cannot read the policy" in str(provider.last_error)
    assert provider.status.failures == 1
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    write(policy_file, POLICY_A)  # back with the bytes in force: nothing to load, error cleared
    assert provider.reload() is ReloadResult.UNCHANGED
    assert provider.last_error is None
    policy_file.unlink()
    assert provider.reload() is ReloadResult.FAILED  # a new failure after a good read
    write(policy_file, POLICY_B)
    assert provider.reload() is ReloadResult.UPDATED


def test_error_of_an_invalid_file_survives_a_read_error_in_between(policy_file: Path) -> None:
    provider = watcher(policy_file)
    write(policy_file, INVALID)
    provider.reload()
    policy_file.unlink()
    provider.reload()
    write(policy_file, INVALID)
    assert provider.reload() is ReloadResult.UNCHANGED
    assert provider.last_error is not None
    assert provider.last_error.location == "name"


def test_a_failing_callback_is_logged_and_ignored(
    policy_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def callback(policy: Policy) -> None:
        calls.append(policy.name)
        raise RuntimeError("callback bug")

    with caplog.at_level(logging.ERROR, logger="grpcsec.authz"):
        provider = watcher(policy_file, on_update=callback)
        write(policy_file, POLICY_B)
        assert provider.reload() is ReloadResult.UPDATED
    assert calls == ["authz", "authz"]
    assert "callback failed" in caplog.text


def test_audit_follows_the_policy_in_force(policy_file: Path) -> None:
    """C++'s check: audit keeps working with the old policy while the file is invalid, then
    uses the new policy's audit settings."""
    capture = Capture()
    registry = AuditLoggerRegistry([capture])
    audited = json.loads(POLICY_A)
    audited["audit_logging_options"] = {
        "audit_condition": "ON_DENY",
        "audit_loggers": [{"name": "capture"}],
    }
    write(policy_file, json.dumps(audited))
    authorizer = Authorizer(watcher(policy_file, registry=registry))
    authorizer.evaluate(request(METHOD))
    write(policy_file, INVALID)
    authorizer.provider.reload()  # type: ignore[attr-defined]
    authorizer.evaluate(request(METHOD))
    assert [e.matched_rule for e in capture.events] == ["deny_all", "deny_all"]
    new = json.loads(POLICY_B)
    new["audit_logging_options"] = {
        "audit_condition": "ON_ALLOW",
        "audit_loggers": [{"name": "capture"}],
    }
    write(policy_file, json.dumps(new))
    authorizer.provider.reload()  # type: ignore[attr-defined]
    assert authorizer.evaluate(request(METHOD)).allowed
    assert [e.matched_rule for e in capture.events][-1] == "allow_UnaryCall"
    assert len(capture.events) == 3


def test_status_times_come_from_the_clock_and_failures_are_split_by_reason(
    policy_file: Path,
) -> None:
    start = dt.datetime(2032, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    clock = ManualClock(start)
    provider = watcher(policy_file, clock=clock)
    clock.advance(30)
    write(policy_file, INVALID)
    assert provider.reload() is ReloadResult.FAILED
    clock.advance(30)
    policy_file.unlink()
    assert provider.reload() is ReloadResult.FAILED
    status = provider.status
    assert status.last_success_time == start
    assert status.last_failure_time == start + dt.timedelta(seconds=60)
    assert status.last_result is ReloadOutcome.REFUSED
    body = status.to_json()
    assert body["failures_by_reason"] == {"invalid": 1, "unreadable": 1}
    assert body["last_success_time"] == "2032-01-02T03:04:05Z"
    assert body["last_failure_time"] == "2032-01-02T03:05:05Z"
    clock.advance(5)
    write(policy_file, POLICY_B)
    assert provider.reload() is ReloadResult.UPDATED
    body = provider.status.to_json()
    assert (body["last_result"], body["last_error"], body["loads"]) == ("loaded", None, 2)
    assert body["last_success_time"] == "2032-01-02T03:05:10Z"


# -- the polling thread ----------------------------------------------------------------------------
def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_polling_thread_picks_up_changes_and_stops(policy_file: Path) -> None:
    updates = Updates()
    with FileWatcherPolicyProvider(policy_file, interval=0.02, on_update=updates) as provider:
        assert provider.running
        write(policy_file, INVALID)
        assert wait_until(lambda: provider.last_error is not None)
        assert unary(provider) == ("deny", "deny_all")
        write(policy_file, POLICY_B)
        assert wait_until(lambda: unary(provider) == ("allow", "allow_UnaryCall"))
        assert wait_until(lambda: provider.last_error is None)
        checks = provider.status.checks
        assert wait_until(lambda: provider.status.checks > checks + 2)  # it keeps ticking
    assert not provider.running
    assert not any(t.name.startswith("grpcsec-authz-watch") for t in threading.enumerate())
    provider.close()  # idempotent
    assert len(updates.policies) == 2


# -- Authorizer ------------------------------------------------------------------------------------
def test_authorizer_from_file_without_interval_reads_once(policy_file: Path) -> None:
    updates = Updates()
    with Authorizer.from_file(policy_file, on_update=updates) as authorizer:
        write(policy_file, POLICY_B)
        assert outcome(authorizer.evaluate(request(METHOD))) == ("deny", "deny_all")
        assert isinstance(authorizer.provider, StaticPolicyProvider)
    assert len(updates.policies) == 1


def test_authorizer_from_file_with_interval_watches(policy_file: Path) -> None:
    authorizer = Authorizer.from_file(policy_file, reload_interval=0.02)
    try:
        assert isinstance(authorizer.provider, FileWatcherPolicyProvider)
        write(policy_file, POLICY_B)
        assert wait_until(lambda: authorizer.evaluate(request(METHOD)).allowed)
        assert authorizer.policy.allow_rules[0].name == "allow_UnaryCall"
        assert "FileWatcherPolicyProvider" in repr(authorizer)
    finally:
        authorizer.close()
    assert not authorizer.provider.running  # type: ignore[attr-defined]


def test_authorizer_from_policy_is_static() -> None:
    authorizer = Authorizer.from_policy(POLICY_B)
    assert authorizer.engine.name == "authz"
    assert authorizer.evaluate(request(METHOD)).allowed


@pytest.mark.parametrize("hostile", list(Hostile), ids=lambda k: k.name)
def test_a_policy_replaced_by_a_fifo_device_or_loop_never_wedges_the_thread(
    policy_file: Path, hostile: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    """The polling thread refuses the hostile file without blocking (it keeps ticking), keeps
    the policy in force, reports the problem once, and loads the next good file."""
    with (
        caplog.at_level(logging.WARNING, logger="grpcsec.authz"),
        FileWatcherPolicyProvider(policy_file, interval=0.02) as provider,
    ):
        with replaced_by(policy_file, hostile) as words:
            assert wait_until(lambda: provider.last_error is not None, timeout=5.0)
            assert words in str(provider.last_error)
            assert isinstance(provider.last_error, PolicyError)
            checks = provider.status.checks
            assert wait_until(lambda: provider.status.checks > checks + 3, timeout=5.0)
            assert unary(provider) == ("deny", "deny_all")
            assert provider.status.failures == 1
            assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
        write(policy_file, POLICY_B)
        assert wait_until(lambda: unary(provider) == ("allow", "allow_UnaryCall"), timeout=5.0)
        assert provider.last_error is None
