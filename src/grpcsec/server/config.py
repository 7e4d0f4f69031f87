"""``SecurityConfig``: everything a secured server needs, as one frozen, validated value.

Built from a TOML file (:meth:`SecurityConfig.load`), from a mapping of the same shape
(:meth:`SecurityConfig.from_mapping`: what ``grpcsec serve`` builds from its flags), or in code.
The schema mirrors the ``serve`` flags (docs/server.md has the table)::

    listen = "127.0.0.1:50051"      # or a list; ":PORT" = every interface
    [tls]      cert, key, client_ca, next_ca, reload, reload_interval, max_connection_age,
               allow_weak_keys
    [authn]    allow_cns, allow_spiffe_ids, allow_trust_domains, allow_dns_names,
               allow_fingerprints, allow_any_client, jwks, jwks_ca, issuers, audiences,
               require_scopes, exempt
    [authz]    policy, reload_interval
    [metrics]  listen
    top level: aio, insecure, health, reflection, shutdown_grace, workers

What is checked here: the shape (an unknown or misspelt key is refused with its dotted path and
the nearest known key), the types, durations and addresses, and the combinations that can never
work (an allow-list without a client CA, plaintext without ``insecure = true``). What is *not*
checked here: the files themselves; :func:`grpcsec.server.secure_server` loads and checks every
file before anything binds. No grpc import.
"""

from __future__ import annotations

import difflib
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from grpcsec.authn.options import HEALTH_METHODS, AuthnOptions
from grpcsec.errors import ConfigurationError, GrpcsecError
from grpcsec.fileio import FileKind, read_file
from grpcsec.pki.validity import parse_duration
from grpcsec.target import Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (3.10)
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "AuthzConfig",
    "MetricsConfig",
    "SecurityConfig",
    "TLSConfig",
    "mask_url",
    "parse_toml",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSConfig:
    """The serving certificate and, with ``client_ca``, mutual TLS."""

    cert: Path
    key: Path
    client_ca: Path | None = None
    next_ca: Path | None = None
    reload: bool = True
    reload_interval: float = 1.0
    max_connection_age: float = 3600.0
    """Seconds before a connection is closed so the client re-handshakes (0: never)."""
    allow_weak_keys: bool = False

    @property
    def mutual(self) -> bool:
        """Whether client certificates are required and verified."""
        return self.client_ca is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthzConfig:
    """An A43 policy file, re-read when it changes (audit loggers are the policy's own
    ``audit_logging_options``)."""

    policy: Path
    reload_interval: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsConfig:
    """Where ``/metrics`` (Prometheus) and ``/status`` (JSON) are served."""

    listen: Target


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityConfig:
    """One secured server. Plaintext needs ``tls=None`` *and* ``insecure=True``."""

    listen: tuple[Target, ...] = (Target("127.0.0.1", 50051),)
    tls: TLSConfig | None = None
    insecure: bool = False
    authn: AuthnOptions = field(default_factory=AuthnOptions)
    authz: AuthzConfig | None = None
    metrics: MetricsConfig | None = None
    aio: bool = False
    health: bool = True
    reflection: bool = False
    shutdown_grace: float = 5.0
    workers: int = 8
    source: Path | None = None
    """The file this configuration was read from (for messages)."""

    def __post_init__(self) -> None:
        if not self.listen:
            raise ConfigurationError("listen: give at least one address")
        if self.tls is None and not self.insecure:
            raise ConfigurationError(
                "no TLS configuration: set tls.cert and tls.key (--cert/--key), plus "
                "tls.client_ca (--client-ca) for mTLS; plaintext needs insecure = true (--insecure)"
            )
        if self.tls is not None and self.insecure:
            raise ConfigurationError(
                "insecure = true (--insecure) serves plaintext; drop the tls settings "
                "(--cert/--key/--client-ca)"
            )
        if self.authn.requires_client_certificates and (self.tls is None or not self.tls.mutual):
            raise ConfigurationError(
                "authn allow-lists need mTLS: set tls.client_ca (--client-ca) so clients present "
                "certificates"
            )
        if self.workers < 1:
            raise ConfigurationError("workers: must be at least 1")
        if self.shutdown_grace < 0:
            raise ConfigurationError("shutdown_grace: must not be negative")

    @property
    def mode(self) -> str:
        """``mtls``, ``tls`` or ``plaintext``."""
        if self.tls is None:
            return "plaintext"
        return "mtls" if self.tls.mutual else "tls"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SecurityConfig:
        """Read a TOML file (bounded, regular files only); relative paths in it are relative
        to the file. Raises :class:`ConfigurationError` naming the file and the key."""
        file = Path(path)
        parsed = parse_toml(read_file(file, kind=FileKind.CONFIG), source=file)
        try:
            return cls.from_mapping(parsed, base=file.absolute().parent, source=file)
        except ConfigurationError as exc:
            if exc.path is not None:
                raise
            raise ConfigurationError(exc.message, path=file) from exc

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, base: Path | None = None, source: Path | None = None
    ) -> SecurityConfig:
        """Build from a mapping shaped like the TOML file; relative paths join ``base``."""
        return _Reader(base or Path.cwd()).config(data, source)

    def to_mapping(self) -> dict[str, Any]:
        """Every setting, shaped like the file (absolute paths, durations in seconds):
        ``from_mapping(config.to_mapping())`` gives an equal configuration."""
        authn = self.authn
        data: dict[str, Any] = {
            "listen": [str(t) for t in self.listen],
            "aio": self.aio,
            "insecure": self.insecure,
            "health": self.health,
            "reflection": self.reflection,
            "shutdown_grace": self.shutdown_grace,
            "workers": self.workers,
        }
        if self.tls is not None:
            tls = self.tls
            data["tls"] = {
                "cert": str(tls.cert),
                "key": str(tls.key),
                "reload": tls.reload,
                "reload_interval": tls.reload_interval,
                "max_connection_age": tls.max_connection_age,
                "allow_weak_keys": tls.allow_weak_keys,
            }
            for name in ("client_ca", "next_ca"):
                value = getattr(tls, name)
                if value is not None:
                    data["tls"][name] = str(value)
        data["authn"] = {
            "allow_cns": list(authn.allow_common_names),
            "allow_spiffe_ids": list(authn.allow_spiffe_ids),
            "allow_trust_domains": list(authn.allow_trust_domains),
            "allow_dns_names": list(authn.allow_dns_names),
            "allow_fingerprints": list(authn.allow_fingerprints),
            "allow_any_client": authn.allow_any_client,
            "issuers": list(authn.issuers),
            "audiences": list(authn.audiences),
            "require_scopes": list(authn.required_scopes),
            "exempt": list(authn.exempt),
        }
        if authn.jwks is not None:
            data["authn"]["jwks"] = str(authn.jwks)
        if authn.jwks_ca is not None:
            data["authn"]["jwks_ca"] = str(authn.jwks_ca)
        if self.authz is not None:
            data["authz"] = {
                "policy": str(self.authz.policy),
                "reload_interval": self.authz.reload_interval,
            }
        if self.metrics is not None:
            data["metrics"] = {"listen": str(self.metrics.listen)}
        return data

    def to_json(self) -> dict[str, Any]:
        """The effective configuration for people (``grpcsec config check``): the mapping plus
        the mode and source file; a JWKS URL's credentials and query are masked."""
        data = self.to_mapping()
        jwks = data["authn"].get("jwks")
        if jwks is not None:
            data["authn"]["jwks"] = mask_url(jwks)
        return {"source": _text(self.source), "mode": self.mode, **data}


def parse_toml(data: bytes, *, source: Path | None = None) -> dict[str, Any]:
    """TOML bytes as a mapping; :class:`ConfigurationError` (one line) when they are not."""
    try:
        parsed: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigurationError("not UTF-8 text", path=source) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"not valid TOML: {exc}", path=source) from exc
    return parsed


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def mask_url(text: str) -> str:
    """``text`` with a URL's user-info and query replaced by ``***`` (they may hold secrets)."""
    if "://" not in text:
        return text
    parts = urlsplit(text)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


# -- the schema -----------------------------------------------------------------------------------
_TOP = (
    "listen",
    "aio",
    "insecure",
    "health",
    "reflection",
    "shutdown_grace",
    "workers",
    "tls",
    "authn",
    "authz",
    "metrics",
)
_TLS = (
    "cert",
    "key",
    "client_ca",
    "next_ca",
    "reload",
    "reload_interval",
    "max_connection_age",
    "allow_weak_keys",
)
_AUTHN = (
    "allow_cns",
    "allow_spiffe_ids",
    "allow_trust_domains",
    "allow_dns_names",
    "allow_fingerprints",
    "allow_any_client",
    "jwks",
    "jwks_ca",
    "issuers",
    "audiences",
    "require_scopes",
    "exempt",
)
_AUTHZ = ("policy", "reload_interval")
_METRICS = ("listen",)
SCHEMA: dict[str, tuple[str, ...]] = {
    "": _TOP,
    "tls": _TLS,
    "authn": _AUTHN,
    "authz": _AUTHZ,
    "metrics": _METRICS,
}
"""Every key the file may hold, by table (``""`` is the top level)."""


class _Reader:
    """One pass over the mapping; every error names the dotted key."""

    def __init__(self, base: Path) -> None:
        self.base = base

    # -- leaf readers ---------------------------------------------------------------------------
    @staticmethod
    def _known(table: str, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{table or 'the file'}: expected a table")
        allowed = SCHEMA[table]
        for key in data:
            if key not in allowed:
                dotted = f"{table}.{key}" if table else str(key)
                near = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                hint = f"; did you mean {(table + '.') if table else ''}{near[0]}?" if near else ""
                raise ConfigurationError(f"{dotted}: unknown key{hint}")

    @staticmethod
    def _bool(name: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise ConfigurationError(f"{name}: expected true or false, got {_show(value)}")
        return value

    @staticmethod
    def _str(name: str, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"{name}: expected a non-empty string, got {_show(value)}")
        return value

    def _strs(self, name: str, value: object) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigurationError(f"{name}: expected a list of strings, got {_show(value)}")
        return tuple(self._str(f"{name}[{i}]", item) for i, item in enumerate(value))

    def _path(self, name: str, value: object) -> Path:
        path = Path(self._str(name, value)).expanduser()
        return path if path.is_absolute() else self.base / path

    @staticmethod
    def _seconds(name: str, value: object, *, zero: bool = False) -> float:
        """A duration: ``"1s"``, ``"1h30m"``, or a number of seconds (``0`` only if allowed)."""
        if isinstance(value, bool):
            raise ConfigurationError(f"{name}: expected a duration like '1s', got {_show(value)}")
        if isinstance(value, int | float):
            seconds = float(value)
        elif isinstance(value, str) and zero and value.strip() == "0":
            seconds = 0.0
        elif isinstance(value, str):
            try:
                seconds = parse_duration(value).total_seconds()
            except GrpcsecError as exc:
                raise ConfigurationError(f"{name}: {exc.message}") from exc
        else:
            raise ConfigurationError(f"{name}: expected a duration like '1s', got {_show(value)}")
        if seconds < 0 or (seconds == 0 and not zero) or not math.isfinite(seconds):
            raise ConfigurationError(f"{name}: expected a positive duration, got {_show(value)}")
        return seconds

    @staticmethod
    def _address(name: str, value: object) -> Target:
        if not isinstance(value, str):
            raise ConfigurationError(f"{name}: expected HOST:PORT, got {_show(value)}")
        try:
            return Target.listen(value)
        except GrpcsecError as exc:
            raise ConfigurationError(f"{name}: {exc.message}") from exc

    # -- tables ---------------------------------------------------------------------------------
    def config(self, data: Mapping[str, Any], source: Path | None) -> SecurityConfig:
        self._known("", data)
        listen = data.get("listen", "127.0.0.1:50051")
        addresses = [listen] if isinstance(listen, str) else listen
        if not isinstance(addresses, list):
            raise ConfigurationError(f"listen: expected HOST:PORT or a list, got {_show(listen)}")
        values: dict[str, Any] = {
            "listen": tuple(self._address(f"listen[{i}]", a) for i, a in enumerate(addresses)),
            "source": source,
        }
        for key in ("aio", "insecure", "health", "reflection"):
            if key in data:
                values[key] = self._bool(key, data[key])
        if "shutdown_grace" in data:
            values["shutdown_grace"] = self._seconds("shutdown_grace", data["shutdown_grace"])
        if "workers" in data:
            workers = data["workers"]
            if isinstance(workers, bool) or not isinstance(workers, int):
                raise ConfigurationError(f"workers: expected a whole number, got {_show(workers)}")
            values["workers"] = workers
        if "tls" in data:
            if data.get("insecure") is True:
                raise ConfigurationError(
                    "insecure = true (--insecure) serves plaintext; drop the tls settings "
                    "(--cert/--key/--client-ca)"
                )
            values["tls"] = self.tls(data["tls"])
        values["authn"] = self.authn(data.get("authn", {}))
        if "authz" in data:
            values["authz"] = self.authz(data["authz"])
        if "metrics" in data:
            self._known("metrics", data["metrics"])
            if "listen" not in data["metrics"]:
                raise ConfigurationError("metrics.listen: required in a [metrics] table")
            values["metrics"] = MetricsConfig(
                listen=self._address("metrics.listen", data["metrics"]["listen"])
            )
        return SecurityConfig(**values)

    def tls(self, data: Mapping[str, Any]) -> TLSConfig:
        self._known("tls", data)
        if "cert" not in data or "key" not in data:
            given, missing, noun = (
                ("cert", "key", "key") if "cert" in data else ("key", "cert", "certificate")
            )
            if given not in data:
                raise ConfigurationError("tls: set tls.cert and tls.key (--cert/--key)")
            raise ConfigurationError(
                f"tls.{given} (--{given}) given without its {noun}: set tls.{missing} "
                f"(--{missing}) too"
            )
        values: dict[str, Any] = {
            "cert": self._path("tls.cert", data["cert"]),
            "key": self._path("tls.key", data["key"]),
        }
        for key in ("client_ca", "next_ca"):
            if key in data:
                values[key] = self._path(f"tls.{key}", data[key])
        for key in ("reload", "allow_weak_keys"):
            if key in data:
                values[key] = self._bool(f"tls.{key}", data[key])
        if "reload_interval" in data:
            values["reload_interval"] = self._seconds(
                "tls.reload_interval", data["reload_interval"]
            )
        if "max_connection_age" in data:
            values["max_connection_age"] = self._seconds(
                "tls.max_connection_age", data["max_connection_age"], zero=True
            )
        return TLSConfig(**values)

    def authn(self, data: Mapping[str, Any]) -> AuthnOptions:
        self._known("authn", data)
        lists = {
            "allow_cns": "allow_common_names",
            "allow_spiffe_ids": "allow_spiffe_ids",
            "allow_trust_domains": "allow_trust_domains",
            "allow_dns_names": "allow_dns_names",
            "allow_fingerprints": "allow_fingerprints",
            "issuers": "issuers",
            "audiences": "audiences",
            "require_scopes": "required_scopes",
        }
        values: dict[str, Any] = {
            field_name: self._strs(f"authn.{key}", data[key])
            for key, field_name in lists.items()
            if key in data
        }
        values["exempt"] = (
            self._strs("authn.exempt", data["exempt"]) if "exempt" in data else HEALTH_METHODS
        )
        if "allow_any_client" in data:
            values["allow_any_client"] = self._bool(
                "authn.allow_any_client", data["allow_any_client"]
            )
        if "jwks" in data:
            jwks = self._str("authn.jwks", data["jwks"])
            values["jwks"] = jwks if "://" in jwks else str(self._path("authn.jwks", jwks))
        if "jwks_ca" in data:
            values["jwks_ca"] = self._path("authn.jwks_ca", data["jwks_ca"])
        return AuthnOptions(**values)

    def authz(self, data: Mapping[str, Any]) -> AuthzConfig:
        self._known("authz", data)
        if "policy" not in data:
            raise ConfigurationError("authz.policy: required in an [authz] table")
        interval = 1.0
        if "reload_interval" in data:
            interval = self._seconds("authz.reload_interval", data["reload_interval"])
        return AuthzConfig(
            policy=self._path("authz.policy", data["policy"]), reload_interval=interval
        )


def _show(value: object) -> str:
    """A short, safe rendering of a wrong value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
