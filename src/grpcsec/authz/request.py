"""What a policy is evaluated against, and how its rules see it.

A policy evaluates the one description of a call, :class:`grpcsec.call.CallInfo` (method, peer,
metadata and, when the authentication layer *verified* a bearer token, its claims), the same
value the authentication checks see; :data:`Request` is another name for it, kept for code
written against earlier versions (``Request(method=..., peer=...)`` still works). No grpc
import, and no import of :mod:`grpcsec.authn`.

How the call is seen by the rules (authz-a43.md §5):

* **Principals** (:func:`peer_principals`, gRFC A41 and grpc-go): not TLS, no principal at all
  (not even ``""``); TLS without a client certificate, the one string ``""``; with a
  certificate, its URI SANs if it has any, else its DNS SANs, else its subject DN in RFC 4514
  form (``CN=test-client1,O=gRPC,L=SVL,ST=CA,C=US``). Email and IP SANs are never used.
* **Headers** (:func:`joined_headers`): keys lowercased; the values of a repeated key joined
  with ``,`` in arrival order; a ``-bin`` key's value is matched as the standard, padded base64
  of its bytes (A41; grpc-go matches the raw bytes instead).
* **Claims** (:func:`claim_values`): ``None`` means no verified token, and then no claim
  constraint matches.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from grpcsec.call import CallInfo
from grpcsec.identity import Peer, TransportSecurity

__all__ = [
    "SPACE_SEPARATED_CLAIMS",
    "MetadataValue",
    "Request",
    "claim_values",
    "joined_headers",
    "peer_principals",
    "principal_source",
]

MetadataValue = str | bytes
SPACE_SEPARATED_CLAIMS = frozenset({"scope", "scp"})
"""Claims whose string value is a space-separated list (OAuth 2.0 ``scope``, RFC 8693 §4.2)."""


Request = CallInfo
"""Another name for :class:`grpcsec.call.CallInfo` (one RPC as the policy sees it), kept for
compatibility: ``metadata`` is a sequence of ``(key, value)`` pairs in arrival order (grpcio's
``invocation_metadata()`` fits as is), ``claims`` the verified token's claims or ``None``."""


def peer_principals(peer: Peer) -> tuple[str, ...] | None:
    """The identity strings principal patterns are matched against; ``None`` for a peer that
    is not TLS (no principal pattern matches it)."""
    if peer.transport is not TransportSecurity.TLS or peer.certificate_unreadable:
        return None  # fail closed: a certificate nobody could read matches no principal
    if not peer.client_cert_presented:
        return ("",)
    if peer.uris:
        return peer.uris
    if peer.dns_names:
        return peer.dns_names
    return (peer.subject or "",)


def principal_source(peer: Peer) -> str:
    """Which identity class :func:`peer_principals` used, for explanations."""
    if peer.transport is not TransportSecurity.TLS:
        return f"none ({peer.transport.value} peer: no principal pattern matches)"
    if not peer.client_cert_presented:
        return 'no client certificate (only the pattern "" matches)'
    if peer.uris:
        return "URI SANs"
    if peer.dns_names:
        return "DNS SANs"
    return "subject DN (RFC 4514)"


def _text(key: str, value: MetadataValue) -> str:
    if key.endswith("-bin"):
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        return base64.b64encode(raw).decode("ascii")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def joined_headers(metadata: Sequence[tuple[str, MetadataValue]]) -> dict[str, str]:
    """Lowercased key to the value the header patterns see (see the module docstring)."""
    values: dict[str, list[str]] = {}
    for key, value in metadata:
        lowered = key.lower()
        values.setdefault(lowered, []).append(_text(lowered, value))
    return {key: ",".join(parts) for key, parts in values.items()}


def _scalar(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int):
        return json.dumps(value)
    return None


def claim_values(claims: Mapping[str, Any] | None, claim: str) -> tuple[str, ...]:
    """The strings a claim's patterns are matched against (empty: nothing matches).

    A string is one value, except for ``scope``/``scp``, split on spaces; an array gives each
    of its string, integer or boolean elements; an integer or boolean gives its JSON text
    (``42``, ``true``). Objects, floats and ``null`` give nothing. Only top-level claims are
    addressed (a claim name may itself contain dots, as URL-named claims do).
    """
    if claims is None or claim not in claims:
        return ()
    value = claims[claim]
    if isinstance(value, str) and claim in SPACE_SEPARATED_CLAIMS:
        return tuple(value.split())
    if isinstance(value, list | tuple):
        return tuple(text for item in value if (text := _scalar(item)) is not None)
    text = _scalar(value)
    return () if text is None else (text,)
