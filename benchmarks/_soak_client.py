"""The caller processes of ``soak.py`` (not a benchmark itself).

:func:`run_client` is the ``soak.py --client SPEC`` mode: one ``grpc.aio`` event loop, one task
and one channel (``grpc.use_local_subchannel_pool``: its own connection) per caller. Each caller
makes one warm-up call, then the process prints ``ready`` and waits for ``go T0 END`` on stdin
(end of input: exit). Callers then call ``SayHello`` back to back until ``END`` (wall clock),
each call with the spec's deadline; latencies are kept per window of ``(start - T0)``, failures
counted by ``CODE: details``. The result is one JSON line on stdout.

:class:`ClientProcess` is the orchestrator's handle on one such process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc

from _harness import STOP_TIMEOUT, cpu_seconds, first_line
from grpcsec.demo.helloworld import SAY_HELLO_PATH, deserialize_reply, new_request, serialize

WARMUP_DEADLINE = 30.0
LOCAL_POOL = (("grpc.use_local_subchannel_pool", 1),)


class _Caller:
    def __init__(self, target: str, ca: bytes, spec: dict[str, str]) -> None:
        credentials = grpc.ssl_channel_credentials(ca, spec["key"].encode(), spec["cert"].encode())
        self.channel = grpc.aio.secure_channel(target, credentials, options=LOCAL_POOL)
        self.call = self.channel.unary_unary(
            SAY_HELLO_PATH, request_serializer=serialize, response_deserializer=deserialize_reply
        )
        self.metadata = (("authorization", f"Bearer {spec['token']}"),)
        self.request = new_request("soak")
        self.expected = f"Hello soak (from {spec['principal']})"

    async def once(self, deadline: float) -> str | None:
        """One call; ``None`` when it succeeded, else ``CODE: details``."""
        try:
            reply = await self.call(self.request, timeout=deadline, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            return f"{exc.code().name}: {exc.details()}"
        except Exception as exc:  # noqa: BLE001 (counted, never lost)
            return f"{type(exc).__name__}: {exc}"
        if reply.message != self.expected:
            return f"BAD_REPLY: {reply.message[:100]}"
        return None


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    ca = spec["ca"].encode()
    callers = [_Caller(spec["target"], ca, one) for one in spec["callers"]]
    failures: Counter[str] = Counter()
    latencies: dict[int, list[int]] = {}
    failed_in: Counter[int] = Counter()
    calls = 0
    try:
        for error in await asyncio.gather(*(c.once(WARMUP_DEADLINE) for c in callers)):
            if error is not None:
                failures[f"warm-up {error}"] += 1
        print("ready", flush=True)
        words = sys.stdin.readline().split()  # blocks the loop on purpose: nothing else runs
        if len(words) != 3 or words[0] != "go":
            return {"error": "no go", "calls": 0, "failures": {}, "latencies_us": {}}
        t0, end = float(words[1]), float(words[2])
        deadline, window = float(spec["deadline"]), float(spec["window"])

        async def loop(caller: _Caller) -> None:
            nonlocal calls
            while (started := time.time()) < end:
                start = time.perf_counter()
                error = await caller.once(deadline)
                elapsed = time.perf_counter() - start
                calls += 1
                index = int((started - t0) // window)
                if error is None:
                    latencies.setdefault(index, []).append(int(elapsed * 1e6))
                else:
                    failures[error[:300]] += 1
                    failed_in[index] += 1

        await asyncio.gather(*(loop(caller) for caller in callers))
    finally:
        for caller in callers:
            await caller.channel.close()
    return {
        "calls": calls,
        "failures": dict(failures),
        "latencies_us": latencies,
        "failures_by_window": failed_in,
        "cpu_seconds": cpu_seconds(),
    }


def run_client(spec_path: Path) -> int:
    """The ``--client SPEC`` mode (module docstring)."""
    result = asyncio.run(_run(json.loads(spec_path.read_text())))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


class ClientProcess:
    """A ``soak.py --client SPEC`` subprocess, driven over its stdin and stdout."""

    def __init__(self, spec: Path) -> None:
        script = Path(__file__).resolve().parent / "soak.py"
        self.process = subprocess.Popen(
            [sys.executable, str(script), "--client", str(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            close_fds=True,
        )

    def wait_ready(self, timeout: float) -> None:
        """Wait until every caller made its warm-up call."""
        if self.process.stdout is None:
            raise RuntimeError("no pipe to the client process")
        line = first_line(self.process.stdout, timeout)
        if line.strip() != "ready":
            raise RuntimeError(f"a soak client did not start: {line!r}")

    def go(self, t0: float, end: float) -> None:
        """Start the callers: measure from ``t0``, stop at ``end`` (wall clock)."""
        if self.process.stdin is None:
            raise RuntimeError("no pipe to the client process")
        self.process.stdin.write(f"go {t0} {end}\n")
        self.process.stdin.flush()

    def result(self, timeout: float) -> dict[str, Any]:
        """The client's JSON result (``error`` set if it gave none within ``timeout``)."""
        try:
            out, _ = self.process.communicate(timeout=timeout)
            result: dict[str, Any] = json.loads(out)
        except (subprocess.TimeoutExpired, ValueError) as exc:
            return {"error": repr(exc)[:200], "calls": 0, "failures": {}, "latencies_us": {}}
        return result

    def close(self) -> None:
        """Kill the process if it is still running (after :meth:`result` it is not)."""
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_TIMEOUT)
