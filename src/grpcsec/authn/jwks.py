"""Token verification keys: JWKs, key sets, and where they come from (static, file, HTTPS URL).

No grpc. A :class:`VerificationKey` is one public key with the JWS algorithms it may verify,
fixed by its type (and by the JWK's ``alg`` when it has one): RSA keys (>= 2048 bits) verify
``RS*``/``PS*``, P-256/P-384/P-521 keys verify ``ES256``/``ES384``/``ES512``, Ed25519/Ed448 keys
verify ``EdDSA``. Symmetric (``oct``) keys and ``HS*`` are not supported at all, so an HS256
token "signed" with an RSA public key can never verify (the classic key-confusion attack).

Key sources implement :class:`KeySource`:

* :class:`StaticKeys`: fixed keys;
* :class:`JWKSFile`: a JWKS file, re-read when it changes (checked at most every
  ``poll_interval`` seconds; a bad new file keeps the old keys);
* :class:`JWKSUrl`: a JWKS over HTTPS, cached. Refreshed every ``refresh_interval``; fetched at
  once when a token names an unknown ``kid``, but at most once per ``min_refresh_interval``
  (so random ``kid`` values cannot turn the server into a traffic amplifier); when fetching
  fails, the last keys keep being served for ``max_stale`` seconds past their refresh time and
  are refused after that.

Times are POSIX seconds (``now``), the unit of JWT ``exp``/``nbf``/``iat``, and always a
parameter. :meth:`KeySource.current` never blocks; :meth:`KeySource.refresh` may (network).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeAlias

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidKeyError, PyJWTError

from grpcsec.errors import ConfigurationError, MaterialError
from grpcsec.fileio import FileKind, WatchedFile, WatchedFileCounters
from grpcsec.material import StrPath, TrustBundle, TrustSource, as_trust_bundle
from grpcsec.text import get_logger

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "JWKSFile",
    "JWKSUrl",
    "KeySet",
    "KeySource",
    "PublicKey",
    "StaticKeys",
    "VerificationKey",
    "algorithms_for_key",
    "jwk_thumbprint",
    "key_source",
]

log = get_logger("grpcsec.authn")

PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

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
    if not isinstance(
        public,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
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


class KeySource(Protocol):
    """Where a verifier gets its keys."""

    def current(self, now: float) -> KeySet | None:
        """The keys to use now, without blocking; ``None`` when there are none fit to use
        (never fetched, or stale beyond the allowed bound)."""
        ...

    def refresh_wanted(self, now: float, *, unknown_kid: bool) -> bool:
        """Whether :meth:`refresh` would fetch now: keys are due, or a token named an unknown
        ``kid``, and the rate limit allows a fetch."""
        ...

    def refresh(self, now: float, *, wait: bool = True) -> KeySet | None:
        """Fetch when :meth:`refresh_wanted` (may block; never raises) and return
        :meth:`current`. Concurrent callers share one fetch: with ``wait`` they wait for it
        (bounded), without they return the current keys at once."""
        ...

    def status(self, now: float) -> dict[str, Any]:
        """A JSON-ready description (source, kids, age, last error) for logs and the CLI."""
        ...


class StaticKeys:
    """Fixed keys: ``cryptography`` public keys or :class:`VerificationKey` values."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[VerificationKey | PublicKey] | KeySet) -> None:
        if isinstance(keys, KeySet):
            self._keys = keys
        else:
            values = [
                k if isinstance(k, VerificationKey) else VerificationKey.from_public_key(k)
                for k in keys
            ]
            if not values:
                raise ConfigurationError("no verification keys were given")
            try:
                self._keys = KeySet(values, source="static")
            except MaterialError as exc:
                raise ConfigurationError(exc.message) from exc

    def current(self, now: float) -> KeySet:
        """The keys."""
        return self._keys

    def refresh_wanted(self, now: float, *, unknown_kid: bool) -> bool:
        """Never: static keys do not change."""
        return False

    def refresh(self, now: float, *, wait: bool = True) -> KeySet:
        """The keys."""
        return self._keys

    def status(self, now: float) -> dict[str, Any]:
        """``{"source": "static", "kids": [...]}``."""
        return {"source": "static", "kids": self._keys.kids(), "keys": len(self._keys)}

    def __repr__(self) -> str:
        return f"StaticKeys({self._keys!r})"


class JWKSFile(WatchedFileCounters):
    """A JWKS file, read at construction (errors raise :class:`MaterialError`) and re-read when
    it changes (:class:`~grpcsec.fileio.WatchedFile`), checked at most every ``poll_interval``
    seconds. A new version that cannot be read or parsed (a FIFO, a device, a symlink loop, bad
    JSON) is logged once, counted in ``reload_failures``, and the old keys stay."""

    def __init__(self, path: StrPath, *, poll_interval: float = 5.0, now: float = 0.0) -> None:
        if poll_interval < 0:
            raise ConfigurationError("poll_interval must not be negative")
        self.path = Path(path)
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        self._file: WatchedFile[KeySet] = WatchedFile(
            self.path,
            kind=FileKind.JWKS,
            parse=lambda data: KeySet.from_jwks(data, source=str(path)),
            what=f"JWKS file {self.path}",
            log=log,
        )
        self._checked_at = now

    def current(self, now: float) -> KeySet:
        """The keys, re-read first when the file changed (at most every ``poll_interval``)."""
        if now - self._checked_at >= self.poll_interval and self._lock.acquire(blocking=False):
            try:
                self._checked_at = now
                if self._file.check():
                    log.info("JWKS file %s reloaded: kids %s", self.path, self._file.value.kids())
            finally:
                self._lock.release()
        return self._file.value

    def refresh_wanted(self, now: float, *, unknown_kid: bool) -> bool:
        """Never: the file is checked by :meth:`current`."""
        return False

    def refresh(self, now: float, *, wait: bool = True) -> KeySet:
        """The current keys."""
        return self.current(now)

    def status(self, now: float) -> dict[str, Any]:
        """Source, kids and the last reload error."""
        keys = self._file.value
        return {
            "source": str(self.path),
            "kids": keys.kids(),
            "keys": len(keys),
            "skipped": list(keys.skipped),
            "last_error": self._file.last_error,
            "reload_failures": self._file.failures,
        }

    def __repr__(self) -> str:
        return f"JWKSFile({str(self.path)!r})"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are refused: a JWKS URL is configuration, and a redirect could leave HTTPS."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:  # noqa: ANN401
        return None


@dataclass(frozen=True, slots=True)
class _UrlState:
    keys: KeySet | None
    fetched_at: float | None


class JWKSUrl:
    """A JWKS fetched over HTTPS and cached.

    * ``ca``: the CA bundle that issued the server's certificate; default: the system bundle
      (:meth:`~grpcsec.material.TrustBundle.system`, recorded in :meth:`status`). Plain HTTP
      and redirects are refused.
    * ``refresh_interval``: keys older than this are fetched again (by the next call that finds
      them due; on ``grpc.aio`` in the background).
    * ``min_refresh_interval``: at most one fetch per this many seconds, whatever triggers it
      (an unknown ``kid``, a failed fetch's retry).
    * ``max_stale``: how long past ``refresh_interval`` the last good keys are still served
      while fetches fail; after that tokens are refused (``keys_unavailable``).
    * ``timeout`` bounds each fetch; ``max_bytes`` bounds the document.

    Nothing is fetched at construction; call :meth:`fetch` at startup to fail fast.
    """

    def __init__(
        self,
        url: str,
        *,
        ca: TrustSource | None = None,
        refresh_interval: float = 300.0,
        min_refresh_interval: float = 30.0,
        max_stale: float = 3600.0,
        timeout: float = 5.0,
        max_bytes: int = MAX_JWKS_BYTES,
    ) -> None:
        if not url.lower().startswith("https://") or len(url) <= len("https://"):
            raise ConfigurationError(f"the JWKS URL must be https:// (got {url!r})")
        if min(refresh_interval, max_stale, timeout) <= 0 or min_refresh_interval < 0:
            raise ConfigurationError(
                "refresh_interval, max_stale and timeout must be positive, "
                "min_refresh_interval not negative"
            )
        if max_bytes <= 0:
            raise ConfigurationError("max_bytes must be positive")
        self.url = url
        self.trust: TrustBundle = (
            TrustBundle.system() if ca is None else as_trust_bundle(ca, "JWKS CA bundle")
        )
        self.refresh_interval = refresh_interval
        self.min_refresh_interval = min_refresh_interval
        self.max_stale = max_stale
        self.timeout = timeout
        self.max_bytes = max_bytes
        context = ssl.create_default_context(cadata=self.trust.pem.decode("ascii", "replace"))
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoRedirect()
        )
        self._lock = threading.Lock()
        self._state = _UrlState(None, None)
        self._attempted_at: float | None = None
        self._last_error: str | None = None
        self.fetches = 0
        self.fetch_failures = 0

    # -- non-blocking ------------------------------------------------------------------------
    def current(self, now: float) -> KeySet | None:
        """The last fetched keys, unless they are stale beyond ``max_stale``."""
        state = self._state
        if state.keys is None or state.fetched_at is None:
            return None
        if now > state.fetched_at + self.refresh_interval + self.max_stale:
            return None
        return state.keys

    def _attempt_allowed(self, now: float) -> bool:
        attempted = self._attempted_at
        return attempted is None or now - attempted >= self.min_refresh_interval

    def refresh_wanted(self, now: float, *, unknown_kid: bool) -> bool:
        """Keys missing, a ``kid`` unknown or keys due, and the rate limit allows a fetch."""
        if not self._attempt_allowed(now):
            return False
        state = self._state
        if state.keys is None or state.fetched_at is None or unknown_kid:
            return True
        return now >= state.fetched_at + self.refresh_interval

    # -- blocking ----------------------------------------------------------------------------
    def refresh(self, now: float, *, wait: bool = True) -> KeySet | None:
        """Fetch if still wanted once the lock is ours, then return :meth:`current`. With
        ``wait`` a caller waits (bounded) for a fetch in progress and gets its result; without,
        it returns the current keys at once (a routine refresh never holds up other calls)."""
        acquired = (
            self._lock.acquire(timeout=self.timeout + 1.0)
            if wait
            else self._lock.acquire(blocking=False)
        )
        if not acquired:
            return self.current(now)
        try:
            if self._attempt_allowed(now):
                self._attempted_at = now
                try:
                    keys = self._download()
                except MaterialError as exc:
                    self.fetch_failures += 1
                    self._last_error = exc.message
                    log.warning("JWKS %s: fetch failed, keeping the last keys: %s", self.url, exc)
                else:
                    self.fetches += 1
                    self._last_error = None
                    self._state = _UrlState(keys, now)
                    log.info("JWKS %s fetched: kids %s", self.url, keys.kids())
        finally:
            self._lock.release()
        return self.current(now)

    def fetch(self, now: float) -> KeySet:
        """Fetch now (ignoring the rate limit) and return the keys; raises
        :class:`MaterialError` when the JWKS cannot be fetched or parsed. For startup checks
        and the CLI."""
        with self._lock:
            self._attempted_at = now
            try:
                keys = self._download()
            except MaterialError as exc:
                self.fetch_failures += 1
                self._last_error = exc.message
                raise
            self.fetches += 1
            self._last_error = None
            self._state = _UrlState(keys, now)
            return keys

    def _download(self) -> KeySet:
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked to be https)
            self.url, headers={"Accept": "application/json", "User-Agent": "grpcsec"}
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                data: bytes = response.read(self.max_bytes + 1)
        except urllib.error.HTTPError as exc:
            exc.close()  # the error holds the response and its socket
            raise MaterialError(f"HTTP {exc.code} {exc.reason}", path=self.url) from exc
        except urllib.error.URLError as exc:
            raise MaterialError(f"cannot fetch: {exc.reason}", path=self.url) from exc
        except (OSError, ValueError) as exc:
            raise MaterialError(f"cannot fetch: {exc}", path=self.url) from exc
        if len(data) > self.max_bytes:
            raise MaterialError(f"the JWKS is larger than {self.max_bytes} bytes", path=self.url)
        return KeySet.from_jwks(data, source=self.url)

    def status(self, now: float) -> dict[str, Any]:
        """URL, trust, kids, age and the last fetch error."""
        state = self._state
        return {
            "source": self.url,
            "trust": self.trust.source,
            "kids": state.keys.kids() if state.keys else [],
            "keys": len(state.keys) if state.keys else 0,
            "age_seconds": None if state.fetched_at is None else round(now - state.fetched_at, 3),
            "usable": self.current(now) is not None,
            "fetches": self.fetches,
            "fetch_failures": self.fetch_failures,
            "last_error": self._last_error,
        }

    def __repr__(self) -> str:
        return f"JWKSUrl({self.url!r})"


def key_source(
    spec: str | os.PathLike[str],
    *,
    ca: TrustSource | None = None,
    min_refresh_interval: float = 30.0,
    timeout: float = 5.0,
) -> JWKSFile | JWKSUrl:
    """A JWKS source from a CLI-style value: an ``https://`` URL or a file path."""
    text = os.fspath(spec)
    if text.lower().startswith(("https://", "http://")):
        return JWKSUrl(text, ca=ca, min_refresh_interval=min_refresh_interval, timeout=timeout)
    if ca is not None:
        raise ConfigurationError("a CA bundle only applies to a JWKS URL, not to a file")
    return JWKSFile(text)
