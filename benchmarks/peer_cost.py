"""The per-RPC cost of ``grpcsec.identity.peer(context)``: in-process and end to end.

Run from the project root::

    .venv/bin/python benchmarks/peer_cost.py            # full run, about two and a half minutes
    .venv/bin/python benchmarks/peer_cost.py --quick    # CI smoke run, a few seconds

Material: an ECDSA P-256 CA, a server leaf and a client leaf carrying DNS, IP, URI (SPIFFE ID)
and e-mail SANs, issued with grpcsec.

**(a) In-process micro-benchmark.** An mTLS server (grpcsec credentials) on 127.0.0.1:0 in this
process answers one RPC whose handler captures ``context.auth_context()`` and ``context.peer()``.
A tiny object with those two methods returning the captured values then stands in for the
context, and each operation runs in a loop bounded by count and time, several repeats, median
reported in microseconds per call:

* ``peer_cached``: :func:`grpcsec.identity.peer` with the certificate-facts cache warm (the
  steady state: one connection, many RPCs, the same PEM);
* ``peer_uncached``: the same after clearing that cache every time (a new client certificate
  each call: PEM parse plus ``CertificateInfo``), and ``cache_clear`` alone, to subtract;
* ``from_auth_context_cached`` / ``_uncached``: :meth:`Peer.from_auth_context` on the dict;
* ``parse_only``: ``x509.load_pem_x509_certificate`` plus ``CertificateInfo.of`` on the PEM;
* ``real_context_*``: inside a real handler, on the real ``grpc.ServicerContext``:
  ``auth_context()`` alone (grpcio builds a new dict of new bytes each call), ``peer()`` alone, and
  ``grpcsec.identity.peer(context)`` (cached), in a tight loop;
* ``per_rpc_in_handler_cpu_us``: the same work once per real RPC (a ``Timed`` method called
  repeatedly, thread CPU time), split into grpcio's ``auth_context()`` + ``peer()`` and grpcsec's
  :meth:`Peer.from_auth_context`: what a handler really pays, with caches as cold as they are
  between RPCs.

**(b) End to end.** A server *process* (this script with ``--serve``, grpcsec mTLS credentials,
4 worker threads, 127.0.0.1 only) has three methods with the helloworld messages: ``Plain``
answers ``Hello <name>``; ``AuthContext`` also calls ``context.auth_context()`` and
``context.peer()`` and drops them (grpcio's share); ``Peer`` answers
``grpcsec.demo.greeter.greeting(name, peer(context))``, as the grpcsec Greeter does. One
long-lived mTLS channel; rounds of segments bounded by count and time with 1 and 4 client
threads, method order rotating per round. Rates, latency and server CPU per call are medians over
rounds; ratios against ``Plain`` are medians of per-round ratios.

Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509

import _harness
from _harness import (
    TlsFiles,
    cpu_stats_reply,
    mtls_files,
    print_json,
    serve_until_stdin_closes,
    write_files,
)
from _load import Segment, ThreadRounds, measure_rounds, run_segment
from grpcsec import identity
from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.demo.greeter import greeting
from grpcsec.demo.helloworld import (
    HelloReplyMessage,
    HelloRequestMessage,
    deserialize_reply,
    deserialize_request,
    new_reply,
    new_request,
    serialize,
)
from grpcsec.identity import Peer, peer
from grpcsec.material import KeyPair
from grpcsec.pki import CertificateAuthority, CertificateInfo, Profile, SubjectAltNames

SERVICE = "grpcsec.bench.PeerCost"
PLAIN = "Plain"
AUTH_CONTEXT = "AuthContext"
PEER = "Peer"
METHODS = (PLAIN, AUTH_CONTEXT, PEER)
STATS = f"/{SERVICE}/Stats"
CAPTURE = f"/{SERVICE}/Capture"
MEASURE = f"/{SERVICE}/Measure"
TIMED = f"/{SERVICE}/Timed"
THREAD_COUNTS = (1, 4)
CLIENT_SPIFFE_ID = "spiffe://bench.example/ns/default/sa/client"
NAME = "bench"
SERVER_WORKERS = 4
SERVER_START_TIMEOUT = 30.0
RPC_TIMEOUT = 10.0


# -- material -----------------------------------------------------------------------------------
Material = TlsFiles  # the CA, server and client files


def make_material(directory: Path) -> Material:
    """An ECDSA P-256 CA, server leaf and client leaf (DNS, IP, SPIFFE URI, e-mail SANs)."""
    ca = CertificateAuthority.create("bench peer CA", organization="Bench")
    server = ca.issue(Profile.SERVER, SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"]))
    client = ca.issue(
        Profile.CLIENT,
        SubjectAltNames.build(
            dns=["client.internal"],
            ips=["10.1.2.3"],
            uris=[CLIENT_SPIFFE_ID],
            emails=["client@bench.example"],
        ),
        common_name="bench-client",
        organization="Bench",
    )
    write_files(directory, mtls_files(ca, server, client))
    return Material.in_directory(directory)


def make_server_credentials(cert: Path, key: Path, ca: Path) -> grpc.ServerCredentials:
    """grpcsec mTLS server credentials (client certificate required, verified against ``ca``)."""
    return server_credentials(KeyPair.from_files(cert, key), client_ca=ca)


def make_channel(material: Material, port: int) -> grpc.Channel:
    credentials = channel_credentials(
        ca=material.ca, identity=KeyPair.from_files(material.client_cert, material.client_key)
    )
    return grpc.secure_channel(f"127.0.0.1:{port}", credentials)


# -- timing -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MicroParams:
    """Bounds of one micro-benchmark: each repeat runs up to ``count`` calls or ``seconds``."""

    count: int
    seconds: float
    repeats: int


def per_call_us(operation: Callable[[], object], params: MicroParams) -> float:
    """Median over repeats of the microseconds per call of ``operation``."""
    operation()
    results: list[float] = []
    for _ in range(params.repeats):
        done = 0
        start = time.perf_counter()
        deadline = start + params.seconds
        while done < params.count:
            chunk = min(100, params.count - done)
            for _ in range(chunk):
                operation()
            done += chunk
            if time.perf_counter() >= deadline:
                break
        results.append((time.perf_counter() - start) / done * 1e6)
    return statistics.median(results)


# -- (a) in-process -----------------------------------------------------------------------------
class CapturedContext:
    """The two methods :func:`grpcsec.identity.peer` uses, returning captured values."""

    def __init__(self, auth: Mapping[str, Sequence[bytes]], address: str) -> None:
        self._auth = auth
        self._address = address

    def auth_context(self) -> Mapping[str, Sequence[bytes]]:
        return self._auth

    def peer(self) -> str:
        return self._address


def _uncached(operation: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        identity.clear_identity_caches()
        return operation()

    return run


@dataclass(frozen=True)
class Captured:
    """What the in-process server's handlers saw and measured."""

    auth: Mapping[str, Sequence[bytes]]
    address: str
    in_handler: dict[str, float]
    per_rpc: list[tuple[float, float]]


def capture_and_time_in_handlers(material: Material, params: MicroParams) -> Captured:
    """A real mTLS RPC's auth context and address, plus the real-context timings."""
    captured: dict[str, object] = {}
    in_handler: dict[str, float] = {}
    per_rpc: list[tuple[float, float]] = []

    def capture(_request: bytes, context: grpc.ServicerContext) -> bytes:
        captured["auth"] = context.auth_context()
        captured["address"] = context.peer()
        return b""

    def measure(_request: bytes, context: grpc.ServicerContext) -> bytes:
        in_handler["real_context_auth_context"] = per_call_us(context.auth_context, params)
        in_handler["real_context_peer_address"] = per_call_us(context.peer, params)
        in_handler["real_context_peer_cached"] = per_call_us(lambda: peer(context), params)
        return b""

    def timed(_request: bytes, context: grpc.ServicerContext) -> bytes:
        # One RPC's identity work, split, in this thread's CPU time (what peer() does inline).
        start = time.thread_time()
        auth = context.auth_context()
        address = context.peer()
        middle = time.thread_time()
        Peer.from_auth_context(auth, address=address)
        per_rpc.append((middle - start, time.thread_time() - middle))
        return b""

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Capture": grpc.unary_unary_rpc_method_handler(capture),
                    "Measure": grpc.unary_unary_rpc_method_handler(measure),
                    "Timed": grpc.unary_unary_rpc_method_handler(timed),
                },
            ),
        )
    )
    credentials = make_server_credentials(material.server_cert, material.server_key, material.ca)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        channel = make_channel(material, port)
        try:
            channel.unary_unary(CAPTURE)(b"", timeout=RPC_TIMEOUT)
            budget = params.repeats * params.seconds * 3 + 2 * RPC_TIMEOUT
            channel.unary_unary(MEASURE)(b"", timeout=budget)
            timed_call = channel.unary_unary(TIMED)
            deadline = time.perf_counter() + params.seconds * 2
            for _ in range(params.count):
                timed_call(b"", timeout=RPC_TIMEOUT)
                if time.perf_counter() >= deadline:
                    break
        finally:
            channel.close()
    finally:
        server.stop(0).wait(5)
    auth = captured["auth"]
    if not isinstance(auth, dict):
        raise TypeError(f"auth_context() returned {type(auth).__name__}")
    return Captured(auth, str(captured["address"]), in_handler, per_rpc)


def measure_in_process(material: Material, params: MicroParams) -> dict[str, object]:
    """Capture a real auth context over a real mTLS RPC, then time the identity work."""
    seen = capture_and_time_in_handlers(material, params)
    auth, address, per_rpc = seen.auth, seen.address, seen.per_rpc
    context = CapturedContext(auth, address)
    who = peer(context)
    if who.principal != CLIENT_SPIFFE_ID:
        raise RuntimeError(f"peer() found principal {who.principal!r}")
    pem = bytes(auth["x509_pem_cert"][0])

    def from_auth() -> Peer:
        return Peer.from_auth_context(auth, address=address)

    def parse() -> CertificateInfo:
        return CertificateInfo.of(x509.load_pem_x509_certificate(pem))

    _uncached(lambda: peer(context))()
    info = identity.certificate_facts_cache_info()  # cache_clear() also resets the counters
    if (info.hits, info.misses) != (0, 1):
        raise RuntimeError(f"the uncached call did not miss the certificate-facts cache: {info}")
    results = {
        "peer_cached": per_call_us(lambda: peer(context), params),
        "peer_uncached": per_call_us(_uncached(lambda: peer(context)), params),
        "cache_clear_only": per_call_us(identity.clear_identity_caches, params),
        "from_auth_context_cached": per_call_us(from_auth, params),
        "from_auth_context_uncached": per_call_us(_uncached(from_auth), params),
        "parse_only": per_call_us(parse, params),
        **seen.in_handler,
    }
    cached = results["peer_cached"]
    in_situ = {
        "rpcs": len(per_rpc),
        "auth_context_and_address_median": statistics.median(a for a, _ in per_rpc) * 1e6,
        "from_auth_context_median": statistics.median(b for _, b in per_rpc) * 1e6,
        "auth_context_and_address_mean": statistics.fmean(a for a, _ in per_rpc) * 1e6,
        "from_auth_context_mean": statistics.fmean(b for _, b in per_rpc) * 1e6,
    }
    return {
        "us_per_call": {k: round(v, 3) for k, v in results.items()},
        "per_rpc_in_handler_cpu_us": {k: round(v, 2) for k, v in in_situ.items()},
        "ratios": {
            "peer_uncached_vs_cached": round(
                (results["peer_uncached"] - results["cache_clear_only"]) / cached, 2
            ),
            "real_context_peer_vs_captured_peer": round(
                results["real_context_peer_cached"] / cached, 2
            ),
            "real_context_auth_context_share_of_real_peer": round(
                results["real_context_auth_context"] / results["real_context_peer_cached"], 2
            ),
        },
        "auth_context_keys": sorted(auth),
        "pem_bytes": len(pem),
        "principal": who.principal,
        "note": "peer_uncached includes cache_clear_only; the ratio subtracts it. The captured "
        "context returns the same dict (and bytes objects) every call, so their hashes are "
        "cached; a real context builds new ones each call (the real_context_* rows). The "
        "us_per_call rows are tight loops (hot caches); per_rpc_in_handler_cpu_us is the same "
        "work done once per real RPC (the Timed method), as a handler pays it",
    }


# -- (b) end to end: server process -------------------------------------------------------------
def serve(cert: Path, key: Path, ca: Path) -> int:
    """The ``--serve`` mode: the three methods on 127.0.0.1 until stdin closes."""

    def plain(request: HelloRequestMessage, _context: grpc.ServicerContext) -> HelloReplyMessage:
        return new_reply(f"Hello {request.name}")

    def auth_context(
        request: HelloRequestMessage, context: grpc.ServicerContext
    ) -> HelloReplyMessage:
        context.auth_context()
        context.peer()
        return new_reply(f"Hello {request.name}")

    def with_peer(request: HelloRequestMessage, context: grpc.ServicerContext) -> HelloReplyMessage:
        return new_reply(greeting(request.name, peer(context)))

    def stats(_request: bytes, _context: grpc.ServicerContext) -> bytes:
        return cpu_stats_reply()

    def unary(behaviour: Callable[..., HelloReplyMessage]) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            behaviour, request_deserializer=deserialize_request, response_serializer=serialize
        )

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            PLAIN: unary(plain),
            AUTH_CONTEXT: unary(auth_context),
            PEER: unary(with_peer),
            "Stats": grpc.unary_unary_rpc_method_handler(stats),
        },
    )
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=SERVER_WORKERS))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", make_server_credentials(cert, key, ca))
    serve_until_stdin_closes(server, port)
    return 0


def server_process(material: Material) -> contextlib.AbstractContextManager[int]:
    """Start a ``--serve`` subprocess; yield its port; always stop it."""
    arguments = ["--serve", "--cert", str(material.server_cert), "--key", str(material.server_key)]
    arguments += ["--ca", str(material.ca)]
    return _harness.server_process(
        __file__, arguments, name="the benchmark server", start_timeout=SERVER_START_TIMEOUT
    )


# -- (b) end to end: client ---------------------------------------------------------------------
@dataclass(frozen=True)
class RpcParams:
    """Bounds of the end-to-end part."""

    warmup: int
    rounds: int
    max_calls: int
    seconds: float


class Client:
    """One long-lived mTLS channel calling the three methods alike."""

    def __init__(self, material: Material, port: int) -> None:
        self.channel = make_channel(material, port)
        self._calls = {
            method: self.channel.unary_unary(
                f"/{SERVICE}/{method}",
                request_serializer=serialize,
                response_deserializer=deserialize_reply,
            )
            for method in METHODS
        }
        self._stats = self.channel.unary_unary(STATS)
        self._request = new_request(NAME)

    def reply_text(self, method: str) -> str:
        reply: HelloReplyMessage = self._calls[method](self._request, timeout=RPC_TIMEOUT)
        return reply.message

    def call(self, method: str) -> None:
        self._calls[method](self._request, timeout=RPC_TIMEOUT)

    def server_cpu(self) -> float:
        reply = self._stats(b"", timeout=RPC_TIMEOUT)
        return float(json.loads(reply)["cpu_seconds"])

    def close(self) -> None:
        self.channel.close()


def measure_end_to_end(material: Material, params: RpcParams) -> dict[str, object]:
    with server_process(material) as port:
        client = Client(material, port)
        try:
            expected = {
                PLAIN: f"Hello {NAME}",
                AUTH_CONTEXT: f"Hello {NAME}",
                PEER: f"Hello {NAME} (from {CLIENT_SPIFFE_ID})",
            }
            for method, text in expected.items():
                if client.reply_text(method) != text:
                    raise RuntimeError(f"{method} answered {client.reply_text(method)!r}")
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(THREAD_COUNTS)) as pool:

                def segment(method: str, threads: int, calls: int) -> Segment:
                    return run_segment(
                        functools.partial(client.call, method),
                        threads=threads,
                        max_calls=calls,
                        seconds=params.seconds,
                        pool=pool,
                        server_cpu=client.server_cpu,
                    )

                rounds = measure_rounds(
                    segment,
                    METHODS,
                    thread_counts=THREAD_COUNTS,
                    rounds=params.rounds,
                    warmup=params.warmup,
                    max_calls=params.max_calls,
                )
        finally:
            client.close()
    return summarize(rounds)


def _key(threads: int) -> str:
    return f"threads_{threads}"


def summarize(rounds: ThreadRounds) -> dict[str, object]:
    def table(attribute: str, scale: float = 1.0) -> dict[str, dict[str, float]]:
        return {
            m: {
                _key(t): round(
                    statistics.median(getattr(r[t][m], attribute) * scale for r in rounds), 3
                )
                for t in THREAD_COUNTS
            }
            for m in METHODS
        }

    def ratios(method: str) -> dict[str, float]:
        return {
            _key(t): round(
                statistics.median(r[t][method].per_second / r[t][PLAIN].per_second for r in rounds),
                4,
            )
            for t in THREAD_COUNTS
        }

    server_us = table("server_cpu_per_call", 1e6)
    return {
        "calls_per_second": table("per_second"),
        "p50_ms": table("p50", 1000),
        "p99_ms": table("p99", 1000),
        "server_cpu_us_per_call": server_us,
        "ratio_peer_vs_plain": ratios(PEER),
        "ratio_auth_context_vs_plain": ratios(AUTH_CONTEXT),
        "extra_server_cpu_us_per_call": {
            m: {
                _key(t): round(server_us[m][_key(t)] - server_us[PLAIN][_key(t)], 1)
                for t in THREAD_COUNTS
            }
            for m in (AUTH_CONTEXT, PEER)
        },
        "calls": {
            m: {_key(t): sum(r[t][m].calls for r in rounds) for t in THREAD_COUNTS} for m in METHODS
        },
        "rate_rounds": {
            m: {_key(t): [round(r[t][m].per_second, 1) for r in rounds] for t in THREAD_COUNTS}
            for m in METHODS
        },
    }


# -- main ---------------------------------------------------------------------------------------
def run(micro: MicroParams, rpc: RpcParams) -> dict[str, object]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="grpcsec-bench-") as tmp:
        material = make_material(Path(tmp))
        in_process = measure_in_process(material, micro)
        end_to_end = measure_end_to_end(material, rpc)
    return {
        "benchmark": "cost of grpcsec.identity.peer(context) per RPC",
        "in_process": in_process,
        "end_to_end": end_to_end,
        "params": {
            "micro": dataclasses.asdict(micro),
            "micro_statistic": "median over repeats of us per call",
            "rpc": dataclasses.asdict(rpc),
            "rpc_statistic": "median over rounds; ratios are medians of per-round ratios",
            "client_threads": list(THREAD_COUNTS),
            "server_workers": SERVER_WORKERS,
            "cpus": os.cpu_count(),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
            "elapsed_seconds": round(time.perf_counter() - started, 1),
        },
        "grpcio": grpc.__version__,
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="very few calls (CI smoke)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cert", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--key", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ca", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        if args.cert is None or args.key is None or args.ca is None:
            parser.error("--serve needs --cert, --key and --ca")
        return serve(args.cert, args.key, args.ca)
    if args.quick:
        micro = MicroParams(count=200, seconds=0.1, repeats=3)
        rpc = RpcParams(warmup=20, rounds=2, max_calls=200, seconds=0.5)
    else:
        micro = MicroParams(count=20_000, seconds=2.0, repeats=7)
        rpc = RpcParams(warmup=300, rounds=15, max_calls=10_000, seconds=1.0)
    print_json(run(micro, rpc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
