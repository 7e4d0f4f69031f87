"""The negative matrix over real servers: every way a caller can fail authentication, each for
all four handler shapes on ``grpc.server`` and ``grpc.aio.server``, with positive controls.

Every server here is real (127.0.0.1:0, mTLS from the session PKI, or plaintext) and guarded by
``RequireClientCert`` (the session client's SPIFFE ID only) and ``RequireBearerToken`` (ES256
and RS256 keys, issuer, audience, scope ``shapes.call``, 2 KiB token limit). For each failure
the test checks the status code, that the peer sees only the generic details (not the reason,
not the token), that the handler never started, that the server counted the reason and logged
it without the token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from grpcsec.authn import (
    ClientCertAllowList,
    RequireBearerToken,
    RequireClientCert,
    TokenRequirement,
)
from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.interceptors import (
    PERMISSION_DENIED_DETAILS,
    UNAUTHENTICATED_DETAILS,
    Guard,
)
from tests.authn.conftest import (
    AIO_VARIANTS,
    RSA_KID,
    SCOPE,
    SERVICE,
    SHAPES,
    GuardedServer,
    Keys,
    Minter,
    bearer,
    hs256_with_key_confusion,
    invoke,
    invoke_error,
    make_verifier,
    raw_token,
    serve_guarded,
    snapshot_delta,
    standard_claims,
)
from tests.conftest import CLIENT_SPIFFE_ID, Pki

KINDS = ("sync", "aio")
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED


def guard_for(keys: Keys) -> Guard:
    verifier = make_verifier(keys, max_token_bytes=2048)
    return Guard(
        RequireClientCert(ClientCertAllowList(spiffe_ids=[CLIENT_SPIFFE_ID])),
        RequireBearerToken(verifier, methods={f"/{SERVICE}/*": TokenRequirement(scopes=[SCOPE])}),
    )


@dataclass
class Setup:
    """One kind's servers and client channels."""

    mtls: GuardedServer
    tls_only: GuardedServer
    plaintext: GuardedServer
    client: grpc.Channel
    intruder: grpc.Channel
    no_cert: grpc.Channel
    insecure: grpc.Channel


@pytest.fixture(scope="module", params=KINDS)
def setup(
    request: pytest.FixtureRequest, pki: Pki, keys: Keys, intruder_client: Any
) -> Iterator[Setup]:
    kind = str(request.param)
    mtls_creds = server_credentials(pki.server, client_ca=pki.ca)
    tls_creds = server_credentials(pki.server)
    with (
        serve_guarded(kind, mtls_creds, guard_for(keys)) as mtls,
        serve_guarded(kind, tls_creds, guard_for(keys)) as tls_only,
        serve_guarded(kind, None, guard_for(keys)) as plaintext,
    ):
        channels = [
            grpc.secure_channel(mtls.target, channel_credentials(ca=pki.ca, identity=pki.client)),
            grpc.secure_channel(
                mtls.target, channel_credentials(ca=pki.ca, identity=intruder_client)
            ),
            grpc.secure_channel(tls_only.target, channel_credentials(ca=pki.ca)),
            grpc.insecure_channel(plaintext.target),
        ]
        try:
            yield Setup(mtls, tls_only, plaintext, *channels)
        finally:
            for channel in channels:
                channel.close()


@dataclass(frozen=True)
class Case:
    """One failure: how to call, and what must come back."""

    name: str
    code: grpc.StatusCode
    reason: str
    channel: str = "client"  # client | intruder | no_cert | insecure
    server: str = "mtls"  # mtls | tls_only | plaintext


CASES = [
    Case("no_token", UNAUTHENTICATED, "missing_token"),
    Case("malformed_token", UNAUTHENTICATED, "malformed_token"),
    Case("alg_none", UNAUTHENTICATED, "algorithm_not_allowed"),
    Case("hs256_signed_with_rsa_public_key", UNAUTHENTICATED, "algorithm_not_allowed"),
    Case("wrong_signature", UNAUTHENTICATED, "invalid_signature"),
    Case("expired", UNAUTHENTICATED, "expired"),
    Case("not_yet_valid", UNAUTHENTICATED, "not_yet_valid"),
    Case("wrong_issuer", UNAUTHENTICATED, "invalid_issuer"),
    Case("wrong_audience", UNAUTHENTICATED, "invalid_audience"),
    Case("missing_scope", PERMISSION_DENIED, "insufficient_scope"),
    Case("unknown_kid", UNAUTHENTICATED, "unknown_kid"),
    Case("oversized_token", UNAUTHENTICATED, "token_too_large"),
    Case("duplicate_authorization", UNAUTHENTICATED, "duplicate_authorization"),
    Case("not_bearer", UNAUTHENTICATED, "not_bearer"),
    Case(
        "certificate_not_on_allow_list",
        PERMISSION_DENIED,
        "certificate_not_allowed",
        channel="intruder",
    ),
    Case(
        "tls_without_client_certificate",
        UNAUTHENTICATED,
        "no_client_certificate",
        channel="no_cert",
        server="tls_only",
    ),
    Case(
        "plaintext_peer",
        UNAUTHENTICATED,
        "no_transport_security",
        channel="insecure",
        server="plaintext",
    ),
]


@pytest.fixture(scope="module")
def tokens(keys: Keys, mint: Minter) -> dict[str, str]:
    """Every token the cases send, minted once (the clock is real; margins are minutes)."""
    now = time.time()
    return {
        "valid_es256": mint(),
        "valid_rs256": mint(key=keys.rsa, kid=RSA_KID),
        "malformed_token": "this-is-not-a-jwt",
        "alg_none": raw_token({"alg": "none", "typ": "JWT"}, standard_claims(now)),
        "hs256_signed_with_rsa_public_key": hs256_with_key_confusion(
            keys.rsa_public_pem(), RSA_KID, standard_claims(now)
        ),
        "wrong_signature": mint(key=keys.foreign),  # claims to be ec-1
        "expired": mint(now=now - 3600),
        "not_yet_valid": mint(not_before=now + 3600),
        "wrong_issuer": mint(issuer="https://evil.test"),
        "wrong_audience": mint(audience="another-service"),
        "missing_scope": mint(scopes=["shapes.read"]),
        "unknown_kid": mint(key=keys.foreign, kid="unknown-kid"),
        "oversized_token": mint(claims={"padding": "x" * 3000}),
    }


def metadata_for(case: Case, tokens: dict[str, str]) -> list[tuple[str, str]]:
    valid = tokens["valid_es256"]
    if case.name == "no_token":
        return []
    if case.name == "duplicate_authorization":
        return [*bearer(valid), *bearer(tokens["valid_rs256"])]
    if case.name == "not_bearer":
        return [("authorization", f"Basic {valid}")]
    return bearer(tokens.get(case.name, valid))


def server_of(setup: Setup, case: Case) -> GuardedServer:
    return {"mtls": setup.mtls, "tls_only": setup.tls_only, "plaintext": setup.plaintext}[
        case.server
    ]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_refused_with_generic_details_and_counted(
    setup: Setup,
    tokens: dict[str, str],
    case: Case,
    shape: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The call fails with the right code, the peer learns nothing else, the handler never
    starts, and the server counts and logs the reason (never the token)."""
    caplog.set_level(logging.INFO, logger="grpcsec.authn")
    server = server_of(setup, case)
    before = server.guard.stats.snapshot()
    started = dict(server.started)
    metadata = metadata_for(case, tokens)

    error = invoke_error(getattr(setup, case.channel), shape, metadata=metadata)

    assert error.code() is case.code, error.details()
    expected = (
        UNAUTHENTICATED_DETAILS if case.code is UNAUTHENTICATED else PERMISSION_DENIED_DETAILS
    )
    assert error.details() == expected
    assert dict(server.started) == started, "the handler must not start"
    delta = snapshot_delta(before, server.guard.stats.snapshot())
    bucket = "unauthenticated" if case.code is UNAUTHENTICATED else "permission_denied"
    assert delta[bucket] == {case.reason: 1}
    assert delta["allowed"] == 0
    logged = caplog.text
    assert f"reason={case.reason}" in logged
    for _key, value in metadata:
        assert value.split(" ", 1)[-1] not in logged, "the token must never be logged"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("token", ["valid_es256", "valid_rs256"])
def test_positive_control_passes_with_identity_and_claims(
    setup: Setup, tokens: dict[str, str], token: str, shape: str
) -> None:
    """A valid token (ES256 or RS256) from an allowed client certificate reaches the handler,
    which sees the certificate identity and the token claims; a streamed call is checked once."""
    before = setup.mtls.guard.stats.snapshot()
    replies = invoke(setup.client, shape, metadata=bearer(tokens[token]), requests=3)
    assert replies
    for reply in replies:
        assert reply["principal"] == reply["call_principal"] == CLIENT_SPIFFE_ID
        assert reply["sub"] == "alice"
        assert reply["scopes"] == SCOPE
    if shape in ("client_stream",):
        assert replies[0]["requests"] == 3
    delta = snapshot_delta(before, setup.mtls.guard.stats.snapshot())
    assert delta == {"allowed": 1, "unauthenticated": {}, "permission_denied": {}, "internal": 0}


@pytest.mark.parametrize("setup", ["aio"], indirect=True)
@pytest.mark.parametrize("shape", AIO_VARIANTS)
def test_aio_coroutine_and_sync_handlers_are_guarded(
    setup: Setup, tokens: dict[str, str], shape: str
) -> None:
    """On grpc.aio, coroutine handlers that use context.read/write and plain sync handlers
    (run on grpc.aio's executor) are guarded like the others: positive and negative."""
    assert setup.mtls.kind == "aio"
    replies = invoke(setup.client, shape, metadata=bearer(tokens["valid_es256"]))
    assert replies
    assert all(r["sub"] == "alice" and r["call_principal"] == CLIENT_SPIFFE_ID for r in replies)
    started = setup.mtls.started[shape]
    error = invoke_error(setup.client, shape, metadata=bearer(tokens["expired"]))
    assert error.code() is UNAUTHENTICATED
    assert error.details() == UNAUTHENTICATED_DETAILS
    assert setup.mtls.started[shape] == started
    error = invoke_error(setup.intruder, shape, metadata=bearer(tokens["valid_es256"]))
    assert error.code() is PERMISSION_DENIED
    assert error.details() == PERMISSION_DENIED_DETAILS
