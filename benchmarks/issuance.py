"""Leaf issuance throughput per key type: key generation plus signing by an ECDSA P-256 CA.

Run from the project root::

    .venv/bin/python benchmarks/issuance.py            # full run, well under a minute
    .venv/bin/python benchmarks/issuance.py --quick    # CI smoke run, a second or two

Prints one JSON object on stdout. For each key type: how many leaves per second
``CertificateAuthority.issue`` produced (a fresh key of that type, a server profile, one DNS and
one IP SAN), the mean milliseconds per leaf split into key generation and signing, and the ratio
of its rate to the default ECDSA P-256 rate measured in the same run (``> 1`` is faster than the
default). Each type runs for a bounded time *and* a bounded number of iterations, whichever
ends first, but at least ``--min-iterations`` leaves (RSA-4096 key generation takes about a
second per key and varies a lot, because it searches for primes). The budget is split over three
rounds that visit every type in turn, so a busy neighbour on a shared machine slows all types
alike instead of only the one that happened to be running.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field

import cryptography

from grpcsec.pki import CertificateAuthority, KeyType, Profile, SubjectAltNames, generate_key

DEFAULT = KeyType.ECDSA_P256


@dataclass(frozen=True)
class Budget:
    """How long each key type runs: until ``seconds`` or ``max_iterations``, at least ``min``,
    split over ``rounds`` that visit every key type in turn (so drift hits all types alike)."""

    seconds: float
    min_iterations: int
    max_iterations: int
    warmup: int
    rounds: int


@dataclass
class TypeResult:
    """What one key type measured, summed over rounds."""

    key_type: KeyType
    elapsed: float = 0.0
    keygen_seconds: list[float] = field(default_factory=list)
    issue_seconds: list[float] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return len(self.issue_seconds)

    @property
    def per_second(self) -> float:
        return self.iterations / self.elapsed if self.elapsed else 0.0


NAMES = SubjectAltNames.build(dns=["bench.example"], ips=["127.0.0.1"])


def _share(total: int, round_number: int, rounds: int) -> int:
    """How many of ``total`` iterations should be done after round ``round_number`` (ceil)."""
    return -(-total * round_number // rounds)


def measure(
    ca: CertificateAuthority, result: TypeResult, budget: Budget, round_number: int
) -> None:
    """Round ``round_number`` (from 1) for ``result.key_type``: its share of the time and
    iteration budget, each iteration generating a new key and then issuing a leaf for it."""
    key_type = result.key_type
    allow = not key_type.grpc_leaf_supported
    min_total = _share(budget.min_iterations, round_number, budget.rounds)
    max_total = _share(budget.max_iterations, round_number, budget.rounds)
    start = time.perf_counter()
    deadline = start + budget.seconds / budget.rounds
    while result.iterations < max_total and (
        result.iterations < min_total or time.perf_counter() < deadline
    ):
        t0 = time.perf_counter()
        key = generate_key(key_type)
        t1 = time.perf_counter()
        # With ``key`` given, issue() signs only; allow_unsupported_key is not needed then, but
        # it is passed anyway so the Ed25519 row is the documented --allow-unsupported-key path.
        ca.issue(Profile.SERVER, NAMES, key=key, allow_unsupported_key=allow)
        t2 = time.perf_counter()
        result.keygen_seconds.append(t1 - t0)
        result.issue_seconds.append(t2 - t1)
    result.elapsed += time.perf_counter() - start


def _ms(values: list[float]) -> float:
    return round(statistics.fmean(values) * 1000, 4) if values else 0.0


def run(budget: Budget) -> dict[str, object]:
    """Measure every key type, the default first (it is the baseline of every ratio)."""
    ca = CertificateAuthority.create("grpcsec bench CA", key_type=KeyType.ECDSA_P256)
    order = [DEFAULT, *(k for k in KeyType if k is not DEFAULT)]
    for key_type in order:
        for _ in range(budget.warmup):
            ca.issue(
                Profile.SERVER,
                NAMES,
                key_type=key_type,
                allow_unsupported_key=not key_type.grpc_leaf_supported,
            )
    results = {k: TypeResult(k) for k in order}
    for round_number in range(1, budget.rounds + 1):
        for key_type in order:
            measure(ca, results[key_type], budget, round_number)
    baseline = results[DEFAULT].per_second
    total = sum(r.elapsed for r in results.values())
    return {
        "benchmark": "leaf issuance (key generation + signing by an ECDSA P-256 CA)",
        "leaves_per_second": {k.value: round(r.per_second, 2) for k, r in results.items()},
        "ratio_vs_default": {
            k.value: round(r.per_second / baseline, 4) if baseline else None
            for k, r in results.items()
        },
        "default": DEFAULT.value,
        "mean_ms": {
            k.value: {
                "keygen": _ms(r.keygen_seconds),
                "sign": _ms(r.issue_seconds),
                "total": round(r.elapsed / r.iterations * 1000, 4) if r.iterations else 0.0,
            }
            for k, r in results.items()
        },
        "iterations": {k.value: r.iterations for k, r in results.items()},
        "params": {
            "seconds_per_type": budget.seconds,
            "min_iterations": budget.min_iterations,
            "max_iterations": budget.max_iterations,
            "warmup": budget.warmup,
            "rounds": budget.rounds,
            "ca_key_type": KeyType.ECDSA_P256.value,
            "profile": Profile.SERVER.value,
            "elapsed_seconds": round(total, 2),
        },
        "cryptography": cryptography.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="very few iterations (CI smoke)")
    parser.add_argument("--seconds", type=float, default=None, help="time budget per key type")
    parser.add_argument("--max-iterations", type=int, default=None)
    parser.add_argument("--min-iterations", type=int, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        budget = Budget(seconds=0.2, min_iterations=1, max_iterations=5, warmup=0, rounds=1)
    else:
        budget = Budget(seconds=6.0, min_iterations=6, max_iterations=6000, warmup=1, rounds=3)
    if args.seconds is not None:
        budget = dataclasses.replace(budget, seconds=args.seconds)
    if args.min_iterations is not None:
        budget = dataclasses.replace(budget, min_iterations=args.min_iterations)
    if args.max_iterations is not None:
        budget = dataclasses.replace(budget, max_iterations=args.max_iterations)
    if budget.max_iterations < 1 or budget.min_iterations < 1 or budget.seconds < 0:
        parser.error("iteration bounds must be at least 1 and --seconds not negative")
    json.dump(run(budget), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
