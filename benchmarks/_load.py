"""The shared load loop of the end-to-end benchmarks (not a benchmark itself).

A benchmark starts its servers as subprocesses (:func:`start_servers`: all at once, then it
reads each one's port), drives them from this process with :func:`run_segment` (N client threads
calling one function back to back, bounded by a call count *and* a time), and reads each
server's CPU time from outside through ``/proc`` (:func:`process_cpu_seconds`: it needs nothing
from the server and works for any process, nghttpx included). Rounds visit every variant in an
order that rotates and reverses (:func:`round_order`), so a slow spell of a shared machine
lands on every variant alike; :func:`summarize` turns the rounds into medians, per-round paired
ratios to a baseline and CPU per call summed over all rounds (``/proc`` counts in clock ticks of
10 ms, so a per-segment figure would be too coarse).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from _harness import first_line, percentile, stop_process

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by the processes ``pids`` (all their threads),
    from ``/proc/PID/stat``."""
    total = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK_TICKS


@dataclass(frozen=True)
class Segment:
    """One bounded burst of calls against one server."""

    calls: int
    failures: int
    wall: float
    p50: float
    p99: float
    server_cpu: float
    """Server CPU seconds used during the segment (all of the server's processes)."""

    @property
    def per_second(self) -> float:
        return self.calls / self.wall


def _worker(call: Callable[[], None], calls: int, deadline: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    for _ in range(calls):
        started = time.perf_counter()
        if started >= deadline:
            break
        try:
            call()
        except Exception:  # noqa: BLE001 (counted; the report shows failures per variant)
            failures += 1
            continue
        latencies.append(time.perf_counter() - started)
    return latencies, failures


def run_segment(
    call: Callable[[], None],
    *,
    threads: int,
    max_calls: int,
    seconds: float,
    pool: concurrent.futures.ThreadPoolExecutor,
    server_pids: Sequence[int] = (),
) -> Segment:
    """``threads`` threads of ``pool`` each make up to ``max_calls / threads`` calls of ``call``
    back to back until ``seconds`` have passed; a call that raises counts as a failure."""
    per_thread = max(1, max_calls // threads)
    cpu_before = process_cpu_seconds(server_pids)
    started = time.perf_counter()
    deadline = started + seconds
    futures = [pool.submit(_worker, call, per_thread, deadline) for _ in range(threads)]
    results = [future.result() for future in futures]
    wall = time.perf_counter() - started
    cpu = process_cpu_seconds(server_pids) - cpu_before
    latencies = [value for found, _ in results for value in found]
    failures = sum(failed for _, failed in results)
    return Segment(
        calls=len(latencies),
        failures=failures,
        wall=wall,
        p50=percentile(latencies, 0.5) if latencies else 0.0,
        p99=percentile(latencies, 0.99) if latencies else 0.0,
        server_cpu=cpu,
    )


def round_order(names: Sequence[str], index: int) -> list[str]:
    """``names`` rotated by ``index`` and reversed on odd rounds."""
    shift = index % len(names)
    order = [*names[shift:], *names[:shift]]
    return order[::-1] if index % 2 else order


Rounds = list[dict[str, Segment]]


def summarize(rounds: Rounds, baseline: str) -> dict[str, dict[str, float | int]]:
    """Per variant: median calls/s, p50 and p99 (ms) over rounds, the median of per-round
    ``calls/s / baseline calls/s`` ratios, server CPU µs per call over every round, calls and
    failures."""
    result: dict[str, dict[str, float | int]] = {}
    for name in rounds[0]:
        segments = [r[name] for r in rounds]
        calls = sum(s.calls for s in segments)
        row: dict[str, float | int] = {
            "calls_per_second": round(statistics.median(s.per_second for s in segments), 1),
            "p50_ms": round(statistics.median(s.p50 for s in segments) * 1e3, 3),
            "p99_ms": round(statistics.median(s.p99 for s in segments) * 1e3, 3),
            "server_cpu_us_per_call": round(sum(s.server_cpu for s in segments) / calls * 1e6, 1)
            if calls
            else 0.0,
            "calls": calls,
            "failures": sum(s.failures for s in segments),
        }
        if name != baseline:
            row["ratio_vs_" + baseline] = round(
                statistics.median(r[name].per_second / r[baseline].per_second for r in rounds), 4
            )
        result[name] = row
    return result


@dataclass(frozen=True)
class ServerSpec:
    """A server subprocess: this interpreter running ``script`` with ``arguments``."""

    script: str
    arguments: tuple[str, ...]
    env: Mapping[str, str] | None = None


@contextlib.contextmanager
def start_servers(
    specs: Mapping[str, ServerSpec], *, timeout: float
) -> Iterator[dict[str, tuple[int, int]]]:
    """Start every server at once, then read the port each prints first; yield ``name ->
    (port, pid)``. Raises ``RuntimeError`` naming a server that prints no port within
    ``timeout`` seconds of the start. Always stops them all."""
    processes: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, spec in specs.items():
            processes[name] = subprocess.Popen(
                [sys.executable, str(Path(spec.script).resolve()), *spec.arguments],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                close_fds=True,
                env=None if spec.env is None else dict(spec.env),
            )
        deadline = time.monotonic() + timeout
        found: dict[str, tuple[int, int]] = {}
        for name, process in processes.items():
            if process.stdout is None:
                raise RuntimeError("no pipe to a server process")
            line = first_line(process.stdout, max(0.1, deadline - time.monotonic()))
            if not line.strip().isdigit():
                raise RuntimeError(f"the {name} server did not start: {line!r}")
            found[name] = (int(line), process.pid)
        yield found
    finally:
        for process in processes.values():
            stop_process(process)
