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
from typing import Protocol

from _harness import cpu_seconds, first_line, percentile, stop_process

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
    """Server CPU seconds used during the segment (0 when not measured)."""
    client_cpu: float = 0.0
    """CPU seconds this (client) process used during the segment."""

    @property
    def per_second(self) -> float:
        return self.calls / self.wall

    @property
    def server_cpu_per_call(self) -> float:
        return self.server_cpu / self.calls if self.calls else 0.0

    @property
    def client_cpu_per_call(self) -> float:
        return self.client_cpu / self.calls if self.calls else 0.0


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
    server_cpu: Callable[[], float] | None = None,
) -> Segment:
    """``threads`` threads of ``pool`` each make up to ``max_calls / threads`` calls of ``call``
    back to back until ``seconds`` have passed; a call that raises counts as a failure.
    ``server_cpu`` (read before and after, outside the timed part) gives the server's CPU
    seconds so far: :func:`process_cpu_seconds` of its pids, or an RPC that asks it."""
    per_thread = max(1, max_calls // threads)
    cpu_before = server_cpu() if server_cpu is not None else 0.0
    client_before = cpu_seconds()
    started = time.perf_counter()
    deadline = started + seconds
    futures = [pool.submit(_worker, call, per_thread, deadline) for _ in range(threads)]
    results = [future.result() for future in futures]
    wall = time.perf_counter() - started
    client_cpu = cpu_seconds() - client_before
    cpu = server_cpu() - cpu_before if server_cpu is not None else 0.0
    latencies = [value for found, _ in results for value in found]
    failures = sum(failed for _, failed in results)
    return Segment(
        calls=len(latencies),
        failures=failures,
        wall=wall,
        p50=percentile(latencies, 0.5) if latencies else 0.0,
        p99=percentile(latencies, 0.99) if latencies else 0.0,
        server_cpu=cpu,
        client_cpu=client_cpu,
    )


def round_order(names: Sequence[str], index: int) -> list[str]:
    """``names`` rotated by ``index`` and reversed on odd rounds."""
    shift = index % len(names)
    order = [*names[shift:], *names[:shift]]
    return order[::-1] if index % 2 else order


Rounds = list[dict[str, Segment]]


ThreadRounds = list[dict[int, dict[str, Segment]]]


def measure_rounds(
    segment: Callable[[str, int, int], Segment],
    variants: Sequence[str],
    *,
    thread_counts: Sequence[int],
    rounds: int,
    warmup: int,
    max_calls: int,
    label: str = "",
) -> ThreadRounds:
    """Warm every variant up at every thread count (``warmup`` calls), then ``rounds``
    rounds: per thread count, every variant in :func:`round_order`. ``segment(variant,
    threads, max_calls)`` runs one :func:`run_segment`. A segment with a failed call raises
    ``RuntimeError`` (these benchmarks compare working servers only). Progress on stderr."""

    def checked(variant: str, threads: int, calls: int) -> Segment:
        found = segment(variant, threads, calls)
        if found.failures or not found.calls:
            raise RuntimeError(f"{variant}: {found.failures} calls failed, {found.calls} succeeded")
        return found

    for threads in thread_counts:
        for variant in variants:
            checked(variant, threads, warmup)
    result: ThreadRounds = []
    for index in range(rounds):
        per_threads: dict[int, dict[str, Segment]] = {}
        for threads in thread_counts:
            per_threads[threads] = {}
            for variant in round_order(variants, index):
                found = per_threads[threads][variant] = checked(variant, threads, max_calls)
                print(
                    f"{label}round {index + 1}/{rounds} threads={threads} {variant}: "
                    f"{found.per_second:.0f} calls/s",
                    file=sys.stderr,
                )
        result.append(per_threads)
    return result


class LoadClient(Protocol):
    """What :func:`measure_clients` needs of a benchmark's client of one server."""

    def call(self) -> None:
        """One call; raises when it fails."""

    def server_cpu(self) -> float:
        """The server's CPU seconds so far (asked outside the timed part)."""


class Bounds(Protocol):
    """How much a run measures (the fields of a benchmark's own parameters)."""

    @property
    def warmup(self) -> int: ...
    @property
    def rounds(self) -> int: ...
    @property
    def max_calls(self) -> int: ...
    @property
    def seconds(self) -> float: ...


def measure_clients(
    clients: Mapping[str, LoadClient],
    bounds: Bounds,
    *,
    thread_counts: Sequence[int],
    label: str = "",
) -> ThreadRounds:
    """:func:`measure_rounds` over one client per variant (in ``clients``' order), each
    segment at most ``bounds.seconds`` long, the server CPU asked from the client."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(thread_counts)) as pool:

        def segment(variant: str, threads: int, calls: int) -> Segment:
            client = clients[variant]
            return run_segment(
                client.call,
                threads=threads,
                max_calls=calls,
                seconds=bounds.seconds,
                pool=pool,
                server_cpu=client.server_cpu,
            )

        return measure_rounds(
            segment,
            list(clients),
            thread_counts=thread_counts,
            rounds=bounds.rounds,
            warmup=bounds.warmup,
            max_calls=bounds.max_calls,
            label=label,
        )


def summarize(rounds: Rounds, baseline: str) -> dict[str, dict[str, float | int | list[float]]]:
    """Per variant: median calls/s, p50 and p99 (ms) over rounds, the median of per-round
    ``calls/s / baseline calls/s`` ratios (and, from four rounds on, their first and third
    quartiles), server CPU µs per call over every round, calls and failures."""
    result: dict[str, dict[str, float | int | list[float]]] = {}
    for name in rounds[0]:
        segments = [r[name] for r in rounds]
        calls = sum(s.calls for s in segments)
        row: dict[str, float | int | list[float]] = {
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
            ratios = [r[name].per_second / r[baseline].per_second for r in rounds]
            row["ratio_vs_" + baseline] = round(statistics.median(ratios), 4)
            if len(ratios) >= 4:  # how far the rounds disagree: the run's own noise band
                first, _, third = statistics.quantiles(ratios, n=4)
                row[f"ratio_vs_{baseline}_quartiles"] = [round(first, 4), round(third, 4)]
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
