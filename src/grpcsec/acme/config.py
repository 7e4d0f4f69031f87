"""``AcmeConfig``: which ACME CA, which names, which account, as one frozen, validated value.

Built in code, by ``grpcsec acme issue|renew`` from their flags, or from the ``[tls.acme]``
table of a server configuration (:func:`read_acme_table`)::

    [tls]
    cert = "orders.crt"            # where the ACME chain (leaf first) is kept
    key = "orders.key"             # and its key (0600)
    [tls.acme]
    directory = "https://acme.internal/directory"
    domains = ["orders.internal"]
    directory_ca = "acme-ca.pem"   # trust for the directory's own HTTPS (default: system)
    account_key = "acme-account.key"
    email = "ops@example.com"
    http_port = 80                 # the http-01 responder, bound only while an order runs
    key_type = "ecdsa-p256"

What is checked here: the URL (``https``, unless ``allow_http_directory`` names the exception),
the names (non-empty, no duplicates; wildcards need dns-01, which this client does not answer),
the port, the key type. Not checked here: that the files exist or the CA answers. No grpc
import, no network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from grpcsec.errors import ConfigurationError
from grpcsec.pki import KeyType

__all__ = ["ACME_KEYS", "DEFAULT_HTTP_PORT", "AcmeConfig", "parse_key_type", "read_acme_table"]

DEFAULT_HTTP_PORT = 80
ACME_KEYS = (
    "directory",
    "domains",
    "directory_ca",
    "account_key",
    "email",
    "http_port",
    "key_type",
)
"""The keys of a ``[tls.acme]`` table."""

# Key types an ACME CA signs for and the acme library's CSR helper accepts; Ed25519 is refused
# by Let's Encrypt, step-ca's default policy and pebble alike.
_CERT_KEY_TYPES = (
    KeyType.ECDSA_P256,
    KeyType.ECDSA_P384,
    KeyType.RSA_2048,
    KeyType.RSA_3072,
    KeyType.RSA_4096,
)


def parse_key_type(text: str, *, option: str = "--key-type") -> KeyType:
    """``ecdsa-p256`` and friends as a :class:`KeyType` an ACME CA will certify."""
    for key_type in _CERT_KEY_TYPES:
        if key_type.value == text.strip().lower():
            return key_type
    names = ", ".join(k.value for k in _CERT_KEY_TYPES)
    raise ConfigurationError(f"{option}: unknown or unsupported key type {text!r} (use {names})")


@dataclass(frozen=True, slots=True, kw_only=True)
class AcmeConfig:
    """One ACME CA and the names to certify (see the module docstring).

    ``account_key`` defaults to ``acme-account.key`` next to the certificate (chosen by the
    caller, who knows where that is); the account URL is kept beside it in ``<key>.url``.
    ``timeout`` bounds each HTTP exchange, ``poll_attempts`` times ``poll_interval`` the wait for
    a challenge or an order, ``nonce_retries`` the fresh-nonce retries after ``badNonce``.
    """

    directory: str
    domains: tuple[str, ...]
    account_key: Path
    directory_ca: Path | None = None
    email: str | None = None
    http_port: int = DEFAULT_HTTP_PORT
    http_host: str = ""
    """The address the http-01 responder binds (``""``: every interface, as a CA connects from
    outside)."""
    key_type: KeyType = KeyType.ECDSA_P256
    allow_http_directory: bool = False
    """Allow a plain ``http://`` directory (a lab CA on loopback); refused by default, since
    the directory names every URL the account key then signs requests to."""
    timeout: float = 30.0
    poll_attempts: int = 30
    poll_interval: float = 1.0
    nonce_retries: int = 5

    def __post_init__(self) -> None:
        parts = urlsplit(self.directory)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigurationError(
                f"directory (--directory): not an http(s) URL: {self.directory!r}"
            )
        if parts.scheme == "http" and not self.allow_http_directory:
            raise ConfigurationError(
                "directory (--directory): the ACME directory must be https (a plain http "
                "directory needs allow_http_directory = true)"
            )
        if not self.domains:
            raise ConfigurationError("domains (--domain): give at least one name to certify")
        seen: set[str] = set()
        for name in self.domains:
            if not name or name != name.strip() or "/" in name:
                raise ConfigurationError(f"domains (--domain): not a DNS name: {name!r}")
            if name.startswith("*."):
                raise ConfigurationError(
                    f"domains (--domain): {name} is a wildcard, which needs dns-01; this client "
                    "answers http-01 only"
                )
            if name.lower() in seen:
                raise ConfigurationError(f"domains (--domain): {name} is given twice")
            seen.add(name.lower())
        if not 0 < self.http_port < 65536:
            raise ConfigurationError(f"http_port (--http-port): {self.http_port} is not a TCP port")
        if self.key_type not in _CERT_KEY_TYPES:
            raise ConfigurationError(
                f"key_type (--key-type): {self.key_type.value} is not supported"
            )
        if self.timeout <= 0 or self.poll_interval <= 0:
            raise ConfigurationError("the ACME timeout and poll interval must be positive")
        if self.poll_attempts < 1 or self.nonce_retries < 0:
            raise ConfigurationError("poll_attempts must be at least 1, nonce_retries >= 0")

    @property
    def account_url_file(self) -> Path:
        """Where the account URL is kept: beside the account key."""
        return self.account_key.with_name(self.account_key.name + ".url")

    def to_mapping(self) -> dict[str, Any]:
        """The ``[tls.acme]`` table of this value (absolute paths; no secrets in it)."""
        data: dict[str, Any] = {
            "directory": self.directory,
            "domains": list(self.domains),
            "account_key": str(self.account_key),
            "http_port": self.http_port,
            "key_type": self.key_type.value,
        }
        if self.directory_ca is not None:
            data["directory_ca"] = str(self.directory_ca)
        if self.email is not None:
            data["email"] = self.email
        return data


def read_acme_table(
    data: Mapping[str, Any],
    *,
    cert: Path,
    path: Callable[[str, object], Path],
    text: Callable[[str, object], str],
    texts: Callable[[str, object], tuple[str, ...]],
) -> AcmeConfig:
    """The ``[tls.acme]`` table as an :class:`AcmeConfig`; ``path``/``text``/``texts`` are the
    schema's readers (they name the dotted key in errors and resolve relative paths)."""
    for key in ("directory", "domains"):
        if key not in data:
            raise ConfigurationError(f"tls.acme.{key}: required in a [tls.acme] table")
    port = data.get("http_port", DEFAULT_HTTP_PORT)
    if isinstance(port, bool) or not isinstance(port, int):
        raise ConfigurationError(f"tls.acme.http_port: expected a port number, got {port!r}")
    account = data.get("account_key")
    return AcmeConfig(
        directory=text("tls.acme.directory", data["directory"]),
        domains=texts("tls.acme.domains", data["domains"]),
        account_key=(
            path("tls.acme.account_key", account)
            if account is not None
            else cert.with_name("acme-account.key")
        ),
        directory_ca=(
            path("tls.acme.directory_ca", data["directory_ca"]) if "directory_ca" in data else None
        ),
        email=text("tls.acme.email", data["email"]) if "email" in data else None,
        http_port=port,
        key_type=parse_key_type(
            text("tls.acme.key_type", data.get("key_type", "ecdsa-p256")),
            option="tls.acme.key_type",
        ),
    )
