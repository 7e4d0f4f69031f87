"""Certificate rotation: fetcher cost, swap-to-handshake latency, throughput during rotation.

Run from the project root::

    .venv/bin/python benchmarks/rotation.py            # full run, about a minute
    .venv/bin/python benchmarks/rotation.py --quick    # CI smoke run, a few seconds

One CA, server leaves (SANs ``localhost`` and ``127.0.0.1``) and a client leaf are issued with
grpcsec, ECDSA P-256; servers require mTLS. Four measurements:

1. ``fetcher`` (in this process): the Python cost of one call of the fetcher that
   :class:`grpcsec.rotation.ReloadingServerTLS` hands to ``grpc.dynamic_ssl_server_credentials``
   when nothing changed (it returns ``None``), against a fetcher that returns the same prepared
   configuration every time, and an empty function. Best of 5 ``timeit`` repeats. The target
   is <= 5 us for the unchanged case.
2. ``per_connection`` (server process): new mTLS connections per second (a new channel, one
   unary call, close) against three servers in separate batches that alternate: ``static``
   (``grpc.ssl_server_credentials``), ``rotating`` (ReloadingServerTLS: the fetcher returns
   ``None``) and ``always_return`` (a dynamic server whose fetcher returns the configuration on
   every connection, which makes core rebuild its TLS context each time). This answers "``None``
   or the same object": what each costs per connection, end to end.
3. ``swap_to_handshake`` (server process, rotating): a new certificate is written as a
   Kubernetes ``..data`` symlink swap at t0; raw TLS handshakes (Python ``ssl``, ALPN h2) are
   made back to back until one is served the new serial; the time from t0 is recorded. Three
   ways to notice: the default 1 s poll, a 50 ms poll, and an explicit ``reload()`` sent to the
   server process right after the write.
4. ``throughput`` (server process, rotating, 50 ms poll): client threads in this process make
   unary calls on long-lived channels and one thread makes a new connection per call, in
   segments that alternate between no rotation (baseline) and a new certificate every 200 ms;
   calls per second in both, the ratio, and the count of failed calls (which must be 0).

Prints one JSON object on stdout. Server processes listen on 127.0.0.1 only, print their port
and exit when their stdin closes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import select
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from _harness import print_json, publish_atomically, served_serial, stop_process
from grpcsec.pki import CertificateAuthority, IssuedCertificate, Profile, SubjectAltNames
from grpcsec.rotation import MemorySource, ReloadingServerTLS

PING = "/grpcsec.bench.Rotation/Ping"
FRESH = [("grpc.use_local_subchannel_pool", 1)]
TARGET_FETCHER_US = 5.0
START_TIMEOUT = 30.0
RPC_TIMEOUT = 10.0
MODES = ("static", "rotating", "always_return")


# -- server process -----------------------------------------------------------------------------
def serve(mode: str, directory: Path, interval: float) -> int:
    """The ``--serve`` mode: an echo server on 127.0.0.1; commands on stdin, answers on stdout."""
    cert, key, ca = directory / "tls.crt", directory / "tls.key", directory / "ca.crt"
    tls: ReloadingServerTLS | None = None
    if mode == "static":
        credentials = grpc.ssl_server_credentials(
            [(key.read_bytes(), cert.read_bytes())], ca.read_bytes(), require_client_auth=True
        )
    elif mode == "rotating":
        tls = ReloadingServerTLS.from_files(cert, key, client_ca=ca, interval=interval).start()
        credentials = tls.credentials()
    else:
        configuration = grpc.ssl_server_certificate_configuration(
            [(key.read_bytes(), cert.read_bytes())], ca.read_bytes()
        )
        credentials = grpc.dynamic_ssl_server_credentials(
            configuration, lambda: configuration, require_client_authentication=True
        )
    executor = ThreadPoolExecutor(max_workers=4)
    server = grpc.server(executor)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "grpcsec.bench.Rotation",
                {"Ping": grpc.unary_unary_rpc_method_handler(lambda request, _ctx: request)},
            ),
        )
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    print(port, flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "reload" and tls is not None:
                print(f"{tls.reload().value} {tls.serial}", flush=True)
            elif command == "stats" and tls is not None:
                print(json.dumps(tls.status().to_json()), flush=True)
            else:
                print("ok", flush=True)
    finally:
        if tls is not None:
            tls.stop()
        server.stop(0).wait(5)
        executor.shutdown(wait=True)
    return 0


class ServerProcess:
    """A ``--serve`` subprocess: its port, and a line-based command channel."""

    def __init__(self, mode: str, directory: Path, interval: float = 1.0) -> None:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            mode,
            "--dir",
            str(directory),
            "--interval",
            str(interval),
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, close_fds=True
        )
        self.port = int(self._line(START_TIMEOUT))

    def _line(self, timeout: float) -> str:
        stdout = self.process.stdout
        if stdout is None:
            raise RuntimeError("no pipe to the server process")
        ready, _, _ = select.select([stdout], [], [], timeout)
        line = stdout.readline() if ready else ""
        if not line:
            raise RuntimeError("the benchmark server did not answer")
        return line.strip()

    def ask(self, command: str) -> str:
        if self.process.stdin is None:
            raise RuntimeError("no pipe to the server process")
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._line(RPC_TIMEOUT)

    def close(self) -> None:
        stop_process(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def server_process(mode: str, directory: Path, interval: float = 1.0) -> Iterator[ServerProcess]:
    server = ServerProcess(mode, directory, interval)
    try:
        yield server
    finally:
        server.close()


# -- material -----------------------------------------------------------------------------------
class Pki:
    """The CA, the client leaf, and a directory of server material in the ``..data`` layout."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = CertificateAuthority.create("bench rotation CA")
        self.client = self.ca.issue(
            Profile.CLIENT, SubjectAltNames.build(dns=["bench-client"]), common_name="client"
        )
        self.trust = self.ca.certificate_pem()
        self.generation = 0
        (root / "client.crt").write_bytes(self.client.chain_pem())
        (root / "client.key").write_bytes(self.client.key_pem())

    def server_dir(self, name: str) -> Path:
        directory = self.root / name
        directory.mkdir()
        self.swap(directory, self.leaf())
        return directory

    def leaf(self) -> IssuedCertificate:
        names = SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"])
        return self.ca.issue(Profile.SERVER, names)

    def swap(self, directory: Path, leaf: IssuedCertificate) -> None:
        """Publish ``leaf`` as Kubernetes does: a new directory, then one symlink rename."""
        self.generation += 1
        files = {"tls.crt": leaf.chain_pem(), "tls.key": leaf.key_pem(), "ca.crt": self.trust}
        publish_atomically(directory, files, self.generation)

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            self.trust, self.client.key_pem(), self.client.chain_pem()
        )

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=self.trust.decode())
        context.load_cert_chain(self.root / "client.crt", self.root / "client.key")
        context.set_alpn_protocols(["h2"])
        return context


# -- 1. the fetcher -----------------------------------------------------------------------------
def measure_fetcher(pki: Pki, calls: int) -> dict[str, object]:
    leaf = pki.leaf()
    tls = ReloadingServerTLS(MemorySource.of(leaf, trust=pki.ca))
    configuration, fetch = tls.configuration_fetcher()
    if fetch() is not None:
        raise RuntimeError("the fetcher should report no change")

    def always() -> object:
        return configuration

    def empty() -> None:
        return None

    def best_us(function: Callable[[], object]) -> float:
        times = timeit.repeat(function, number=calls, repeat=5)
        return min(times) / calls * 1e6

    unchanged = best_us(fetch)
    return {
        "unchanged_us": round(unchanged, 4),
        "always_return_same_object_us": round(best_us(always), 4),
        "empty_function_us": round(best_us(empty), 4),
        "target_us": TARGET_FETCHER_US,
        "meets_target": unchanged <= TARGET_FETCHER_US,
        "calls_per_repeat": calls,
        "note": "Python-side cost of one call, as grpc core would make it once per accepted "
        "connection; core's own cost of a returned configuration is in per_connection",
    }


# -- 2. per-connection cost ---------------------------------------------------------------------
def one_connection(target: str, credentials: grpc.ChannelCredentials) -> float:
    start = time.perf_counter()
    with grpc.secure_channel(target, credentials, options=FRESH) as channel:
        channel.unary_unary(PING)(b"x", timeout=RPC_TIMEOUT)
    return time.perf_counter() - start


def measure_per_connection(pki: Pki, batches: int, batch: int) -> dict[str, object]:
    credentials = pki.credentials()
    latencies: dict[str, list[float]] = {mode: [] for mode in MODES}
    with contextlib.ExitStack() as stack:
        servers = {
            mode: stack.enter_context(server_process(mode, pki.server_dir(f"conn-{mode}")))
            for mode in MODES
        }
        for server in servers.values():  # warm-up
            for _ in range(5):
                one_connection(f"127.0.0.1:{server.port}", credentials)
        for index in range(batches):
            order = MODES if index % 2 == 0 else tuple(reversed(MODES))
            for mode in order:
                target = f"127.0.0.1:{servers[mode].port}"
                latencies[mode].extend(one_connection(target, credentials) for _ in range(batch))
        stats = json.loads(servers["rotating"].ask("stats"))

    def quantile(values: list[float], fraction: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    p50 = {mode: statistics.median(v) for mode, v in latencies.items()}
    return {
        "connections_per_second": {m: round(len(v) / sum(v), 1) for m, v in latencies.items()},
        "p50_ms": {m: round(v * 1e3, 3) for m, v in p50.items()},
        "p90_ms": {m: round(quantile(v, 0.9) * 1e3, 3) for m, v in latencies.items()},
        "mean_ms": {m: round(statistics.fmean(v) * 1e3, 3) for m, v in latencies.items()},
        "extra_p50_ms_vs_static": {
            m: round((p50[m] - p50["static"]) * 1e3, 3) for m in MODES if m != "static"
        },
        "ratio_rotating_vs_static": round(p50["static"] / p50["rotating"], 3),
        "ratio_always_return_vs_rotating": round(p50["rotating"] / p50["always_return"], 3),
        "ratios_from": "p50 latency (rate ratio = inverse latency ratio); means are outlier-prone",
        "connections_per_mode": {mode: len(v) for mode, v in latencies.items()},
        "rotating_server_fetcher_calls": stats["handshakes"],
    }


# -- 3. swap to first handshake -----------------------------------------------------------------
def measure_swap(pki: Pki, interval: float, swaps: int, *, explicit: bool) -> dict[str, object]:
    context = pki.ssl_context()
    jitter = random.Random(20261121 + swaps)  # noqa: S311 (timing spread, not a secret)
    directory = pki.server_dir(f"swap-{interval}-{explicit}")
    latencies: list[float] = []
    with server_process("rotating", directory, interval) as server:
        served_serial(context, server.port)
        for _ in range(swaps):
            leaf = pki.leaf()
            wanted = leaf.certificate.serial_number
            time.sleep(jitter.uniform(0, interval))  # spread t0 over the phase of the poll
            start = time.perf_counter()
            pki.swap(directory, leaf)
            if explicit:
                server.ask("reload")
            for _ in range(100_000):
                if served_serial(context, server.port) == wanted:
                    break
                if time.perf_counter() - start > 10 + interval * 2:
                    raise RuntimeError("the new certificate was never served")
            latencies.append(time.perf_counter() - start)
        stats = json.loads(server.ask("stats"))
    return {
        "poll_interval_s": interval,
        "explicit_reload": explicit,
        "swaps": swaps,
        "p50_ms": round(statistics.median(latencies) * 1e3, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1e3, 1),
        "max_ms": round(max(latencies) * 1e3, 1),
        "min_ms": round(min(latencies) * 1e3, 1),
        "reload_successes": stats["reload_successes"],
        "reload_failures": stats["reload_failures"],
    }


# -- 4. throughput during rotation --------------------------------------------------------------
@dataclass
class Counters:
    persistent: int = 0
    fresh: int = 0
    failures: int = 0


def measure_throughput(
    pki: Pki, rounds: int, seconds: float, rotate_every: float
) -> dict[str, object]:
    directory = pki.server_dir("throughput")
    credentials = pki.credentials()
    results: dict[str, list[Counters]] = {"baseline": [], "rotating": []}
    swaps = 0
    with server_process("rotating", directory, 0.05) as server:
        target = f"127.0.0.1:{server.port}"

        def ok(call: Callable[[], object]) -> bool:
            try:
                call()
            except grpc.RpcError:
                return False
            return True

        def persistent(stop: threading.Event, counters: Counters) -> None:
            with grpc.secure_channel(target, credentials, options=FRESH) as channel:
                call = channel.unary_unary(PING)
                while not stop.is_set():
                    if ok(lambda: call(b"x", timeout=RPC_TIMEOUT)):
                        counters.persistent += 1
                    else:
                        counters.failures += 1

        def fresh(stop: threading.Event, counters: Counters) -> None:
            while not stop.is_set():
                if ok(lambda: one_connection(target, credentials)):
                    counters.fresh += 1
                else:
                    counters.failures += 1

        def segment(rotate: bool) -> tuple[Counters, int]:
            stop = threading.Event()
            counters = [Counters(), Counters(), Counters()]  # one per thread: no shared writes
            threads = [
                threading.Thread(target=persistent, args=(stop, counters[0])),
                threading.Thread(target=persistent, args=(stop, counters[1])),
                threading.Thread(target=fresh, args=(stop, counters[2])),
            ]
            for thread in threads:
                thread.start()
            done = 0
            end = time.perf_counter() + seconds
            while time.perf_counter() + rotate_every < end:  # swaps rotate_every apart
                time.sleep(rotate_every)
                if rotate:
                    pki.swap(directory, pki.leaf())
                    done += 1
            time.sleep(max(0.0, end - time.perf_counter()))
            stop.set()
            for thread in threads:
                thread.join(RPC_TIMEOUT * 2)
            total = Counters(
                persistent=sum(c.persistent for c in counters),
                fresh=sum(c.fresh for c in counters),
                failures=sum(c.failures for c in counters),
            )
            return total, done

        segment(rotate=False)  # warm-up
        for index in range(rounds):
            order = (False, True) if index % 2 == 0 else (True, False)
            for rotate in order:
                counters, done = segment(rotate)
                results["rotating" if rotate else "baseline"].append(counters)
                swaps += done
        stats = json.loads(server.ask("stats"))

    def rate(kind: str, attribute: str) -> float:
        total = sum(getattr(c, attribute) for c in results[kind])
        return round(total / (seconds * len(results[kind])), 1)

    base = rate("baseline", "persistent")
    rotating = rate("rotating", "persistent")
    return {
        "calls_per_second": {"baseline": base, "rotating": rotating},
        "new_connections_per_second": {
            "baseline": rate("baseline", "fresh"),
            "rotating": rate("rotating", "fresh"),
        },
        "ratio_rotating_vs_baseline": round(rotating / base, 3) if base else None,
        "ratio_new_connections_rotating_vs_baseline": round(
            rate("rotating", "fresh") / rate("baseline", "fresh"), 3
        )
        if rate("baseline", "fresh")
        else None,
        "failed_calls": sum(c.failures for k in results for c in results[k]),
        "swaps": swaps,
        "server_reload_successes": stats["reload_successes"],
        "server_reload_failures": stats["reload_failures"],
        "segments": {"rounds": rounds, "seconds": seconds, "rotate_every_s": rotate_every},
        "clients": "2 threads with a long-lived channel each + 1 thread with a new connection "
        "per call, in this process",
    }


# -- main ---------------------------------------------------------------------------------------
def run(quick: bool) -> dict[str, object]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="grpcsec-bench-rotation-") as temp:
        pki = Pki(Path(temp))
        fetcher = measure_fetcher(pki, 20_000 if quick else 1_000_000)
        per_connection = measure_per_connection(pki, 2 if quick else 40, 5 if quick else 10)
        swap = {
            "poll_1s": measure_swap(pki, 1.0, 2 if quick else 8, explicit=False),
            "poll_50ms": measure_swap(pki, 0.05, 3 if quick else 20, explicit=False),
            "explicit_reload": measure_swap(pki, 1.0, 3 if quick else 20, explicit=True),
        }
        throughput = measure_throughput(
            pki, 1 if quick else 4, 0.8 if quick else 3.0, rotate_every=0.2
        )
    return {
        "benchmark": "certificate rotation (grpcsec.rotation)",
        "fetcher": fetcher,
        "per_connection": per_connection,
        "swap_to_first_handshake": {
            **swap,
            "layout": "Kubernetes ..data symlink swap (one atomic rename per update)",
            "measured_by": "raw TLS handshakes (Python ssl, ALPN h2) back to back from t0",
        },
        "throughput_during_rotation": throughput,
        "params": {
            "quick": quick,
            "cpus": os.cpu_count(),
            "elapsed_seconds": round(time.perf_counter() - started, 1),
        },
        "grpcio": grpc.__version__,
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds (CI smoke)")
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        if args.dir is None:
            parser.error("--serve needs --dir")
        return serve(args.serve, args.dir, args.interval)
    result: dict[str, Any] = run(args.quick)
    print_json(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
