"""Does TLS session resumption (``grpc.ssl_session_cache``) make new mTLS channels cheaper?

Run from the project root::

    .venv/bin/python benchmarks/resumption.py            # full run, about a minute
    .venv/bin/python benchmarks/resumption.py --quick    # CI smoke run, a few seconds

For each server key type (ECDSA P-256, RSA-2048) a CA, a server leaf (SANs ``localhost`` and
``127.0.0.1``) and two client leaves (SPIFFE IDs ``.../client-a`` and ``.../client-b``) are
issued with grpcsec, all of that key type. One server *process* per key type is started (this
script with ``--serve``): a sync ``grpc.server`` with grpcsec mTLS credentials on 127.0.0.1 only,
printing its port and exiting when its stdin closes. Its ``Handshake`` method answers a
helloworld ``HelloReply`` whose message is JSON: the auth context's ``ssl_session_reused`` flag
and the principal :func:`grpcsec.identity.peer` found, so the client sees what the server saw.

The client, in this process, opens a NEW channel for every handshake (grpcsec channel
credentials presenting ``client-a``, ``grpc.use_local_subchannel_pool`` so nothing is shared),
makes one unary RPC and closes the channel, in two modes that differ only in one option:

* ``no_cache``: no session cache, every connection is a full handshake;
* ``with_cache``: every channel gets ``("grpc.ssl_session_cache", cache)`` with one
  ``grpc.experimental.session_cache.ssl_session_cache_lru`` shared by all of them, so a new
  channel can resume the session (TLS 1.3 PSK with a fresh key exchange) the previous one got.

grpcio sends no TLS server name (SNI) when dialling an IP address, and then never resumes (see
``checks``), so both modes dial 127.0.0.1 with ``grpc.ssl_target_name_override=localhost``.
Batches of the four (key type, mode) pairs alternate until each reaches its count or time.

Checks, made with a few extra channels and reported in ``checks``: whether dialling the IP
without a server name ever resumes; what the server sees when a channel presenting ``client-b``
shares the cache that a ``client-a`` channel filled; and whether a channel that trusts only an
unrelated CA (so it must refuse the server) connects when it shares such a cache.

Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import grpc.experimental.session_cache

import _harness
from _harness import (
    cpu_seconds,
    cpu_stats_reply,
    percentile,
    print_json,
    rounded,
    serve_until_stdin_closes,
)
from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.demo.helloworld import (
    HelloReplyMessage,
    HelloRequestMessage,
    deserialize_reply,
    deserialize_request,
    new_reply,
    new_request,
    serialize,
)
from grpcsec.identity import peer
from grpcsec.material import KeyPair
from grpcsec.pki import CertificateAuthority, KeyType, Profile, SubjectAltNames

KEY_TYPES = (KeyType.ECDSA_P256, KeyType.RSA_2048)
NO_CACHE = "no_cache"
WITH_CACHE = "with_cache"
MODES = (NO_CACHE, WITH_CACHE)
SERVICE = "grpcsec.bench.Resumption"
HANDSHAKE = f"/{SERVICE}/Handshake"
STATS = f"/{SERVICE}/Stats"
SERVER_NAME = "localhost"
CLIENT_A = "spiffe://bench.example/client-a"
CLIENT_B = "spiffe://bench.example/client-b"
CACHE_CAPACITY = 64
SERVER_WORKERS = 4
SERVER_START_TIMEOUT = 30.0
RPC_TIMEOUT = 10.0


# -- server process -----------------------------------------------------------------------------
def serve(cert: Path, key: Path, ca: Path) -> int:
    """The ``--serve`` mode: grpcsec mTLS on 127.0.0.1 until stdin closes."""

    def handshake(
        _request: HelloRequestMessage, context: grpc.ServicerContext
    ) -> HelloReplyMessage:
        reused = context.auth_context().get("ssl_session_reused", [b""])[0]
        who = peer(context)
        report = {
            "session_reused": reused == b"true",
            "principal": who.principal,
            "tls_version": who.tls_version,
        }
        return new_reply(json.dumps(report))

    def stats(_request: bytes, _context: grpc.ServicerContext) -> bytes:
        return cpu_stats_reply()

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Handshake": grpc.unary_unary_rpc_method_handler(
                handshake, request_deserializer=deserialize_request, response_serializer=serialize
            ),
            "Stats": grpc.unary_unary_rpc_method_handler(stats),
        },
    )
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=SERVER_WORKERS))
    server.add_generic_rpc_handlers((handler,))
    credentials = server_credentials(KeyPair.from_files(cert, key), client_ca=ca)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    serve_until_stdin_closes(server, port)
    return 0


# -- material -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Material:
    """File paths of one key type's CA, server leaf and two client leaves."""

    key_type: KeyType
    ca: Path
    server_cert: Path
    server_key: Path
    client_a_cert: Path
    client_a_key: Path
    client_b_cert: Path
    client_b_key: Path


def make_material(key_type: KeyType, directory: Path) -> Material:
    """A CA, a server leaf and clients ``a`` and ``b``, all of ``key_type``."""
    ca = CertificateAuthority.create(f"bench {key_type.value} CA", key_type=key_type)
    issued = {
        "server": ca.issue(
            Profile.SERVER,
            SubjectAltNames.build(dns=[SERVER_NAME], ips=["127.0.0.1"]),
            key_type=key_type,
        ),
        "client-a": ca.issue(
            Profile.CLIENT, SubjectAltNames.build(uris=[CLIENT_A]), key_type=key_type
        ),
        "client-b": ca.issue(
            Profile.CLIENT, SubjectAltNames.build(uris=[CLIENT_B]), key_type=key_type
        ),
    }
    base = directory / key_type.value
    base.mkdir(mode=0o700)
    (base / "ca.crt").write_bytes(ca.certificate_pem())
    for name, certificate in issued.items():
        (base / f"{name}.crt").write_bytes(certificate.chain_pem())
        (base / f"{name}.key").write_bytes(certificate.key_pem())
    return Material(
        key_type,
        base / "ca.crt",
        base / "server.crt",
        base / "server.key",
        base / "client-a.crt",
        base / "client-a.key",
        base / "client-b.crt",
        base / "client-b.key",
    )


# -- client side --------------------------------------------------------------------------------
def server_process(material: Material) -> contextlib.AbstractContextManager[int]:
    """Start a ``--serve`` subprocess; yield its port; always stop it."""
    arguments = ["--serve", "--cert", str(material.server_cert), "--key", str(material.server_key)]
    arguments += ["--ca", str(material.ca)]
    return _harness.server_process(
        __file__, arguments, name="the benchmark server", start_timeout=SERVER_START_TIMEOUT
    )


@dataclass(frozen=True)
class Outcome:
    """One new channel + one RPC: how long it took and what the server saw."""

    seconds: float
    session_reused: bool
    principal: str | None


def new_session_cache() -> object:
    return grpc.experimental.session_cache.ssl_session_cache_lru(CACHE_CAPACITY)


class Client:
    """New channels to one server, presenting ``client-a``, with or without a session cache."""

    def __init__(self, material: Material, port: int) -> None:
        self.target = f"127.0.0.1:{port}"
        self.material = material
        self.credentials = self.credentials_for(material.client_a_cert, material.client_a_key)
        self.cache = new_session_cache()
        self._stats_channel = grpc.secure_channel(
            self.target, self.credentials, options=[("grpc.ssl_target_name_override", SERVER_NAME)]
        )

    def credentials_for(self, cert: Path, key: Path) -> grpc.ChannelCredentials:
        return channel_credentials(ca=self.material.ca, identity=KeyPair.from_files(cert, key))

    def connect(
        self,
        cache: object | None,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        server_name: str | None = SERVER_NAME,
    ) -> Outcome:
        """One new channel, one RPC, close."""
        options: list[tuple[str, object]] = [("grpc.use_local_subchannel_pool", 1)]
        if server_name is not None:
            options.append(("grpc.ssl_target_name_override", server_name))
        if cache is not None:
            options.append(("grpc.ssl_session_cache", cache))
        start = time.perf_counter()
        channel = grpc.secure_channel(self.target, credentials or self.credentials, options=options)
        try:
            call = channel.unary_unary(
                HANDSHAKE, request_serializer=serialize, response_deserializer=deserialize_reply
            )
            reply: HelloReplyMessage = call(new_request("bench"), timeout=RPC_TIMEOUT)
        finally:
            channel.close()
        seconds = time.perf_counter() - start
        seen = json.loads(reply.message)
        return Outcome(seconds, bool(seen["session_reused"]), seen["principal"])

    def handshake(self, mode: str) -> Outcome:
        return self.connect(self.cache if mode == WITH_CACHE else None)

    def server_cpu(self) -> float:
        reply = self._stats_channel.unary_unary(STATS)(b"", timeout=RPC_TIMEOUT)
        return float(json.loads(reply)["cpu_seconds"])

    def close(self) -> None:
        self._stats_channel.close()


@dataclass
class Series:
    """Measurements of one (key type, mode) pair."""

    outcomes: list[Outcome] = field(default_factory=list)
    wall: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0

    @property
    def per_second(self) -> float:
        return len(self.outcomes) / self.wall if self.wall else 0.0


@dataclass(frozen=True)
class Params:
    """Bounds of a run."""

    warmup: int
    handshakes: int
    seconds: float
    batch: int
    checks: int


def run_batch(client: Client, mode: str, count: int, series: Series) -> None:
    server_cpu = client.server_cpu()
    cpu = cpu_seconds()
    start = time.perf_counter()
    outcomes = [client.handshake(mode) for _ in range(count)]
    series.wall += time.perf_counter() - start
    series.client_cpu += cpu_seconds() - cpu
    series.server_cpu += client.server_cpu() - server_cpu
    series.outcomes.extend(outcomes)


def measure(clients: dict[str, Client], params: Params) -> dict[str, dict[str, Series]]:
    """Warm up, then alternate batches of every (key type, mode) until count or time."""
    results = {k: {m: Series() for m in MODES} for k in clients}
    for client in clients.values():
        for mode in MODES:
            for _ in range(params.warmup):
                client.handshake(mode)
    active = [(k, m) for k in clients for m in MODES]
    passes = 0
    while active:
        order = active if passes % 2 == 0 else active[::-1]
        for label, mode in list(order):
            series = results[label][mode]
            remaining = params.handshakes - len(series.outcomes)
            run_batch(clients[label], mode, min(params.batch, remaining), series)
            if len(series.outcomes) >= params.handshakes or series.wall >= params.seconds:
                active.remove((label, mode))
        passes += 1
        print(f"pass {passes}: {len(active)} series still running", file=sys.stderr)
    return results


def run_checks(client: Client, count: int) -> dict[str, object]:
    """Resumption without a server name, and two client identities sharing one cache."""
    ip_cache = new_session_cache()
    by_ip = [client.connect(ip_cache, server_name=None) for _ in range(count)]
    shared = new_session_cache()
    first = client.connect(shared)
    second_a = client.connect(shared)
    credentials_b = client.credentials_for(
        client.material.client_b_cert, client.material.client_b_key
    )
    second_b = client.connect(shared, credentials=credentials_b)
    alone_b = client.connect(new_session_cache(), credentials=credentials_b)
    # A channel trusting another CA only: refused alone, but what if it shares the cache?
    stranger = CertificateAuthority.create("bench unrelated CA")
    credentials_other_ca = channel_credentials(
        ca=stranger,
        identity=KeyPair.from_files(client.material.client_a_cert, client.material.client_a_key),
    )
    trust_cache = new_session_cache()
    client.connect(trust_cache)
    other_ca_shared = _attempt(client, trust_cache, credentials_other_ca)
    other_ca_alone = _attempt(client, new_session_cache(), credentials_other_ca)
    return {
        "dial_ip_without_server_name": {
            "channels": count,
            "resumed": sum(o.session_reused for o in by_ip),
            "note": "dialling an IP, grpcio sends no server name (SNI) and never resumed; the "
            "measured modes resume only because they set grpc.ssl_target_name_override",
        },
        "shared_cache_two_identities": {
            "cache_filled_by": CLIENT_A,
            "server_saw_first_channel": first.principal,
            "same_identity_resumed": second_a.session_reused,
            "second_channel_presents": CLIENT_B,
            "second_channel_resumed": second_b.session_reused,
            "server_saw_second_channel": second_b.principal,
            "server_saw_client_b_with_own_cache": alone_b.principal,
            "identity_confused": second_b.principal != CLIENT_B,
        },
        "shared_cache_two_trust_anchors": {
            "cache_filled_by": "a channel trusting the server's CA",
            "channel_trusting_only_an_unrelated_ca_alone": other_ca_alone,
            "channel_trusting_only_an_unrelated_ca_sharing_the_cache": other_ca_shared,
            "server_verification_bypassed": other_ca_shared.startswith("OK"),
        },
    }


def _attempt(client: Client, cache: object, credentials: grpc.ChannelCredentials) -> str:
    """``OK (resumed)``/``OK (full handshake)`` or the status code of a failed connection."""
    try:
        outcome = client.connect(cache, credentials=credentials)
    except grpc.RpcError as error:
        return f"failed: {error.code().name}"
    return "OK (resumed)" if outcome.session_reused else "OK (full handshake)"


# -- report -------------------------------------------------------------------------------------
def summarize(series: dict[str, Series]) -> dict[str, object]:
    def per_mode(compute: Callable[[Series], float]) -> dict[str, float]:
        return {m: rounded(compute(series[m])) for m in MODES}

    def latencies(s: Series) -> list[float]:
        return [o.seconds for o in s.outcomes]

    resumed = {m: sum(o.session_reused for o in series[m].outcomes) for m in MODES}
    resumed_outcomes = [o for o in series[WITH_CACHE].outcomes if o.session_reused]
    cpu_ms = {
        m: {
            "client": rounded(s.client_cpu / len(s.outcomes) * 1000),
            "server": rounded(s.server_cpu / len(s.outcomes) * 1000),
        }
        for m, s in series.items()
    }
    return {
        "handshakes_per_second": per_mode(lambda s: s.per_second),
        "p50_ms": per_mode(lambda s: percentile(latencies(s), 0.5) * 1000),
        "p99_ms": per_mode(lambda s: percentile(latencies(s), 0.99) * 1000),
        "mean_ms": per_mode(lambda s: statistics.fmean(latencies(s)) * 1000),
        "ratio_with_vs_without_cache": rounded(
            series[WITH_CACHE].per_second / series[NO_CACHE].per_second
        ),
        "p50_ratio_with_vs_without_cache": rounded(
            percentile(latencies(series[WITH_CACHE]), 0.5)
            / percentile(latencies(series[NO_CACHE]), 0.5)
        ),
        "cpu_ms_per_handshake": cpu_ms,
        "handshakes": {m: len(series[m].outcomes) for m in MODES},
        "sessions_reused": resumed,
        "session_reused_observed": resumed[WITH_CACHE] > 0,
        "identity_on_resumed_sessions": bool(resumed_outcomes)
        and all(o.principal == CLIENT_A for o in resumed_outcomes),
    }


def run(params: Params) -> dict[str, object]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="grpcsec-bench-") as tmp:
        materials = {k.value: make_material(k, Path(tmp)) for k in KEY_TYPES}
        with contextlib.ExitStack() as stack:
            # Every server starts before any channel exists in this process.
            ports = {k: stack.enter_context(server_process(m)) for k, m in materials.items()}
            clients = {k: Client(materials[k], ports[k]) for k in materials}
            for client in clients.values():
                stack.callback(client.close)
            results = measure(clients, params)
            checks = run_checks(clients[KEY_TYPES[0].value], params.checks)
    return {
        "benchmark": "new mTLS channel + 1 unary RPC, with and without a shared TLS session cache",
        "key_types": {k: summarize(v) for k, v in results.items()},
        "checks": checks,
        "params": {
            "warmup": params.warmup,
            "max_handshakes": params.handshakes,
            "max_seconds_per_series": params.seconds,
            "batch": params.batch,
            "client_threads": 1,
            "cache": f"ssl_session_cache_lru({CACHE_CAPACITY}), one per key type",
            "channel_options": [
                ["grpc.use_local_subchannel_pool", 1],
                ["grpc.ssl_target_name_override", SERVER_NAME],
                ["grpc.ssl_session_cache", "<cache> (with_cache only)"],
            ],
            "certificates": "per key type: CA, server leaf and client leaves all of that type",
            "cpus": os.cpu_count(),
            "load_average_1min_at_end": rounded(os.getloadavg()[0], 2),
            "elapsed_seconds": rounded(time.perf_counter() - started, 1),
        },
        "grpcio": grpc.__version__,
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="very few handshakes (CI smoke)")
    parser.add_argument("--handshakes", type=int, default=None, help="max per series")
    parser.add_argument("--seconds", type=float, default=None, help="max per series")
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
        params = Params(warmup=2, handshakes=10, seconds=3.0, batch=5, checks=2)
    else:
        params = Params(warmup=10, handshakes=3000, seconds=15.0, batch=20, checks=5)
    if args.handshakes is not None:
        params = dataclasses.replace(params, handshakes=args.handshakes)
    if args.seconds is not None:
        params = dataclasses.replace(params, seconds=args.seconds)
    if params.handshakes < 1 or params.seconds <= 0:
        parser.error("--handshakes must be at least 1 and --seconds positive")
    print_json(run(params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
