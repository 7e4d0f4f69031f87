"""Property tests: the compiled, indexed engine agrees with a straightforward reference evaluator
on random policies and requests; claims never change the decision of a standard policy; the
parser only ever raises PolicyError.

The reference evaluator below works on the raw JSON document (not on grpcsec's parsed model),
checks every rule in document order and spells out authz-a43.md §4-§7 directly.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpcsec.authz import Engine, Request, parse_policy
from grpcsec.errors import PolicyError
from grpcsec.identity import Peer, TransportSecurity
from tests.authz.conftest import PLAINTEXT, TLS_NO_CERT, cert_peer

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# -- the reference evaluator -----------------------------------------------------------------------
def ref_match(pattern: str, text: str) -> bool:
    if pattern == "*":
        return text != "" and "\n" not in text
    if pattern.endswith("*"):
        return text.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return text.endswith(pattern[1:])
    return text == pattern


def ref_identities(peer: Peer) -> list[str] | None:
    if peer.transport is not TransportSecurity.TLS:
        return None
    if not peer.client_cert_presented:
        return [""]
    if peer.uris:
        return list(peer.uris)
    if peer.dns_names:
        return list(peer.dns_names)
    return [peer.subject or ""]


def ref_header(metadata: Sequence[tuple[str, str | bytes]], key: str) -> str | None:
    found = []
    for name, value in metadata:
        if name.lower() != key:
            continue
        if key.endswith("-bin"):
            raw = value if isinstance(value, bytes) else value.encode()
            found.append(base64.b64encode(raw).decode())
        else:
            found.append(value if isinstance(value, str) else value.decode())
    return ",".join(found) if found else None


def ref_claim(claims: Mapping[str, Any], name: str) -> list[str]:
    value = claims.get(name)
    if isinstance(value, str):
        return value.split() if name in {"scope", "scp"} else [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def ref_source_matches(rule: Mapping[str, Any], req: Request) -> bool:
    source = rule.get("source") or {}
    principals = source.get("principals") or []
    if principals:
        identities = ref_identities(req.peer)
        if identities is None:
            return False
        if not any(ref_match(p, i) for p in principals for i in identities):
            return False
    for entry in source.get("grpcsec_claims") or []:
        if req.claims is None:
            return False
        values = ref_claim(req.claims, entry["claim"])
        if not any(ref_match(p, v) for p in entry["values"] for v in values):
            return False
    return True


def ref_request_matches(rule: Mapping[str, Any], req: Request) -> bool:
    request = rule.get("request") or {}
    paths = request.get("paths") or []
    if paths and not any(ref_match(p, req.method) for p in paths):
        return False
    for header in request.get("headers") or []:
        value = ref_header(req.metadata, header["key"].lower())
        if value is None or not any(ref_match(p, value) for p in header["values"]):
            return False
    return True


def ref_rule_matches(rule: Mapping[str, Any], req: Request) -> bool:
    return ref_source_matches(rule, req) and ref_request_matches(rule, req)


def ref_evaluate(policy: Mapping[str, Any], req: Request) -> tuple[bool, str | None]:
    for rule in policy.get("deny_rules") or []:
        if ref_rule_matches(rule, req):
            return False, rule["name"]
    for rule in policy["allow_rules"]:
        if ref_rule_matches(rule, req):
            return True, rule["name"]
    return False, None


# -- strategies ------------------------------------------------------------------------------------
METHODS = ["/a.S/M", "/a.S/N", "/b.T/M", "/a.S/", "/", "", "/a.S/M\n", "x/a.S/M", "/a.S/MM"]
PATH_PARTS = ["/a.S/M", "/a.S/", "/a.S", "/a", "/", "M", "/M", "S/M", "", "a.S/M", "*", "N"]
URIS = ["spiffe://acme/a", "spiffe://acme/b", "https://x/y"]
DNS = ["a.example.com", "b.example.com"]
SUBJECTS = ["CN=c,O=Acme", "CN=d", ""]
ID_PARTS = ["spiffe://acme/a", "spiffe://acme/", "spiffe://", "acme/a", "b", "example.com"]
ID_PARTS += [".example.com", "a.example.com", "CN=c", "CN=c,O=Acme", "O=Acme", "", "https://x/y"]
HEADER_KEYS = ["x-a", "x-b", "X-A", "x-c-bin"]
VALUE_PARTS = ["", "v1", "v2", "v1,v2", "v", "1", ",", "AQ==", "AQ", "Ag==", "AQ==,Ag=="]
CLAIMS = ["sub", "scope", "groups"]
CLAIM_PARTS = ["svc-a", "svc-", "svc", "a", "read", "write", "", "admins", "re"]


def patterns(parts: list[str]) -> st.SearchStrategy[str]:
    star = st.sampled_from(["", "", "*"])
    return st.builds(lambda a, b, c: a + b + c, star, st.sampled_from(parts), star)


def maybe_list(items: st.SearchStrategy[Any], *, min_size: int = 0) -> st.SearchStrategy[Any]:
    """A list, or (when it may be empty) an absent/null/empty spelling of "no constraint"."""
    real = st.lists(items, min_size=min_size, max_size=3)
    if min_size:
        return real
    return st.one_of(real, st.just(None), st.just([]))


PRINCIPAL_LISTS = maybe_list(patterns(ID_PARTS))
PATH_LISTS = maybe_list(patterns(PATH_PARTS))
CLAIM_LISTS = st.lists(
    st.fixed_dictionaries(
        {
            "claim": st.sampled_from(CLAIMS),
            "values": st.lists(patterns(CLAIM_PARTS), min_size=1, max_size=3),
        }
    ),
    max_size=2,
)
HEADER_LISTS = st.lists(
    st.fixed_dictionaries(
        {
            "key": st.sampled_from(HEADER_KEYS),
            "values": st.lists(patterns(VALUE_PARTS), min_size=1, max_size=3),
        }
    ),
    max_size=2,
)


@st.composite
def rules(draw: st.DrawFn, *, with_claims: bool) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    source: dict[str, Any] = {}
    principals = draw(PRINCIPAL_LISTS)
    if principals is not None:
        source["principals"] = principals
    if with_claims and draw(st.booleans()):
        source["grpcsec_claims"] = draw(CLAIM_LISTS)
    if source or draw(st.booleans()):
        rule["source"] = source
    request: dict[str, Any] = {}
    paths = draw(PATH_LISTS)
    if paths is not None:
        request["paths"] = paths
    headers = draw(HEADER_LISTS)
    if headers:
        request["headers"] = headers
    if request or draw(st.booleans()):
        rule["request"] = request
    return rule


RULES_WITH_CLAIMS = rules(with_claims=True)
RULES_WITHOUT_CLAIMS = rules(with_claims=False)


@st.composite
def policies(draw: st.DrawFn, *, with_claims: bool = True, max_rules: int = 6) -> dict[str, Any]:
    rule = RULES_WITH_CLAIMS if with_claims else RULES_WITHOUT_CLAIMS
    deny = draw(st.lists(rule, max_size=max_rules))
    allow = draw(st.lists(rule, min_size=1, max_size=max_rules))
    policy: dict[str, Any] = {
        "name": "p",
        "allow_rules": [{"name": f"a{i}", **r} for i, r in enumerate(allow)],
    }
    if deny or draw(st.booleans()):
        policy["deny_rules"] = [{"name": f"d{i}", **r} for i, r in enumerate(deny)]
    return policy


peers = st.one_of(
    st.just(PLAINTEXT),
    st.just(TLS_NO_CERT),
    st.builds(
        lambda uris, dns, subject: cert_peer(uris=uris, dns=dns, subject=subject),
        st.lists(st.sampled_from(URIS), max_size=2, unique=True),
        st.lists(st.sampled_from(DNS), max_size=2, unique=True),
        st.sampled_from(SUBJECTS),
    ),
)


@st.composite
def metadata_entries(draw: st.DrawFn) -> tuple[str, str | bytes]:
    key = draw(st.sampled_from(["x-a", "x-b", "X-B", "x-c-bin", "x-d"]))
    if key.endswith("-bin"):
        return key, draw(st.sampled_from([b"", b"\x01", b"\x02"]))
    return key, draw(st.sampled_from(["", "v1", "v2", "v", "v1,v2", "1"]))


claims_values = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "sub": st.sampled_from(["svc-a", "svc-b", "", "a"]),
            "scope": st.sampled_from(["read", "read write", "", "write re"]),
            "groups": st.lists(st.sampled_from(["admins", "a", "svc-a"]), max_size=2),
        },
    ),
)

requests = st.builds(
    lambda method, peer, metadata, claims: Request(
        method=method, peer=peer, metadata=tuple(metadata), claims=claims
    ),
    st.sampled_from(METHODS),
    peers,
    st.lists(metadata_entries(), max_size=4),
    claims_values,
)


def decision_of(engine: Engine, req: Request) -> tuple[bool, str | None]:
    decision = engine.evaluate(req)
    return decision.allowed, decision.matched_rule


# -- properties ------------------------------------------------------------------------------------
@PROPERTY_SETTINGS
@given(policy=policies(), reqs=st.lists(requests, min_size=1, max_size=6))
def test_compiled_engine_agrees_with_the_reference(
    policy: dict[str, Any], reqs: list[Request]
) -> None:
    engine = Engine(parse_policy(json.dumps(policy)))
    for req in reqs + reqs:  # twice: the second pass goes through the candidate cache
        assert decision_of(engine, req) == ref_evaluate(policy, req), req


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies(max_rules=40), reqs=st.lists(requests, min_size=1, max_size=10))
def test_compiled_engine_agrees_with_the_reference_on_larger_policies(
    policy: dict[str, Any], reqs: list[Request]
) -> None:
    engine = Engine(parse_policy(json.dumps(policy)))
    for req in reqs:
        assert decision_of(engine, req) == ref_evaluate(policy, req), req


@PROPERTY_SETTINGS
@given(policy=policies(with_claims=False), req=requests, claims=claims_values)
def test_claims_never_change_a_standard_policy(
    policy: dict[str, Any], req: Request, claims: dict[str, Any] | None
) -> None:
    """A policy without the extension gives the same decision whatever the token claims, so
    grpcsec decides a standard policy exactly as the claims-free reference (grpc-go) does."""
    engine = Engine(parse_policy(json.dumps(policy), extensions=False))
    without = Request(method=req.method, peer=req.peer, metadata=req.metadata, claims=None)
    with_claims = Request(method=req.method, peer=req.peer, metadata=req.metadata, claims=claims)
    assert decision_of(engine, with_claims) == decision_of(engine, without)
    assert decision_of(engine, without) == ref_evaluate(policy, without)


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=5),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@PROPERTY_SETTINGS
@given(policy=policies(), data=st.data(), replacement=json_values)
def test_parser_raises_only_policy_errors(
    policy: dict[str, Any], data: st.DataObject, replacement: Any
) -> None:
    """Replace any one node of a valid policy by arbitrary JSON: the result loads or raises
    PolicyError with a location, never anything else."""
    target = data.draw(st.sampled_from(_paths(policy)))
    mutated: Any = json.loads(json.dumps(policy))
    if not target:
        mutated = replacement
    else:
        parent = mutated
        for step in target[:-1]:
            parent = parent[step]
        parent[target[-1]] = replacement
    try:
        parsed = parse_policy(json.dumps(mutated))
    except PolicyError as exc:
        assert isinstance(exc.location, str)
        return
    engine = Engine(parsed)
    engine.evaluate(Request(method="/a.S/M", peer=PLAINTEXT))


@PROPERTY_SETTINGS
@given(text=st.text(max_size=60))
def test_parser_survives_arbitrary_text(text: str) -> None:
    with contextlib.suppress(PolicyError):
        parse_policy(text)
