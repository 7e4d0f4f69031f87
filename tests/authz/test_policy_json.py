"""Strict JSON reading for policies, below any rule: what the decoder refuses, how a location
is written, and how an unknown field is explained."""

from __future__ import annotations

import pytest

from grpcsec.authz.policy_json import (
    decode_json,
    error_reason,
    json_object,
    located,
    reject_duplicate_keys,
    string_field,
    unknown_field,
)
from grpcsec.errors import PolicyError


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (b"\xff{}", "not UTF-8 text (byte 0)"),
        ('{"a": NaN}', "NaN is not a JSON value"),
        ('{"a": -Infinity}', "-Infinity is not a JSON value"),
        ("{} []", "Extra data"),
        ("", "not valid JSON"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_decode_refuses_what_a_policy_must_not_hold(text: str | bytes, fragment: str) -> None:
    with pytest.raises(PolicyError) as caught:
        decode_json(text)
    assert fragment in str(caught.value)
    assert caught.value.location == ""


def test_decode_remembers_duplicate_keys_for_the_reader_to_refuse() -> None:
    value = decode_json('{"a": 1, "b": {"c": 1, "c": 2}}')
    assert value == {"a": 1, "b": {"c": 2}}
    json_object(value, "", ("a", "b"))  # the outer object is fine
    assert isinstance(value, dict)
    with pytest.raises(PolicyError) as caught:
        json_object(value["b"], "b", ("c",))
    assert caught.value.location == "b.c"
    with pytest.raises(PolicyError) as nested:
        reject_duplicate_keys(value, "config")
    assert nested.value.location == "config.b.c"


def test_locations_quote_keys_that_are_not_identifiers() -> None:
    assert located("", "name") == "name"
    assert located("allow_rules[0]", "source") == "allow_rules[0].source"
    assert located("config", "odd key") == 'config["odd key"]'


def test_unknown_fields_suggest_a_near_or_differently_cased_name() -> None:
    assert unknown_field("alow_rules", ("name", "allow_rules")).endswith(
        'did you mean "allow_rules"?'
    )
    assert 'did you mean "name"' in unknown_field("NAME", ("name", "allow_rules"))
    assert "did you mean" not in unknown_field("zzz", ("name", "allow_rules"))


def test_string_fields_are_required_typed_and_non_empty() -> None:
    assert string_field({"name": "x"}, "name", "rule") == "x"
    for value, fragment in (
        ({}, "is required"),
        ({"name": 1}, "a number"),
        ({"name": ""}, "empty"),
    ):
        with pytest.raises(PolicyError) as caught:
            string_field(value, "name", "rule")
        assert caught.value.location == "rule.name"
        assert fragment in error_reason(caught.value)
        assert not error_reason(caught.value).startswith("rule.name")
