"""A grpc-go caller for ``server.py`` (``--client go``): far less client CPU per call than
Python's, so on a small machine the server's own cost decides the throughput.

It drives ``interop/build/bin/grpc-load`` (built by ``interop/install.sh`` from
``interop/go/load``): one long-lived process and connection per server, told on stdin to
``run SECONDS`` and answering with one JSON line per segment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _harness import first_line, stop_process
from _load import Segment

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "interop" / "build" / "bin" / "grpc-load"
ANSWER_SLACK = 30.0  # seconds past a segment's length before the caller counts as stuck


class GoCaller:
    """One ``grpc-load`` process calling ``method`` on ``127.0.0.1:port`` with the client
    certificate and the bearer token, from ``threads`` goroutines."""

    def __init__(
        self,
        port: int,
        directory: Path,
        token: str | None,
        *,
        method: str,
        payload: bytes,
        threads: int,
    ) -> None:
        if not BINARY.exists():
            raise RuntimeError(f"{BINARY} is missing: run interop/install.sh to build it")
        command = [
            str(BINARY),
            f"--addr=127.0.0.1:{port}",
            f"--ca={directory / 'ca.crt'}",
            f"--cert={directory / 'client.crt'}",
            f"--key={directory / 'client.key'}",
            f"--method={method}",
            f"--payload={payload.decode()}",
            f"--concurrency={threads}",
        ]
        if token is not None:  # a file (a flag shows in the process list), one per caller:
            # a shared one rewritten by the next caller could be read half-written
            handle, name = tempfile.mkstemp(prefix="bench-", suffix=".token", dir=directory)
            with os.fdopen(handle, "w") as token_file:  # mkstemp: mode 0600
                token_file.write(token)
            command.append(f"--token-file={name}")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def segment(self, seconds: float, server_cpu: Callable[[], float]) -> Segment:
        """Calls back to back for ``seconds``; the server's CPU read before and after."""
        process = self._process
        if process.stdin is None or process.stdout is None:
            raise RuntimeError("no pipe to grpc-load")
        before = server_cpu()
        process.stdin.write(f"run {seconds}\n")
        process.stdin.flush()
        line = first_line(process.stdout, seconds + ANSWER_SLACK)
        after = server_cpu()
        if not line.startswith("{"):
            raise RuntimeError(f"grpc-load did not answer: {line.strip()!r}")
        found = json.loads(line)
        if found["failures"]:
            print(
                f"grpc-load: {found['failures']} failed calls, first: {found.get('first_error')}",
                file=sys.stderr,
            )
        return Segment(
            calls=int(found["calls"]),
            failures=int(found["failures"]),
            wall=float(found["seconds"]),
            p50=float(found["p50_ms"]) / 1e3,
            p99=float(found["p99_ms"]) / 1e3,
            server_cpu=after - before,
        )

    def close(self) -> None:
        """End the process (end of input) and wait for it."""
        stop_process(self._process)
