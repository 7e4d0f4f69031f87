"""The file side of :class:`~grpcsec.server.config.SecurityConfig`: the keys a TOML file (or a
mapping of the same shape) may hold, and the one reader that turns them into the value.

Every error names the dotted key (``tls.reload_interval``), the flag of the same meaning where
there is one, and for an unknown key the nearest known key. Values are checked for type and
range here; combinations are checked by the value itself. No grpc import.
"""

from __future__ import annotations

import difflib
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from grpcsec.acme.config import ACME_KEYS, read_acme_table
from grpcsec.authn.options import HEALTH_METHODS, AuthnOptions
from grpcsec.errors import ConfigurationError, GrpcsecError
from grpcsec.pki.validity import parse_duration
from grpcsec.server.config import AuthzConfig, MetricsConfig, SecurityConfig, TLSConfig
from grpcsec.spiffe.address import WorkloadAPIAddress
from grpcsec.target import Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (3.10)
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = ["SCHEMA", "parse_toml", "read_mapping"]


def parse_toml(data: bytes, *, source: Path | None = None) -> dict[str, Any]:
    """TOML bytes as a mapping; :class:`ConfigurationError` (one line) when they are not."""
    try:
        parsed: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigurationError("not UTF-8 text", path=source) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"not valid TOML: {exc}", path=source) from exc
    return parsed


def read_mapping(
    data: Mapping[str, Any], *, base: Path, source: Path | None = None
) -> SecurityConfig:
    """The configuration a mapping shaped like the file describes; relative paths join
    ``base``."""
    return _Reader(base).config(data, source)


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
    "crl",
    "allow_undetermined",
    "spiffe_socket",
    "acme",
)
_AUTHN = (
    "allow_cns",
    "allow_spiffe_ids",
    "allow_trust_domains",
    "allow_spiffe_prefixes",
    "trust_bundles",
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
    "tls.acme": ACME_KEYS,
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
        values: dict[str, Any] = {}
        if "spiffe_socket" in data:
            text = self._str("tls.spiffe_socket", data["spiffe_socket"])
            values["spiffe_socket"] = WorkloadAPIAddress.parse(text, what="tls.spiffe_socket")
        elif "cert" not in data or "key" not in data:
            given, missing, noun = (
                ("cert", "key", "key") if "cert" in data else ("key", "cert", "certificate")
            )
            if given not in data:
                raise ConfigurationError(
                    "tls: set tls.cert and tls.key (--cert/--key), or tls.spiffe_socket "
                    "(--spiffe-socket)"
                )
            raise ConfigurationError(
                f"tls.{given} (--{given}) given without its {noun}: set tls.{missing} "
                f"(--{missing}) too"
            )
        for key in ("cert", "key", "client_ca", "next_ca"):
            if key in data:
                values[key] = self._path(f"tls.{key}", data[key])
        if "crl" in data:
            values["crl"] = tuple(
                self._path(f"tls.crl[{i}]", item)
                for i, item in enumerate(self._strs("tls.crl", data["crl"]))
            )
        for key in ("reload", "allow_weak_keys", "allow_undetermined"):
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
        if "acme" in data:
            self._known("tls.acme", data["acme"])
            values["acme"] = read_acme_table(
                data["acme"], cert=values["cert"], path=self._path, text=self._str, texts=self._strs
            )
        return TLSConfig(**values)

    def authn(self, data: Mapping[str, Any]) -> AuthnOptions:
        self._known("authn", data)
        lists = {
            "allow_cns": "allow_common_names",
            "allow_spiffe_ids": "allow_spiffe_ids",
            "allow_trust_domains": "allow_trust_domains",
            "allow_spiffe_prefixes": "allow_spiffe_prefixes",
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
        if "trust_bundles" in data:
            values["trust_bundles"] = self._trust_bundles(data["trust_bundles"])
        return AuthnOptions(**values)

    def _trust_bundles(self, value: object) -> tuple[tuple[str, Path], ...]:
        """``{"a.test" = "a.pem", ...}``: trust domain → CA file (relative to the file)."""
        if not isinstance(value, Mapping):
            raise ConfigurationError(
                f'authn.trust_bundles: expected a table like {{"a.test" = "a.pem"}}, got '
                f"{_show(value)}"
            )
        return tuple(
            (str(domain), self._path(f"authn.trust_bundles.{domain}", path))
            for domain, path in sorted(value.items())
        )

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
