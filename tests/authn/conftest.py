"""Fixtures for authentication tests: signing keys, test tokens, guarded servers, a JWKS server.

* Keys: an EC P-256 key (kid ``ec-1``) and an RSA-2048 key (kid ``rsa-1``) that the verifiers
  trust, and a ``foreign`` EC key they do not.
* :func:`serve_guarded` starts a real ``grpc.server`` or ``grpc.aio.server`` on 127.0.0.1:0
  (TLS/mTLS from the session PKI, or plaintext) with a :class:`~grpcsec.interceptors.Guard`
  and the ``grpcsec.test.Shapes`` service: one method per handler shape, each answering with
  the JSON of what the handler saw (principal, token subject and scopes, request count) and
  counting how often it *started*, so a test can tell that a denied call never reached it. The
  aio server also offers coroutine handlers that use ``context.read``/``context.write`` and
  plain sync handlers (which grpc.aio runs on its executor).
* :class:`JwksServer`: a real HTTPS server (``http.server`` + ``ssl``) on 127.0.0.1:0 with a
  grpcsec-issued certificate, serving a JWKS that a test can change, break or count hits on.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.api_jws import PyJWS

from grpcsec.authn import JWTVerifier, StaticKeys, VerificationKey, mint_token
from grpcsec.errors import AuthenticationError
from grpcsec.identity import peer
from grpcsec.interceptors import Guard, call_info
from grpcsec.pki import CertificateAuthority, Profile, SubjectAltNames
from tests.conftest import STOP_TIMEOUT, TIMEOUT, Pki, issue_client

ISSUER = "https://issuer.test"
AUDIENCE = "shapes"
SCOPE = "shapes.call"
SERVICE = "grpcsec.test.Shapes"
EC_KID = "ec-1"
RSA_KID = "rsa-1"
INTRUDER_SPIFFE_ID = "spiffe://example.org/ns/default/sa/intruder"

UNARY = "unary"
SERVER_STREAM = "server_stream"
CLIENT_STREAM = "client_stream"
BIDI = "bidi"
SHAPES = (UNARY, SERVER_STREAM, CLIENT_STREAM, BIDI)
# aio-only variants: coroutines using context.read/write, and sync handlers on an aio server
SERVER_STREAM_WRITE = "server_stream_write"
BIDI_WRITE = "bidi_write"
SYNC_UNARY = "sync_unary"
SYNC_SERVER_STREAM = "sync_server_stream"
AIO_VARIANTS = (SERVER_STREAM_WRITE, BIDI_WRITE, SYNC_UNARY, SYNC_SERVER_STREAM)

METHODS = {
    UNARY: "Unary",
    SERVER_STREAM: "ServerStream",
    CLIENT_STREAM: "ClientStream",
    BIDI: "Bidi",
    SERVER_STREAM_WRITE: "ServerStreamWrite",
    BIDI_WRITE: "BidiWrite",
    SYNC_UNARY: "SyncUnary",
    SYNC_SERVER_STREAM: "SyncServerStream",
}
REQUEST_STREAMING = {CLIENT_STREAM, BIDI, BIDI_WRITE}
RESPONSE_STREAMING = {SERVER_STREAM, BIDI, SERVER_STREAM_WRITE, BIDI_WRITE, SYNC_SERVER_STREAM}


def method_path(shape: str) -> str:
    return f"/{SERVICE}/{METHODS[shape]}"


# -- keys and tokens -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Keys:
    ec: ec.EllipticCurvePrivateKey
    rsa: rsa.RSAPrivateKey
    foreign: ec.EllipticCurvePrivateKey

    def verification_keys(self) -> list[VerificationKey]:
        return [
            VerificationKey.from_public_key(self.ec, kid=EC_KID),
            VerificationKey.from_public_key(self.rsa, kid=RSA_KID),
        ]

    def rsa_public_pem(self) -> bytes:
        return self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def make_keys() -> Keys:
    return Keys(
        ec=ec.generate_private_key(ec.SECP256R1()),
        rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        foreign=ec.generate_private_key(ec.SECP256R1()),
    )


@pytest.fixture(scope="session")
def keys() -> Keys:
    return make_keys()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS with any header and an arbitrary signature (for hostile tokens)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(signature)}"


def signed_token(key: Any, claims: dict[str, Any], *, kid: str = EC_KID, alg: str = "ES256") -> str:
    """A correctly signed token with any claims, even ones PyJWT's encoder refuses."""
    return PyJWS().encode(json.dumps(claims).encode(), key, algorithm=alg, headers={"kid": kid})


def hs256_with_key_confusion(public_pem: bytes, kid: str, claims: dict[str, Any]) -> str:
    """HS256 "signed" with an RSA public key's PEM as the HMAC secret (the classic attack)."""
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def standard_claims(now: float, **extra: Any) -> dict[str, Any]:
    claims = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "iat": int(now),
        "exp": int(now) + 600,
        "scope": SCOPE,
    }
    claims.update(extra)
    return claims


@dataclass
class Minter:
    keys: Keys

    def __call__(self, *, key: Any = None, kid: str = EC_KID, **kwargs: Any) -> str:
        kwargs.setdefault("issuer", ISSUER)
        kwargs.setdefault("audience", AUDIENCE)
        kwargs.setdefault("subject", "alice")
        kwargs.setdefault("scopes", [SCOPE])
        return mint_token(key if key is not None else self.keys.ec, kid=kid, **kwargs)


@pytest.fixture(scope="session")
def mint(keys: Keys) -> Minter:
    return Minter(keys)


def make_verifier(keys: Keys, **kwargs: Any) -> JWTVerifier:
    kwargs.setdefault("audience", AUDIENCE)
    kwargs.setdefault("issuer", ISSUER)
    kwargs.setdefault("algorithms", ("ES256", "RS256"))
    return JWTVerifier(StaticKeys(keys.verification_keys()), **kwargs)


def intruder(pki: Pki) -> Any:
    """A client certificate from the trusted CA whose SPIFFE ID is on no allow-list."""
    return issue_client(
        pki.ca,
        names=SubjectAltNames.build(uris=[INTRUDER_SPIFFE_ID], dns=["intruder.internal"]),
        common_name="intruder",
    )


@pytest.fixture(scope="session")
def intruder_client(pki: Pki) -> Any:
    return intruder(pki)


# -- the Shapes service ----------------------------------------------------------------------------
def _seen(context: Any, requests: int) -> bytes:
    call = call_info(context)
    caller = peer(context)
    return json.dumps(
        {
            "principal": caller.principal,
            "call_principal": call.peer.principal if call else None,
            "sub": call.subject if call else None,
            "scopes": (call.claims or {}).get("scope") if call else None,
            "requests": requests,
            "checked": call is not None,
        }
    ).encode()


def shapes_handler(started: Counter[str], *, aio: bool) -> grpc.GenericRpcHandler:
    """The Shapes service for a sync or aio server; ``started`` counts handler starts."""

    def unary(request: bytes, context: Any) -> bytes:
        started[UNARY] += 1
        return _seen(context, 1)

    def server_stream(request: bytes, context: Any) -> Iterator[bytes]:
        started[SERVER_STREAM] += 1
        for _ in range(2):
            yield _seen(context, 1)

    def client_stream(requests: Iterator[bytes], context: Any) -> bytes:
        started[CLIENT_STREAM] += 1
        return _seen(context, sum(1 for _ in requests))

    def bidi(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        started[BIDI] += 1
        for _ in requests:
            yield _seen(context, 1)

    async def aunary(request: bytes, context: Any) -> bytes:
        started[UNARY] += 1
        return _seen(context, 1)

    async def aserver_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        started[SERVER_STREAM] += 1
        for _ in range(2):
            yield _seen(context, 1)

    async def aclient_stream(requests: AsyncIterator[bytes], context: Any) -> bytes:
        started[CLIENT_STREAM] += 1
        count = 0
        async for _ in requests:
            count += 1
        return _seen(context, count)

    async def abidi(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        started[BIDI] += 1
        async for _ in requests:
            yield _seen(context, 1)

    async def aserver_stream_write(request: bytes, context: Any) -> None:
        started[SERVER_STREAM_WRITE] += 1
        for _ in range(2):
            await context.write(_seen(context, 1))

    async def abidi_write(_requests: Any, context: Any) -> None:
        started[BIDI_WRITE] += 1
        while True:
            message = await context.read()
            if message is grpc.aio.EOF:
                break
            await context.write(_seen(context, 1))

    def sync_unary(request: bytes, context: Any) -> bytes:
        started[SYNC_UNARY] += 1
        return _seen(context, 1)

    def sync_server_stream(request: bytes, context: Any) -> Iterator[bytes]:
        started[SYNC_SERVER_STREAM] += 1
        for _ in range(2):
            yield _seen(context, 1)

    if aio:
        handlers = {
            METHODS[UNARY]: grpc.unary_unary_rpc_method_handler(aunary),
            METHODS[SERVER_STREAM]: grpc.unary_stream_rpc_method_handler(aserver_stream),
            METHODS[CLIENT_STREAM]: grpc.stream_unary_rpc_method_handler(aclient_stream),
            METHODS[BIDI]: grpc.stream_stream_rpc_method_handler(abidi),
            METHODS[SERVER_STREAM_WRITE]: grpc.unary_stream_rpc_method_handler(
                aserver_stream_write
            ),
            METHODS[BIDI_WRITE]: grpc.stream_stream_rpc_method_handler(abidi_write),
            METHODS[SYNC_UNARY]: grpc.unary_unary_rpc_method_handler(sync_unary),
            METHODS[SYNC_SERVER_STREAM]: grpc.unary_stream_rpc_method_handler(sync_server_stream),
        }
    else:
        handlers = {
            METHODS[UNARY]: grpc.unary_unary_rpc_method_handler(unary),
            METHODS[SERVER_STREAM]: grpc.unary_stream_rpc_method_handler(server_stream),
            METHODS[CLIENT_STREAM]: grpc.stream_unary_rpc_method_handler(client_stream),
            METHODS[BIDI]: grpc.stream_stream_rpc_method_handler(bidi),
        }
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


@dataclass
class GuardedServer:
    kind: str
    port: int
    guard: Guard
    started: Counter[str] = field(default_factory=Counter)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def _bind(server: Any, credentials: Any) -> int:
    if credentials is None:
        return int(server.add_insecure_port("127.0.0.1:0"))
    return int(server.add_secure_port("127.0.0.1:0", credentials))


@contextmanager
def _sync_guarded(
    credentials: Any, guard: Guard, workers: int, extra: Iterable[Any]
) -> Iterator[GuardedServer]:
    started: Counter[str] = Counter()
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc-handler")
    server = grpc.server(executor, interceptors=[guard.server_interceptor()])
    try:
        server.add_generic_rpc_handlers((shapes_handler(started, aio=False), *extra))
        port = _bind(server, credentials)
        server.start()
        yield GuardedServer("sync", port, guard, started)
    finally:
        server.stop(grace=None).wait(STOP_TIMEOUT)
        executor.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _aio_guarded(credentials: Any, guard: Guard, extra: Iterable[Any]) -> Iterator[GuardedServer]:
    started: Counter[str] = Counter()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="aio-guarded-loop", daemon=True)
    thread.start()
    holder: dict[str, Any] = {}

    async def start() -> int:
        server = grpc.aio.server(interceptors=[guard.aio_server_interceptor()])
        holder["server"] = server
        server.add_generic_rpc_handlers((shapes_handler(started, aio=True), *extra))
        port = _bind(server, credentials)
        await server.start()
        return port

    async def stop() -> None:
        if "server" in holder:
            await holder["server"].stop(None)
        await loop.shutdown_default_executor()

    try:
        port = asyncio.run_coroutine_threadsafe(start(), loop).result(STOP_TIMEOUT)
        yield GuardedServer("aio", port, guard, started)
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(STOP_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT)
        loop.close()


@contextmanager
def serve_guarded(
    kind: str,
    credentials: Any,
    guard: Guard,
    *,
    workers: int = 4,
    extra: Iterable[Any] = (),
) -> Iterator[GuardedServer]:
    """A ``sync`` or ``aio`` server with ``guard`` on 127.0.0.1:0 (``credentials=None``:
    plaintext) and any ``extra`` generic handlers; stopped (threads joined) on exit. Sync
    handler threads are named ``grpc-handler...``."""
    if kind == "sync":
        with _sync_guarded(credentials, guard, workers, extra) as running:
            yield running
    else:
        with _aio_guarded(credentials, guard, extra) as running:
            yield running


# -- calling the Shapes service --------------------------------------------------------------------
def invoke(
    channel: grpc.Channel,
    shape: str,
    *,
    metadata: Iterable[tuple[str, str]] = (),
    requests: int = 2,
) -> list[dict[str, Any]]:
    """Call one Shapes method; the decoded replies (raises ``grpc.RpcError``)."""
    path = method_path(shape)
    md = list(metadata)
    if shape in REQUEST_STREAMING:
        stream = iter([b"r"] * requests)
        if shape in RESPONSE_STREAMING:
            replies = list(channel.stream_stream(path)(stream, metadata=md, timeout=TIMEOUT))
        else:
            replies = [channel.stream_unary(path)(stream, metadata=md, timeout=TIMEOUT)]
    elif shape in RESPONSE_STREAMING:
        replies = list(channel.unary_stream(path)(b"r", metadata=md, timeout=TIMEOUT))
    else:
        replies = [channel.unary_unary(path)(b"r", metadata=md, timeout=TIMEOUT)]
    return [json.loads(reply) for reply in replies]


def invoke_error(channel: grpc.Channel, shape: str, **kwargs: Any) -> grpc.RpcError:
    """The error of a call that must fail."""
    try:
        seen = invoke(channel, shape, **kwargs)
    except grpc.RpcError as exc:
        return exc
    pytest.fail(f"the call succeeded but must fail; the handler saw {seen}")


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


# -- an HTTPS JWKS server --------------------------------------------------------------------------
class _QuietHTTPServer(ThreadingHTTPServer):
    """Keeps a handler's error (a client that hung up mid-answer) in ``errors`` instead of
    printing it on the process's stderr, where a later CLI test would capture it as its own."""

    errors: list[str]

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.errors.append(f"{client_address}: {sys.exc_info()[1]!r}")


class JwksServer:
    """A JWKS over real HTTPS on 127.0.0.1:0 (certificate from ``ca``). ``document`` can be
    replaced at any time; ``status`` other than 200 simulates an outage; ``hits`` counts GETs;
    ``redirect_to`` answers 302."""

    def __init__(self, ca: CertificateAuthority, directory: Path) -> None:
        leaf = ca.issue(Profile.SERVER, SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"]))
        cert_file = directory / "jwks-server.crt"
        key_file = directory / "jwks-server.key"
        cert_file.write_bytes(leaf.chain_pem())
        key_file.write_bytes(leaf.key_pem())
        self.document: Any = {"keys": []}
        self.status = 200
        self.redirect_to: str | None = None
        self.hits = 0
        self.delay = 0.0
        self.errors: list[str] = []
        self._closing = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                if owner.delay and owner._closing.wait(owner.delay):
                    return  # the test is over: answer nothing rather than write late
                if owner.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", owner.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = (
                    owner.document
                    if isinstance(owner.document, bytes)
                    else json.dumps(owner.document).encode()
                )
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        self.httpd = _QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.errors = self.errors
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="jwks-https"
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._closing.set()
        self.httpd.shutdown()
        self.thread.join(STOP_TIMEOUT)
        self.httpd.server_close()


@pytest.fixture
def jwks_server(pki: Pki, tmp_path: Path) -> Iterator[JwksServer]:
    with JwksServer(pki.ca, tmp_path) as server:
        yield server


def snapshot_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What changed between two :meth:`AuthStats.snapshot` values."""
    delta: dict[str, Any] = {"allowed": after["allowed"] - before["allowed"]}
    for key in ("unauthenticated", "permission_denied"):
        changed = {
            reason: count - before[key].get(reason, 0)
            for reason, count in after[key].items()
            if count != before[key].get(reason, 0)
        }
        delta[key] = changed
    delta["internal"] = after["internal"] - before["internal"]
    return delta


WaitFor = Callable[[Callable[[], bool]], None]


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` (bounded) until it holds; fail the test otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    pytest.fail("condition not met in time")


class Issuer:
    """A token callable: counts calls, can block on an event or fail."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False
        self.threads: list[str] = []

    def __call__(self) -> tuple[str, float]:
        self.calls += 1
        self.threads.append(threading.current_thread().name)
        if not self.gate.wait(TIMEOUT):
            raise TimeoutError("gate never opened")
        if self.fail:
            raise OSError("token service down (secret detail)")
        return f"token.number.{self.calls}", time.time() + self.lifetime


def jwk(key: Any, kid: str, **extra: Any) -> dict[str, Any]:
    """The public JWK of ``key`` under ``kid``, with ``extra`` members."""
    entry = VerificationKey.from_public_key(key, kid=kid).to_jwk()
    entry.update(extra)
    return entry


def refused(verifier: JWTVerifier, token: str, now: float) -> str:
    """The reason ``verifier`` refuses ``token`` at ``now`` (fails if it accepts)."""
    with pytest.raises(AuthenticationError) as caught:
        verifier.verify(token, now=now)
    return caught.value.reason
