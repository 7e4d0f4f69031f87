"""A43 policy evaluation cost: grpcsec's compiled engine against a naive scan of every rule.

Run from the project root::

    .venv/bin/python benchmarks/authz.py            # full run, about half a minute
    .venv/bin/python benchmarks/authz.py --quick    # CI smoke run, about five seconds

For policies of 10, 100, 1,000 and 10,000 rules (10 % deny rules), generated deterministically in
the shape of a service-mesh policy: each allow rule names one service's methods (an exact method
or a ``/pkg.Service/*`` prefix, a few ``*/Method`` suffixes) for one to three SPIFFE IDs or a
team prefix, some with a tenant header; deny rules revoke identities or drop methods. A fixed
pool of requests mixes allowed calls (a random allow rule's own caller), calls denied by a deny
rule and calls that match no allow rule.

Measured, per size, one call at a time with ``time.perf_counter_ns`` (so p99 is a real per-call
tail; the timer's own cost is reported as ``timer_overhead_ns`` and included in every figure):

* ``engine``: :meth:`grpcsec.authz.Engine.evaluate` in steady state (a server has few methods,
  so the per-method candidate cache is warm);
* ``engine_unknown_method``: every call names a method never seen before (cache miss: the index
  walk, the cost an unbounded stream of made-up method names can force);
* ``naive``: a reference evaluator that checks every rule in document order, deny then allow,
  with the same compiled per-rule matchers (so the difference is the indexing alone).

Engine and naive rounds alternate, so load from other processes hits both alike. Every request
of the pool is also checked to get the same decision from both. Targets (issue 6): at 1,000
rules a median at most 5 us, and at most twice the 10-rule median. Prints one JSON object on
stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from grpcsec.authz import Authorizer, Decision, Engine, Policy, Request, Rule, parse_policy
from grpcsec.authz.check import AuthorizeCheck
from grpcsec.authz.patterns import PatternSet
from grpcsec.authz.request import joined_headers, peer_principals
from grpcsec.call import CallInfo
from grpcsec.errors import AuthorizationError
from grpcsec.identity import Peer, TransportSecurity

SIZES = (10, 100, 1_000, 10_000)
TARGET_MEDIAN_US_AT_1000 = 5.0
TARGET_RATIO_1000_VS_10 = 2.0
SEED = 20261121


# -- policy and requests ---------------------------------------------------------------------------
def spiffe(service: int, replica: int) -> str:
    return f"spiffe://acme.org/ns/team{service % 37}/sa/svc{service}-{replica}"


def method(service: int, name: str) -> str:
    return f"/acme.svc{service}.Service{service}/{name}"


METHOD_NAMES = ("Get", "List", "Create", "Update", "Delete", "Watch")


@dataclass(frozen=True)
class Workload:
    policy: dict[str, object]
    requests: list[Request]
    kinds: dict[str, int]


def _peer(*uris: str) -> Peer:
    return Peer(
        address="ipv4:10.0.0.1:5000",
        transport=TransportSecurity.TLS,
        client_cert_presented=True,
        uris=uris,
        spiffe_id=uris[0] if len(uris) == 1 else None,
    )


Caller = tuple[str, Peer, list[tuple[str, str]]]


def _allow_rule(i: int, rng: random.Random) -> tuple[dict[str, object], Caller]:
    """Allow rule ``i`` and a call it allows."""
    shape = rng.random()
    if shape < 0.5:
        name = rng.choice(METHOD_NAMES)
        paths, call = [method(i, name)], method(i, name)
    elif shape < 0.97:
        paths, call = [f"/acme.svc{i}.Service{i}/*"], method(i, rng.choice(METHOD_NAMES))
    else:
        paths, call = [f"*/Probe{i}"], f"/acme.ops.Ops/Probe{i}"
    if rng.random() < 0.8:
        principals = [spiffe(i, r) for r in range(rng.randint(1, 3))]
        peer = _peer(principals[-1])
    else:
        principals = [f"spiffe://acme.org/ns/team{i % 37}/*"]
        peer = _peer(spiffe(i, 9))
    request: dict[str, object] = {"paths": paths}
    metadata = [("user-agent", "grpc-python/1.85")]
    if rng.random() < 0.3:
        tenant = f"tenant-{i % 11}"
        request["headers"] = [{"key": "x-tenant", "values": [tenant]}]
        metadata.append(("x-tenant", tenant))
    rule: dict[str, object] = {
        "name": f"allow_{i}",
        "source": {"principals": principals},
        "request": request,
    }
    return rule, (call, peer, metadata)


def _deny_rule(d: int, services: int, rng: random.Random) -> tuple[dict[str, object], Caller]:
    """Deny rule ``d`` (a revoked identity, or a dropped method) and a call it denies."""
    service = rng.randrange(services)
    if d % 2 == 0:
        who = f"spiffe://acme.org/ns/revoked/sa/r{d}"
        rule: dict[str, object] = {
            "name": f"deny_{d}",
            "source": {"principals": [who]},
            "request": {"paths": [f"/acme.svc{service}.Service{service}/*"]},
        }
        return rule, (method(service, "Get"), _peer(who), [("x-tenant", "tenant-1")])
    rule = {"name": f"deny_{d}", "request": {"paths": [method(service, "Drop")]}}
    return rule, (method(service, "Drop"), _peer(spiffe(service, 0)), [])


def build_workload(size: int, rng: random.Random, pool: int = 300) -> Workload:
    deny_count = max(1, size // 10)
    allow_count = size - deny_count
    allowed = [_allow_rule(i, rng) for i in range(allow_count)]
    denied = [_deny_rule(d, allow_count, rng) for d in range(deny_count)]
    stranger = _peer("spiffe://acme.org/ns/other/sa/stranger")
    requests: list[Request] = []
    kinds = {"allow": 0, "deny_rule": 0, "default_deny": 0}
    for _ in range(pool):
        roll = rng.random()
        if roll < 0.6:
            call, peer, metadata = rng.choice(allowed)[1]
            kinds["allow"] += 1
        elif roll < 0.8:
            call, peer, metadata = rng.choice(denied)[1]
            kinds["deny_rule"] += 1
        else:
            call, _, metadata = rng.choice(allowed)[1]
            peer = stranger
            kinds["default_deny"] += 1
        requests.append(Request(method=call, peer=peer, metadata=metadata))
    policy: dict[str, object] = {
        "name": f"bench-{size}",
        "deny_rules": [rule for rule, _ in denied],
        "allow_rules": [rule for rule, _ in allowed],
    }
    return Workload(policy=policy, requests=requests, kinds=kinds)


# -- the naive evaluator ---------------------------------------------------------------------------
Matchers = tuple[PatternSet | None, PatternSet | None, list[tuple[str, PatternSet]]]


def _matchers(rule: Rule) -> tuple[str, Matchers]:
    return rule.name, (
        PatternSet(rule.principals) if rule.principals else None,
        PatternSet(rule.paths) if rule.paths else None,
        [(h.key, PatternSet(h.values)) for h in rule.headers],
    )


class NaiveEvaluator:
    """Every rule, in document order, deny then allow; the same PatternSet matchers."""

    def __init__(self, policy: Policy) -> None:
        self.name = policy.name
        self.deny = [_matchers(rule) for rule in policy.deny_rules]
        self.allow = [_matchers(rule) for rule in policy.allow_rules]

    @staticmethod
    def _matches(matchers: Matchers, request: Request) -> bool:
        principals, paths, headers = matchers
        if paths is not None and not paths.matches(request.method):
            return False
        if principals is not None:
            identities = peer_principals(request.peer)
            if identities is None or not principals.matches_any(identities):
                return False
        if headers:
            joined = joined_headers(request.metadata)
            for key, patterns in headers:
                value = joined.get(key)
                if value is None or not patterns.matches(value):
                    return False
        return True

    def evaluate(self, request: Request) -> Decision:
        for name, matchers in self.deny:
            if self._matches(matchers, request):
                return Decision(allowed=False, policy_name=self.name, matched_rule=name)
        for name, matchers in self.allow:
            if self._matches(matchers, request):
                return Decision(allowed=True, policy_name=self.name, matched_rule=name)
        return Decision(allowed=False, policy_name=self.name)


# -- timing ----------------------------------------------------------------------------------------
def timer_overhead_ns(samples: int = 20_000) -> float:
    clock = time.perf_counter_ns
    found = []
    for _ in range(samples):
        start = clock()
        found.append(clock() - start)
    return float(statistics.median(found))


def time_calls(
    evaluate: Callable[[Request], Decision],
    requests: Sequence[Request],
    *,
    max_calls: int,
    max_seconds: float,
) -> list[int]:
    """Per-call times (ns) of ``evaluate`` over ``requests`` in turn, at least one call, at most
    ``max_calls``, stopping once ``max_seconds`` have passed (checked outside the timed part)."""
    clock = time.perf_counter_ns
    samples: list[int] = []
    deadline = clock() + int(max_seconds * 1e9)
    count = len(requests)
    index = 0
    while len(samples) < max(1, max_calls):
        request = requests[index % count]
        start = clock()
        evaluate(request)
        end = clock()
        samples.append(end - start)
        index += 1
        if end > deadline:
            break
    return samples


def summary(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "median_us": round(statistics.median(ordered) / 1000, 3),
        "p99_us": round(p99 / 1000, 3),
        "samples": len(ordered),
    }


def unknown_method_requests(base: Sequence[Request], count: int) -> list[Request]:
    return [
        Request(
            method=f"/made.up.Service{i}/Method{i}",
            peer=base[i % len(base)].peer,
            metadata=base[i % len(base)].metadata,
        )
        for i in range(count)
    ]


def measure(size: int, params: dict[str, float | int], rng: random.Random) -> dict[str, object]:
    workload = build_workload(size, rng)
    start = time.perf_counter()
    policy = parse_policy(json.dumps(workload.policy))
    parse_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    engine = Engine(policy)
    compile_ms = (time.perf_counter() - start) * 1000
    naive = NaiveEvaluator(policy)
    agree = all(engine.evaluate(r) == naive.evaluate(r) for r in workload.requests)
    outcomes = {"allow": 0, "deny_rule": 0, "default_deny": 0}
    for request in workload.requests:
        decision = engine.evaluate(request)
        key = (
            "allow"
            if decision.allowed
            else "default_deny"
            if decision.default_deny
            else "deny_rule"
        )
        outcomes[key] += 1
    engine_samples: list[int] = []
    naive_samples: list[int] = []
    unknown_samples: list[int] = []
    rounds = int(params["rounds"])
    unknown = unknown_method_requests(workload.requests, int(params["engine_calls"]) + 1)
    gc.collect()
    for round_index in range(rounds):
        engine_samples += time_calls(
            engine.evaluate,
            workload.requests,
            max_calls=int(params["engine_calls"]) // rounds,
            max_seconds=float(params["engine_seconds"]) / rounds,
        )
        offset = round_index * (len(unknown) // rounds)
        unknown_samples += time_calls(
            engine.evaluate,
            unknown[offset:] or unknown,
            max_calls=min(len(unknown) // rounds, 4000),
            max_seconds=float(params["engine_seconds"]) / rounds,
        )
        naive_samples += time_calls(
            naive.evaluate,
            workload.requests,
            max_calls=int(params["naive_calls"]) // rounds,
            max_seconds=float(params["naive_seconds"]) / rounds,
        )
    engine_summary = summary(engine_samples)
    naive_summary = summary(naive_samples)
    print(
        f"{size:>6} rules: engine {engine_summary['median_us']} us, "
        f"naive {naive_summary['median_us']} us",
        file=sys.stderr,
    )
    return {
        "rules": size,
        "deny_rules": len(policy.deny_rules),
        "allow_rules": len(policy.allow_rules),
        "parse_ms": round(parse_ms, 2),
        "compile_ms": round(compile_ms, 2),
        "engine": engine_summary,
        "engine_unknown_method": summary(unknown_samples),
        "naive": naive_summary,
        "speedup_median": round(naive_summary["median_us"] / engine_summary["median_us"], 1),
        "decisions_agree": agree,
        "request_mix": outcomes,
    }


def check_cost(size: int, params: dict[str, float | int], rng: random.Random) -> dict[str, object]:
    """Per-call cost of the A43 check as the guard runs it (a CallInfo in, a decision out,
    audit included) next to the bare engine, on the same policy and requests."""
    workload = build_workload(size, rng)
    policy = parse_policy(json.dumps(workload.policy))
    check = AuthorizeCheck(Authorizer.from_policy(policy))
    calls = [
        CallInfo(method=r.method, metadata=r.metadata, peer=r.peer, claims=r.claims)
        for r in workload.requests
    ]
    engine = Engine(policy)

    def run_check(index: int) -> None:
        with contextlib.suppress(AuthorizationError):
            check.check(calls[index])

    def run_engine(index: int) -> None:
        engine.evaluate(workload.requests[index])

    results: dict[str, object] = {}
    for name, run in (("engine", run_engine), ("check", run_check)):
        samples: list[int] = []
        for index in range(int(params["engine_calls"]) // 10):
            start = time.perf_counter_ns()
            run(index % len(calls))
            samples.append(time.perf_counter_ns() - start)
        results[name] = summary(samples)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for CI smoke runs")
    args = parser.parse_args()
    params: dict[str, float | int] = (
        {"rounds": 3, "engine_calls": 15_000, "engine_seconds": 0.6, "naive_calls": 600}
        if args.quick
        else {"rounds": 5, "engine_calls": 300_000, "engine_seconds": 6.0, "naive_calls": 20_000}
    )
    params["naive_seconds"] = 0.6 if args.quick else 6.0
    started = time.perf_counter()
    rng = random.Random(SEED)  # noqa: S311 (reproducible benchmark data, not a secret)
    overhead = timer_overhead_ns()
    results = {str(size): measure(size, params, rng) for size in SIZES}
    interceptor = check_cost(1000, params, rng)
    median_10 = results["10"]["engine"]["median_us"]  # type: ignore[index]
    median_1000 = results["1000"]["engine"]["median_us"]  # type: ignore[index]
    ratio = round(median_1000 / median_10, 2)
    output = {
        "benchmark": "A43 policy evaluation: grpcsec compiled engine vs a naive scan of every rule",
        "results": results,
        "ratio_1000_vs_10": ratio,
        "guard_check_1000_rules": interceptor,
        "targets": {
            "median_us_at_1000": TARGET_MEDIAN_US_AT_1000,
            "max_ratio_1000_vs_10": TARGET_RATIO_1000_VS_10,
        },
        "meets_target": {
            "median_at_1000": median_1000 <= TARGET_MEDIAN_US_AT_1000,
            "ratio_1000_vs_10": ratio <= TARGET_RATIO_1000_VS_10,
        },
        "decisions_agree": all(r["decisions_agree"] for r in results.values()),
        "timer_overhead_ns": overhead,
        "params": {
            **params,
            "seed": SEED,
            "request_pool": 300,
            "quick": args.quick,
            "elapsed_seconds": round(time.perf_counter() - started, 1),
        },
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }
    sys.stdout.write(json.dumps(output, indent=2) + "\n")


if __name__ == "__main__":
    main()
