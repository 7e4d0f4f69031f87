"""Audit logging (gRFC A59; authz-a43.md §8): the per-engine condition mapping, which outcomes
are logged with which fields, the built-in loggers' output, the registry, and that a logger can
never change a decision. Ends with grpc-go's ``TestAuditLogger`` counts replayed in-process.
"""

from __future__ import annotations

import io
import json
import logging
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from grpcsec.authz import (
    AuditCondition,
    AuditEvent,
    AuditLoggerRegistry,
    Authorizer,
    Engine,
    FileAuditLogger,
    FileLoggerFactory,
    StdoutAuditLogger,
    StdoutLoggerFactory,
    default_registry,
    parse_policy,
    register_audit_logger,
)
from grpcsec.authz.audit import rfc3339_nanos
from grpcsec.errors import ConfigurationError, PolicyError
from grpcsec.pki import CertificateAuthority, SubjectAltNames
from tests.authz.conftest import (
    METHOD,
    PLAINTEXT,
    SPIFFE,
    STREAMING,
    Capture,
    cert_peer,
    issue_client_pem,
    peer_from_pem,
    policy_json,
    request,
)

C = AuditCondition


@pytest.mark.parametrize(
    ("condition", "deny_engine", "allow_engine"),
    [
        (C.NONE, C.NONE, C.NONE),
        (C.ON_DENY, C.ON_DENY, C.ON_DENY),
        (C.ON_ALLOW, C.NONE, C.ON_ALLOW),
        (C.ON_DENY_AND_ALLOW, C.ON_DENY, C.ON_DENY_AND_ALLOW),
    ],
)
def test_condition_maps_to_one_condition_per_engine(
    condition: AuditCondition, deny_engine: AuditCondition, allow_engine: AuditCondition
) -> None:
    assert (condition.deny_engine, condition.allow_engine) == (deny_engine, allow_engine)


def audited_policy(condition: str, loggers: list[dict[str, Any]] | None = None) -> str:
    return policy_json(
        [{"name": "allow_unary", "request": {"paths": [METHOD]}}],
        deny=[{"name": "deny_streaming", "request": {"paths": [STREAMING]}}],
        audit={
            "audit_condition": condition,
            "audit_loggers": loggers if loggers is not None else [{"name": "capture"}],
        },
    )


DENY_RULE = STREAMING
DEFAULT_DENY = "/grpc.testing.TestService/Other"
ALLOW = METHOD

# (condition, method, logged?, (authorized, matched_rule) when logged)
OUTCOME_ROWS = [
    ("NONE", DENY_RULE, None),
    ("NONE", DEFAULT_DENY, None),
    ("NONE", ALLOW, None),
    ("ON_DENY", DENY_RULE, (False, "deny_streaming")),
    ("ON_DENY", DEFAULT_DENY, (False, "")),
    ("ON_DENY", ALLOW, None),
    ("ON_ALLOW", DENY_RULE, None),
    ("ON_ALLOW", DEFAULT_DENY, None),
    ("ON_ALLOW", ALLOW, (True, "allow_unary")),
    ("ON_DENY_AND_ALLOW", DENY_RULE, (False, "deny_streaming")),
    ("ON_DENY_AND_ALLOW", DEFAULT_DENY, (False, "")),
    ("ON_DENY_AND_ALLOW", ALLOW, (True, "allow_unary")),
]


@pytest.mark.parametrize(("condition", "method", "logged"), OUTCOME_ROWS)
def test_which_outcomes_are_audited(
    condition: str,
    method: str,
    logged: tuple[bool, str] | None,
    registry: AuditLoggerRegistry,
    capture: Capture,
) -> None:
    engine = Engine(parse_policy(audited_policy(condition), registry=registry))
    decision = engine.authorize(request(method))
    if logged is None:
        assert capture.events == []
        return
    (event,) = capture.events  # at most once per RPC
    assert (event.authorized, event.matched_rule) == logged
    assert event.authorized is decision.allowed
    assert event.rpc_method == method
    assert event.policy_name == "authz"


def test_evaluate_is_pure_and_authorize_audits(
    registry: AuditLoggerRegistry, capture: Capture
) -> None:
    engine = Engine(parse_policy(audited_policy("ON_DENY_AND_ALLOW"), registry=registry))
    engine.evaluate(request(ALLOW))
    assert capture.events == []
    engine.authorize(request(ALLOW))
    assert len(capture.events) == 1


@pytest.mark.parametrize(
    ("uris", "principal"),
    [
        ([SPIFFE], SPIFFE),
        ([SPIFFE, "spiffe://foo.bar.com/other"], ""),  # exactly one URI SAN
        (["https://example.com/x"], ""),  # not a SPIFFE ID
        ([], ""),
    ],
)
def test_event_principal_is_the_spiffe_id(
    uris: list[str],
    principal: str,
    registry: AuditLoggerRegistry,
    capture: Capture,
    authority: CertificateAuthority,
) -> None:
    names = SubjectAltNames.build(uris=uris, dns=[] if uris else ["c.example.com"])
    peer = peer_from_pem(issue_client_pem(authority, names))
    Engine(parse_policy(audited_policy("ON_DENY_AND_ALLOW"), registry=registry)).authorize(
        request(ALLOW, peer)
    )
    assert capture.events[0].principal == principal


def test_event_principal_is_empty_for_plaintext(
    registry: AuditLoggerRegistry, capture: Capture
) -> None:
    Engine(parse_policy(audited_policy("ON_DENY"), registry=registry)).authorize(
        request(DENY_RULE, PLAINTEXT)
    )
    assert capture.events[0].principal == ""


def test_every_logger_is_invoked_and_two_of_one_type_both_log(
    registry: AuditLoggerRegistry, capture: Capture
) -> None:
    loggers = [{"name": "capture"}, {"name": "capture", "config": {"second": True}}]
    engine = Engine(parse_policy(audited_policy("ON_DENY", loggers), registry=registry))
    engine.authorize(request(DENY_RULE))
    assert len(capture.events) == 2
    assert capture.configs == [{}, {"second": True}]


def test_valid_but_inert_configurations_never_log(
    registry: AuditLoggerRegistry, capture: Capture
) -> None:
    for document in (
        audited_policy("ON_DENY_AND_ALLOW", loggers=[]),
        audited_policy("NONE"),
        policy_json([{"name": "a"}], audit={"audit_loggers": [{"name": "capture"}]}),
    ):
        engine = Engine(parse_policy(document, registry=registry))
        for method in (ALLOW, DENY_RULE, DEFAULT_DENY):
            engine.authorize(request(method))
    assert capture.events == []


class Exploding:
    name = "exploding"

    def parse_config(self, config: Any) -> None:
        del config

    def build(self, config: None) -> Exploding:
        del config
        return self

    def log(self, event: AuditEvent) -> None:
        raise OSError(f"disk full while logging {event.rpc_method}")


def test_a_failing_logger_never_changes_the_decision(
    registry: AuditLoggerRegistry, capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    registry.register(Exploding())
    loggers = [{"name": "exploding"}, {"name": "capture"}]
    engine = Engine(parse_policy(audited_policy("ON_DENY_AND_ALLOW", loggers), registry=registry))
    with caplog.at_level(logging.WARNING, logger="grpcsec.authz"):
        for _ in range(3):
            assert engine.authorize(request(ALLOW)).allowed
            assert not engine.authorize(request(DENY_RULE)).allowed
    assert engine.audit_failures == 6
    assert len(capture.events) == 6  # the next logger still runs
    warnings = [r for r in caplog.records if "audit logger exploding" in r.getMessage()]
    assert len(warnings) == 1  # reported once, not once per RPC


def test_a_logger_that_cannot_be_built_makes_the_policy_invalid(
    registry: AuditLoggerRegistry,
) -> None:
    class Unbuildable(Exploding):
        name = "unbuildable"

        def build(self, config: None) -> Exploding:
            raise ValueError("no such sink")

    registry.register(Unbuildable())
    policy = parse_policy(audited_policy("ON_DENY", [{"name": "unbuildable"}]), registry=registry)
    with pytest.raises(PolicyError) as caught:
        Engine(policy)
    assert caught.value.location == "audit_logging_options.audit_loggers[0]"


# -- built-in loggers ------------------------------------------------------------------------------
EVENT = AuditEvent(
    rpc_method=METHOD,
    principal=SPIFFE,
    policy_name="authz",
    matched_rule="allow_unary",
    authorized=True,
)
FIXED_NS = 1_700_000_000_123_456_789


def test_timestamp_is_rfc3339_utc_with_nanoseconds() -> None:
    assert rfc3339_nanos(FIXED_NS) == "2023-11-14T22:13:20.123456789Z"
    assert rfc3339_nanos(0) == "1970-01-01T00:00:00.000000000Z"


def test_stdout_logger_writes_one_json_line_per_event() -> None:
    stream = io.StringIO()
    logger = StdoutAuditLogger(stream, clock=lambda: FIXED_NS)
    logger.log(EVENT)
    logger.log(EVENT)
    lines = stream.getvalue().splitlines(keepends=True)
    assert len(lines) == 2
    assert all(line.endswith("\n") for line in lines)
    record = json.loads(lines[0])
    assert list(record) == ["grpc_audit_log"]
    assert list(record["grpc_audit_log"]) == [
        "rpc_method",
        "principal",
        "policy_name",
        "matched_rule",
        "authorized",
        "timestamp",
    ]
    assert record["grpc_audit_log"] == {
        "rpc_method": METHOD,
        "principal": SPIFFE,
        "policy_name": "authz",
        "matched_rule": "allow_unary",
        "authorized": True,
        "timestamp": "2023-11-14T22:13:20.123456789Z",
    }


def test_stdout_logger_defaults_to_the_current_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    engine = Engine(parse_policy(audited_policy("ON_ALLOW", [{"name": "stdout_logger"}])))
    engine.authorize(request(ALLOW, cert_peer(uris=[SPIFFE], spiffe_id=SPIFFE)))
    out = capsys.readouterr().out
    record = json.loads(out)["grpc_audit_log"]
    assert record["authorized"] is True
    assert record["principal"] == SPIFFE
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", record["timestamp"])


def test_stdout_factory_ignores_its_config() -> None:
    factory = StdoutLoggerFactory(stream=io.StringIO())
    factory.parse_config({"anything": 1})
    assert isinstance(factory.build(None), StdoutAuditLogger)


def test_file_logger_appends_lines_to_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    policy = audited_policy(
        "ON_DENY_AND_ALLOW", [{"name": "grpcsec_file_logger", "config": {"path": str(path)}}]
    )
    engine = Engine(parse_policy(policy))
    engine.authorize(request(ALLOW))
    engine.authorize(request(DENY_RULE))
    records = [json.loads(line)["grpc_audit_log"] for line in path.read_text().splitlines()]
    assert [(r["authorized"], r["matched_rule"]) for r in records] == [
        (True, "allow_unary"),
        (False, "deny_streaming"),
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_file_logger_config_is_validated() -> None:
    factory = FileLoggerFactory()
    assert factory.parse_config({"path": "/var/log/a.jsonl"}) == Path("/var/log/a.jsonl")
    for bad in ({}, {"path": ""}, {"path": 1}, {"path": "a", "mode": "x"}):
        with pytest.raises(PolicyError):
            factory.parse_config(bad)


def test_file_logger_failure_is_reported_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing_dir = tmp_path / "nope" / "audit.jsonl"
    engine = Engine(
        parse_policy(
            audited_policy(
                "ON_DENY", [{"name": "grpcsec_file_logger", "config": {"path": str(missing_dir)}}]
            )
        )
    )
    with caplog.at_level(logging.WARNING, logger="grpcsec.authz"):
        assert not engine.authorize(request(DENY_RULE)).allowed
    assert engine.audit_failures == 1
    assert "FileNotFoundError" in caplog.text
    FileAuditLogger(tmp_path / "ok.jsonl", clock=lambda: 0).log(EVENT)
    assert (tmp_path / "ok.jsonl").read_text().count("\n") == 1


# -- registry --------------------------------------------------------------------------------------
def test_registry_refuses_a_taken_name_unless_replacing() -> None:
    registry = AuditLoggerRegistry([Capture("a")])
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register(Capture("a"))
    replacement = Capture("a")
    registry.register(replacement, replace=True)
    assert registry.get("a") is replacement
    registry.unregister("a")
    assert registry.get("a") is None
    assert registry.names() == ()
    with pytest.raises(ConfigurationError, match="non-empty name"):
        registry.register(Capture(""))


def test_registry_copy_is_independent() -> None:
    registry = AuditLoggerRegistry([Capture("a")])
    copy = registry.copy()
    copy.register(Capture("b"))
    assert registry.names() == ("a",)
    assert copy.names() == ("a", "b")


def test_default_registry_has_the_builtins() -> None:
    assert {"stdout_logger", "grpcsec_file_logger"} <= set(default_registry().names())


@pytest.mark.usefixtures("isolated_default_registry")
def test_register_audit_logger_adds_a_type_for_every_later_policy() -> None:
    document = audited_policy("ON_DENY", [{"name": "custom_type"}])
    with pytest.raises(PolicyError, match="custom_type"):
        parse_policy(document)
    custom = Capture("custom_type")
    register_audit_logger(custom)
    Engine(parse_policy(document)).authorize(request(DENY_RULE))
    assert len(custom.events) == 1


def test_loggers_keep_working_after_their_type_is_unregistered(
    registry: AuditLoggerRegistry, capture: Capture
) -> None:
    engine = Engine(parse_policy(audited_policy("ON_DENY"), registry=registry))
    registry.unregister("capture")
    engine.authorize(request(DENY_RULE))
    assert len(capture.events) == 1


# -- grpc-go authz/audit/audit_logging_test.go TestAuditLogger -------------------------------------
GO_AUDIT_CASES = [
    (
        "No audit",
        {
            "name": "authz",
            "allow_rules": [{"name": "allow_UnaryCall", "request": {"paths": [METHOD]}}],
            "audit_logging_options": {
                "audit_condition": "NONE",
                "audit_loggers": [{"name": "stat_logger", "config": {}, "is_optional": False}],
            },
        },
        {True: 0, False: 0},
        None,
        (True, False),
    ),
    (
        "Allow All Deny Streaming - Audit All",
        {
            "name": "authz",
            "allow_rules": [{"name": "allow_all", "request": {"paths": ["*"]}}],
            "deny_rules": [{"name": "deny_all", "request": {"paths": [STREAMING]}}],
            "audit_logging_options": {
                "audit_condition": "ON_DENY_AND_ALLOW",
                "audit_loggers": [
                    {"name": "stat_logger", "config": {}, "is_optional": False},
                    {"name": "stdout_logger", "is_optional": False},
                ],
            },
        },
        {True: 2, False: 1},
        AuditEvent(
            rpc_method=STREAMING,
            principal=SPIFFE,
            policy_name="authz",
            matched_rule="deny_all",  # grpc-go reports "authz_deny_all"; we report bare names
            authorized=False,
        ),
        (True, False),
    ),
    (
        "Allow Unary - Audit Allow",
        {
            "name": "authz",
            "allow_rules": [{"name": "allow_UnaryCall", "request": {"paths": [METHOD]}}],
            "audit_logging_options": {
                "audit_condition": "ON_ALLOW",
                "audit_loggers": [{"name": "stat_logger", "config": {}, "is_optional": False}],
            },
        },
        {True: 2, False: 0},
        None,
        (True, False),
    ),
    (
        "Allow Typo - Audit Deny",
        {
            "name": "authz",
            "allow_rules": [{"name": "allow_UnaryCall", "request": {"paths": [METHOD + "_Z"]}}],
            "audit_logging_options": {
                "audit_condition": "ON_DENY",
                "audit_loggers": [{"name": "stat_logger", "config": {}, "is_optional": False}],
            },
        },
        {True: 0, False: 3},
        None,
        (False, False),
    ),
]


@pytest.mark.parametrize(
    ("document", "counts", "last_event", "allowed"),
    [case[1:] for case in GO_AUDIT_CASES],
    ids=[case[0] for case in GO_AUDIT_CASES],
)
def test_grpc_go_audit_logger_counts(
    *,
    document: dict[str, Any],
    counts: dict[bool, int],
    last_event: AuditEvent | None,
    allowed: tuple[bool, bool],
    authority: CertificateAuthority,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two unary calls and one client-streaming call from a client whose certificate carries a
    SPIFFE ID; count the events per outcome and check the last one."""
    stat_logger = Capture("stat_logger")
    registry = AuditLoggerRegistry([StdoutLoggerFactory(), stat_logger])
    peer = peer_from_pem(issue_client_pem(authority, SubjectAltNames.build(uris=[SPIFFE])))
    authorizer = Authorizer.from_policy(json.dumps(document), registry=registry)
    results = [authorizer.evaluate(request(m, peer)).allowed for m in (METHOD, METHOD, STREAMING)]
    assert (results[0], results[2]) == allowed
    assert results[0] == results[1]
    seen = {True: 0, False: 0}
    for event in stat_logger.events:
        seen[event.authorized] += 1
    assert seen == counts
    if last_event is not None:
        assert stat_logger.events[-1] == last_event
        stdout_lines = capsys.readouterr().out.splitlines()
        assert len(stdout_lines) == 3  # the stdout_logger saw the same three events
