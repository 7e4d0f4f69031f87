"""nearest_allow_rule: for a default deny, the allow rule with the fewest failed conditions and
each failed condition (wanted vs got); nothing when a rule matches or there are no allow rules."""

from __future__ import annotations

from grpcsec.authz import load_policy
from grpcsec.authz.nearest import nearest_allow_rule
from grpcsec.call import CallInfo
from grpcsec.identity import Peer, TransportSecurity

POLICY = {
    "name": "orders",
    "allow_rules": [
        {
            "name": "billing",
            "source": {"principals": ["spiffe://acme/billing"]},
            "request": {
                "paths": ["/orders.Orders/*"],
                "headers": [{"key": "x-tenant", "values": ["acme", "acme-*"]}],
            },
        },
        {"name": "health", "request": {"paths": ["/grpc.health.v1.Health/*"]}},
    ],
}


def _policy(tmp_path: object) -> object:
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    path = Path(str(tmp_path)) / "p.json"
    path.write_text(json.dumps(POLICY))
    return load_policy(path)


def _peer(uri: str) -> Peer:
    return Peer(
        transport=TransportSecurity.TLS, client_cert_presented=True, uris=(uri,), address="x"
    )


def test_a_missing_header_is_the_one_failed_condition(tmp_path: object) -> None:
    policy = _policy(tmp_path)
    call = CallInfo(method="/orders.Orders/Get", peer=_peer("spiffe://acme/billing"))
    nearest = nearest_allow_rule(policy, call)  # type: ignore[arg-type]
    assert nearest is not None
    assert nearest.name == "billing"
    assert [f.subject for f in nearest.failed] == ["header x-tenant"]
    assert nearest.failed[0].got is None
    assert nearest.failed[0].describe() == "header x-tenant: absent; wanted acme, acme-*"


def test_a_wrong_principal_and_header_are_both_named(tmp_path: object) -> None:
    policy = _policy(tmp_path)
    call = CallInfo(
        method="/orders.Orders/Get",
        peer=_peer("spiffe://acme/reports"),
        metadata=(("x-tenant", "globex"),),
    )
    nearest = nearest_allow_rule(policy, call)  # type: ignore[arg-type]
    assert nearest is not None
    assert [(f.subject, f.got) for f in nearest.failed] == [
        ("principal", ("spiffe://acme/reports",)),
        ("header x-tenant", ("globex",)),
    ]


def test_an_allowed_call_has_no_nearest_rule(tmp_path: object) -> None:
    policy = _policy(tmp_path)
    call = CallInfo(
        method="/orders.Orders/Get",
        peer=_peer("spiffe://acme/billing"),
        metadata=(("x-tenant", "acme-eu"),),
    )
    assert nearest_allow_rule(policy, call) is None  # type: ignore[arg-type]
