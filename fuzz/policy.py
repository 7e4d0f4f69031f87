"""Fuzz target ``policy``: bytes → :func:`grpcsec.authz.parse_policy` → :class:`Engine`.

Documented outcomes: a :class:`~grpcsec.authz.model.Policy`, or a :class:`PolicyError` with a
non-empty one-line message. A parsed policy is also compiled and evaluated for a few fixed
requests (a decision of ``allow`` or ``deny`` is the only outcome). The first input byte picks
``extensions=False`` (portable A43) for odd values; the rest is the document.
"""

from __future__ import annotations

import datetime as dt

from fuzz import Unexpected
from grpcsec.authz import Engine, Request, parse_policy
from grpcsec.errors import PolicyError
from grpcsec.identity import Peer, TransportSecurity

__all__ = ["check"]

_WHEN = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
_PEERS = (
    Peer(address="ipv4:127.0.0.1:1", transport=TransportSecurity.PLAINTEXT),
    Peer(address="ipv4:127.0.0.1:1", transport=TransportSecurity.TLS),
    Peer(
        address="ipv4:127.0.0.1:1",
        transport=TransportSecurity.TLS,
        client_cert_presented=True,
        subject="CN=client,O=Acme",
        common_name="client",
        dns_names=("client.example.org",),
        uris=("spiffe://example.org/ns/default/sa/client",),
        spiffe_id="spiffe://example.org/ns/default/sa/client",
        not_after=_WHEN,
    ),
)
_METHODS = ("/pkg.Service/Method", "/grpc.health.v1.Health/Check", "", "/x")
_METADATA = (
    (),
    (("x-team", "red"), ("x-team", "blue"), ("user-agent", "fuzz"), ("k-bin", b"\x00\xff")),
)
_CLAIMS = (None, {"sub": "alice", "groups": ("a", "b"), "n": 7, "nested": {"k": "v"}})


def check(data: bytes) -> None:
    """One input: parse; evaluate a parsed policy; anything undocumented raises."""
    extensions = not (data[:1] and data[0] & 1)
    try:
        policy = parse_policy(data[1:], extensions=extensions)
    except PolicyError as exc:
        message = str(exc)
        if not message or "\n" in message:
            raise Unexpected(f"PolicyError message is not one line: {message!r}") from exc
        return
    engine = Engine(policy)
    for index, method in enumerate(_METHODS):
        request = Request(
            method=method,
            peer=_PEERS[index % len(_PEERS)],
            metadata=_METADATA[index % len(_METADATA)],
            claims=_CLAIMS[index % len(_CLAIMS)],
        )
        decision = engine.evaluate(request)
        if decision.decision not in ("allow", "deny"):
            raise Unexpected(f"decision {decision.decision!r}")
