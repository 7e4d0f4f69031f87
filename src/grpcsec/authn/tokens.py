"""Test tokens and JWKS documents from local keys: for development and tests only.

A real deployment gets its tokens from an identity provider; :func:`mint_token` exists so that
tests, demos and ``grpcsec token mint`` can produce correctly signed tokens without one. The
algorithm follows the key: ``ES256``/``ES384``/``ES512`` for P-256/P-384/P-521 keys, ``RS256``
for RSA, ``EdDSA`` for Ed25519. The default ``kid`` is the key's RFC 7638 thumbprint, which is
also what :func:`public_jwks` puts in the JWKS, so a minted token and the JWKS of the same key
match without naming a ``kid``. No grpc.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from grpcsec.authn.keys import PUBLIC_KEY_TYPES, PublicKey, VerificationKey, jwk_thumbprint
from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import ConfigurationError, MaterialError
from grpcsec.fileio import FileKind, read_file
from grpcsec.pki import load_certificates, load_private_key

__all__ = [
    "RESERVED_CLAIMS",
    "SigningKey",
    "load_public_key",
    "mint_token",
    "public_jwks",
    "signing_algorithm",
]

SigningKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)

_EC = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
RESERVED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "scope"})


def signing_algorithm(key: SigningKey) -> str:
    """The JWS algorithm for a private key: ES256 (P-256), ES384, ES512, RS256 or EdDSA."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        name = _EC.get(key.curve.name)
        if name is None:
            raise ConfigurationError(f"unsupported EC curve {key.curve.name} for JWS")
        return name
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise ConfigurationError("RSA keys under 2048 bits are not accepted")
        return "RS256"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return "EdDSA"
    raise ConfigurationError(f"unsupported signing key type {type(key).__name__}")


def mint_token(
    key: SigningKey,
    *,
    issuer: str,
    audience: str | Sequence[str],
    subject: str,
    scopes: Iterable[str] = (),
    ttl: dt.timedelta = dt.timedelta(minutes=5),
    kid: str | None = None,
    claims: Mapping[str, Any] | None = None,
    now: float | None = None,
    clock: Clock = SYSTEM_CLOCK,
    not_before: float | None = None,
    algorithm: str | None = None,
) -> str:
    """A signed JWT for tests: ``iss``, ``sub``, ``aud``, ``iat`` (``now``, default: the
    ``clock``'s time), ``exp`` (``now`` + ``ttl``), ``scope`` when ``scopes`` are given, ``nbf``
    when given, then ``claims`` (which may override any of them, to build broken tokens on
    purpose). Header: ``alg`` from the key (or ``algorithm``), ``typ: JWT`` and ``kid``
    (default: the key's JWK thumbprint; ``""`` for none)."""
    issued = clock.timestamp() if now is None else now
    payload: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience if isinstance(audience, str) else list(audience),
        "iat": int(issued),
        "exp": int(issued + ttl.total_seconds()),
    }
    scope_list = list(scopes)
    if scope_list:
        payload["scope"] = " ".join(scope_list)
    if not_before is not None:
        payload["nbf"] = int(not_before)
    payload.update(claims or {})
    chosen = algorithm or signing_algorithm(key)
    key_id = jwk_thumbprint(key.public_key()) if kid is None else kid
    headers: dict[str, Any] = {"typ": "JWT"}
    if key_id:
        headers["kid"] = key_id
    return jwt.encode(payload, key, algorithm=chosen, headers=headers)


def public_jwks(keys: Iterable[tuple[SigningKey | PublicKey, str | None]]) -> dict[str, Any]:
    """A JWKS (``{"keys": [...]}``) of the public halves of ``(key, kid)`` pairs; a ``None``
    kid becomes the key's thumbprint. Private material never enters the document."""
    entries = []
    for key, kid in keys:
        public = key.public_key() if hasattr(key, "public_key") else key
        verification = VerificationKey.from_public_key(public, kid=kid or jwk_thumbprint(public))
        jwk = verification.to_jwk()
        if isinstance(public, rsa.RSAPublicKey):
            jwk["alg"] = "RS256"
        entries.append(jwk)
    return {"keys": entries}


def load_public_key(path: str | Path, *, password: bytes | None = None) -> PublicKey:
    """The public key in a PEM file: a public key, a certificate (its key) or a private key
    (its public half; decrypted with ``password`` when encrypted)."""
    data = read_file(path, kind=FileKind.KEY)
    head = data.lstrip()[:64]
    if not head.startswith(b"-----BEGIN "):
        raise MaterialError("expected a PEM public key, certificate or private key", path=path)
    try:
        if head.startswith(b"-----BEGIN PUBLIC KEY-----"):
            public: object = serialization.load_pem_public_key(data)
        elif head.startswith(b"-----BEGIN CERTIFICATE-----"):
            public = load_certificates(data, source=path, allow_der=False)[0].public_key()
        else:
            public = load_private_key(data, password=password, source=str(path)).public_key()
    except ValueError as exc:
        raise MaterialError("not a PEM public key, certificate or private key", path=path) from exc
    if not isinstance(public, PUBLIC_KEY_TYPES):
        raise MaterialError(f"unsupported key type {type(public).__name__}", path=path)
    return public
