"""The rule families (authz-a43.md §3, §11 D2): header keys gRPC never lets a policy match,
warnings on valid but odd patterns, and the token-claims extension, each located."""

from __future__ import annotations

from typing import Any

import pytest

from grpcsec.authz import PatternKind, parse_policy
from grpcsec.authz.parse_rules import HOP_BY_HOP_HEADERS, unsupported_header_reason
from grpcsec.errors import PolicyError
from tests.authz.policy_docs import doc, header, in_request, rule

# 9. unsupported header keys, checked after lowercasing (D2)
REJECTED_KEYS = [
    ":method",
    ":path",
    ":authority",
    ":scheme",
    "grpc-timeout",
    "grpc-trace-bin",
    "GRPC-Foo",  # only grpc-go (which lowercases first) rejects this one; we do too
    "host",
    "Host",
    *sorted(HOP_BY_HOP_HEADERS),
    "Connection",
    "TE",
]


@pytest.mark.parametrize("key", REJECTED_KEYS)
def test_unsupported_header_keys_are_rejected(key: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(in_request(header(key=key)))
    assert caught.value.location == "allow_rules[0].request.headers[0].key"
    assert f'unsupported header key "{key.lower()}"' in str(caught.value)


@pytest.mark.parametrize(
    "key", ["content-type", "user-agent", "x-trace-bin", "authorization", "X-User", "grpc", "hosts"]
)
def test_other_header_keys_are_accepted_and_lowercased(key: str) -> None:
    policy = parse_policy(in_request(header(key=key)))
    assert policy.allow_rules[0].headers[0].key == key.lower()


def test_unsupported_header_reason_names_each_family() -> None:
    assert "pseudo-headers" in (unsupported_header_reason(":path") or "")
    assert "reserved by gRPC" in (unsupported_header_reason("grpc-timeout") or "")
    assert "hop-by-hop" in (unsupported_header_reason("te") or "")
    assert unsupported_header_reason("x-user") is None
    assert unsupported_header_reason("grpc") is None  # only the grpc- prefix is reserved


# -- warnings on valid policies --------------------------------------------------------------------
def test_star_at_both_ends_is_valid_but_warned() -> None:
    policy = parse_policy(doc(allow_rules=[rule(source={"principals": ["*abc*"]})]))
    assert policy.allow_rules[0].principals[0].kind is PatternKind.PREFIX
    (warning,) = policy.warnings
    assert warning.startswith("allow_rules[0].source.principals[0]: ")
    assert "prefix match" in warning
    assert "contains" in warning


def test_paths_that_cannot_name_a_method_are_warned() -> None:
    policy = parse_policy(doc(allow_rules=[rule(request={"paths": ["pkg.S/M", "/ok", "*M", ""]})]))
    assert [w.split(":")[0] for w in policy.warnings] == [
        "allow_rules[0].request.paths[0]",
        "allow_rules[0].request.paths[3]",
    ]


def test_header_keys_that_cannot_be_metadata_are_warned() -> None:
    policy = parse_policy(in_request(header(key="x a")))
    assert policy.warnings
    assert "never matches gRPC metadata" in policy.warnings[0]


def test_an_ordinary_policy_has_no_warnings() -> None:
    policy = parse_policy(
        doc(
            allow_rules=[
                rule(
                    source={"principals": ["spiffe://a/*", ""]},
                    request={"paths": ["/a.B/*"], "headers": [header()]},
                )
            ]
        )
    )
    assert policy.warnings == ()


# -- extensions ------------------------------------------------------------------------------------
def test_claims_extension_is_parsed() -> None:
    policy = parse_policy(
        doc(
            allow_rules=[
                rule(source={"grpcsec_claims": [{"claim": "scope", "values": ["a", "b*"]}]})
            ]
        )
    )
    (claim,) = policy.allow_rules[0].claims
    assert claim.claim == "scope"
    assert [p.text for p in claim.values] == ["a", "b*"]
    assert policy.uses_extensions
    assert policy.summary()["extensions"] == ["grpcsec_claims"]


@pytest.mark.parametrize(
    ("entry", "location", "fragment"),
    [
        ("scope", "allow_rules[0].source.grpcsec_claims[0]", "must be an object"),
        ({"values": ["a"]}, "allow_rules[0].source.grpcsec_claims[0].claim", "is required"),
        ({"claim": "", "values": ["a"]}, "allow_rules[0].source.grpcsec_claims[0].claim", "empty"),
        ({"claim": "sub"}, "allow_rules[0].source.grpcsec_claims[0].values", "is required"),
        ({"claim": "sub", "values": []}, "allow_rules[0].source.grpcsec_claims[0].values", "empty"),
        (
            {"claim": "sub", "values": [1]},
            "allow_rules[0].source.grpcsec_claims[0].values[0]",
            "number",
        ),
        (
            {"claim": "sub", "values": ["a"], "x": 1},
            "allow_rules[0].source.grpcsec_claims[0].x",
            "unknown",
        ),
    ],
)
def test_invalid_claims_extension_is_located(entry: Any, location: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(doc(allow_rules=[rule(source={"grpcsec_claims": [entry]})]))
    assert caught.value.location == location
    assert fragment in str(caught.value)


def test_extensions_can_be_refused_for_portable_policies() -> None:
    document = doc(
        allow_rules=[rule(source={"grpcsec_claims": [{"claim": "sub", "values": ["a"]}]})]
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(document, extensions=False)
    assert caught.value.location == "allow_rules[0].source.grpcsec_claims"
    assert "extension" in str(caught.value)
    assert parse_policy(doc(), extensions=False).name == "authz"
