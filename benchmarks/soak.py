"""Soak: ``grpcsec serve`` with mTLS + JWT + A43 under 200 callers while everything rotates.

Run from the project root::

    .venv/bin/python benchmarks/soak.py              # 10 minutes, 200 callers, 5 s / 30 s
    .venv/bin/python benchmarks/soak.py --duration 20 --callers 50 --rotate-every 2 \\
        --policy-every 5 --warmup 4                  # the CI variant, about 30 s

The server is the real CLI (``python -m grpcsec.cli serve``) with a client CA (mTLS, trust
domain allow-list), a JWKS file with issuer, audience and a required scope, an A43 policy file
(``--policy``; the rule for the callers also checks the token's ``scope`` claim) and
``--metrics``. Connections are closed after ``--max-connection-age`` so the callers keep
re-handshaking against the rotated certificates.

Callers run in ``--client-processes`` subprocesses of this script (``--client SPEC``): each caller
is a ``grpc.aio`` task with its own channel (its own connection), its own client certificate
(``spiffe://soak.example/caller/N``) and its own token (minted once, so the server's verifier
cache answers after the first call), and calls ``SayHello`` back to back with a ``--deadline``;
a reply that does not name the caller counts as a failure.

While they run, this process (the orchestrator):

* every ``--rotate-every`` s issues a new server leaf from the same CA and publishes it as one
  atomic ``..data`` symlink swap, then makes TLS handshakes (Python ``ssl``) until the new serial
  is served (the swap-to-served time is reported);
* every ``--policy-every`` s replaces the policy file (write + rename) with the other of two
  policies (``soak-a``, ``soak-b``: the second adds a rule for another principal and a deny rule;
  both allow the callers) and counts the server's "authorization policy ... loaded" log lines;
* samples the server's RSS and CPU time every second; RSS "start" is the first sample after
  ``--warmup`` seconds, "end" the last one before shutdown;
* reads the server log (stderr) line by line: calls logged, policy loads, warnings and errors.

Prints one JSON document: calls, failures by code and message, throughput and p50/p99 latency
per ``--window`` and overall, RSS start/end and growth, rotations and serials seen, policy
edits and reloads, the server's metrics at the end, and ``goals_met`` (0 failures, RSS growth
below 10 %, every rotation served, every policy edit loaded). Everything is bounded: each call
has a deadline, the run ends by itself, every process is stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import _harness
from _harness import percentile, print_json, rounded, rss_bytes, served_serial
from _soak_client import ClientProcess, run_client
from _soak_material import SoakMaterial
from _soak_server import ServerLog, cpu_seconds_of, listening_port, scrape, server_command

START_TIMEOUT = 60.0
PROBE_EVERY = 0.1
SAMPLE_EVERY = 1.0
GOAL_RSS_GROWTH = 0.10


# -- the run --------------------------------------------------------------------------------------
class Schedule:
    """What the orchestrator did while the callers ran."""

    def __init__(self) -> None:
        self.rotations = 0
        self.serials_seen: set[int] = set()
        self.rotations_served = 0
        self.swap_to_served: list[float] = []
        self.probe_errors: Counter[str] = Counter()
        self.policy_edits: list[tuple[float, str]] = []
        self.rss: list[tuple[float, int]] = []
        self.cpu: list[tuple[float, float]] = []


def probe_until(
    context: ssl.SSLContext, port: int, wanted: int, until: float, schedule: Schedule
) -> None:
    """Handshake until ``wanted`` is served (or ``until``); record every serial seen."""
    start = time.monotonic()
    while time.monotonic() < until:
        try:
            serial = served_serial(context, port)
        except (OSError, ssl.SSLError) as exc:
            schedule.probe_errors[f"{type(exc).__name__}: {exc}"[:200]] += 1
        else:
            schedule.serials_seen.add(serial)
            if serial == wanted:
                schedule.rotations_served += 1
                schedule.swap_to_served.append(time.monotonic() - start)
                return
        time.sleep(PROBE_EVERY)


def drive(
    material: SoakMaterial, port: int, pid: int, args: argparse.Namespace, t0: float
) -> Schedule:
    """Rotate, edit the policy and sample the server until ``t0 + duration``."""
    schedule = Schedule()
    context = material.probe_context()
    schedule.serials_seen.add(served_serial(context, port))
    end = t0 + args.duration
    next_rotation = t0 + args.rotate_every
    next_policy = t0 + args.policy_every
    next_sample = time.time()
    while (now := time.time()) < end:
        if now >= next_sample:
            schedule.rss.append((now - t0, rss_bytes(pid)))
            schedule.cpu.append((now - t0, cpu_seconds_of(pid)))
            next_sample += SAMPLE_EVERY
        if now >= next_rotation:
            wanted = material.rotate_server()
            schedule.rotations += 1
            next_rotation += args.rotate_every
            budget = min(next_rotation, end) - time.time()
            probe_until(context, port, wanted, time.monotonic() + budget * 0.9, schedule)
        elif now >= next_policy:
            schedule.policy_edits.append((time.time(), material.edit_policy()))
            next_policy += args.policy_every
        else:
            time.sleep(max(0.0, min(next_sample, next_rotation, next_policy, end) - now))
    schedule.rss.append((time.time() - t0, rss_bytes(pid)))
    schedule.cpu.append((time.time() - t0, cpu_seconds_of(pid)))
    return schedule


def latency_table(latencies: list[int]) -> dict[str, float | int]:
    """Calls, p50 and p99 (ms) of latencies in microseconds."""
    if not latencies:
        return {"calls": 0}
    return {
        "calls": len(latencies),
        "p50_ms": rounded(percentile(latencies, 0.5) / 1000),
        "p99_ms": rounded(percentile(latencies, 0.99) / 1000),
        "max_ms": rounded(max(latencies) / 1000),
    }


def summarize(
    args: argparse.Namespace,
    *,
    clients: list[dict[str, Any]],
    schedule: Schedule,
    log: ServerLog,
    metrics: dict[str, float],
    elapsed: float,
) -> dict[str, Any]:
    failures: Counter[str] = Counter()
    windows: dict[int, list[int]] = {}
    failed_in: Counter[int] = Counter()
    for client in clients:
        failures.update(client["failures"])
        failed_in.update({int(k): v for k, v in client.get("failures_by_window", {}).items()})
        for index, values in client["latencies_us"].items():
            windows.setdefault(int(index), []).extend(values)
    failures.update({f"client process: {c['error']}": 1 for c in clients if c.get("error")})
    calls = sum(client["calls"] for client in clients)
    failed = sum(failures.values())
    per_window = []
    for index in sorted(set(windows) | set(failed_in)):
        row = {"from_s": index * args.window, **latency_table(windows.get(index, []))}
        row["calls_per_second"] = rounded(row["calls"] / args.window, 1)
        row["failures"] = failed_in[index]
        rss = [b for t, b in schedule.rss if index * args.window <= t < (index + 1) * args.window]
        if rss:
            row["server_rss_mb"] = rounded(rss[-1] / 2**20, 1)
        per_window.append(row)
    after_warmup = [b for t, b in schedule.rss if t >= args.warmup] or [b for _, b in schedule.rss]
    rss_start, rss_end = after_warmup[0], after_warmup[-1]
    growth = (rss_end - rss_start) / rss_start
    edits = schedule.policy_edits
    edits_loaded = sum(  # a load of the new policy before the next edit
        any(
            name == wanted and edited <= at < (edits[i + 1][0] if i + 1 < len(edits) else 1e12)
            for at, name in log.policy_loads
        )
        for i, (edited, wanted) in enumerate(edits)
    )
    reloads = len(log.policy_loads)  # the load at start-up logs no such line
    cpu = schedule.cpu[-1][1] - schedule.cpu[0][1]
    goals = {
        "no_failures": failed == 0 and calls > 0,
        "rss_growth_below_10_percent": growth < GOAL_RSS_GROWTH,
        "every_rotation_served": schedule.rotations_served == schedule.rotations > 0,
        "every_policy_edit_loaded": edits_loaded == len(schedule.policy_edits) > 0,
    }
    swaps = schedule.swap_to_served
    return {
        "benchmark": "soak: grpcsec serve (mTLS + JWT + A43 + metrics) under rotation",
        "calls": calls,
        "failures": failed,
        "failure_kinds": dict(failures.most_common()),
        "calls_per_second": rounded(calls / args.duration, 1),
        "latency_overall": latency_table([v for values in windows.values() for v in values]),
        "windows": per_window,
        "server": {
            "rss_start_mb": rounded(rss_start / 2**20, 2),
            "rss_end_mb": rounded(rss_end / 2**20, 2),
            "rss_growth_ratio": rounded(growth, 4),
            "rss_start_at_s": args.warmup,
            "cpu_seconds": rounded(cpu, 1),
            "cpu_us_per_call": rounded(cpu / calls * 1e6, 1) if calls else None,
            "calls_logged": log.calls_logged,
            "log_levels": dict(log.levels),
            "log_samples": log.samples,
        },
        "rotation": {
            "rotations": schedule.rotations,
            "served": schedule.rotations_served,
            "distinct_serials_seen": len(schedule.serials_seen),
            "swap_to_served_ms": {
                "p50": rounded(percentile(swaps, 0.5) * 1000, 1) if swaps else None,
                "max": rounded(max(swaps) * 1000, 1) if swaps else None,
            },
            "probe_errors": dict(schedule.probe_errors),
        },
        "policy": {
            "edits": len(schedule.policy_edits),
            "reloads_observed": reloads,
            "edits_loaded": edits_loaded,
            "loaded_names": [name for _, name in log.policy_loads][-6:],
        },
        "metrics_at_end": metrics,
        "goals_met": goals,
        "params": {
            "duration_s": args.duration,
            "callers": args.callers,
            "client_processes": args.client_processes,
            "rotate_every_s": args.rotate_every,
            "policy_every_s": args.policy_every,
            "window_s": args.window,
            "warmup_s": args.warmup,
            "deadline_s": args.deadline,
            "max_connection_age_s": args.max_connection_age,
            "server": "grpc.aio" if args.aio else "grpc.server (threads)",
            "cpus": os.cpu_count(),
            "elapsed_seconds": rounded(elapsed, 1),
            "client_cpu_seconds": [rounded(c.get("cpu_seconds", 0.0), 1) for c in clients],
        },
        "python": platform.python_version(),
    }


def soak(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grpcsec-soak-") as temp:
        material = SoakMaterial.create(Path(temp), args.callers)
        server = subprocess.Popen(
            server_command(material, args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            close_fds=True,
        )
        assert server.stdout is not None and server.stderr is not None  # noqa: S101 (PIPE)
        log = ServerLog(server.stderr)
        clients: list[ClientProcess] = []
        try:
            line = _harness.first_line(server.stdout, START_TIMEOUT)
            if not line.startswith("listening on "):
                time.sleep(0.5)  # let the log reader see the last lines
                raise RuntimeError(f"grpcsec serve did not start: {list(log.tail)}")
            port = listening_port(line)
            groups = [
                range(i, args.callers, args.client_processes) for i in range(args.client_processes)
            ]
            clients = [ClientProcess(material.client_spec(group, port, args)) for group in groups]
            for client in clients:
                client.wait_ready(START_TIMEOUT + args.callers * 0.2)
            t0 = time.time()
            for client in clients:
                client.go(t0, t0 + args.duration)
            schedule = drive(material, port, server.pid, args, t0)
            results = [client.result(args.deadline + 60) for client in clients]
            metrics = scrape(log.metrics_url)
        finally:
            for client in clients:
                client.close()
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=_harness.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=_harness.STOP_TIMEOUT)
            log.join(5)
    elapsed = time.monotonic() - started
    return summarize(
        args, clients=results, schedule=schedule, log=log, metrics=metrics, elapsed=elapsed
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--callers", type=int, default=200, help="concurrent callers")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--rotate-every", type=float, default=5.0, help="server cert, seconds")
    parser.add_argument("--policy-every", type=float, default=30.0, help="policy edit, seconds")
    parser.add_argument("--window", type=float, default=30.0, help="latency window, seconds")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before RSS start")
    parser.add_argument("--deadline", type=float, default=10.0, help="per call, seconds")
    parser.add_argument("--max-connection-age", type=float, default=30.0, help="seconds")
    parser.add_argument("--aio", action="store_true", help="serve with grpc.aio (serve --aio)")
    parser.add_argument("--client", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client is not None:
        return run_client(args.client)
    if args.duration <= args.warmup or args.callers < args.client_processes:
        parser.error("--duration must exceed --warmup; --callers at least --client-processes")
    print_json(soak(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
