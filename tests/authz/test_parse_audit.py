"""The audit options of a policy (gRFC A59): condition, registered and optional loggers, and
logger configs validated by their factories at load time, errors located under config."""

from __future__ import annotations

import pytest

from grpcsec.authz import AuditCondition, AuditLoggerRegistry, parse_policy
from grpcsec.errors import PolicyError
from tests.authz.conftest import Capture
from tests.authz.policy_docs import doc


# -- audit options ---------------------------------------------------------------------------------
def test_audit_options_are_parsed(registry: AuditLoggerRegistry, capture: Capture) -> None:
    policy = parse_policy(
        doc(
            audit_logging_options={
                "audit_condition": "ON_DENY_AND_ALLOW",
                "audit_loggers": [
                    {"name": "capture", "config": {"k": "v"}},
                    {"name": "stdout_logger"},
                    {"name": "not_here", "is_optional": True},
                ],
            }
        ),
        registry=registry,
    )
    audit = policy.audit
    assert audit.condition is AuditCondition.ON_DENY_AND_ALLOW
    assert [s.type_name for s in audit.loggers] == ["capture", "stdout_logger"]
    assert audit.skipped == ("not_here",)  # optional and unknown: silently dropped (A59)
    assert dict(audit.loggers[0].config) == {"k": "v"}
    assert dict(audit.loggers[1].config) == {}  # a missing config is {}
    assert capture.configs == [{"k": "v"}]  # validated at load time
    assert audit.active


def test_factory_value_error_is_located_at_config(registry: AuditLoggerRegistry) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(
            doc(
                audit_logging_options={
                    "audit_loggers": [
                        {"name": "capture", "config": {"reject": True}, "is_optional": True}
                    ]
                }
            ),
            registry=registry,
        )
    assert caught.value.location == "audit_logging_options.audit_loggers[0].config"
    assert "refuses" in str(caught.value)


def test_unregistered_logger_message_lists_registered_types(registry: AuditLoggerRegistry) -> None:
    with pytest.raises(
        PolicyError, match="registered: capture, grpcsec_file_logger, stdout_logger"
    ):
        parse_policy(
            doc(audit_logging_options={"audit_loggers": [{"name": "x"}]}), registry=registry
        )
