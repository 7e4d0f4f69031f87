"""The token-claims extension (``source.grpcsec_claims``): how claim values are read, how the
entries combine, and that a caller without verified claims never matches a claims constraint.
That a *standard* policy ignores claims entirely is a property test in test_properties.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from grpcsec.authz import claim_values
from tests.authz.conftest import (
    METHOD,
    PLAINTEXT,
    TLS_NO_CERT,
    cert_peer,
    decide,
    outcome,
    policy_json,
    request,
)

ALLOWED = ("allow", "r")
DENIED = ("deny", None)


@pytest.mark.parametrize(
    ("claims", "claim", "values"),
    [
        (None, "sub", ()),
        ({}, "sub", ()),
        ({"sub": "svc-a"}, "sub", ("svc-a",)),
        ({"sub": ""}, "sub", ("",)),
        ({"scope": "orders.read orders.write"}, "scope", ("orders.read", "orders.write")),
        ({"scope": "  a   b "}, "scope", ("a", "b")),
        ({"scope": ""}, "scope", ()),
        ({"scp": "a b"}, "scp", ("a", "b")),
        ({"scp": ["a", "b c"]}, "scp", ("a", "b c")),  # an array is taken as is
        ({"roles": "a b"}, "roles", ("a b",)),  # only scope/scp are space-separated
        ({"aud": ["x", "y"]}, "aud", ("x", "y")),
        ({"n": 42}, "n", ("42",)),
        ({"admin": True}, "admin", ("true",)),
        ({"mixed": ["a", 1, False, None, 1.5, {"k": "v"}]}, "mixed", ("a", "1", "false")),
        ({"ratio": 1.5}, "ratio", ()),
        ({"nested": {"role": "admin"}}, "nested", ()),
        ({"nested": {"role": "admin"}}, "nested.role", ()),  # no path syntax
        ({"https://acme.example/roles": ["admin"]}, "https://acme.example/roles", ("admin",)),
        ({"null": None}, "null", ()),
    ],
)
def test_claim_values(claims: dict[str, Any] | None, claim: str, values: tuple[str, ...]) -> None:
    assert claim_values(claims, claim) == values


def claims_policy(*entries: tuple[str, list[str]], deny: bool = False, **extra: Any) -> str:
    rule = {
        "name": "r",
        "source": {
            "grpcsec_claims": [{"claim": c, "values": v} for c, v in entries],
            **extra,
        },
    }
    if deny:
        return policy_json([{"name": "allow_all"}], deny=[rule])
    return policy_json([rule])


CLAIM_ROWS: list[
    tuple[str, list[tuple[str, list[str]]], dict[str, Any] | None, tuple[str, Any]]
] = [
    ("no-token-never-matches", [("sub", ["*"])], None, DENIED),
    ("no-token-not-even-empty", [("sub", [""])], None, DENIED),
    ("empty-claims-missing-claim", [("sub", ["*"])], {}, DENIED),
    ("subject-exact", [("sub", ["svc-a"])], {"sub": "svc-a"}, ALLOWED),
    ("subject-prefix", [("sub", ["svc-*"])], {"sub": "svc-a"}, ALLOWED),
    ("subject-other", [("sub", ["svc-b"])], {"sub": "svc-a"}, DENIED),
    ("scope-one-of-several", [("scope", ["orders.read"])], {"scope": "x orders.read y"}, ALLOWED),
    ("scope-not-substring", [("scope", ["orders"])], {"scope": "orders.read"}, DENIED),
    ("values-are-ored", [("scope", ["a", "b"])], {"scope": "b"}, ALLOWED),
    (
        "entries-are-anded",
        [("scope", ["orders.read"]), ("scope", ["orders.write"])],
        {"scope": "orders.read"},
        DENIED,
    ),
    (
        "entries-are-anded-both",
        [("scope", ["orders.read"]), ("scope", ["orders.write"])],
        {"scope": "orders.write orders.read"},
        ALLOWED,
    ),
    ("array-claim", [("groups", ["admins"])], {"groups": ["users", "admins"]}, ALLOWED),
    ("boolean-claim", [("admin", ["true"])], {"admin": True}, ALLOWED),
    ("presence-needs-non-empty", [("sub", ["*"])], {"sub": ""}, DENIED),
    ("object-claim-never-matches", [("ctx", ["*"])], {"ctx": {"a": "b"}}, DENIED),
]


@pytest.mark.parametrize(
    ("entries", "claims", "expected"),
    [row[1:] for row in CLAIM_ROWS],
    ids=[row[0] for row in CLAIM_ROWS],
)
def test_claims_in_allow_rules(
    entries: list[tuple[str, list[str]]], claims: dict[str, Any] | None, expected: tuple[str, Any]
) -> None:
    assert outcome(decide(claims_policy(*entries), request(claims=claims))) == expected


def test_claims_deny_rule_does_not_stop_callers_without_a_token() -> None:
    """Like principal deny rules and plaintext peers: require a token with allow rules."""
    policy = claims_policy(("sub", ["blocked"]), deny=True)
    assert outcome(decide(policy, request(claims={"sub": "blocked"}))) == ("deny", "r")
    assert outcome(decide(policy, request(claims={"sub": "fine"}))) == ("allow", "allow_all")
    assert outcome(decide(policy, request(claims=None))) == ("allow", "allow_all")


def test_claims_and_principals_are_anded() -> None:
    policy = claims_policy(("scope", ["orders.read"]), principals=["spiffe://acme/gateway"])
    gateway = cert_peer(uris=["spiffe://acme/gateway"])
    token = {"scope": "orders.read"}
    assert outcome(decide(policy, request(METHOD, gateway, claims=token))) == ALLOWED
    assert outcome(decide(policy, request(METHOD, TLS_NO_CERT, claims=token))) == DENIED
    assert outcome(decide(policy, request(METHOD, PLAINTEXT, claims=token))) == DENIED
    assert outcome(decide(policy, request(METHOD, gateway, claims=None))) == DENIED


def test_claims_combine_with_paths_and_headers() -> None:
    policy = policy_json(
        [
            {
                "name": "r",
                "source": {"grpcsec_claims": [{"claim": "sub", "values": ["svc-*"]}]},
                "request": {
                    "paths": ["/orders.Orders/*"],
                    "headers": [{"key": "x-tenant", "values": ["acme"]}],
                },
            }
        ]
    )
    good = request("/orders.Orders/Get", metadata=[("x-tenant", "acme")], claims={"sub": "svc-1"})
    assert outcome(decide(policy, good)) == ALLOWED
    wrong_path = request(
        "/orders.Admin/Get", metadata=[("x-tenant", "acme")], claims={"sub": "svc-1"}
    )
    assert outcome(decide(policy, wrong_path)) == DENIED


def test_an_empty_claims_list_is_no_constraint() -> None:
    policy = policy_json([{"name": "r", "source": {"grpcsec_claims": []}}])
    assert outcome(decide(policy, request(claims=None))) == ALLOWED
