"""The ``grpcsec serve`` process of ``soak.py`` (not a benchmark itself): its command line,
its log read on a thread, its CPU time and its metrics.

:class:`ServerLog` reads the server's stderr line by line (the server logs each call, so the
pipe must be drained) and keeps only counts: calls logged, policy loads with their time and
name, warnings, errors and tracebacks, plus a few sample lines and the last five.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import urllib.request
from collections import Counter, deque
from pathlib import Path
from typing import TextIO

from _soak_material import SoakMaterial

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServerLog:
    """Reads the server's stderr on a thread; counts what the soak checks, keeps a few lines."""

    # grpcsec.watch's line: "authorization policy reloaded from PATH: policy 'NAME'"
    LOADED = "authorization policy reloaded from "
    NAME = ": policy '"

    def __init__(self, stream: TextIO) -> None:
        self.lines = 0
        self.calls_logged = 0
        self.policy_loads: list[tuple[float, str]] = []
        self.levels: Counter[str] = Counter()
        self.samples: list[str] = []
        self.metrics_url: str | None = None
        self.tail: deque[str] = deque(maxlen=5)
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: TextIO) -> None:
        for line in stream:
            self.lines += 1
            self.tail.append(line.rstrip()[:300])
            if "SayHello from " in line:
                self.calls_logged += 1
                continue
            for level in ("WARNING", "ERROR", "CRITICAL"):
                if f" {level} " in line:
                    self.levels[level] += 1
                    if len(self.samples) < 20:
                        self.samples.append(line.strip()[:300])
            if self.LOADED in line and self.NAME in line:
                name = line.rsplit(self.NAME, 1)[1].split("'", 1)[0]
                self.policy_loads.append((time.time(), name))
            elif "metrics on http://" in line:
                self.metrics_url = line.rsplit("metrics on ", 1)[1].strip()
            elif "Traceback" in line:
                self.levels["traceback"] += 1

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def server_command(material: SoakMaterial, args: argparse.Namespace) -> list[str]:
    """The real CLI, with every layer of the soak switched on."""
    return [
        *(sys.executable, "-m", "grpcsec.cli", "serve", "--listen", "127.0.0.1:0"),
        *("--cert", str(material.served / "tls.crt"), "--key", str(material.served / "tls.key")),
        *("--client-ca", str(material.path("ca.crt"))),
        *("--allow-trust-domain", material.TRUST_DOMAIN),
        *("--jwks", str(material.path("jwks.json")), "--issuer", material.ISSUER),
        *("--audience", material.AUDIENCE, "--require-scope", material.SCOPE),
        *("--policy", str(material.policy_path), "--metrics", "127.0.0.1:0"),
        *(
            "--reload-interval",
            "1s",
            "--max-connection-age",
            f"{round(args.max_connection_age * 1000)}ms",
        ),
        *(["--aio"] if args.aio else []),
    ]


def listening_port(line: str) -> int:
    """The port of ``listening on HOST:PORT (mode)``, the line ``serve`` prints once bound."""
    if not line.startswith("listening on "):
        raise RuntimeError(f"grpcsec serve did not start: {line!r}")
    return int(line.split()[2].rsplit(":", 1)[1])


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def scrape(url: str | None) -> dict[str, float]:
    """The ``grpcsec_*`` samples of the server's ``/metrics`` (name{labels} -> value)."""
    if url is None:
        return {}
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our own http://)
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("grpcsec_") and "_created" not in line.split(" ", 1)[0]:
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found
