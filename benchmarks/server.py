"""The whole secured server path against bare grpcio mTLS and against an nghttpx sidecar.

Run from the project root::

    .venv/bin/python benchmarks/server.py            # full run, about three minutes
    .venv/bin/python benchmarks/server.py --quick    # CI smoke run, well under a minute
    .venv/bin/python benchmarks/server.py --profile secured --profile-out prof.txt  # py-spy

For each server kind (``sync``: ``secure_server`` / ``grpc.server`` with 4 workers; ``aio``:
``aio_secure_server`` / ``grpc.aio.server``) one server *process* per variant serves a unary
echo; the client (this process, 4 threads on one channel per server, the same ``authorization``
header for every server) drives them in rounds that visit every variant in a rotating order:

* ``bare``: plain grpcio, ``grpc.ssl_server_credentials(..., require_client_auth=True)``;
* ``guard``: ``grpcsec.server`` with mTLS and no checks (the guard's plumbing alone);
* ``cn``: + a client-certificate common-name allow-list;
* ``jwt``: + a bearer JWT (JWKS file, issuer, audience, scope); the client repeats one token,
  so after the first call the verifier's cache answers;
* ``policy``: + an A43 policy of 100 allow rules; the call matches rule 99;
* ``secured``: + metrics (``/metrics`` and ``/status`` on), the whole secured path;
* ``sidecar``: nghttpx terminating mTLS in front of a *plaintext* grpcio server (skipped, with
  a note, when nghttpx is not installed).

Each variant reports calls/s, p50/p99 latency (medians over rounds), server CPU µs per call
(from ``/proc`` of the server's processes, nghttpx + backend for the sidecar, summed over every
round) and its throughput ratio to ``bare`` (median of per-round ratios).
``extra_server_cpu_us_per_layer`` is each layer's CPU per call minus the previous one's; on a
small machine those differences are within the rounds' noise (``ratio_vs_bare_quartiles`` shows
how far the rounds disagree), so ``guard_us_per_call_in_process`` gives the floor precisely: the
guard's checks alone per call, timed inside a real server on a real call. ``--threads 1`` makes
the client sequential (latency-bound, as the issue's hand measurement of the sidecar was);
``--client go`` calls with grpc-go (``interop/build/bin/grpc-load``, one long-lived connection
per server, the same token), which leaves the server more of a small machine. Goals
(issue 13): ``secured`` >= 0.95 x ``bare`` calls/s, and >= 1.3 x ``sidecar`` at no worse p99.
Negative controls after the rounds: on the ``secured`` server a call without the token must be
refused UNAUTHENTICATED and a certificate whose CN is not allowed PERMISSION_DENIED.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import functools
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric import ec

import _sidecar
from _go_load import BINARY as GO_LOADER
from _go_load import GoCaller
from _harness import mtls_files, print_json, write_files
from _load import (
    ServerSpec,
    process_cpu_seconds,
    round_order,
    run_segment,
    start_servers,
    summarize,
)
from grpcsec.authn import mint_token, public_jwks
from grpcsec.pki import CertificateAuthority, Profile, SubjectAltNames
from grpcsec.server import SecurityConfig, aio_secure_server, secure_server

LAYERS = ("guard", "cn", "jwt", "policy", "secured")
VARIANTS = ("bare", *LAYERS, "sidecar")
KINDS = ("sync", "aio")
CLIENT_CN = "bench-client"
CLIENT_SPIFFE_ID = "spiffe://bench.example/ns/default/sa/client"
ISSUER = "https://issuer.bench.example"
AUDIENCE = "bench"
SCOPE = "bench.call"
SERVICE = "grpcsec.bench.Server"
ECHO = f"/{SERVICE}/Echo"
POLICY_RULES = 100
SERVER_WORKERS = 4
CLIENT_THREADS = 4
START_TIMEOUT = 90.0
RPC_TIMEOUT = 10.0
PAYLOAD = b"ping"
TARGET_VS_BARE = 0.95
TARGET_VS_SIDECAR = 1.3
PROFILE_RATE = 1000  # py-spy samples per second


# -- material -------------------------------------------------------------------------------------
def policy_document() -> dict[str, Any]:
    """100 allow rules; only the last but one matches the benchmark's client and method."""
    rules = [
        {
            "name": f"team{i}",
            "source": {"principals": [f"spiffe://bench.example/ns/team{i}/*"]},
            "request": {"paths": [f"/acme.svc{i}.Service/*"]},
        }
        for i in range(POLICY_RULES)
    ]
    rules[POLICY_RULES - 2] = {
        "name": "bench-client",
        "source": {"principals": [CLIENT_SPIFFE_ID]},
        "request": {"paths": [f"/{SERVICE}/*"]},
    }
    return {"name": "bench", "allow_rules": rules}


def make_material(directory: Path) -> str:
    """Write certificates, the JWKS and the policy to ``directory``; the bearer token."""
    ca = CertificateAuthority.create("bench server CA")
    server = ca.issue(Profile.SERVER, SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"]))
    client = ca.issue(
        Profile.CLIENT, SubjectAltNames.build(uris=[CLIENT_SPIFFE_ID]), common_name=CLIENT_CN
    )
    intruder = ca.issue(
        Profile.CLIENT,
        SubjectAltNames.build(uris=["spiffe://bench.example/ns/default/sa/intruder"]),
        common_name="intruder",
    )
    signing = ec.generate_private_key(ec.SECP256R1())
    write_files(
        directory,
        {
            **mtls_files(ca, server, client),
            "intruder.crt": intruder.chain_pem(),
            "intruder.key": intruder.key_pem(),
            "jwks.json": json.dumps(public_jwks([(signing, "bench-1")])).encode(),
            "policy.json": json.dumps(policy_document()).encode(),
        },
    )
    return mint_token(
        signing,
        issuer=ISSUER,
        audience=AUDIENCE,
        subject="bench",
        scopes=[SCOPE],
        kid="bench-1",
        ttl=dt.timedelta(hours=2),
    )


# -- server processes -----------------------------------------------------------------------------
def layer_config(layer: str, directory: Path, *, aio: bool) -> SecurityConfig:
    """The configuration of ``layer``: each layer adds one thing to the one before it."""
    depth = LAYERS.index(layer)
    data: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "aio": aio,
        "workers": SERVER_WORKERS,
        "tls": {"cert": "server.crt", "key": "server.key", "client_ca": "ca.crt"},
    }
    authn: dict[str, Any] = {}
    if depth >= LAYERS.index("cn"):
        authn["allow_cns"] = [CLIENT_CN]
    if depth >= LAYERS.index("jwt"):
        authn |= {
            "jwks": "jwks.json",
            "issuers": [ISSUER],
            "audiences": [AUDIENCE],
            "require_scopes": [SCOPE],
        }
    if authn:
        data["authn"] = authn
    if depth >= LAYERS.index("policy"):
        data["authz"] = {"policy": "policy.json"}
    if depth >= LAYERS.index("secured"):
        data["metrics"] = {"listen": "127.0.0.1:0"}
    return SecurityConfig.from_mapping(data, base=directory)


def _echo(request: bytes, _context: Any) -> bytes:
    return request


async def _echo_async(request: bytes, _context: Any) -> bytes:
    return request


def echo_handler(*, aio: bool, behaviour: Any = None) -> grpc.GenericRpcHandler:
    """The ``Echo`` method, answered by ``behaviour`` (default: the echo itself)."""
    if behaviour is None:
        behaviour = _echo_async if aio else _echo
    return grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(behaviour)}
    )


def _bare_credentials(directory: Path) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [((directory / "server.key").read_bytes(), (directory / "server.crt").read_bytes())],
        root_certificates=(directory / "ca.crt").read_bytes(),
        require_client_auth=True,
    )


def _bind_grpc(server: Any, variant: str, directory: Path) -> int:
    if variant == "plain":  # the sidecar's backend: plaintext on loopback
        return int(server.add_insecure_port("127.0.0.1:0"))
    return int(server.add_secure_port("127.0.0.1:0", _bare_credentials(directory)))


def serve_sync(variant: str, directory: Path) -> None:
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=SERVER_WORKERS)
    if variant in LAYERS:
        secure = secure_server(layer_config(variant, directory, aio=False), executor=executor)
        server: Any = secure.server
    else:
        server = grpc.server(executor)
    server.add_generic_rpc_handlers((echo_handler(aio=False),))
    port = secure.port if variant in LAYERS else _bind_grpc(server, variant, directory)
    server.start()
    print(port, flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        server.stop(0).wait()
        executor.shutdown(wait=True)


async def serve_aio(variant: str, directory: Path) -> None:
    if variant in LAYERS:
        secure = aio_secure_server(layer_config(variant, directory, aio=True))
        secure.server.add_generic_rpc_handlers((echo_handler(aio=True),))
        await secure.start()
        port, stop = secure.port, secure.stop
    else:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((echo_handler(aio=True),))
        port = _bind_grpc(server, variant, directory)
        await server.start()
        stop = server.stop
    print(port, flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await stop(0)


def guard_cost(directory: Path, token: str, layers: tuple[str, ...]) -> dict[str, float]:
    """Per layer, µs per call of the guard's checks alone: ``Guard.admit`` run again and again
    on the context of one real call (a sync ``secure_server`` in this process, over mTLS, the
    same token). Best of 5 batches of 2,000. It is the floor under each layer's extra server
    CPU: what grpcio's dispatch, the GIL and the other threads add comes on top of it."""
    found: dict[str, float] = {}

    def measure(guard: Any, context: Any) -> float:
        raw = getattr(context, "_grpcsec_context", context)  # the guard's view wraps grpcio's
        metadata = raw.invocation_metadata()
        batches = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(2000):
                guard.admit(ECHO, metadata, raw)
            batches.append((time.perf_counter() - started) / 2000 * 1e6)
        return min(batches)

    for layer in layers:
        secure = secure_server(layer_config(layer, directory, aio=False))
        guard = secure._core.guard  # (private: a benchmark may look inside)

        def behaviour(_request: bytes, context: Any, guard: Any = guard) -> bytes:
            return str(measure(guard, context)).encode()

        secure.server.add_generic_rpc_handlers((echo_handler(aio=False, behaviour=behaviour),))
        secure.start()
        client = Client(secure.port, directory, token)
        try:
            found[layer] = round(float(client.send(PAYLOAD)), 2)
        finally:
            client.close()
            secure.stop(0)
    return found


def server_spec(variant: str, kind: str, directory: Path) -> ServerSpec:
    return ServerSpec(__file__, ("--serve", variant, "--kind", kind, "--material", str(directory)))


# -- client ---------------------------------------------------------------------------------------
class Client:
    """One long-lived mTLS channel; every call sends the token and checks the echo."""

    def __init__(
        self, port: int, directory: Path, token: str | None, *, identity: str = "client"
    ) -> None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(directory / "ca.crt").read_bytes(),
            private_key=(directory / f"{identity}.key").read_bytes(),
            certificate_chain=(directory / f"{identity}.crt").read_bytes(),
        )
        self.channel = grpc.secure_channel(f"127.0.0.1:{port}", credentials)
        self._echo = self.channel.unary_unary(ECHO)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def send(self, payload: bytes) -> bytes:
        """One call; the reply."""
        return bytes(self._echo(payload, metadata=self._metadata, timeout=RPC_TIMEOUT))

    def call(self) -> None:
        if self.send(PAYLOAD) != PAYLOAD:
            raise RuntimeError("wrong echo")

    def outcome(self) -> str:
        """``OK`` or the status code name of one call."""
        try:
            self.call()
        except grpc.RpcError as error:
            return str(error.code().name)
        return "OK"

    def close(self) -> None:
        self.channel.close()


# -- measuring ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Params:
    warmup: int
    rounds: int
    max_calls: int
    seconds: float
    threads: int = CLIENT_THREADS
    client: str = "python"


@contextlib.contextmanager
def running_servers(
    kind: str, directory: Path, variants: tuple[str, ...]
) -> Iterator[dict[str, tuple[int, list[int]]]]:
    """Every variant's server; ``variant -> (port the client calls, server pids)``."""
    specs = {v: server_spec(v, kind, directory) for v in variants if v != "sidecar"}
    if "sidecar" in variants:
        specs["plain"] = server_spec("plain", kind, directory)
    with contextlib.ExitStack() as stack:
        started = stack.enter_context(start_servers(specs, timeout=START_TIMEOUT))
        found = {v: (port, [pid]) for v, (port, pid) in started.items() if v != "plain"}
        if "sidecar" in variants:
            binary = _sidecar.nghttpx_path()
            if binary is None:
                raise RuntimeError("nghttpx is not installed")
            backend_port, backend_pid = started["plain"]
            port, pid = stack.enter_context(
                _sidecar.nghttpx(
                    binary,
                    backend_port=backend_port,
                    cert=directory / "server.crt",
                    key=directory / "server.key",
                    client_ca=directory / "ca.crt",
                    log=directory / f"nghttpx-{kind}.log",
                )
            )
            found["sidecar"] = (port, [pid, backend_pid])
        yield found


def measure_kind(
    kind: str, directory: Path, token: str, params: Params, variants: tuple[str, ...]
) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        servers = stack.enter_context(running_servers(kind, directory, variants))
        clients = {v: Client(port, directory, token) for v, (port, _) in servers.items()}
        for client in clients.values():
            stack.callback(client.close)
        pool = stack.enter_context(concurrent.futures.ThreadPoolExecutor(params.threads))
        callers: dict[str, GoCaller] = {}
        if params.client == "go":
            for variant, (port, _) in servers.items():
                callers[variant] = GoCaller(
                    port, directory, token, method=ECHO, payload=PAYLOAD, threads=params.threads
                )
                stack.callback(callers[variant].close)

        def segment(variant: str, max_calls: int, seconds: float = params.seconds) -> Any:
            server_cpu = functools.partial(process_cpu_seconds, servers[variant][1])
            if callers:  # grpc-go: bounded by time alone
                return callers[variant].segment(seconds, server_cpu)
            return run_segment(
                clients[variant].call,
                threads=params.threads,
                max_calls=max_calls,
                seconds=seconds,
                pool=pool,
                server_cpu=server_cpu,
            )

        for variant in variants:
            segment(variant, params.warmup, min(params.seconds, 0.5))
        rounds = []
        for index in range(params.rounds):
            rounds.append({v: segment(v, params.max_calls) for v in round_order(variants, index)})
            line = ", ".join(f"{v} {s.per_second:.0f}/s" for v, s in rounds[-1].items())
            print(f"{kind} round {index + 1}/{params.rounds}: {line}", file=sys.stderr)
        secured_port = servers["secured"][0]
        refused = {
            "without_token": Client(secured_port, directory, None),
            "cn_not_allowed": Client(secured_port, directory, token, identity="intruder"),
        }
        negative = {name: client.outcome() for name, client in refused.items()}
        for client in refused.values():
            client.close()
        if callers:  # the Go caller's own control: without its token file, nothing gets in
            tokenless = GoCaller(
                secured_port, directory, None, method=ECHO, payload=PAYLOAD, threads=1
            )
            try:
                found = tokenless.segment(0.2, lambda: 0.0)
            finally:
                tokenless.close()
            negative["go_without_token"] = "refused" if found.calls == 0 else "ACCEPTED"
    table = summarize(rounds, "bare")
    ordered = tuple(v for v in ("bare", *LAYERS) if v in table)
    extra = {
        layer: round(
            float(table[layer]["server_cpu_us_per_call"])
            - float(table[previous]["server_cpu_us_per_call"]),
            1,
        )
        for previous, layer in itertools.pairwise(ordered)
    }
    result: dict[str, Any] = {
        "variants": table,
        "extra_server_cpu_us_per_layer": extra,
        "secured_vs_bare": table["secured"]["ratio_vs_bare"],
        "negative_controls": negative,
    }
    if "sidecar" in table:
        sidecar, secured = table["sidecar"], table["secured"]
        result["secured_vs_sidecar"] = {
            "throughput_ratio": round(
                float(secured["calls_per_second"]) / float(sidecar["calls_per_second"]), 3
            ),
            "p99_ratio": round(float(secured["p99_ms"]) / float(sidecar["p99_ms"]), 3),
        }
    return result


def run(params: Params, kinds: tuple[str, ...], chosen: tuple[str, ...]) -> dict[str, Any]:
    started = time.perf_counter()
    binary = _sidecar.nghttpx_path()
    variants = tuple(v for v in VARIANTS if v in chosen and (binary or v != "sidecar"))
    if binary is None:
        print("nghttpx not found: skipping the sidecar path", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="grpcsec-bench-server-") as tmp:
        token = make_material(Path(tmp))
        results = {kind: measure_kind(kind, Path(tmp), token, params, variants) for kind in kinds}
        in_process = guard_cost(Path(tmp), token, tuple(v for v in LAYERS if v in variants))
    vs_bare = {kind: results[kind]["secured_vs_bare"] for kind in kinds}
    failed = {
        f"{kind}/{name}": row["failures"]
        for kind in kinds
        for name, row in results[kind]["variants"].items()
        if row["failures"]
    }
    if failed:  # a variant whose calls failed has no meaningful ratio: no target is met
        print(f"failed calls (no target can be met): {failed}", file=sys.stderr)
    out: dict[str, Any] = {
        "benchmark": "unary echo over mTLS, client and server processes: bare grpcio vs "
        "grpcsec.server layer by layer vs an nghttpx sidecar",
        "kinds": results,
        "secured_vs_bare": vs_bare,
        "target_vs_bare": TARGET_VS_BARE,
        "failed_calls": failed,
        "meets_target_vs_bare": not failed and all(v >= TARGET_VS_BARE for v in vs_bare.values()),
        "guard_us_per_call_in_process": in_process,
    }
    if binary is None:
        out["sidecar"] = {"skipped": "nghttpx not found (interop/install.sh installs it)"}
    elif "sidecar" not in variants:
        out["sidecar"] = {"skipped": "not chosen (--variants)"}
    else:
        vs_sidecar = {kind: results[kind]["secured_vs_sidecar"] for kind in kinds}
        out["sidecar"] = {"nghttpx": _sidecar.nghttpx_version(binary)}
        out["secured_vs_sidecar"] = vs_sidecar
        out["target_vs_sidecar"] = TARGET_VS_SIDECAR
        out["meets_target_vs_sidecar"] = not failed and all(
            v["throughput_ratio"] >= TARGET_VS_SIDECAR and v["p99_ratio"] <= 1.0
            for v in vs_sidecar.values()
        )
    out["params"] = {
        **dataclasses.asdict(params),
        "kinds": list(kinds),
        "variants": list(variants),
        "server_workers_sync": SERVER_WORKERS,
        "policy_rules": POLICY_RULES,
        "statistic": "medians over rounds; ratios are medians of per-round paired ratios; "
        "server CPU per call is the sum over rounds (from /proc) divided by the calls",
        "cpus": os.cpu_count(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "elapsed_seconds": round(time.perf_counter() - started, 1),
    }
    out["grpcio"] = grpc.__version__
    out["python"] = platform.python_version()
    return out


# -- profiling ------------------------------------------------------------------------------------
def profile(variant: str, kind: str, seconds: float, output: Path, *, gil: bool) -> dict[str, Any]:
    """Load one server for ``seconds`` while py-spy samples it (collapsed stacks to
    ``output``); with ``gil`` only the thread holding the GIL (Python CPU time, without the
    threads that wait in grpc core)."""
    spy = Path(sys.executable).with_name("py-spy")
    with tempfile.TemporaryDirectory(prefix="grpcsec-bench-profile-") as tmp:
        directory = Path(tmp)
        token = make_material(directory)
        with (
            running_servers(kind, directory, (variant,)) as servers,
            concurrent.futures.ThreadPoolExecutor(CLIENT_THREADS) as pool,
        ):
            port, pids = servers[variant]
            client = Client(port, directory, token)
            run_segment(client.call, threads=CLIENT_THREADS, max_calls=200, seconds=5, pool=pool)
            command = [str(spy), "record", "--pid", str(pids[0]), "--duration", str(int(seconds))]
            command += ["--rate", str(PROFILE_RATE)]
            command += ["--format", "raw", "--output", str(output), "--nonblocking"]
            command += ["--gil"] if gil else []
            spy_process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            segment = run_segment(
                client.call,
                threads=CLIENT_THREADS,
                max_calls=10**9,
                seconds=seconds,
                pool=pool,
                server_cpu=functools.partial(process_cpu_seconds, pids),
            )
            spy_process.wait(timeout=seconds + 60)
            client.close()
    return {
        "variant": variant,
        "kind": kind,
        "calls": segment.calls,
        "calls_per_second": round(segment.per_second, 1),
        "server_cpu_us_per_call": round(segment.server_cpu / segment.calls * 1e6, 1),
        "py_spy_output": str(output),
        "py_spy_samples_per_second": PROFILE_RATE,
        "gil_only": gil,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="very few calls (CI smoke)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 10)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per segment")
    parser.add_argument(
        "--threads", type=int, default=CLIENT_THREADS, help="client threads (1: sequential)"
    )
    parser.add_argument(
        "--client",
        choices=("python", "go"),
        default="python",
        help="the caller: grpcio threads, or grpc-go (interop/build/bin/grpc-load)",
    )
    parser.add_argument("--kinds", choices=KINDS, nargs="+", default=list(KINDS))
    parser.add_argument(
        "--variants",
        choices=VARIANTS,
        nargs="+",
        default=list(VARIANTS),
        help="a subset (bare and secured always run)",
    )
    parser.add_argument("--profile", choices=(*LAYERS, "bare"), help="py-spy one server")
    parser.add_argument("--profile-seconds", type=float, default=20.0)
    parser.add_argument("--profile-out", type=Path, default=Path("server-profile.txt"))
    parser.add_argument("--profile-gil", action="store_true", help="py-spy --gil")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=KINDS, default="sync", help=argparse.SUPPRESS)
    parser.add_argument("--material", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        if args.kind == "sync":
            serve_sync(args.serve, args.material)
        else:
            asyncio.run(serve_aio(args.serve, args.material))
        return 0
    if args.profile:
        kind = args.kinds[0]
        output = args.profile_out.resolve()
        print_json(profile(args.profile, kind, args.profile_seconds, output, gil=args.profile_gil))
        return 0
    if args.quick:
        params = Params(warmup=20, rounds=2, max_calls=200, seconds=0.25)
    else:
        params = Params(warmup=300, rounds=10, max_calls=50_000, seconds=1.0)
    if args.client == "go" and not GO_LOADER.exists():
        parser.error(f"--client go needs {GO_LOADER} (interop/install.sh builds it)")
    params = dataclasses.replace(params, threads=args.threads, client=args.client)
    if args.rounds is not None:
        params = dataclasses.replace(params, rounds=args.rounds)
    if args.seconds is not None:
        params = dataclasses.replace(params, seconds=args.seconds)
    if params.rounds < 1 or params.seconds <= 0 or params.threads < 1:
        parser.error("--rounds and --threads must be >= 1 and --seconds > 0")
    chosen = (*args.variants, "bare", "secured")
    print_json(run(params, tuple(args.kinds), chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
