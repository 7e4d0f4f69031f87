"""The compiled engine: evaluation does not scan every rule, the per-method cache is bounded,
concurrent evaluation is safe, decisions explain themselves; and the package keeps its shape
(no grpc import, no print) like pki and identity.
"""

from __future__ import annotations

import ast
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grpcsec.authz import Authorizer, Decision, Engine, compile_policy, explain, parse_policy
from grpcsec.authz import engine as engine_module
from tests.authz.conftest import METHOD, PLAINTEXT, cert_peer, outcome, policy_json, request

AUTHZ = Path(engine_module.__file__).resolve().parent


def many_rules(count: int) -> str:
    allow = [
        {
            "name": f"svc{i}",
            "source": {"principals": [f"spiffe://acme/svc{i}"]},
            "request": {"paths": [f"/pkg{i}.Service/Get", f"/pkg{i}.Admin/*"]},
        }
        for i in range(count)
    ]
    deny = [{"name": f"block{i}", "request": {"paths": [f"*/Drop{i}"]}} for i in range(count // 10)]
    return policy_json(allow, deny=deny)


class Counter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = engine_module._CompiledRule.matches

        def counting(rule: engine_module._CompiledRule, scratch: engine_module._Scratch) -> bool:
            self.calls += 1
            return original(rule, scratch)

        monkeypatch.setattr(engine_module._CompiledRule, "matches", counting)


def test_evaluation_only_considers_rules_whose_paths_admit_the_method(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = Engine(parse_policy(many_rules(2000)))
    counter = Counter(monkeypatch)
    peer = cert_peer(uris=["spiffe://acme/svc1234"])
    assert outcome(engine.evaluate(request("/pkg1234.Service/Get", peer))) == ("allow", "svc1234")
    assert outcome(engine.evaluate(request("/pkg1234.Admin/Reset", peer))) == ("allow", "svc1234")
    assert outcome(engine.evaluate(request("/pkg1234.Service/Drop7", peer))) == ("deny", "block7")
    assert outcome(engine.evaluate(request("/pkg1234.Service/Get", PLAINTEXT))) == ("deny", None)
    assert outcome(engine.evaluate(request("/unknown.Service/Get", peer))) == ("deny", None)
    assert counter.calls <= 5  # one candidate per call at most, out of 2,200 rules


def test_the_first_matching_rule_wins_across_index_buckets() -> None:
    allow = [
        {"name": "by_suffix", "request": {"paths": ["*/Get"]}},
        {"name": "by_exact", "request": {"paths": [METHOD]}},
        {"name": "by_prefix", "request": {"paths": ["/grpc.testing.*"]}},
        {"name": "unconstrained"},
        {"name": "by_presence", "request": {"paths": ["*"]}},
    ]
    engine = Engine(parse_policy(policy_json(allow)))
    assert engine.evaluate(request(METHOD)).matched_rule == "by_exact"
    assert engine.evaluate(request("/x.Y/Get")).matched_rule == "by_suffix"
    assert engine.evaluate(request("/grpc.testing.Other/Put")).matched_rule == "by_prefix"
    assert engine.evaluate(request("/x.Y/Put")).matched_rule == "unconstrained"
    reordered = [allow[4], allow[3], allow[0]]
    assert Engine(parse_policy(policy_json(reordered))).evaluate(
        request("/x.Y/Get")
    ).matched_rule == ("by_presence")


def test_the_method_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "_CACHE_LIMIT", 8)
    engine = Engine(parse_policy(many_rules(10)))
    for i in range(100):
        engine.evaluate(request(f"/made.Up/M{i}"))
        assert len(engine._cache) <= 8
    assert outcome(engine.evaluate(request("/pkg3.Service/Get"))) == ("deny", None)


def test_concurrent_evaluation_gives_the_same_decisions() -> None:
    engine = Engine(parse_policy(many_rules(200)))
    cases = [
        (request(f"/pkg{i}.Service/Get", cert_peer(uris=[f"spiffe://acme/svc{i}"])), f"svc{i}")
        for i in range(200)
    ]

    def run(offset: int) -> bool:
        return all(
            engine.evaluate(req).matched_rule == name
            for req, name in cases[offset:] + cases[:offset]
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(run, range(0, 200, 10)))


def test_decisions_are_shared_values_built_at_compile_time() -> None:
    engine = compile_policy(parse_policy(many_rules(3)))
    first = engine.evaluate(request("/pkg1.Service/Get", cert_peer(uris=["spiffe://acme/svc1"])))
    again = engine.evaluate(request("/pkg1.Service/Get", cert_peer(uris=["spiffe://acme/svc1"])))
    assert first is again
    assert repr(engine) == "Engine(policy='authz', deny_rules=0, allow_rules=3)"


@pytest.mark.parametrize(
    ("decision", "text"),
    [
        (
            Decision(allowed=True, policy_name="p", matched_rule="r"),
            'allowed by rule "r" of policy "p"',
        ),
        (
            Decision(allowed=False, policy_name="p", matched_rule="d"),
            'denied by rule "d" of policy "p"',
        ),
        (Decision(allowed=False, policy_name="p"), 'denied: no allow rule of policy "p" matched'),
    ],
)
def test_explain(decision: Decision, text: str) -> None:
    assert explain(decision) == text
    assert decision.decision == ("allow" if decision.allowed else "deny")
    assert json.loads(json.dumps(decision.to_json()))["policy_name"] == "p"


def test_authorizer_repr_and_policy() -> None:
    authorizer = Authorizer.from_policy(many_rules(1))
    assert authorizer.policy.name == "authz"
    assert "StaticPolicyProvider('authz')" in repr(authorizer)


# -- package shape ---------------------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(AUTHZ.glob("*.py")), ids=lambda p: p.name)
def test_authz_never_imports_grpc_or_prints(path: Path) -> None:
    grpc = {m for m in _imports(path) if m == "grpc" or m.startswith("grpc.")}
    assert not grpc, f"{path.name} imports {grpc}"
    prints = [
        node
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]
    assert not prints, f"{path.name} prints"
