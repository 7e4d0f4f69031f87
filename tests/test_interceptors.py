"""The interceptor core (grpcsec.interceptors): where checks run, how failures map to status
codes, what handlers see, on real ``grpc.server`` and ``grpc.aio.server`` over mTLS.

The token and certificate checks have their own tests (tests/authn); here the checks are small
stand-ins for what the authorization layer will plug in: a slow check, a check that crashes,
a policy-like check that denies by claim.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import grpc
import pytest

from grpcsec.authn import CallInfo, ClientCertAllowList, RequireBearerToken, RequireClientCert
from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.denial import denial_of
from grpcsec.errors import AuthenticationError, AuthorizationError
from grpcsec.interceptors import (
    INTERNAL_DETAILS,
    PERMISSION_DENIED_DETAILS,
    UNAUTHENTICATED_DETAILS,
    AuthStats,
    Guard,
    call_info,
    claims,
)
from tests.authn.conftest import (
    BIDI,
    SHAPES,
    UNARY,
    Keys,
    Minter,
    bearer,
    invoke,
    invoke_error,
    make_keys,
    make_verifier,
    serve_guarded,
)
from tests.conftest import CLIENT_SPIFFE_ID, TIMEOUT, Pki

KINDS = ("sync", "aio")
EXTRA_SERVICE = "grpcsec.test.Extra"


class Recorder:
    """A check that records the thread it ran on and can sleep."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.threads: list[str] = []
        self.calls: list[CallInfo] = []
        self.spiffe_ids: list[str | None] = []
        self._lock = threading.Lock()

    def check(self, call: CallInfo) -> None:
        with self._lock:
            self.threads.append(threading.current_thread().name)
            self.calls.append(call)
            self.spiffe_ids.append(call.peer.spiffe_id)
        if self.delay:
            time.sleep(self.delay)


class Crash:
    """A check with a bug: its message holds something secret."""

    def check(self, call: CallInfo) -> None:
        raise RuntimeError("database password is hunter2")


class OnlySubjects:
    """A policy-like check after the token check: allows only some ``sub`` claims."""

    def __init__(self, *subjects: str) -> None:
        self.subjects = set(subjects)

    def check(self, call: CallInfo) -> None:
        if call.subject not in self.subjects:
            raise AuthorizationError(f"subject {call.subject} is not allowed")


def extra_handler(*, aio: bool) -> grpc.GenericRpcHandler:
    """Handlers that use the context proxy: abort, metadata, trailing metadata, peer()."""

    def abort(request: bytes, context: Any) -> bytes:
        context.set_trailing_metadata((("x-handler", "yes"),))
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        return b""

    def metadata(request: bytes, context: Any) -> bytes:
        keys = sorted({key for key, _ in context.invocation_metadata()})
        return (",".join(keys) + "|" + str(claims(context) is not None)).encode()

    async def aabort(request: bytes, context: Any) -> bytes:
        context.set_trailing_metadata((("x-handler", "yes"),))
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        return b""

    async def ametadata(request: bytes, context: Any) -> bytes:
        return metadata(request, context)

    return grpc.method_handlers_generic_handler(
        EXTRA_SERVICE,
        {
            "Abort": grpc.unary_unary_rpc_method_handler(aabort if aio else abort),
            "Metadata": grpc.unary_unary_rpc_method_handler(ametadata if aio else metadata),
        },
    )


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


@pytest.fixture(scope="module")
def mint(keys: Keys) -> Minter:
    return Minter(keys)


@pytest.fixture
def mtls(pki: Pki) -> tuple[Any, Any]:
    return (
        server_credentials(pki.server, client_ca=pki.ca),
        channel_credentials(ca=pki.ca, identity=pki.client),
    )


@pytest.fixture
def channel_to(mtls: tuple[Any, Any]) -> Iterator[Any]:
    opened: list[grpc.Channel] = []

    def open_channel(target: str) -> grpc.Channel:
        channel = grpc.secure_channel(target, mtls[1])
        opened.append(channel)
        return channel

    yield open_channel
    for channel in opened:
        channel.close()


def test_sync_checks_run_on_handler_threads_not_the_dispatch_thread(
    mtls: tuple[Any, Any], channel_to: Any
) -> None:
    """A slow check (0.3 s) does not serialize dispatch: 4 concurrent calls finish in about
    0.3 s, not 1.2 s, and every check ran on a handler thread."""
    recorder = Recorder(delay=0.3)
    with serve_guarded("sync", mtls[0], Guard(recorder), workers=4) as server:
        channel = channel_to(server.target)
        invoke(channel, UNARY)  # connect first
        recorder.threads.clear()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda _: invoke(channel, UNARY), range(4)))
        elapsed = time.monotonic() - started
    assert len(results) == 4
    assert elapsed < 0.9, f"checks were serialized: {elapsed:.2f} s"
    assert len(recorder.threads) == 4
    assert all(name.startswith("grpc-handler") for name in recorder.threads), recorder.threads


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_crashing_check_is_internal_with_generic_details(
    kind: str, shape: str, mtls: tuple[Any, Any], channel_to: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Any other exception in a check is INTERNAL with a generic message; the exception and its
    text reach only the server log (grpc.aio would otherwise send it to the peer)."""
    caplog.set_level(logging.INFO, logger="grpcsec.authn")
    guard = Guard(Crash())
    with serve_guarded(kind, mtls[0], guard) as server:
        error = invoke_error(channel_to(server.target), shape)
        assert server.started[shape] == 0
    assert error.code() is grpc.StatusCode.INTERNAL
    assert error.details() == INTERNAL_DETAILS
    assert "hunter2" in caplog.text
    assert "RuntimeError" in caplog.text
    assert guard.stats.snapshot()["internal"] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_checks_run_in_order_and_a_later_check_sees_the_claims(
    kind: str, keys: Keys, mint: Minter, mtls: tuple[Any, Any], channel_to: Any
) -> None:
    """The authorization layer plugs in as one more check: it sees the token claims the token
    check attached, and its AuthorizationError (no reason) is PERMISSION_DENIED / ``denied``."""
    guard = Guard(
        RequireClientCert(ClientCertAllowList(spiffe_ids=[CLIENT_SPIFFE_ID])),
        RequireBearerToken(make_verifier(keys)),
        OnlySubjects("alice"),
    )
    with serve_guarded(kind, mtls[0], guard) as server:
        channel = channel_to(server.target)
        replies = invoke(channel, BIDI, metadata=bearer(mint(subject="alice")))
        assert {r["sub"] for r in replies} == {"alice"}
        error = invoke_error(channel, BIDI, metadata=bearer(mint(subject="mallory")))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == PERMISSION_DENIED_DETAILS
    assert guard.stats.snapshot()["permission_denied"] == {"denied": 1}


@pytest.mark.parametrize("kind", KINDS)
def test_first_failing_check_wins_and_later_checks_do_not_run(
    kind: str, mtls: tuple[Any, Any], channel_to: Any
) -> None:
    """A token check that fails stops the chain: the recorder after it never runs."""

    class NoToken:
        def check(self, call: CallInfo) -> None:
            raise AuthenticationError("no token here", reason="missing_token")

    after = Recorder()
    with serve_guarded(kind, mtls[0], Guard(NoToken(), after)) as server:
        error = invoke_error(channel_to(server.target), UNARY)
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == UNAUTHENTICATED_DETAILS
    assert after.calls == []


@pytest.mark.parametrize("kind", KINDS)
def test_check_sees_method_metadata_as_received_and_peer(
    kind: str, mtls: tuple[Any, Any], channel_to: Any
) -> None:
    """CallInfo carries the full method path, the metadata as sent (repeated keys kept) and the
    verified certificate identity."""
    recorder = Recorder()
    with serve_guarded(kind, mtls[0], Guard(recorder)) as server:
        invoke(channel_to(server.target), UNARY, metadata=[("x-a", "1"), ("x-a", "2")])
    (call,) = recorder.calls
    assert call.method == "/grpcsec.test.Shapes/Unary"
    assert call.service == "grpcsec.test.Shapes"
    assert call.method_name == "Unary"
    assert call.metadata_values("x-a") == ["1", "2"]
    assert recorder.spiffe_ids == [CLIENT_SPIFFE_ID]
    assert call.peer.spiffe_id == CLIENT_SPIFFE_ID  # built during the call, kept
    assert call.claims is None


class Keeper:
    """A check that keeps the CallInfo without reading its peer (an audit log might)."""

    def __init__(self) -> None:
        self.calls: list[CallInfo] = []

    def check(self, call: CallInfo) -> None:
        self.calls.append(call)


@pytest.mark.parametrize("kind", KINDS)
def test_peer_of_a_finished_aio_call_raises_instead_of_crashing(
    kind: str, mtls: tuple[Any, Any], channel_to: Any
) -> None:
    """A grpc.aio call's auth context must not be read once the call is over (grpcio crashes),
    so a CallInfo kept past its call, never asked for its peer during the call, refuses there;
    a sync server's context stays valid, so the peer can still be built."""
    keeper = Keeper()
    extra = [extra_handler(aio=kind == "aio")]
    with serve_guarded(kind, mtls[0], Guard(keeper), extra=extra) as server:
        channel = channel_to(server.target)
        channel.unary_unary(f"/{EXTRA_SERVICE}/Metadata")(b"", timeout=TIMEOUT)  # no peer read
    # the server has stopped: every call is over and grpcio ran the termination callbacks
    (kept,) = keeper.calls
    if kind == "sync":
        assert kept.peer.spiffe_id == CLIENT_SPIFFE_ID
        return
    with pytest.raises(RuntimeError, match="finished call"):
        kept.peer  # noqa: B018


@pytest.mark.parametrize("kind", KINDS)
def test_handler_context_proxy_behaves_like_the_real_context(
    kind: str, mtls: tuple[Any, Any], channel_to: Any
) -> None:
    """Through the proxy the handler can still abort with its own status and trailing
    metadata, and read its invocation metadata; claims() is None without a token check."""
    extra = [extra_handler(aio=kind == "aio")]
    with serve_guarded(kind, mtls[0], Guard(Recorder()), extra=extra) as server:
        channel = channel_to(server.target)
        reply = channel.unary_unary(f"/{EXTRA_SERVICE}/Metadata")(
            b"", metadata=[("x-b", "1")], timeout=TIMEOUT
        )
        keys_seen, has_claims = reply.decode().split("|")
        assert "x-b" in keys_seen.split(",")
        assert has_claims == "False"
        with pytest.raises(grpc.RpcError) as caught:
            channel.unary_unary(f"/{EXTRA_SERVICE}/Abort")(b"", timeout=TIMEOUT)
    error: Any = caught.value
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == "no such thing"
    assert ("x-handler", "yes") in tuple(error.trailing_metadata())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_guard_without_checks_passes_every_call_unchanged(
    kind: str, shape: str, mtls: tuple[Any, Any], channel_to: Any
) -> None:
    """No checks: every shape works, the handler gets the real context (no CallInfo), and the
    calls are counted as allowed."""
    guard = Guard()
    with serve_guarded(kind, mtls[0], guard) as server:
        replies = invoke(channel_to(server.target), shape)
    assert replies
    assert all(r["checked"] is False and r["principal"] == CLIENT_SPIFFE_ID for r in replies)
    assert guard.stats.snapshot()["allowed"] == 1


def test_unknown_method_is_unimplemented(mtls: tuple[Any, Any], channel_to: Any) -> None:
    """grpcio's own answer for a method no handler serves is kept (nothing to wrap)."""
    with serve_guarded("sync", mtls[0], Guard(Crash())) as server:
        channel = channel_to(server.target)
        with pytest.raises(grpc.RpcError) as caught:
            channel.unary_unary("/grpcsec.test.Shapes/Nope")(b"", timeout=TIMEOUT)
    error: Any = caught.value
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED


def test_guard_refuses_objects_that_are_not_checks() -> None:
    with pytest.raises(TypeError, match="not a check"):
        Guard(object())  # type: ignore[arg-type]


def test_call_info_and_claims_are_none_for_a_plain_context() -> None:
    assert call_info(object()) is None
    assert claims(object()) is None


def test_stats_snapshot_counts_by_status_and_reason() -> None:
    stats = AuthStats()
    stats.record_allowed()
    expired = AuthenticationError("token expired", reason="expired")
    stats.record_denial(denial_of(expired, "/a/B"))
    stats.record_denial(denial_of(expired, "/a/B"))
    scope = AuthorizationError("scope missing", reason="insufficient_scope")
    stats.record_denial(denial_of(scope, "/a/B"))
    stats.record_denial(denial_of(RuntimeError("boom"), "/a/B"))
    assert stats.snapshot() == {
        "allowed": 1,
        "unauthenticated": {"expired": 2},
        "permission_denied": {"insufficient_scope": 1},
        "internal": 1,
    }
    assert stats.failures == 4


@pytest.mark.parametrize("kind", KINDS)
def test_each_call_is_decided_on_its_own_metadata(
    kind: str, keys: Keys, mint: Minter, mtls: tuple[Any, Any], channel_to: Any
) -> None:
    """The wrapper of a method is built once and serves every call of it: allowed, refused
    and allowed again on one channel, each call judged by the token it sent (a wrapper that
    kept the first call's metadata would let the second one through), for every shape."""
    guard = Guard(RequireBearerToken(make_verifier(keys)), OnlySubjects("alice"))
    with serve_guarded(kind, mtls[0], guard) as server:
        channel = channel_to(server.target)
        for shape in SHAPES:
            first = invoke(channel, shape, metadata=bearer(mint(subject="alice")))
            missing = invoke_error(channel, shape)
            other = invoke_error(channel, shape, metadata=bearer(mint(subject="mallory")))
            again = invoke(channel, shape, metadata=bearer(mint(subject="alice")))
            assert {r["sub"] for r in first + again} == {"alice"}, shape
            assert missing.code() is grpc.StatusCode.UNAUTHENTICATED, shape
            assert other.code() is grpc.StatusCode.PERMISSION_DENIED, shape
    assert guard.stats.snapshot()["allowed"] == 2 * len(SHAPES)


class _CallDetails(NamedTuple):
    """What grpcio passes to ``intercept_service`` (its class is an abstract protocol)."""

    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


def test_a_method_is_wrapped_once_on_both_server_kinds() -> None:
    """grpcio hands the interceptor the same handler for every call of a method; both
    interceptors return the same wrapper for it (no closures built per call), and a new
    wrapper for a different handler of the same method."""
    guard = Guard(Recorder())
    handler = grpc.unary_unary_rpc_method_handler(lambda request, _context: request)
    other = grpc.unary_unary_rpc_method_handler(lambda request, _context: request)
    details = _CallDetails("/grpcsec.test.Shapes/Unary", ())

    sync = guard.server_interceptor()
    first = sync.intercept_service(lambda _details: handler, details)
    assert sync.intercept_service(lambda _details: handler, details) is first
    assert first.unary_unary is not handler.unary_unary
    assert sync.intercept_service(lambda _details: other, details) is not first

    async def continuation(_details: Any) -> Any:
        return handler

    aio = guard.aio_server_interceptor()

    async def twice() -> tuple[Any, Any]:
        return (
            await aio.intercept_service(continuation, details),
            await aio.intercept_service(continuation, details),
        )

    one, two = asyncio.run(twice())
    assert one is two
    assert one.unary_unary is not handler.unary_unary
