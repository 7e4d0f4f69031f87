"""Helpers shared by the benchmark scripts in this folder (not a benchmark itself).

The scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path`` and they
import this module as ``_harness``. It holds only what the scripts did alike:

* a server subprocess of the calling script (``--serve ...``) that prints its port on stdout
  and exits when its stdin closes: :func:`server_process` on the client side,
  :func:`serve_until_stdin_closes` on the server side, :func:`stop_process` to stop one,
  :func:`first_line` to read a child's answer with a timeout;
* CPU time of this process (:func:`cpu_seconds`, :func:`cpu_stats_reply`);
* statistics (:func:`percentile`, :func:`rounded`);
* throwaway mTLS certificates written to a temporary directory (:class:`TlsFiles`,
  :func:`mtls_files`, :func:`write_files`), and replaced all at once as a Kubernetes volume
  does (:func:`publish_atomically`);
* the serial a TLS server serves now (:func:`served_serial`) and a process's resident memory
  (:func:`rss_bytes`);
* the JSON result on stdout (:func:`print_json`).
"""

from __future__ import annotations

import contextlib
import json
import resource
import select
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import grpc
from cryptography import x509

from grpcsec.pki import CertificateAuthority, IssuedCertificate

STOP_TIMEOUT = 10.0
PROBE_TIMEOUT = 10.0


# -- CPU time and statistics ----------------------------------------------------------------------
def cpu_seconds() -> float:
    """User + system CPU seconds used by this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_stats_reply() -> bytes:
    """The body of a ``Stats`` RPC: this process's CPU seconds so far, as JSON bytes."""
    return json.dumps({"cpu_seconds": cpu_seconds()}).encode()


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank value at ``fraction`` (0 to 1) of ``values`` (not empty)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def per_call_us(operation: Callable[[], object], count: int, repeats: int) -> float:
    """Median over ``repeats`` runs of the microseconds one call of ``operation`` takes, timed
    over ``count`` calls after one warm-up call."""
    operation()
    results = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(count):
            operation()
        results.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(results)


def rounded(value: float, digits: int = 3) -> float:
    """``value`` rounded to ``digits`` decimals (3 unless told) for the JSON report."""
    return round(value, digits)


def print_json(result: object) -> None:
    """Write ``result`` to stdout as indented JSON and a final newline."""
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


# -- server subprocess ----------------------------------------------------------------------------
def serve_until_stdin_closes(server: grpc.Server, port: int) -> None:
    """Start ``server``, print ``port`` for the parent, block until stdin closes, then stop."""
    server.start()
    print(port, flush=True)
    try:
        sys.stdin.read()  # returns when the parent closes our stdin or exits
    finally:
        server.stop(0).wait(5)


def stop_process(process: subprocess.Popen[str]) -> None:
    """Close ``process``'s stdin (its signal to exit), wait for it, kill it if it hangs."""
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def server_process(
    script: str,
    arguments: Sequence[str],
    *,
    name: str,
    start_timeout: float,
    env: Mapping[str, str] | None = None,
) -> Iterator[int]:
    """Run ``script`` (this interpreter) with ``arguments``; yield the port it prints first.

    Waits at most ``start_timeout`` seconds for the port; raises ``RuntimeError("<name> did not
    start: ...")`` if none comes. Always stops the process (:func:`stop_process`).
    """
    command = [sys.executable, str(Path(script).resolve()), *arguments]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, close_fds=True, env=env
    )
    try:
        if process.stdout is None:
            raise RuntimeError("no pipe to the server process")
        line = first_line(process.stdout, start_timeout)
        if not line.strip().isdigit():
            raise RuntimeError(f"{name} did not start: {line!r}")
        yield int(line)
    finally:
        stop_process(process)


def first_line(stream: IO[str], timeout: float) -> str:
    """The next line of a child's pipe, or ``""`` if none comes within ``timeout`` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


# -- throwaway certificates -----------------------------------------------------------------------
@dataclass(frozen=True)
class TlsFiles:
    """File paths of a CA, a server leaf and a client leaf, as :func:`mtls_files` names them."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def in_directory(cls, directory: Path) -> TlsFiles:
        """The paths of the :func:`mtls_files` names under ``directory``."""
        return cls(
            directory / "ca.crt",
            directory / "server.crt",
            directory / "server.key",
            directory / "client.crt",
            directory / "client.key",
        )


def mtls_files(
    ca: CertificateAuthority, server: IssuedCertificate, client: IssuedCertificate
) -> dict[str, bytes]:
    """File name to PEM for the CA certificate and the server and client chains and keys."""
    return {
        "ca.crt": ca.certificate_pem(),
        "server.crt": server.chain_pem(),
        "server.key": server.key_pem(),
        "client.crt": client.chain_pem(),
        "client.key": client.key_pem(),
    }


def write_files(directory: Path, files: Mapping[str, bytes]) -> None:
    """Write each ``name: data`` of ``files`` to ``directory / name``."""
    for name, data in files.items():
        (directory / name).write_bytes(data)


def publish_atomically(directory: Path, files: Mapping[str, bytes], generation: int) -> None:
    """Replace the files in ``directory`` as Kubernetes does: write them to a new
    ``..gen<generation>`` directory, then one symlink rename of ``..data``; each name is a
    symlink through ``..data``, so a reader sees the old set or the new set, never a mix."""
    new = directory / f"..gen{generation:06d}"
    new.mkdir()
    for name, data in files.items():
        (new / name).write_bytes(data)
    data_link = directory / "..data"
    old = data_link.readlink() if data_link.is_symlink() else None
    temp = directory / "..data_tmp"
    temp.symlink_to(new.name)
    temp.replace(data_link)
    for name in files:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(Path("..data") / name)
    if old is not None:
        shutil.rmtree(directory / old)


# -- probes ---------------------------------------------------------------------------------------
def served_serial(context: ssl.SSLContext, port: int, server_name: str = "localhost") -> int:
    """The serial of the leaf a TLS server on 127.0.0.1:``port`` serves to a new handshake."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise RuntimeError("no server certificate")
    return x509.load_der_x509_certificate(der).serial_number


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` now (Linux ``/proc/PID/status``, ``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
