"""Token verification keys: JWKs, thumbprints and key sets. No grpc.

A :class:`VerificationKey` is one public key with the JWS algorithms it may verify,
fixed by its type (and by the JWK's ``alg`` when it has one): RSA keys (>= 2048 bits) verify
``RS*``/``PS*``, P-256/P-384/P-521 keys verify ``ES256``/``ES384``/``ES512``, Ed25519/Ed448 keys
verify ``EdDSA``. Symmetric (``oct``) keys and ``HS*`` are not supported at all, so an HS256
token "signed" with an RSA public key can never verify (the classic key-confusion attack).

A :class:`KeySet` is a parsed JWKS document: keys by ``kid``, with unusable entries skipped and
listed, and private key material refused. Where keys come from (fixed, a file, a URL) is
:mod:`grpcsec.authn.key_sources` and :mod:`grpcsec.authn.jwks_url`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidKeyError, PyJWTError

from grpcsec.errors import ConfigurationError, MaterialError
from grpcsec.fileio import FileKind
from grpcsec.text import get_logger

__all__ = [
    "MAX_JWKS_BYTES",
    "PUBLIC_KEY_TYPES",
    "SUPPORTED_ALGORITHMS",
    "KeySet",
    "PublicKey",
    "VerificationKey",
    "algorithms_for_key",
    "jwk_thumbprint",
]

log = get_logger("grpcsec.authn")

PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

PUBLIC_KEY_TYPES = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
)
"""The classes of :data:`PublicKey`, for ``isinstance``."""

RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
SUPPORTED_ALGORITHMS: frozenset[str] = (
    RSA_ALGORITHMS | frozenset(_EC_ALGORITHMS.values()) | {"EdDSA"}
)
"""Every JWS algorithm grpcsec can verify. ``none`` and ``HS*`` are never among them."""

MIN_RSA_BITS = 2048
MAX_JWKS_BYTES = FileKind.JWKS.max_bytes
MAX_KEYS = 100
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def algorithms_for_key(key: object) -> frozenset[str]:
    """The JWS algorithms a public key can verify (empty for a key grpcsec does not accept)."""
    if isinstance(key, rsa.RSAPublicKey):
        return RSA_ALGORITHMS if key.key_size >= MIN_RSA_BITS else frozenset()
    if isinstance(key, ec.EllipticCurvePublicKey):
        name = _EC_ALGORITHMS.get(key.curve.name)
        return frozenset({name}) if name else frozenset()
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return frozenset({"EdDSA"})
    return frozenset()


def _public_jwk(key: PublicKey) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPublicKey):
        return dict(RSAAlgorithm.to_jwk(key, as_dict=True))
    if isinstance(key, ec.EllipticCurvePublicKey):
        return dict(ECAlgorithm.to_jwk(key, as_dict=True))
    return dict(OKPAlgorithm.to_jwk(key, as_dict=True))


_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}


def jwk_thumbprint(key: PublicKey) -> str:
    """The RFC 7638 SHA-256 JWK thumbprint, base64url without padding (a stable ``kid``)."""
    jwk = _public_jwk(key)
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(canonical).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _as_public(key: object) -> PublicKey:
    public = key.public_key() if hasattr(key, "public_key") else key
    if not isinstance(public, PUBLIC_KEY_TYPES):
        raise ConfigurationError(
            f"unsupported verification key type {type(key).__name__}: use an RSA, EC "
            "(P-256/P-384/P-521) or Ed25519/Ed448 public key"
        )
    return public


@dataclass(frozen=True, slots=True, kw_only=True)
class VerificationKey:
    """One public key that may verify tokens, and the algorithms it may verify them with."""

    kid: str | None
    key: PublicKey = field(repr=False, compare=False)
    algorithms: frozenset[str]
    thumbprint: str

    @classmethod
    def from_public_key(
        cls, key: object, *, kid: str | None = None, algorithm: str | None = None
    ) -> VerificationKey:
        """From a ``cryptography`` public (or private: its public half is used) key.

        ``algorithm`` restricts the key to one algorithm; it must fit the key type. A key that
        cannot verify anything (RSA under 2048 bits, an unsupported curve) is refused.
        """
        public = _as_public(key)
        allowed = algorithms_for_key(public)
        if not allowed:
            if isinstance(public, rsa.RSAPublicKey):
                raise ConfigurationError(
                    f"RSA key of {public.key_size} bits: at least {MIN_RSA_BITS} are required"
                )
            raise ConfigurationError("unsupported key: no JWS algorithm can use it")
        if algorithm is not None:
            if algorithm not in allowed:
                raise ConfigurationError(
                    f"algorithm {algorithm!r} does not fit this key (it can verify "
                    f"{', '.join(sorted(allowed))})"
                )
            allowed = frozenset({algorithm})
        if kid is not None and not kid:
            raise ConfigurationError("a key id (kid) must not be empty")
        return cls(kid=kid, key=public, algorithms=allowed, thumbprint=jwk_thumbprint(public))

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> VerificationKey:
        """From one JWK (a JSON object). Raises :class:`ConfigurationError` for a private,
        symmetric, encryption-only or otherwise unusable key."""
        kty = jwk.get("kty")
        kid = jwk.get("kid")
        if kid is not None and (not isinstance(kid, str) or not kid):
            raise ConfigurationError("the JWK has a non-string or empty 'kid'")
        if _PRIVATE_MEMBERS & set(jwk):
            raise ConfigurationError(
                "the JWK contains private or symmetric key material; publish only public keys"
            )
        use = jwk.get("use")
        if use is not None and use != "sig":
            raise ConfigurationError(f"the JWK is for use {use!r}, not signatures ('sig')")
        key_ops = jwk.get("key_ops")
        if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
            raise ConfigurationError("the JWK's key_ops do not include 'verify'")
        algorithm = jwk.get("alg")
        if algorithm is not None and not isinstance(algorithm, str):
            raise ConfigurationError("the JWK's 'alg' is not a string")
        if algorithm is not None and algorithm not in SUPPORTED_ALGORITHMS:
            raise ConfigurationError(f"the JWK's algorithm {algorithm!r} is not supported")
        data = dict(jwk)
        try:
            if kty == "RSA":
                key: object = RSAAlgorithm.from_jwk(data)
            elif kty == "EC":
                key = ECAlgorithm.from_jwk(data)
            elif kty == "OKP":
                key = OKPAlgorithm.from_jwk(data)
            else:
                raise ConfigurationError(
                    f"unsupported key type (kty) {kty!r}: use RSA, EC or OKP (symmetric 'oct' "
                    "keys are refused)"
                )
        except (InvalidKeyError, PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"the {kty} JWK is invalid") from exc
        return cls.from_public_key(key, kid=kid, algorithm=algorithm)

    def to_jwk(self) -> dict[str, Any]:
        """The public JWK, with ``kid``, ``use: sig`` and ``alg`` when it is a single one."""
        jwk = _public_jwk(self.key)
        if self.kid is not None:
            jwk["kid"] = self.kid
        jwk["use"] = "sig"
        if len(self.algorithms) == 1:
            jwk["alg"] = next(iter(self.algorithms))
        return jwk


def _jwks_entries(document: bytes | str | Mapping[str, Any], where: str | None) -> list[Any]:
    if isinstance(document, bytes | str):
        raw = document.encode() if isinstance(document, str) else document
        if len(raw) > MAX_JWKS_BYTES:
            raise MaterialError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes", path=where)
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise MaterialError("the JWKS is not valid JSON", path=where) from exc
    else:
        parsed = document
    if not isinstance(parsed, Mapping) or not isinstance(parsed.get("keys"), list):
        raise MaterialError('not a JWKS: expected {"keys": [...]}', path=where)
    entries: list[Any] = parsed["keys"]
    return entries


class KeySet:
    """Keys by ``kid``; keys without one are kept apart and only used for tokens without one."""

    __slots__ = ("_by_kid", "keys", "skipped", "source")

    def __init__(
        self, keys: Iterable[VerificationKey], *, skipped: Iterable[str] = (), source: str = ""
    ) -> None:
        self.keys: tuple[VerificationKey, ...] = tuple(keys)
        self.skipped: tuple[str, ...] = tuple(skipped)
        self.source = source
        by_kid: dict[str, VerificationKey] = {}
        for key in self.keys:
            if key.kid is None:
                continue
            if key.kid in by_kid:
                raise MaterialError(
                    f"two keys share the kid {key.kid!r}; key ids must be unique", path=source
                )
            by_kid[key.kid] = key
        self._by_kid = by_kid

    @classmethod
    def from_jwks(cls, document: bytes | str | Mapping[str, Any], *, source: str = "") -> KeySet:
        """Parse a JWKS (``{"keys": [...]}``). Unusable keys (encryption keys, unsupported
        types) are skipped and listed in :attr:`skipped`; a document with no usable key, a
        private key, duplicate ``kid`` values or more than 100 keys is refused with
        :class:`MaterialError`."""
        where = source or None
        entries = _jwks_entries(document, where)
        if len(entries) > MAX_KEYS:
            raise MaterialError(f"the JWKS has more than {MAX_KEYS} keys", path=where)
        keys: list[VerificationKey] = []
        skipped: list[str] = []
        for index, entry in enumerate(entries):
            label = f"keys[{index}]"
            if not isinstance(entry, Mapping):
                skipped.append(f"{label}: not a JSON object")
                continue
            if isinstance(entry.get("kid"), str):
                label += f" (kid {entry['kid']!r})"
            if _PRIVATE_MEMBERS & set(entry):
                raise MaterialError(
                    f"{label} contains private or symmetric key material; a JWKS for "
                    "verification must hold public keys only",
                    path=where,
                )
            try:
                keys.append(VerificationKey.from_jwk(entry))
            except ConfigurationError as exc:
                skipped.append(f"{label}: {exc.message}")
        if not keys:
            why = "; ".join(skipped) or "it is empty"
            raise MaterialError(f"the JWKS has no usable signature key ({why})", path=where)
        for reason in skipped:
            log.info("JWKS %s: skipped %s", source or "document", reason)
        return cls(keys, skipped=skipped, source=source)

    def get(self, kid: str) -> VerificationKey | None:
        """The key with this ``kid``."""
        return self._by_kid.get(kid)

    def without_kid(self, algorithm: str) -> list[VerificationKey]:
        """Keys that could verify an ``algorithm`` token that names no ``kid``."""
        return [key for key in self.keys if algorithm in key.algorithms]

    def kids(self) -> list[str]:
        """The key ids, in document order."""
        return [key.kid for key in self.keys if key.kid is not None]

    def to_jwks(self) -> dict[str, Any]:
        """The public JWKS document."""
        return {"keys": [key.to_jwk() for key in self.keys]}

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"KeySet(kids={self.kids()!r}, source={self.source!r})"
