"""The cost of authentication: the interceptor core, certificate requirements and JWT tokens.

Run from the project root::

    .venv/bin/python benchmarks/authn.py            # full run, about three and a half minutes
    .venv/bin/python benchmarks/authn.py --quick    # CI smoke run, well under a minute

Two parts, one JSON object on stdout (progress on stderr):

1. **In-process micro-benchmarks** (``in_process``): ``JWTVerifier.verify`` of the same token
   with the cache off (``cold``: signature and claims every time) and on (``cached``: a SHA-256
   and a dictionary lookup), for ES256 and RS256; the cost of each check and of the whole
   ``Guard`` run on a :class:`~grpcsec.authn.CallInfo` built from a real mTLS auth context.
   Target: cold / cached >= 20.

2. **Throughput, client and server in separate processes** (``end_to_end``). One CA, a server
   leaf and a client leaf (SPIFFE ID) are issued with grpcsec (ECDSA P-256), an ES256 signing key
   and its JWKS file are written. For each server kind (``sync``: ``grpc.server`` with 4 worker
   threads; ``aio``: ``grpc.aio.server``) six server *processes* serve a trivial unary echo over
   mTLS, differing only in their interceptors:

   * ``bare``: none;
   * ``core``: a ``Guard`` with no checks (the plumbing alone);
   * ``cert``: ``RequireClientCert`` (SPIFFE ID allow-list);
   * ``jwt_cached``: ``RequireBearerToken`` (JWKS file, issuer, audience, scope), token cache on;
   * ``jwt_uncached``: the same with ``cache_size=0`` (every call verifies the signature);
   * ``secured``: ``cert`` + ``jwt_cached``, the configuration a real deployment would run.

   The client (this process) is the same for every server: one long-lived mTLS channel each,
   the same ``authorization`` header on every call (ignored by servers that do not check it),
   segments of unary calls with 1 and 4 client threads, each bounded by a call count and a
   time. A round runs every variant once per thread count, in an order that rotates and
   reverses between rounds; figures are medians over rounds, and the ratio to ``bare`` is the
   median of per-round paired ratios. Server CPU per call comes from each server process's
   rusage, read through a ``Stats`` RPC outside the timed segments.
   Target: ``secured`` >= 0.95 x ``bare`` calls per second.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import _harness
from _harness import (
    cpu_stats_reply,
    mtls_files,
    print_json,
    serve_until_stdin_closes,
    write_files,
)
from _load import ThreadRounds, measure_clients
from grpcsec.authn import (
    CallInfo,
    ClientCertAllowList,
    JWKSFile,
    JWTVerifier,
    RequireBearerToken,
    RequireClientCert,
    StaticKeys,
    VerificationKey,
    mint_token,
    public_jwks,
)
from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.identity import Peer
from grpcsec.interceptors import Guard
from grpcsec.material import KeyPair
from grpcsec.pki import CertificateAuthority, Profile, SubjectAltNames, private_key_pem

VARIANTS = ("bare", "core", "cert", "jwt_cached", "jwt_uncached", "secured")
KINDS = ("sync", "aio")
THREAD_COUNTS = (1, 4)
TARGET_CACHE_RATIO = 20.0
TARGET_THROUGHPUT_RATIO = 0.95
CLIENT_SPIFFE_ID = "spiffe://bench.example/ns/default/sa/client"
ISSUER = "https://issuer.bench.example"
AUDIENCE = "bench"
SCOPE = "bench.call"
SERVICE = "grpcsec.bench.Authn"
ECHO = f"/{SERVICE}/Echo"
STATS = f"/{SERVICE}/Stats"
SERVER_WORKERS = 4
SERVER_START_TIMEOUT = 60.0
RPC_TIMEOUT = 10.0


# -- material -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Material:
    directory: Path
    token: str

    def path(self, name: str) -> Path:
        return self.directory / name


def make_material(directory: Path) -> Material:
    ca = CertificateAuthority.create("bench authn CA")
    server = ca.issue(Profile.SERVER, SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"]))
    client = ca.issue(
        Profile.CLIENT,
        SubjectAltNames.build(dns=["client.internal"], uris=[CLIENT_SPIFFE_ID]),
        common_name="bench-client",
    )
    signing = ec.generate_private_key(ec.SECP256R1())
    files = {
        **mtls_files(ca, server, client),
        "signing.key": private_key_pem(signing),
        "jwks.json": json.dumps(public_jwks([(signing, "bench-1")])).encode(),
    }
    write_files(directory, files)
    token = mint_token(
        signing,
        issuer=ISSUER,
        audience=AUDIENCE,
        subject="bench",
        scopes=[SCOPE],
        kid="bench-1",
        ttl=dt.timedelta(hours=2),
    )
    return Material(directory, token)


# -- server process -------------------------------------------------------------------------------
def build_guard(variant: str, material: Material) -> Guard | None:
    if variant == "bare":
        return None
    cert = RequireClientCert(ClientCertAllowList(spiffe_ids=[CLIENT_SPIFFE_ID]))

    def token_check(cache_size: int) -> RequireBearerToken:
        verifier = JWTVerifier(
            JWKSFile(material.path("jwks.json")),
            audience=AUDIENCE,
            issuer=ISSUER,
            algorithms=["ES256"],
            cache_size=cache_size,
        )
        return RequireBearerToken(verifier, scopes=[SCOPE])

    checks: dict[str, tuple[Any, ...]] = {
        "core": (),
        "cert": (cert,),
        "jwt_cached": (token_check(10_000),),
        "jwt_uncached": (token_check(0),),
        "secured": (cert, token_check(10_000)),
    }
    return Guard(*checks[variant])


def _echo(request: bytes, _context: Any) -> bytes:
    return request


async def _echo_async(request: bytes, _context: Any) -> bytes:
    return request


def _stats(_request: bytes, _context: Any) -> bytes:
    return cpu_stats_reply()


async def _stats_async(request: bytes, context: Any) -> bytes:
    return _stats(request, context)


def bench_handler(*, aio: bool) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(_echo_async if aio else _echo),
            "Stats": grpc.unary_unary_rpc_method_handler(_stats_async if aio else _stats),
        },
    )


def _credentials(material: Material) -> grpc.ServerCredentials:
    identity = KeyPair.from_files(material.path("server.crt"), material.path("server.key"))
    return server_credentials(identity, client_ca=material.path("ca.crt"))


def serve_sync(variant: str, material: Material) -> int:
    guard = build_guard(variant, material)
    interceptors = [guard.server_interceptor()] if guard else []
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=SERVER_WORKERS)
    server = grpc.server(executor, interceptors=interceptors)
    server.add_generic_rpc_handlers((bench_handler(aio=False),))
    port = server.add_secure_port("127.0.0.1:0", _credentials(material))
    try:
        serve_until_stdin_closes(server, port)
    finally:
        executor.shutdown(wait=True)
    return 0


async def _serve_aio(variant: str, material: Material) -> int:
    guard = build_guard(variant, material)
    interceptors = [guard.aio_server_interceptor()] if guard else []
    server = grpc.aio.server(interceptors=interceptors)
    server.add_generic_rpc_handlers((bench_handler(aio=True),))
    port = server.add_secure_port("127.0.0.1:0", _credentials(material))
    await server.start()
    print(port, flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await server.stop(0)
    return 0


def serve(variant: str, kind: str, material: Material) -> int:
    if kind == "sync":
        return serve_sync(variant, material)
    return asyncio.run(_serve_aio(variant, material))


def server_process(
    variant: str, kind: str, directory: Path, token: str
) -> contextlib.AbstractContextManager[int]:
    """Start ``--serve VARIANT --kind KIND``; yield its port; always stop it."""
    arguments = [
        "--serve",
        variant,
        "--kind",
        kind,
        "--material",
        str(directory),
    ]
    env = {**os.environ, "GRPCSEC_BENCH_TOKEN": token}
    return _harness.server_process(
        __file__,
        arguments,
        name=f"the {kind}/{variant} server",
        start_timeout=SERVER_START_TIMEOUT,
        env=env,
    )


# -- in-process micro-benchmarks ------------------------------------------------------------------
def _per_call_us(function: Callable[[], object], iterations: int, seconds: float) -> float:
    """Median over 5 batches of the mean microseconds per call (bounded by count and time)."""
    batch = max(1, iterations // 5)
    results = []
    deadline = time.perf_counter() + seconds
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(batch):
            function()
        results.append((time.perf_counter() - started) / batch * 1e6)
        if time.perf_counter() > deadline:
            break
    return round(statistics.median(results), 3)


class _Context:
    """The two methods ``grpcsec.identity.peer`` reads, returning what grpcio returned for a real
    mTLS call (recorded from a real server), so the micro-benchmark needs no network."""

    def __init__(self, auth: dict[str, list[bytes]], address: str) -> None:
        self._auth = auth
        self._address = address

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth

    def peer(self) -> str:
        return self._address


def _recorded_context(material: Material) -> _Context:
    """One real mTLS call to a throwaway server, keeping the auth context it saw."""
    seen: dict[str, Any] = {}

    def record(_request: bytes, context: Any) -> bytes:
        seen["auth"] = {k: list(v) for k, v in context.auth_context().items()}
        seen["peer"] = context.peer()
        return b""

    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    server = grpc.server(executor)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(record)}
            ),
        )
    )
    port = server.add_secure_port("127.0.0.1:0", _credentials(material))
    server.start()
    try:
        credentials = channel_credentials(
            ca=material.path("ca.crt"),
            identity=KeyPair.from_files(material.path("client.crt"), material.path("client.key")),
        )
        with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
            channel.unary_unary(ECHO)(b"", timeout=RPC_TIMEOUT)
    finally:
        server.stop(0).wait(5)
        executor.shutdown(wait=True)
    return _Context(seen["auth"], seen["peer"])


def micro(material: Material, iterations: int, seconds: float) -> dict[str, Any]:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = StaticKeys(
        [
            VerificationKey.from_public_key(ec_key, kid="ec"),
            VerificationKey.from_public_key(rsa_key, kid="rsa"),
        ]
    )
    tokens = {
        "ES256": mint_token(ec_key, issuer=ISSUER, audience=AUDIENCE, subject="s", kid="ec"),
        "RS256": mint_token(rsa_key, issuer=ISSUER, audience=AUDIENCE, subject="s", kid="rsa"),
    }
    verify_us: dict[str, dict[str, float]] = {}
    ratios: dict[str, float] = {}
    for algorithm, token in tokens.items():
        cold = JWTVerifier(
            keys, audience=AUDIENCE, issuer=ISSUER, algorithms=[algorithm], cache_size=0
        )
        cached = JWTVerifier(keys, audience=AUDIENCE, issuer=ISSUER, algorithms=[algorithm])
        cached.verify(token)
        cold_us = _per_call_us(
            lambda v=cold, t=token: v.verify(t), max(50, iterations // 20), seconds
        )
        cached_us = _per_call_us(lambda v=cached, t=token: v.verify(t), iterations, seconds)
        verify_us[algorithm] = {"cold": cold_us, "cached": cached_us}
        ratios[algorithm] = round(cold_us / cached_us, 1)

    context = _recorded_context(material)
    metadata = (("authorization", f"Bearer {material.token}"), ("user-agent", "bench"))
    cert = RequireClientCert(ClientCertAllowList(spiffe_ids=[CLIENT_SPIFFE_ID]))
    token_check = RequireBearerToken(
        JWTVerifier(JWKSFile(material.path("jwks.json")), audience=AUDIENCE, issuer=ISSUER),
        scopes=[SCOPE],
    )
    call = CallInfo(
        method=ECHO, metadata=metadata, peer=Peer.from_auth_context(context.auth_context())
    )
    guards = {"core": Guard(), "cert": Guard(cert), "jwt_cached": Guard(token_check)}
    guards["secured"] = Guard(cert, token_check)
    guard_us = {
        name: _per_call_us(lambda g=guard: g.run(ECHO, metadata, context), iterations, seconds)
        for name, guard in guards.items()
    }
    return {
        "us_per_call": {
            "verify": verify_us,
            "peer_from_auth_context": _per_call_us(
                lambda: Peer.from_auth_context(context.auth_context(), address=context.peer()),
                iterations,
                seconds,
            ),
            "cert_check": _per_call_us(lambda: cert.check(call), iterations, seconds),
            "token_check_cached": _per_call_us(
                lambda: token_check.check(call), iterations, seconds
            ),
            "guard_run": guard_us,
        },
        "cold_vs_cached_ratio": ratios,
        "target_cache_ratio": TARGET_CACHE_RATIO,
        "meets_cache_target": min(ratios.values()) >= TARGET_CACHE_RATIO,
        "note": "guard_run includes building the Peer from a real recorded mTLS auth context "
        "(parsed-certificate cache warm), as on every RPC",
    }


# -- end to end -----------------------------------------------------------------------------------
class Client:
    """One long-lived mTLS channel to one server; the same code and metadata for every server."""

    def __init__(self, port: int, material: Material) -> None:
        credentials = channel_credentials(
            ca=material.path("ca.crt"),
            identity=KeyPair.from_files(material.path("client.crt"), material.path("client.key")),
        )
        self.channel = grpc.secure_channel(f"127.0.0.1:{port}", credentials)
        self._echo = self.channel.unary_unary(ECHO)
        self._stats = self.channel.unary_unary(STATS)
        self._metadata = (("authorization", f"Bearer {material.token}"),)

    def call(self) -> None:
        self._echo(b"ping", metadata=self._metadata, timeout=RPC_TIMEOUT)

    def server_cpu(self) -> float:
        reply = self._stats(b"", metadata=self._metadata, timeout=RPC_TIMEOUT)
        return float(json.loads(reply)["cpu_seconds"])

    def close(self) -> None:
        self.channel.close()


@dataclass(frozen=True)
class Params:
    warmup: int
    rounds: int
    max_calls: int
    seconds: float
    micro_iterations: int
    micro_seconds: float


Rounds = ThreadRounds


def measure_kind(kind: str, clients: dict[str, Client], params: Params) -> Rounds:
    return measure_clients(
        clients,
        params,
        thread_counts=THREAD_COUNTS,
        label=f"{kind} ",
    )


def summarize(rounds: Rounds) -> dict[str, Any]:
    def key(threads: int) -> str:
        return f"threads_{threads}"

    def median_of(variant: str, threads: int, attribute: str, scale: float) -> float:
        values = [getattr(r[threads][variant], attribute) * scale for r in rounds]
        return round(statistics.median(values), 3)

    def table(attribute: str, scale: float = 1.0) -> dict[str, dict[str, float]]:
        return {
            v: {key(t): median_of(v, t, attribute, scale) for t in THREAD_COUNTS} for v in VARIANTS
        }

    ratios = {
        v: {
            key(t): round(
                statistics.median(r[t][v].per_second / r[t]["bare"].per_second for r in rounds), 4
            )
            for t in THREAD_COUNTS
        }
        for v in VARIANTS
        if v != "bare"
    }
    cpu = table("server_cpu_per_call", 1e6)
    extra_cpu = {
        v: {key(t): round(cpu[v][key(t)] - cpu["bare"][key(t)], 1) for t in THREAD_COUNTS}
        for v in VARIANTS
        if v != "bare"
    }
    secured = min(ratios["secured"].values())
    return {
        "calls_per_second": table("per_second"),
        "p50_ms": table("p50", 1000),
        "server_cpu_us_per_call": cpu,
        "extra_server_cpu_us_vs_bare": extra_cpu,
        "ratio_vs_bare": ratios,
        "secured_vs_bare": secured,
        "meets_throughput_target": secured >= TARGET_THROUGHPUT_RATIO,
        "calls": {
            v: {key(t): sum(r[t][v].calls for r in rounds) for t in THREAD_COUNTS} for v in VARIANTS
        },
    }


def end_to_end(material: Material, params: Params) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for kind in KINDS:
        with contextlib.ExitStack() as stack:
            ports = {
                v: stack.enter_context(server_process(v, kind, material.directory, material.token))
                for v in VARIANTS
            }
            clients = {v: Client(ports[v], material) for v in VARIANTS}
            for client in clients.values():
                stack.callback(client.close)
            results[kind] = summarize(measure_kind(kind, clients, params))
    return results


def run(params: Params) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="grpcsec-bench-authn-") as tmp:
        material = make_material(Path(tmp))
        in_process = micro(material, params.micro_iterations, params.micro_seconds)
        print(f"micro: {json.dumps(in_process['us_per_call']['verify'])}", file=sys.stderr)
        e2e = end_to_end(material, params)
    secured = {kind: e2e[kind]["secured_vs_bare"] for kind in KINDS}
    notes = [
        (
            "server_cpu_us_per_call is the most direct per-call cost figure: the server process's "
            "CPU time per call; extra_server_cpu_us_vs_bare subtracts the bare server's"
        ),
        (
            "jwt_uncached verifies an ES256 signature on every call; jwt_cached pays it once per "
            "token (the client sends the same token on every call, as real clients do until expiry)"
        ),
    ]
    if not all(value >= TARGET_THROUGHPUT_RATIO for value in secured.values()):
        notes.append(
            f"secured_vs_bare {secured} misses {TARGET_THROUGHPUT_RATIO} for at least one kind; "
            "compare extra_server_cpu_us_vs_bare with the bare server's CPU per call, and the "
            "spread of the other ratios (noise on a shared machine)"
        )
    return {
        "benchmark": "authentication cost: in-process verify/check micro-benchmarks and unary "
        "echo throughput over mTLS with client and server in separate processes",
        "in_process": in_process,
        "end_to_end": e2e,
        "secured_vs_bare": secured,
        "target_throughput_ratio": TARGET_THROUGHPUT_RATIO,
        "meets_throughput_target": all(v >= TARGET_THROUGHPUT_RATIO for v in secured.values()),
        "meets_cache_target": in_process["meets_cache_target"],
        "notes": notes,
        "params": {
            **dataclasses.asdict(params),
            "variants": list(VARIANTS),
            "kinds": list(KINDS),
            "client_threads": list(THREAD_COUNTS),
            "server_workers_sync": SERVER_WORKERS,
            "statistic": "median over rounds; ratios are medians of per-round paired ratios",
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
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 15)")
    parser.add_argument("--seconds", type=float, default=None, help="max seconds per segment")
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=KINDS, default="sync", help=argparse.SUPPRESS)
    parser.add_argument("--material", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        if args.material is None:
            parser.error("--serve needs --material")
        token = os.environ.get("GRPCSEC_BENCH_TOKEN", "")
        return serve(args.serve, args.kind, Material(args.material, token))
    if args.quick:
        params = Params(
            warmup=20, rounds=1, max_calls=150, seconds=0.3, micro_iterations=500, micro_seconds=0.5
        )
    else:
        params = Params(
            warmup=300,
            rounds=15,
            max_calls=20_000,
            seconds=0.5,
            micro_iterations=20_000,
            micro_seconds=5.0,
        )
    if args.rounds is not None:
        params = dataclasses.replace(params, rounds=args.rounds)
    if args.seconds is not None:
        params = dataclasses.replace(params, seconds=args.seconds)
    if params.rounds < 1 or params.seconds <= 0:
        parser.error("--rounds must be >= 1 and --seconds > 0")
    result = run(params)
    print_json(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
