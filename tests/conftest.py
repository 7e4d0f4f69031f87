"""Shared fixtures: a session PKI issued with grpcsec.pki, and real grpcio servers on 127.0.0.1:0.

Every server registers two services: the demo Greeter and a probe, ``grpcsec.test.Probe/WhoAmI``,
whose reply is the JSON of :func:`grpcsec.identity.peer` as the server saw the caller. The aio
server runs on its own event loop in a background thread, so the same (sync) client code tests
both server kinds.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from grpcsec.demo.greeter import add_greeter
from grpcsec.identity import peer
from grpcsec.pki import (
    CertificateAuthority,
    IssuedCertificate,
    Profile,
    SubjectAltNames,
    utcnow,
)

PROBE_SERVICE = "grpcsec.test.Probe"
WHOAMI = f"/{PROBE_SERVICE}/WhoAmI"
CLIENT_SPIFFE_ID = "spiffe://example.org/ns/default/sa/client"
TIMEOUT = 5.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Pki:
    """The session's CAs and leaves (ECDSA P-256, valid now)."""

    ca: CertificateAuthority
    other_ca: CertificateAuthority
    server: IssuedCertificate
    client: IssuedCertificate
    other_client: IssuedCertificate


def issue_server(ca: CertificateAuthority, **kwargs: Any) -> IssuedCertificate:
    names = kwargs.pop("names", SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"]))
    return ca.issue(Profile.SERVER, names, **kwargs)


def issue_client(ca: CertificateAuthority, **kwargs: Any) -> IssuedCertificate:
    names = kwargs.pop(
        "names",
        SubjectAltNames.build(
            dns=["client.internal"],
            ips=["10.1.2.3"],
            uris=[CLIENT_SPIFFE_ID],
            emails=["client@example.org"],
        ),
    )
    kwargs.setdefault("common_name", "client-1")
    return ca.issue(Profile.CLIENT, names, **kwargs)


@pytest.fixture(scope="session")
def pki() -> Pki:
    now = utcnow()
    ca = CertificateAuthority.create("grpcsec test CA", organization="Acme", now=now)
    other_ca = CertificateAuthority.create("grpcsec other CA", now=now)
    return Pki(
        ca=ca,
        other_ca=other_ca,
        server=issue_server(ca, now=now),
        client=issue_client(ca, organization="Acme", now=now),
        other_client=issue_client(other_ca, common_name="intruder", now=now),
    )


# -- servers ---------------------------------------------------------------------------------


def _whoami(_request: bytes, context: Any) -> bytes:
    return json.dumps(peer(context).to_json()).encode()


async def _whoami_async(request: bytes, context: Any) -> bytes:
    return _whoami(request, context)


def probe_handler(*, aio: bool) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        PROBE_SERVICE,
        {"WhoAmI": grpc.unary_unary_rpc_method_handler(_whoami_async if aio else _whoami)},
    )


@dataclass(frozen=True)
class RunningServer:
    kind: str
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def _sync_server(credentials: Any) -> Iterator[RunningServer]:
    executor = ThreadPoolExecutor(max_workers=4)
    server = grpc.server(executor)
    try:
        server.add_generic_rpc_handlers((probe_handler(aio=False),))
        add_greeter(server)
        port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        yield RunningServer("sync", port)
    finally:
        server.stop(grace=None).wait(STOP_TIMEOUT)
        executor.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _aio_server(credentials: Any) -> Iterator[RunningServer]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="aio-server-loop", daemon=True)
    thread.start()
    holder: dict[str, Any] = {}

    async def start() -> int:
        server = grpc.aio.server()
        holder["server"] = server
        server.add_generic_rpc_handlers((probe_handler(aio=True),))
        add_greeter(server)
        port = server.add_secure_port("127.0.0.1:0", credentials)
        await server.start()
        return int(port)

    async def stop() -> None:
        if "server" in holder:
            await holder["server"].stop(None)
        await loop.shutdown_default_executor()

    try:
        port = asyncio.run_coroutine_threadsafe(start(), loop).result(STOP_TIMEOUT)
        yield RunningServer("aio", port)
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(STOP_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT)
        loop.close()


@contextmanager
def serve(kind: str, credentials: Any) -> Iterator[RunningServer]:
    """Start a ``sync`` or ``aio`` server with ``credentials`` on 127.0.0.1:0; stop it after."""
    factory = _sync_server if kind == "sync" else _aio_server
    with factory(credentials) as running:
        yield running


@pytest.fixture(params=["sync", "aio"])
def server_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- clients ---------------------------------------------------------------------------------

FRESH_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)


def whoami(
    target: str,
    credentials: Any,
    *,
    options: Sequence[tuple[str, Any]] = (),
    metadata: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The peer JSON the server saw, over a fresh channel and connection (raises RpcError)."""
    with grpc.secure_channel(target, credentials, options=[*FRESH_CONNECTION, *options]) as ch:
        reply = ch.unary_unary(WHOAMI)(b"", timeout=TIMEOUT, metadata=tuple(metadata) or None)
    result: dict[str, Any] = json.loads(reply)
    return result


def call_error(
    target: str,
    credentials: Any,
    *,
    options: Sequence[tuple[str, Any]] = (),
    metadata: Sequence[tuple[str, str]] = (),
) -> grpc.RpcError:
    """The error of a call that must fail; fails the test if the call succeeds."""
    try:
        seen = whoami(target, credentials, options=options, metadata=metadata)
    except grpc.RpcError as exc:
        return exc
    pytest.fail(f"the call succeeded but must fail; the server saw {seen}")
