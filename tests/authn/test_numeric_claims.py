"""``exp``/``nbf``/``iat`` must be whole, finite NumericDates (issue 11, item 6).

Every hostile token here is *correctly signed* over crafted payload bytes (PyJWT's JWS layer
signs any bytes), so the refusal comes from the claim check, not from the signature. Python's
JSON reader accepts ``NaN``/``Infinity`` and turns ``1e400`` into ``inf``; before the fix a
token with ``"exp": NaN`` never expired (``now >= NaN`` is false). Each refusal has an accepted
control that differs only in the value.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from jwt.api_jws import PyJWS

from grpcsec.authn import ClientCertAllowList, JWTVerifier, RequireBearerToken, RequireClientCert
from grpcsec.authn.numeric import MAX_NUMERIC_DATE, load_claims, numeric_date
from grpcsec.authn.tokens import public_jwks
from grpcsec.authn.verified import REASONS
from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.errors import AuthenticationError
from grpcsec.interceptors import UNAUTHENTICATED_DETAILS, Guard
from tests.authn.conftest import (
    AUDIENCE,
    EC_KID,
    ISSUER,
    SCOPE,
    Keys,
    bearer,
    invoke,
    invoke_error,
    make_verifier,
    serve_guarded,
    snapshot_delta,
)
from tests.conftest import CLIENT_SPIFFE_ID, Pki

NOW = 1_900_000_000

# (claim, JSON text of its value): every one is refused with invalid_numeric_date.
HOSTILE = [
    ("exp", "NaN"),
    ("exp", "Infinity"),
    ("exp", "-Infinity"),
    ("exp", "1e400"),
    ("exp", "-1e400"),
    ("exp", f"{NOW + 600}.5"),
    ("exp", "true"),
    ("exp", '"1900000600"'),
    ("exp", "[1900000600]"),
    ("exp", str(10**30)),
    ("exp", str(10**400)),  # too large for a float: math.isfinite would overflow
    ("exp", str(MAX_NUMERIC_DATE + 1)),
    ("exp", "1e300"),
    ("nbf", "NaN"),
    ("nbf", "-Infinity"),
    ("nbf", "-1"),
    ("nbf", "1.5"),
    ("nbf", "false"),
    ("iat", "NaN"),
    ("iat", "-Infinity"),
    ("iat", "0.25"),
    ("iat", "true"),
    ("iat", '"yesterday"'),
]


def payload(now: int, **raw: str) -> bytes:
    """Standard claims as JSON text, with the raw JSON text of some values substituted."""
    values = {
        "iss": json.dumps(ISSUER),
        "sub": '"alice"',
        "aud": json.dumps(AUDIENCE),
        "iat": str(now),
        "exp": str(now + 600),
        "scope": json.dumps(SCOPE),
    }
    values.update(raw)
    return ("{" + ",".join(f'"{k}":{v}' for k, v in values.items()) + "}").encode()


def sign(keys: Keys, data: bytes) -> str:
    return PyJWS().encode(data, keys.ec, algorithm="ES256", headers={"kid": EC_KID})


def refusal(verifier: JWTVerifier, token: str, now: float = NOW) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        verifier.verify(token, now=now)
    assert caught.value.reason in REASONS
    return caught.value


# -- the rule -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [0, NOW, MAX_NUMERIC_DATE, float(NOW), 1_900_000_000.0],
)
def test_whole_seconds_in_range_are_numeric_dates(value: object) -> None:
    assert numeric_date(value) == int(value)  # type: ignore[call-overload]
    assert isinstance(numeric_date(value), int)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
        (True, "boolean"),
        (False, "boolean"),
        ("1900000000", "string"),
        (None, "null"),
        ([1], "list"),
        (1.5, "fraction"),
        (-1, "outside"),
        (MAX_NUMERIC_DATE + 1, "outside"),
        (10**5000, "bit number"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, int) else None,
)
def test_other_values_are_refused_with_why(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        numeric_date(value)


def test_payload_reader_keeps_non_json_numbers_as_markers() -> None:
    claims = load_claims(b'{"a": NaN, "b": -Infinity, "c": 1e400, "d": 1.5, "e": 7}')
    assert [repr(claims[k]) for k in "abc"] == ["NaN", "-Infinity", "1e400"]
    assert claims["d"] == 1.5
    assert claims["e"] == 7


# -- the verifier ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("claim", "raw"), HOSTILE, ids=[f"{c}={r}" for c, r in HOSTILE])
def test_hostile_time_claims_are_refused(keys: Keys, claim: str, raw: str) -> None:
    verifier = make_verifier(keys, leeway=0)
    control = sign(keys, payload(NOW))
    assert verifier.verify(control, now=NOW).expires_at == NOW + 600
    token = sign(keys, payload(NOW, **{claim: raw}))
    error = refusal(verifier, token)
    assert error.reason == "invalid_numeric_date"
    assert error.message.startswith("token sha256:")
    assert f": {claim} " in error.message
    assert token not in str(error)


def test_a_nan_expiry_never_outlives_its_time(keys: Keys) -> None:
    """The attack: before the fix ``now >= NaN + leeway`` was false, so it never expired."""
    verifier = make_verifier(keys, leeway=0)
    token = sign(keys, payload(NOW, exp="NaN"))
    for moment in (NOW, NOW + 10**6, 4_000_000_000):
        assert refusal(verifier, token, moment).reason == "invalid_numeric_date"


def test_whole_float_times_are_accepted(keys: Keys) -> None:
    verifier = make_verifier(keys, leeway=0)
    token = sign(keys, payload(NOW, exp=f"{NOW + 600}.0", iat=f"{NOW}.0", nbf=f"{NOW}.0"))
    verified = verifier.verify(token, now=NOW)
    assert (verified.expires_at, verified.not_before, verified.issued_at) == (
        NOW + 600,
        NOW,
        NOW,
    )


def test_non_json_numbers_in_other_claims_are_malformed(keys: Keys) -> None:
    """A NaN elsewhere cannot reach handlers or ``--json`` output (which would not be JSON)."""
    verifier = make_verifier(keys, leeway=0)
    for raw in ("NaN", "Infinity", "1e999", '{"deep": [-Infinity]}'):
        token = sign(keys, payload(NOW, level=raw))
        error = refusal(verifier, token)
        assert error.reason == "malformed_token", raw
        assert "not JSON" in error.message
    header = PyJWS().encode(
        payload(NOW), keys.ec, algorithm="ES256", headers={"kid": EC_KID, "x": float("nan")}
    )
    assert refusal(verifier, header).reason == "malformed_token"
    finite = verifier.verify(sign(keys, payload(NOW, level="1e300")), now=NOW)
    assert finite.claims["level"] == 1e300


def test_explain_reports_the_reason_and_json_stays_json(keys: Keys) -> None:
    verifier = make_verifier(keys, leeway=0, cache_size=0)
    for raw in ("NaN", "1e300", "true"):
        report = verifier.explain(sign(keys, payload(NOW, exp=raw)), now=NOW)
        assert (report.accepted, report.reason) == (False, "invalid_numeric_date")
        text = json.dumps(report.to_json(), allow_nan=False)
        assert json.loads(text)["seconds_until"]["exp"] is None


# -- a real secured server ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_real_server_refuses_a_nan_expiry_and_accepts_the_control(
    pki: Pki, keys: Keys, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="grpcsec.authn")
    now = int(time.time())
    guard = Guard(
        RequireClientCert(ClientCertAllowList(spiffe_ids=[CLIENT_SPIFFE_ID])),
        RequireBearerToken(make_verifier(keys)),
    )
    credentials = server_credentials(pki.server, client_ca=pki.ca)
    with serve_guarded(kind, credentials, guard) as server:
        channel = grpc.secure_channel(
            server.target, channel_credentials(ca=pki.ca, identity=pki.client)
        )
        with channel:
            before = guard.stats.snapshot()
            for claim, raw in (("exp", "NaN"), ("nbf", "-Infinity"), ("iat", "1.5")):
                hostile = sign(keys, payload(now, **{claim: raw}))
                error = invoke_error(channel, "unary", metadata=bearer(hostile))
                assert error.code() is grpc.StatusCode.UNAUTHENTICATED
                assert error.details() == UNAUTHENTICATED_DETAILS
                assert hostile not in caplog.text
            delta = snapshot_delta(before, guard.stats.snapshot())
            assert delta["unauthenticated"] == {"invalid_numeric_date": 3}
            assert delta["allowed"] == 0
            assert "reason=invalid_numeric_date" in caplog.text
            assert not server.started
            control = invoke(channel, "unary", metadata=bearer(sign(keys, payload(now))))
            assert control[0]["sub"] == "alice"


# -- the CLI --------------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "grpcsec.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_token_verify_reports_the_reason_in_one_line(keys: Keys, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(public_jwks([(keys.ec, EC_KID)])))
    now = int(time.time())
    common = ("--jwks", str(jwks), "--audience", AUDIENCE, "--issuer", ISSUER)
    accepted = _cli("token", "verify", sign(keys, payload(now)), *common)
    assert accepted.returncode == 0, accepted.stderr
    for raw in ("NaN", "1e300", str(10**30)):
        result = _cli("token", "verify", sign(keys, payload(now, exp=raw)), *common)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        rejected = [line for line in result.stdout.splitlines() if "rejected" in line]
        assert len(rejected) == 1
        assert "(invalid_numeric_date): " in rejected[0]
        assert "exp " in rejected[0]
        as_json = _cli("token", "verify", sign(keys, payload(now, exp=raw)), *common, "--json")
        assert as_json.returncode == 1
        report: dict[str, Any] = json.loads(as_json.stdout)
        assert report["reason"] == "invalid_numeric_date"
