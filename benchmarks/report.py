"""Turn the benchmarks' JSON into one Markdown page with charts (issue 17 item 5).

    python benchmarks/report.py --run            # run every benchmark (full: ~10 min), then write
    python benchmarks/report.py --run --quick    # the same with each script's --quick (~1 min)
    python benchmarks/report.py                  # only re-read the JSON of an earlier --run

Each benchmark script prints one JSON object whose figures are ratios to a baseline measured in
the same run; this script keeps that rule: every chart shows a ratio to its own run's baseline,
never an absolute figure compared across runs. The JSON files are kept in ``--results``
(``benchmarks/results/`` by default), the page goes to ``--out`` (``docs/benchmarks.md``) with
its PNG charts beside it (``docs/benchmarks/``), so the documentation site shows them.

The page says on which machine, with which versions, when, whether the runs were ``--quick``
and how loaded the machine was, because all of these move the figures. Not done here: keeping
a history of runs, or deciding whether a figure is good enough (each benchmark's own JSON says
whether it met its target; the page repeats that).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUN_TIMEOUT = 1800.0
Json = Mapping[str, Any]


@dataclass(frozen=True)
class Section:
    """One benchmark: its script, its heading, and how to chart and tabulate its JSON."""

    script: str
    title: str
    measures: str
    chart: Callable[[Json, Path], list[tuple[str, float]]]


@contextmanager
def _chart(path: Path) -> Iterator[Any]:
    """One chart's axes, written to ``path`` as PNG when the block ends."""
    figure, axes = plt.subplots(figsize=(7, 3.2), dpi=100)
    try:
        yield axes
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)


def _bars(
    path: Path,
    title: str,
    rows: list[tuple[str, float]],
    baseline: str,
    spread: list[tuple[float, float]] | None = None,
) -> None:
    """Horizontal bars of ``rows``; ``spread`` (one ``(low, high)`` per row) draws each bar's
    noise band as an error bar."""
    labels = [label for label, _ in rows]
    values = [value for _, value in rows]
    errors = None
    if spread is not None:
        errors = [
            [max(0.0, v - low) for v, (low, _) in zip(values, spread, strict=True)],
            [max(0.0, high - v) for v, (_, high) in zip(values, spread, strict=True)],
        ]
    with _chart(path) as axes:
        bars = axes.barh(labels, values, color="#4063a8", xerr=errors, ecolor="#999999")
        axes.axvline(1.0, color="#444444", linewidth=1, linestyle="--")
        axes.set_xlabel(f"ratio to {baseline} (same run; 1.0 = equal)")
        axes.set_title(title, fontsize=10)
        axes.bar_label(bars, labels=[f"{v:.2f}" for v in values], padding=3, fontsize=8)
        axes.set_xlim(0, max([*values, 1.0]) * 1.2)
        axes.invert_yaxis()


def _rpc_layers(data: Json, path: Path) -> list[tuple[str, float]]:
    """The median of the rounds' paired ratios, with their quartiles as the noise band (older
    results without them: the ratio of median rates, no band)."""
    rows: list[tuple[str, float]] = []
    spread: list[tuple[float, float]] = []
    for kind, found in data["kinds"].items():
        variants = found["variants"]
        bare = variants["bare"]["calls_per_second"]
        for name, variant in variants.items():
            if name != "bare":
                ratio = variant.get("ratio_vs_bare", variant["calls_per_second"] / bare)
                rows.append((f"{kind}: {name}", ratio))
                low, high = variant.get("ratio_vs_bare_quartiles", (ratio, ratio))
                spread.append((low, high))
    title = "Unary calls/s by layer (server.py; bars: rounds' quartiles)"
    _bars(path, title, rows, "bare grpcio mTLS", spread)
    return rows


def _handshakes(data: Json, path: Path) -> list[tuple[str, float]]:
    rates = data["handshakes_per_second"]
    plain = data["plaintext_connections_per_second"]
    rows = [(f"{key} mTLS", rate / plain) for key, rate in rates.items()]
    _bars(path, "New connections/s by key type (handshake.py)", rows, "plaintext connections")
    rows.append(("ECDSA P-256 vs RSA-4096", data["ratio_default_vs_rsa4096"]))
    return rows


def _policy(data: Json, path: Path) -> list[tuple[str, float]]:
    sizes = sorted(data["results"].values(), key=lambda r: r["rules"])
    rules = [r["rules"] for r in sizes]
    with _chart(path) as axes:
        axes.plot(rules, [r["engine"]["median_us"] for r in sizes], marker="o", label="grpcsec")
        axes.plot(rules, [r["naive"]["median_us"] for r in sizes], marker="s", label="naive scan")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("rules in the policy")
        axes.set_ylabel("median µs per decision")
        axes.set_title("A43 evaluation by rule count (authz.py)", fontsize=10)
        axes.legend()
    return [(f"{r['rules']} rules: naive / grpcsec", r["speedup_median"]) for r in sizes]


def _rotation(data: Json, path: Path) -> list[tuple[str, float]]:
    during = data["throughput_during_rotation"]
    per_connection = data["per_connection"]
    rows = [
        ("calls/s while rotating", during["ratio_rotating_vs_baseline"]),
        ("new connections/s while rotating", during["ratio_new_connections_rotating_vs_baseline"]),
        (
            "connections/s, rotating vs static credentials",
            per_connection["ratio_rotating_vs_static"],
        ),
    ]
    title = f"Rotation under load (rotation.py; {during['failed_calls']} failed calls)"
    _bars(path, title, rows, "no rotation")
    return rows


def _jwt(data: Json, path: Path) -> list[tuple[str, float]]:
    ratios = data["in_process"]["cold_vs_cached_ratio"]
    rows = [(f"{alg}: cold / cached verification", value) for alg, value in ratios.items()]
    with _chart(path) as axes:
        verify = data["in_process"]["us_per_call"]["verify"]
        labels = list(verify)
        axes.bar(
            [f"{a} cold" for a in labels], [verify[a]["cold"] for a in labels], color="#a84040"
        )
        axes.bar(
            [f"{a} cached" for a in labels], [verify[a]["cached"] for a in labels], color="#4063a8"
        )
        axes.set_yscale("log")
        axes.set_ylabel("µs per verification (log)")
        axes.set_title("JWT verification, cold vs cached (authn.py)", fontsize=10)
    for kind, found in data["end_to_end"].items():
        for variant in ("jwt_cached", "jwt_uncached", "secured"):
            threads = found["ratio_vs_bare"][variant]
            rows.append((f"{kind} calls/s, {variant} vs bare (4 threads)", threads["threads_4"]))
    return rows


def _crl(data: Json, path: Path) -> list[tuple[str, float]]:
    rows = [
        ("per call, CRL verdict cached vs no CRL", data["ratio_cached_vs_no_crl"]),
        ("per call, first call vs no CRL", data["ratio_first_call_vs_no_crl"]),
        ("lookup, big CRL vs small", data["lookup_ratio_big_vs_small"]),
        ("load, big CRL vs empty", data["load_ratio_big_vs_empty"]),
    ]
    with _chart(path) as axes:
        calls = data["us_per_call"]
        axes.bar(list(calls), list(calls.values()), color="#4063a8")
        axes.set_yscale("log")
        axes.set_ylabel("µs per check (log)")
        axes.set_title(
            f"Revocation check, {data['params']['entries']:,}-entry CRL (crl.py)", fontsize=10
        )
    return rows


SECTIONS = (
    Section("server", "RPC overhead by layer", "unary calls per second through each layer of "
            "`grpcsec.server` (guard, CN allow-list, cached JWT, 100-rule A43 policy, all of them) "
            "and through an nghttpx sidecar, as a ratio to bare grpcio mTLS (the median of the "
            "rounds' paired ratios; the error bars span their middle half, this machine's noise); "
            "client and server in separate processes", _rpc_layers),
    Section("handshake", "Handshakes by key type", "new connections per second (mTLS "
            "handshake + one call) by key type, as a ratio to plaintext connections in the same "
            "run", _handshakes),
    Section("authz", "Policy evaluation by rule count", "median time of one A43 decision, "
            "grpcsec's compiled engine against a naive scan of every rule", _policy),
    Section("rotation", "Rotation under load", "throughput and new connections while the "
            "server certificate is swapped every few hundred milliseconds, as a ratio to the "
            "same load without rotation", _rotation),
    Section("authn", "JWT: cached vs cold", "in-process token verification with and without the "
            "verifier's cache, and calls per second with tokens as a ratio to bare grpcio", _jwt),
    Section("crl", "CRL lookup", "the per-call revocation check (first call and cached verdict) "
            "as a ratio to no CRL, and lookup and load of a large CRL against a small one", _crl),
)  # fmt: skip


def run(section: Section, results: Path, quick: bool) -> None:
    """Run one benchmark script, keeping its JSON (and its stderr beside it)."""
    command = [sys.executable, str(HERE / f"{section.script}.py"), *(["--quick"] if quick else [])]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=ROOT, check=False
    )
    (results / f"{section.script}.stderr").write_text(result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"error: benchmarks/{section.script}.py exited {result.returncode}")
    json.loads(result.stdout)  # refuse to keep anything that is not one JSON object
    (results / f"{section.script}.json").write_text(result.stdout)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine(quick: bool, results: Path) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    stamp = dt.datetime.fromtimestamp(
        max((p.stat().st_mtime for p in results.glob("*.json")), default=0), tz=dt.timezone.utc
    )
    versions = ", ".join(
        f"{name} {_version(name)}" for name in ("grpcsec", "grpcio", "cryptography", "PyJWT")
    )
    return (
        f"- **When**: results written {stamp:%Y-%m-%d %H:%M} UTC; "
        f"{'`--quick` runs (small samples: indicative only)' if quick else 'full runs'}\n"
        f"- **Machine**: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}; load average at report time {load:.2f}\n"
        f"- **Versions**: Python {platform.python_version()}, {versions}\n"
    )


def render(results: Path, out: Path, quick: bool) -> str:
    images = out.parent / out.stem
    images.mkdir(parents=True, exist_ok=True)
    parts = [
        "# Benchmarks\n",
        (
            "Generated by `python benchmarks/report.py --run` (see [benchmarks/README.md]"
            "(../benchmarks/README.md)). Every figure is a ratio to a baseline measured in the "
            "same run, on the machine below; compare ratios, not absolute rates, between "
            "machines.\n"
        ),
        machine(quick, results),
    ]
    for section in SECTIONS:
        source = results / f"{section.script}.json"
        parts.append(f"## {section.title}\n")
        if not source.is_file():
            parts.append(f"Not run: no `{source.name}` in the results.\n")
            continue
        data = json.loads(source.read_text())
        image = images / f"{section.script}.png"
        rows = section.chart(data, image)
        parts.append(f"What it measures: {section.measures}.\n")
        parts.append(f"![{section.title}]({images.name}/{image.name})\n")
        parts.append("| ratio | value |\n|---|---|")
        parts.extend(f"| {label} | {value:.2f} |" for label, value in rows)
        verdicts = {k: v for k, v in data.items() if k.startswith("meets_")}
        if verdicts:
            parts.append("")
            parts.append(
                "Targets (from the script): "
                + ", ".join(f"`{k}`: {'yes' if v else 'no'}" for k, v in verdicts.items())
            )
        parts.append("")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--run", action="store_true", help="run the benchmarks first")
    parser.add_argument("--quick", action="store_true", help="with --run: each script's --quick")
    parser.add_argument("--only", default="", help="comma-separated scripts (default: all)")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    wanted = {name for name in args.only.split(",") if name}
    unknown = wanted - {s.script for s in SECTIONS}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    args.results.mkdir(parents=True, exist_ok=True)
    if args.run:
        for section in SECTIONS:
            if not wanted or section.script in wanted:
                run(section, args.results, args.quick)
        (args.results / "quick").write_text("yes\n" if args.quick else "no\n")
    marker = args.results / "quick"
    quick = marker.is_file() and marker.read_text().strip() == "yes"
    args.out.write_text(render(args.results, args.out, quick))
    print(json.dumps({"report": str(args.out), "results": str(args.results)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
