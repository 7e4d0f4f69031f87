"""``serve``'s flags as the same mapping a config file holds, merged over the file.

One schema (:mod:`grpcsec.server.config`): each flag given on the command line sets the key of
the same meaning, and a flag overrides the file's value for that key. A flag that was not given
leaves the file's value (or the default) alone, so every flag defaults to "not given". Paths
from flags are relative to the current directory; paths in the file to the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grpcsec.errors import ConfigurationError
from grpcsec.fileio import FileKind, read_file
from grpcsec.server.config import SecurityConfig
from grpcsec.server.schema import parse_toml
from grpcsec.spiffe.address import WorkloadAPIAddress

__all__ = ["ServeFlags", "config_from"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeFlags:
    """The ``serve`` flags as typed (``None``/empty/``False``: not given)."""

    listen: tuple[str, ...] = ()
    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None
    next_ca: Path | None = None
    spiffe_socket: str | None = None
    aio: bool = False
    insecure: bool = False
    reload_interval: str | None = None
    no_reload: bool = False
    allow_weak_keys: bool = False
    crl: tuple[Path, ...] = ()
    allow_undetermined: bool = False
    max_connection_age: str | None = None
    jwks: str | None = None
    jwks_ca: Path | None = None
    issuers: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    require_scopes: tuple[str, ...] = ()
    allow_spiffe_ids: tuple[str, ...] = ()
    allow_trust_domains: tuple[str, ...] = ()
    allow_spiffe_prefixes: tuple[str, ...] = ()
    trust_bundles: tuple[str, ...] = ()
    """``T=FILE`` as given (``--trust-bundle``)."""
    allow_cns: tuple[str, ...] = ()
    allow_any_client: bool = False
    policy: Path | None = None
    metrics: str | None = None
    reflection: bool | None = None

    def mapping(self) -> dict[str, Any]:
        """The keys these flags set, shaped like the file."""
        top: dict[str, Any] = {}
        if self.listen:
            top["listen"] = list(self.listen)
        top.update({name: True for name in ("aio", "insecure") if getattr(self, name)})
        if self.reflection is not None:
            top["reflection"] = self.reflection
        if self.metrics is not None:
            top["metrics"] = {"listen": self.metrics}
        tables = {"tls": self._tls(), "authn": self._authn(), "authz": self._authz()}
        top.update({name: values for name, values in tables.items() if values})
        return top

    def _tls(self) -> dict[str, Any]:
        tls: dict[str, Any] = {
            name: _path(getattr(self, name))
            for name in ("cert", "key", "client_ca", "next_ca")
            if getattr(self, name) is not None
        }
        if self.spiffe_socket is not None:
            tls["spiffe_socket"] = self.spiffe_socket
        if self.no_reload:
            tls["reload"] = False
        if self.allow_weak_keys:
            tls["allow_weak_keys"] = True
        if self.crl:
            tls["crl"] = [_path(p) for p in self.crl]
        if self.allow_undetermined:
            tls["allow_undetermined"] = True
        if self.reload_interval is not None:
            tls["reload_interval"] = self.reload_interval
        if self.max_connection_age is not None:
            tls["max_connection_age"] = self.max_connection_age
        return tls

    def _authn(self) -> dict[str, Any]:
        authn: dict[str, Any] = {
            name: list(getattr(self, name)) for name in _LISTS if getattr(self, name)
        }
        if self.jwks is not None:
            authn["jwks"] = self.jwks if "://" in self.jwks else _path(Path(self.jwks))
        if self.jwks_ca is not None:
            authn["jwks_ca"] = _path(self.jwks_ca)
        if self.allow_any_client:
            authn["allow_any_client"] = True
        if self.trust_bundles:
            authn["trust_bundles"] = _trust_bundles(self.trust_bundles)
        return authn

    def _authz(self) -> dict[str, Any]:
        authz: dict[str, Any] = {}
        if self.policy is not None:
            authz["policy"] = _path(self.policy)
        if self.reload_interval is not None:
            authz["reload_interval"] = self.reload_interval
        return authz


_LISTS = (
    "issuers",
    "audiences",
    "require_scopes",
    "allow_spiffe_ids",
    "allow_trust_domains",
    "allow_spiffe_prefixes",
    "allow_cns",
)


def _trust_bundles(given: tuple[str, ...]) -> dict[str, str]:
    """``--trust-bundle T=FILE`` flags as the file's ``trust_bundles`` table."""
    table: dict[str, str] = {}
    for text in given:
        domain, sep, file = text.partition("=")
        if not sep or not domain.strip() or not file.strip():
            raise ConfigurationError(
                f"--trust-bundle {text!r}: expected TRUST_DOMAIN=FILE, e.g. a.test=a-bundle.pem"
            )
        if domain.strip() in table:
            raise ConfigurationError(f"--trust-bundle: {domain.strip()} is given twice")
        table[domain.strip()] = _path(Path(file.strip()))
    return table


def _path(value: Path) -> str:
    return str(value.expanduser().absolute())


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_from(file: Path | None, flags: ServeFlags) -> SecurityConfig:
    """The configuration: the file's keys (paths made absolute), then the flags over them."""
    over = flags.mapping()
    if file is None:
        return SecurityConfig.from_mapping(_without_partial_tables(_with_endpoint_socket(over)))
    base = parse_toml(read_file(file, kind=FileKind.CONFIG), source=file)
    try:
        absolute = SecurityConfig.from_mapping(base, base=file.absolute().parent, source=file)
    except ConfigurationError as exc:
        raise ConfigurationError(exc.message, path=file) from exc
    merged = _merge(absolute.to_mapping(), over)
    if flags.insecure:
        merged.pop("tls", None)
    merged = _with_endpoint_socket(merged)
    return SecurityConfig.from_mapping(_without_partial_tables(merged), source=file)


def _with_endpoint_socket(data: dict[str, Any]) -> dict[str, Any]:
    """``SPIFFE_ENDPOINT_SOCKET`` as ``tls.spiffe_socket``, only when nothing else says where
    the certificate comes from (no cert, key or socket in flags or file, and not plaintext): a
    pod that has the variable for other tools keeps serving its files."""
    tls = data.get("tls") or {}
    if data.get("insecure") or any(k in tls for k in ("cert", "key", "spiffe_socket")):
        return data
    address = WorkloadAPIAddress.from_environment()
    if address is None:
        return data
    return {**data, "tls": {**tls, "spiffe_socket": str(address)}}


def _without_partial_tables(data: dict[str, Any]) -> dict[str, Any]:
    """An ``authz`` table holding only the reload interval (from ``--reload-interval``) has no
    policy to reload: drop it rather than call the policy missing."""
    authz = data.get("authz")
    if isinstance(authz, dict) and "policy" not in authz:
        data = {k: v for k, v in data.items() if k != "authz"}
    return data
