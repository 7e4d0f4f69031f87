"""The demo's access acts: bearer tokens, then an A43 policy edited while the server runs.

One mTLS Greeter behind grpcsec's guard: a bearer-token check (verifying with a throwaway EC
key, audience ``greeter``) and an A43 policy watched on disk. The calls show a valid token
(allowed), an expired token, a token for another audience and no token (each refused with
``UNAUTHENTICATED``); the demo client allowed and a second client denied by the policy
(``PERMISSION_DENIED``); then the policy file is rewritten to allow the second client instead,
and the same two calls show the decision changed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.asymmetric import ec

from grpcsec.authn.tokens import mint_token, public_jwks
from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.credentials import channel_credentials
from grpcsec.demo.greeter import add_greeter, say_hello
from grpcsec.demo.rows import DemoRow, short_reason
from grpcsec.material import KeyPair
from grpcsec.pki import CERT_MODE, KEY_MODE, CertificateAuthority, PendingFile, write_files
from grpcsec.server import SecurityConfig, secure_server

__all__ = ["AccessPeers", "run_access_acts"]

_AUDIENCE = "greeter"
_ISSUER = "https://demo.grpcsec.internal"
_TIMEOUT = 5.0
_RELOAD_SECONDS = 0.1
_RELOAD_DEADLINE = 5.0


class AccessPeers:
    """The server pair and the two client pairs the acts use, with their principals."""

    def __init__(
        self,
        *,
        server: KeyPair,
        client: KeyPair,
        client_id: str,
        second: KeyPair,
        second_id: str,
    ) -> None:
        self.server = server
        self.client = client
        self.client_id = client_id
        self.second = second
        self.second_id = second_id


def _policy(principal: str) -> str:
    return json.dumps(
        {
            "name": "demo-greeter",
            "allow_rules": [
                {
                    "name": "greeters",
                    "source": {"principals": [principal]},
                    "request": {"paths": ["/helloworld.Greeter/SayHello"]},
                }
            ],
        },
        indent=2,
    )


def _call(
    target: str, ca: CertificateAuthority, identity: KeyPair, token: str | None
) -> tuple[str, str]:
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    options = [("grpc.use_local_subchannel_pool", 1)]
    credentials = channel_credentials(ca=ca, identity=identity)
    with grpc.secure_channel(target, credentials, options=options) as channel:
        try:
            reply = say_hello(channel, "grpcsec", timeout=_TIMEOUT, metadata=metadata)
        except grpc.RpcError as exc:
            return str(exc.code().name), short_reason(exc.details())
    return "OK", reply


def _row(scenario: str, expected: str, result: tuple[str, str]) -> DemoRow:
    code, text = result
    return DemoRow(
        scenario=scenario,
        expected=expected,
        code=code,
        outcome=text,
        passed=code == expected.split(" ", maxsplit=1)[0],
    )


def run_access_acts(
    workdir: Path, ca: CertificateAuthority, peers: AccessPeers, *, clock: Clock = SYSTEM_CLOCK
) -> tuple[DemoRow, ...]:
    """Run both acts against one guarded server and return their rows (see the module).
    ``clock`` dates the tokens and is what the server's verifier checks them against."""
    signing_key = ec.generate_private_key(ec.SECP256R1())
    (workdir / "jwks.json").write_text(json.dumps(public_jwks([(signing_key, None)])))

    def token(**overrides: object) -> str:
        settings: dict[str, object] = {
            "issuer": _ISSUER,
            "audience": _AUDIENCE,
            "subject": "demo-user",
            "clock": clock,
        }
        settings.update(overrides)
        return mint_token(signing_key, **settings)  # type: ignore[arg-type]

    policy_file = workdir / "policy.json"
    policy_file.write_text(_policy(peers.client_id))
    write_files(
        [
            PendingFile(workdir / "access-server.crt", peers.server.chain_pem, CERT_MODE),
            PendingFile(workdir / "access-server.key", peers.server.key_pem, KEY_MODE),
            PendingFile(workdir / "access-ca.crt", ca.certificate_pem(), CERT_MODE),
        ],
        force=True,
    )
    # The demo is a user of grpcsec.server like any other: one configuration, one call.
    config = SecurityConfig.from_mapping(
        {
            "listen": "127.0.0.1:0",
            "tls": {
                "cert": "access-server.crt",
                "key": "access-server.key",
                "client_ca": "access-ca.crt",
            },
            "authn": {"jwks": "jwks.json", "audiences": [_AUDIENCE], "issuers": [_ISSUER]},
            "authz": {"policy": "policy.json", "reload_interval": _RELOAD_SECONDS},
        },
        base=workdir,
    )
    running = secure_server(config, clock=clock)
    add_greeter(running.server)
    running.start()
    target = str(running.addresses[0])
    rows: list[DemoRow] = []
    try:
        good = token()
        rows += [
            _row("valid token", "OK", _call(target, ca, peers.client, good)),
            _row(
                "expired token",
                "UNAUTHENTICATED",
                _call(target, ca, peers.client, token(now=clock.timestamp() - 3600)),
            ),
            _row(
                "token for another audience",
                "UNAUTHENTICATED",
                _call(target, ca, peers.client, token(audience="elsewhere")),
            ),
            _row("no token", "UNAUTHENTICATED", _call(target, ca, peers.client, None)),
            _row(
                f"policy allows {peers.client_id}",
                "OK",
                _call(target, ca, peers.client, good),
            ),
            _row(
                f"policy denies {peers.second_id}",
                "PERMISSION_DENIED",
                _call(target, ca, peers.second, good),
            ),
        ]
        policy_file.write_text(_policy(peers.second_id))  # edited while the server runs
        deadline = time.monotonic() + _RELOAD_DEADLINE
        while time.monotonic() < deadline:  # the watcher picks the edit up on its next tick
            if _call(target, ca, peers.second, good)[0] == "OK":
                break
            time.sleep(_RELOAD_SECONDS)
        rows += [
            _row(
                f"policy edited: now allows {peers.second_id}",
                "OK",
                _call(target, ca, peers.second, good),
            ),
            _row(
                f"policy edited: now denies {peers.client_id}",
                "PERMISSION_DENIED",
                _call(target, ca, peers.client, good),
            ),
        ]
    finally:
        running.stop(grace=2.0)
    return tuple(rows)
