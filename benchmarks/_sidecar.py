"""nghttpx as a TLS-terminating sidecar, the second baseline of ``server.py`` (not a benchmark).

What users deploy when they do not secure in-process: nghttpx (Debian ``nghttp2-proxy``,
installed by ``interop/install.sh``) terminates mutual TLS on a loopback port and forwards
HTTP/2 in plaintext to a grpcio server on another loopback port. It checks the client
certificate against the CA and nothing more (no allow-list, no token, no policy). It runs as
one process (``--single-process``, one worker thread) with no configuration file, so its CPU
time is one ``/proc`` entry and nothing on the machine changes its behaviour.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

PROBE_INTERVAL = 0.05


def nghttpx_path() -> str | None:
    """The nghttpx binary: ``$NGHTTPX`` when set (empty: none, to run without the sidecar),
    else on PATH or in /usr/sbin (Debian puts it there); ``None`` when there is none."""
    chosen = os.environ.get("NGHTTPX")
    if chosen is not None:
        return shutil.which(chosen) if chosen else None
    return shutil.which("nghttpx") or shutil.which("nghttpx", path="/usr/sbin:/usr/local/sbin")


def nghttpx_version(binary: str) -> str:
    """``nghttpx nghttp2/1.52.0`` as the binary reports it."""
    completed = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return completed.stdout.strip().splitlines()[0] if completed.stdout.strip() else "unknown"


def free_port() -> int:
    """A loopback port free now (nghttpx cannot report a port chosen by the kernel)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nghttpx exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(PROBE_INTERVAL)
    raise RuntimeError(f"nghttpx did not listen on 127.0.0.1:{port} within {timeout} s")


@contextlib.contextmanager
def nghttpx(
    binary: str,
    *,
    backend_port: int,
    cert: Path,
    key: Path,
    client_ca: Path,
    log: Path,
    timeout: float = 30.0,
) -> Iterator[tuple[int, int]]:
    """Run nghttpx in front of the plaintext HTTP/2 server on ``backend_port``; yield its
    ``(port, pid)``. Always stops it."""
    port = free_port()
    command = [
        binary,
        "--conf=/dev/null",
        "--single-process",
        "--workers=1",
        f"--frontend=127.0.0.1,{port}",
        f"--backend=127.0.0.1,{backend_port};;proto=h2",
        "--verify-client",
        f"--verify-client-cacert={client_ca}",
        "--no-ocsp",
        "--no-via",
        f"--errorlog-file={log}",
        str(key),
        str(cert),
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        _wait_listening(port, process, timeout)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
