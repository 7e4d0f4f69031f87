"""The bearer token of a call: exactly one ``authorization: Bearer <token>`` entry. No grpc.

Two ``authorization`` entries are refused rather than guessed between (a proxy that adds one
must not decide which token counts), and the header's size is bounded before anything else
looks at it. Not checked here: the token itself (:mod:`grpcsec.authn.verifier`).
"""

from __future__ import annotations

from grpcsec.authn.verified import fail, shorten
from grpcsec.call import Metadata

__all__ = ["DEFAULT_MAX_TOKEN_BYTES", "bearer_token"]

DEFAULT_MAX_TOKEN_BYTES = 8192

_AUTHORIZATION = "authorization"
_BEARER = "bearer"


def bearer_token(metadata: Metadata, *, max_bytes: int = DEFAULT_MAX_TOKEN_BYTES) -> str:
    """The token of the one ``authorization: Bearer <token>`` entry in ``metadata``.

    Raises :class:`AuthenticationError`: ``missing_token`` (none), ``duplicate_authorization``
    (more than one, never guessed), ``not_bearer`` (another scheme), ``token_too_large``,
    ``malformed_token`` (empty or with spaces).
    """
    found: str | bytes | None = None
    count = 0
    for key, value in metadata:
        if key == _AUTHORIZATION:
            count += 1
            found = value
    if found is None:
        raise fail("no authorization header", "missing_token")
    if count > 1:
        raise fail(
            f"{count} authorization headers; exactly one is accepted", "duplicate_authorization"
        )
    text = found.decode("latin-1") if isinstance(found, bytes) else found
    if len(text) > max_bytes + 16:
        raise fail(
            f"authorization header of {len(text)} bytes exceeds the token limit", "token_too_large"
        )
    scheme, _, token = text.strip().partition(" ")
    if scheme.lower() != _BEARER:
        raise fail(f"authorization scheme {shorten(scheme, 24)} is not Bearer", "not_bearer")
    token = token.strip()
    if not token or " " in token or "\t" in token:
        raise fail("the bearer token is empty or contains spaces", "malformed_token")
    return token
