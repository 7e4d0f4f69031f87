"""Validation (authz-a43.md §3, and §11 D4, D5, D9, Q1-Q3, Q6): every way a policy is invalid
raises PolicyError with the location of the first error; valid-but-odd policies load.

The invalid table is (id, document, location, a fragment of the message). Each row changes one
thing in an otherwise valid policy, so the location pins the first error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grpcsec.authz import PatternKind, load_policy, parse_policy
from grpcsec.authz.policy_json import error_reason
from grpcsec.errors import PolicyError
from tests.authz.policy_docs import DROP, OK_RULE, doc, header, in_request, rule

INVALID: list[tuple[str, str, str, str]] = [
    # 1. not JSON, or the top level is not an object
    ("not-json", "{", "", "not valid JSON"),
    ("empty-text", "", "", "not valid JSON"),
    ("top-array", "[]", "", "must be an object, not an array"),
    ("top-string", '"x"', "", "must be an object, not a string"),
    ("top-null", "null", "", "must be an object, not null"),
    ("trailing-data", doc() + " {}", "", "Extra data"),  # Q2 (Go ignores it)
    ("nan", '{"name": "a", "allow_rules": [{"name": "r"}], "x": NaN}', "", "NaN"),
    # 2. wrong types
    ("name-number", doc(name=123), "name", "must be a string, not a number"),
    ("allow-rules-object", doc(allow_rules={"name": "r"}), "allow_rules", "must be an array"),
    ("deny-rules-string", doc(deny_rules="r"), "deny_rules", "must be an array"),
    ("rule-string", doc(allow_rules=["r"]), "allow_rules[0]", "must be an object, not a string"),
    ("rule-name-bool", doc(allow_rules=[{"name": True}]), "allow_rules[0].name", "a boolean"),
    ("source-array", doc(allow_rules=[rule(source=[])]), "allow_rules[0].source", "an array"),
    ("request-string", doc(allow_rules=[rule(request="x")]), "allow_rules[0].request", "string"),
    (
        "principals-string",
        doc(allow_rules=[rule(source={"principals": "*"})]),
        "allow_rules[0].source.principals",
        "must be an array",
    ),
    (
        "principal-number",
        doc(allow_rules=[rule(source={"principals": ["a", 1]})]),
        "allow_rules[0].source.principals[1]",
        "must be a string pattern, not a number",
    ),
    (
        "principal-null",  # Go reads a null element as ""; we refuse it
        doc(allow_rules=[rule(source={"principals": [None]})]),
        "allow_rules[0].source.principals[0]",
        "not null",
    ),
    (
        "path-object",
        doc(allow_rules=[rule(request={"paths": [{}]})]),
        "allow_rules[0].request.paths[0]",
        "not an object",
    ),
    (
        "headers-object",
        doc(allow_rules=[rule(request={"headers": {}})]),
        "allow_rules[0].request.headers",
        "must be an array",
    ),
    ("header-string", in_request("x-a"), "allow_rules[0].request.headers[0]", "an object"),  # type: ignore[arg-type]
    (
        "header-key-number",
        in_request(header(key=1)),
        "allow_rules[0].request.headers[0].key",
        "a number",
    ),
    (
        "header-value-bool",
        in_request(header(values=[True])),
        "allow_rules[0].request.headers[0].values[0]",
        "not a boolean",
    ),
    (
        "audit-options-array",
        doc(audit_logging_options=[]),
        "audit_logging_options",
        "must be an object",
    ),
    (
        "audit-condition-number",
        doc(audit_logging_options={"audit_condition": 1}),
        "audit_logging_options.audit_condition",
        "must be a string",
    ),
    (
        "audit-loggers-object",
        doc(audit_logging_options={"audit_loggers": {}}),
        "audit_logging_options.audit_loggers",
        "must be an array",
    ),
    (
        "audit-logger-string",
        doc(audit_logging_options={"audit_loggers": ["stdout_logger"]}),
        "audit_logging_options.audit_loggers[0]",
        "must be an object",
    ),
    (
        "logger-config-array",
        doc(audit_logging_options={"audit_loggers": [{"name": "stdout_logger", "config": []}]}),
        "audit_logging_options.audit_loggers[0].config",
        "must be an object, not an array",
    ),
    (
        "logger-optional-string",
        doc(
            audit_logging_options={
                "audit_loggers": [{"name": "stdout_logger", "is_optional": "true"}]
            }
        ),
        "audit_logging_options.audit_loggers[0].is_optional",
        "must be a boolean, not a string",
    ),
    # 3. unknown fields at every level (D9), case-sensitive names (Q1)
    ("unknown-top", doc(foo=1), "foo", "unknown field"),
    (
        "upper-case-name",
        '{"NAME": "a", "allow_rules": [{"name": "r"}]}',
        "NAME",
        'did you mean "name"',
    ),
    (
        "unknown-rule",
        doc(allow_rules=[rule(sorce={})]),
        "allow_rules[0].sorce",
        'did you mean "source"',
    ),
    (
        "unknown-source",
        doc(allow_rules=[rule(source={"foo": []})]),
        "allow_rules[0].source.foo",
        "unknown field",
    ),
    (
        "unknown-request",
        doc(allow_rules=[rule(request={"methods": []})]),
        "allow_rules[0].request.methods",
        "unknown field",
    ),
    (
        "unknown-header",
        in_request({"key": "x-a", "values": ["v"], "invert": True}),
        "allow_rules[0].request.headers[0].invert",
        "unknown field",
    ),
    (
        "unknown-audit-options",
        doc(audit_logging_options={"condition": "NONE"}),
        "audit_logging_options.condition",
        "unknown field",
    ),
    (
        "unknown-audit-logger",
        doc(audit_logging_options={"audit_loggers": [{"name": "stdout_logger", "type": "x"}]}),
        "audit_logging_options.audit_loggers[0].type",
        "unknown field",
    ),
    (
        "misspelt-a59-key",
        doc(audit_logging_options={"audit_logger": []}),
        "audit_logging_options.audit_logger",
        'did you mean "audit_loggers"',
    ),
    ("odd-key-quoted", doc(**{"a b": 1}), '["a b"]', "unknown field"),
    # duplicate keys (Q3: Go keeps the last one)
    (
        "duplicate-top-key",
        '{"name": "a", "name": "b", "allow_rules": [{"name": "r"}]}',
        "name",
        "more than once",
    ),
    (
        "duplicate-nested-key",
        (
            '{"name": "a", "allow_rules": [{"name": "r", "source": '
            '{"principals": [], "principals": ["x"]}}]}'
        ),
        "allow_rules[0].source.principals",
        "more than once",
    ),
    # 4. top-level name missing or empty (D5: C++ accepts "")
    ("name-missing", json.dumps({"allow_rules": [OK_RULE]}), "name", "is required"),
    ("name-empty", doc(name=""), "name", "must not be empty"),
    ("name-null", doc(name=None), "name", "must be a string, not null"),
    # 5. allow_rules missing, null or empty
    ("allow-missing", doc(allow_rules=DROP), "allow_rules", "is required"),
    ("allow-null", doc(allow_rules=None), "allow_rules", "is required"),
    ("allow-empty", doc(allow_rules=[]), "allow_rules", "must not be empty"),
    # 6. rule name missing or empty
    ("rule-name-missing", doc(allow_rules=[{}]), "allow_rules[0].name", "is required"),
    (
        "rule-name-empty",
        doc(allow_rules=[{"name": ""}]),
        "allow_rules[0].name",
        "must not be empty",
    ),
    ("deny-rule-name-missing", doc(deny_rules=[{}]), "deny_rules[0].name", "is required"),
    # 7. header key missing or empty
    (
        "header-key-missing",
        in_request(header(), {"values": ["v"]}),
        "allow_rules[0].request.headers[1].key",
        "is required",
    ),
    (
        "header-key-empty",
        in_request(header(key="")),
        "allow_rules[0].request.headers[0].key",
        "must not be empty",
    ),
    # 8. header values missing or empty
    (
        "header-values-missing",
        in_request({"key": "x-a"}),
        "allow_rules[0].request.headers[0].values",
        "is required",
    ),
    (
        "header-values-empty",
        in_request(header(values=[])),
        "allow_rules[0].request.headers[0].values",
        "must not be empty",
    ),
    (
        "header-values-null",
        in_request(header(values=None)),
        "allow_rules[0].request.headers[0].values",
        "is required",
    ),
    # 10. audit_condition not one of the four names (exact, upper case; Go also takes "")
    (
        "audit-condition-unknown",
        doc(audit_logging_options={"audit_condition": "ON_DENIAL"}),
        "audit_logging_options.audit_condition",
        "is not one of NONE, ON_DENY, ON_ALLOW, ON_DENY_AND_ALLOW",
    ),
    (
        "audit-condition-lower",
        doc(audit_logging_options={"audit_condition": "on_deny"}),
        "audit_logging_options.audit_condition",
        "is not one of",
    ),
    (
        "audit-condition-empty",
        doc(audit_logging_options={"audit_condition": ""}),
        "audit_logging_options.audit_condition",
        "is not one of",
    ),
    # 11. audit logger name missing or empty
    (
        "logger-name-missing",
        doc(audit_logging_options={"audit_loggers": [{"config": {}}]}),
        "audit_logging_options.audit_loggers[0].name",
        "is required",
    ),
    (
        "logger-name-empty",
        doc(audit_logging_options={"audit_loggers": [{"name": ""}]}),
        "audit_logging_options.audit_loggers[0].name",
        "must not be empty",
    ),
    # 12. unregistered logger type that is not optional
    (
        "logger-unregistered",
        doc(audit_logging_options={"audit_loggers": [{"name": "unknown_logger"}]}),
        "audit_logging_options.audit_loggers[0].name",
        'no audit logger type "unknown_logger" is registered',
    ),
    (
        "logger-unregistered-optional-false",
        doc(audit_logging_options={"audit_loggers": [{"name": "x", "is_optional": False}]}),
        "audit_logging_options.audit_loggers[0].name",
        "is registered",
    ),
    # 13. a registered factory rejects the config, even when optional
    (
        "logger-bad-config",
        doc(
            audit_logging_options={"audit_loggers": [{"name": "grpcsec_file_logger", "config": {}}]}
        ),
        "audit_logging_options.audit_loggers[0].config.path",
        "is required",
    ),
    (
        "logger-bad-config-optional",
        doc(
            audit_logging_options={
                "audit_loggers": [
                    {"name": "grpcsec_file_logger", "config": {"path": 3}, "is_optional": True}
                ]
            }
        ),
        "audit_logging_options.audit_loggers[0].config.path",
        "must be a string",
    ),
    (
        "logger-config-duplicate-key",
        (
            '{"name": "a", "allow_rules": [{"name": "r"}], "audit_logging_options": '
            '{"audit_loggers": [{"name": "stdout_logger", "config": {"a": {"b": 1, "b": 2}}}]}}'
        ),
        "audit_logging_options.audit_loggers[0].config.a.b",
        "more than once",
    ),
    # Q6: duplicate rule names within a list
    (
        "duplicate-allow-names",
        doc(allow_rules=[{"name": "a"}, {"name": "b"}, {"name": "a"}]),
        "allow_rules[2].name",
        'duplicate rule name "a" (also allow_rules[0])',
    ),
    (
        "duplicate-deny-names",
        doc(deny_rules=[{"name": "d"}, {"name": "d"}]),
        "deny_rules[1].name",
        "duplicate rule name",
    ),
    # the located example of the issue
    (
        "located-example",
        doc(
            allow_rules=[
                {"name": "a"},
                {"name": "b"},
                rule(name="c", request={"headers": [header(key="grpc-timeout")]}),
            ]
        ),
        "allow_rules[2].request.headers[0].key",
        'unsupported header key "grpc-timeout"',
    ),
]


@pytest.mark.parametrize(
    ("document", "location", "fragment"),
    [row[1:] for row in INVALID],
    ids=[row[0] for row in INVALID],
)
def test_invalid_policy_is_refused_with_its_location(
    document: str, location: str, fragment: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(document)
    assert caught.value.location == location
    assert fragment in error_reason(caught.value), str(caught.value)
    if location:
        assert str(caught.value).startswith(f"{location}: ")


def test_deny_rules_are_checked_before_allow_rules() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(doc(allow_rules=[{}], deny_rules=[{}]))
    assert caught.value.location == "deny_rules[0].name"


# -- valid policies --------------------------------------------------------------------------------
VALID: list[tuple[str, str]] = [
    ("minimal", doc()),
    ("empty-deny-list", doc(deny_rules=[])),  # D4: C++ rejects it
    ("null-deny-list", doc(deny_rules=None)),
    ("null-source", doc(allow_rules=[rule(source=None)])),
    ("empty-source", doc(allow_rules=[rule(source={})])),
    ("empty-principals", doc(allow_rules=[rule(source={"principals": []})])),
    ("null-request", doc(allow_rules=[rule(request=None)])),
    ("empty-request", doc(allow_rules=[rule(request={"paths": [], "headers": []})])),
    ("odd-patterns", doc(allow_rules=[rule(request={"paths": ["", "**", "a*b", "no-slash"]})])),
    ("same-name-in-both-lists", doc(deny_rules=[{"name": "r"}])),
    ("audit-none", doc(audit_logging_options={"audit_condition": "NONE"})),
    ("audit-empty", doc(audit_logging_options={})),
    (
        "audit-loggers-without-condition",
        doc(audit_logging_options={"audit_loggers": [{"name": "stdout_logger"}]}),
    ),
    ("audit-condition-without-loggers", doc(audit_logging_options={"audit_condition": "ON_DENY"})),
    (
        "null-config",
        doc(audit_logging_options={"audit_loggers": [{"name": "stdout_logger", "config": None}]}),
    ),
    (
        "stdout-config-ignored",
        doc(
            audit_logging_options={
                "audit_loggers": [{"name": "stdout_logger", "config": {"anything": [1]}}]
            }
        ),
    ),
    ("unicode", doc(name="politique-é", allow_rules=[rule(name="règle")])),
]


@pytest.mark.parametrize("document", [row[1] for row in VALID], ids=[row[0] for row in VALID])
def test_valid_policy_loads(document: str) -> None:
    policy = parse_policy(document)
    assert policy.allow_rules


def test_parsed_model_keeps_document_order_and_locations() -> None:
    policy = parse_policy(
        json.dumps(
            {
                "name": "authz",
                "deny_rules": [{"name": "d1", "source": {"principals": ["spiffe://bad/*"]}}],
                "allow_rules": [
                    {
                        "name": "a1",
                        "request": {
                            "paths": ["/pkg.S/*", "*/Echo", "/pkg.S/Exact", "*"],
                            "headers": [{"key": "X-Role", "values": ["admin", ""]}],
                        },
                    },
                    {"name": "a2"},
                ],
            }
        )
    )
    assert [r.name for r in policy.deny_rules] == ["d1"]
    assert [(r.name, r.location) for r in policy.allow_rules] == [
        ("a1", "allow_rules[0]"),
        ("a2", "allow_rules[1]"),
    ]
    a1 = policy.allow_rules[0]
    assert [p.kind for p in a1.paths] == [
        PatternKind.PREFIX,
        PatternKind.SUFFIX,
        PatternKind.EXACT,
        PatternKind.PRESENCE,
    ]
    assert a1.headers[0].key == "x-role"
    assert [p.text for p in a1.headers[0].values] == ["admin", ""]
    assert policy.deny_rules[0].principals[0].kind is PatternKind.PREFIX
    assert not policy.uses_extensions
    assert policy.summary()["allow_rules"] == ["a1", "a2"]


def test_mapping_input_is_validated_the_same_way() -> None:
    assert parse_policy({"name": "m", "allow_rules": [{"name": "r"}]}).name == "m"
    with pytest.raises(PolicyError) as caught:
        parse_policy({"name": "m", "allow_rules": [{"name": "r", "x": 1}]})
    assert caught.value.location == "allow_rules[0].x"
    with pytest.raises(PolicyError, match="a Python set"):
        parse_policy({"name": "m", "allow_rules": {"r"}})  # type: ignore[dict-item]


def test_bytes_must_be_utf8() -> None:
    assert parse_policy(doc().encode()).name == "authz"
    with pytest.raises(PolicyError, match="not UTF-8"):
        parse_policy(b'{"name": "\xff"}')


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    with pytest.raises(PolicyError, match="not valid JSON"):
        parse_policy("[" * 100_000 + "]" * 100_000)


# -- files -----------------------------------------------------------------------------------------
def test_load_policy_names_the_file_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "authz.json"
    path.write_text(doc(allow_rules=[{}]))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.path == str(path)
    assert caught.value.location == "allow_rules[0].name"
    assert str(caught.value) == f"{path}: allow_rules[0].name: is required"
    assert error_reason(caught.value) == "is required"


def test_load_policy_reports_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy") as caught:
        load_policy(tmp_path / "missing.json")
    assert caught.value.location == ""
    with pytest.raises(PolicyError, match="cannot read the policy"):
        load_policy(tmp_path)
