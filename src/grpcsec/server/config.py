"""``SecurityConfig``: everything a secured server needs, as one frozen, validated value.

Built from a TOML file (:meth:`SecurityConfig.load`), from a mapping of the same shape
(:meth:`SecurityConfig.from_mapping`: what ``grpcsec serve`` builds from its flags), or in code.
The schema mirrors the ``serve`` flags (docs/server.md has the table)::

    listen = "127.0.0.1:50051"      # or a list; ":PORT" = every interface
    [tls]      cert, key, client_ca, next_ca, reload, reload_interval, max_connection_age,
               allow_weak_keys, crl, allow_undetermined, spiffe_socket
    [tls.acme] directory, domains, directory_ca, account_key, email, http_port, key_type
    [authn]    allow_cns, allow_spiffe_ids, allow_trust_domains, allow_spiffe_prefixes,
               trust_bundles, allow_dns_names, allow_fingerprints, allow_any_client, jwks,
               jwks_ca, issuers, audiences, require_scopes, exempt
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

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from grpcsec.acme.config import AcmeConfig
from grpcsec.authn.options import AuthnOptions
from grpcsec.errors import ConfigurationError
from grpcsec.fileio import FileKind, read_file
from grpcsec.spiffe.address import WorkloadAPIAddress
from grpcsec.target import Target

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover (3.10)
    pass  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "AuthzConfig",
    "MetricsConfig",
    "SecurityConfig",
    "TLSConfig",
    "mask_url",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSConfig:
    """The serving certificate and, with ``client_ca``, mutual TLS; or, with ``spiffe_socket``,
    the SVID of a SPIFFE Workload API and mutual TLS against its bundles (docs/spiffe.md)."""

    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None
    next_ca: Path | None = None
    reload: bool = True
    reload_interval: float = 1.0
    max_connection_age: float = 3600.0
    """Seconds before a connection is closed so the client re-handshakes (0: never)."""
    allow_weak_keys: bool = False
    crl: tuple[Path, ...] = ()
    """CRL files and directories (every file in a directory is one CRL): client chains are
    checked against them on every call (docs/revocation.md); re-read every
    ``reload_interval``, also with ``reload = false`` (CRLs are meant to be re-published)."""
    allow_undetermined: bool = False
    """Allow a call whose revocation cannot be decided (a configured CRL expired, not yet
    valid or wrongly signed) instead of refusing it; logged either way."""
    acme: AcmeConfig | None = None
    """Where ``cert``/``key`` come from when an ACME CA issues them (``[tls.acme]``): issued
    before the server binds when missing or due, then renewed in place by a background agent
    (docs/acme.md); the file watcher swaps each renewal in."""

    spiffe_socket: WorkloadAPIAddress | None = None
    """The Workload API to take the certificate, key and client-CA bundles from."""

    def __post_init__(self) -> None:
        if self.spiffe_socket is not None and self.acme is not None:
            raise ConfigurationError(
                "tls.spiffe_socket (--spiffe-socket) and tls.acme are two sources of the "
                "serving certificate: choose one"
            )
        if self.spiffe_socket is not None:
            given = [n for n in ("cert", "key", "client_ca", "next_ca") if getattr(self, n)]
            if given:
                raise ConfigurationError(
                    "tls.spiffe_socket (--spiffe-socket) takes the certificate and CA bundles "
                    f"from the Workload API: drop tls.{'/'.join(given)}"
                )
        elif self.cert is None or self.key is None:
            raise ConfigurationError(
                "tls: set tls.cert and tls.key (--cert/--key), or tls.spiffe_socket "
                "(--spiffe-socket)"
            )
        if self.crl and not self.mutual:
            raise ConfigurationError(
                "tls.crl (--crl) checks client certificates: set tls.client_ca (--client-ca)"
            )
        if self.allow_undetermined and not self.crl:
            raise ConfigurationError(
                "tls.allow_undetermined (--allow-undetermined) needs tls.crl (--crl)"
            )
        if self.acme is not None and not self.reload:
            raise ConfigurationError(
                "tls.acme renews the certificate files in place: keep tls.reload = true"
            )

    @property
    def mutual(self) -> bool:
        """Whether client certificates are required and verified."""
        return self.client_ca is not None or self.spiffe_socket is not None

    @property
    def source(self) -> str:
        """Where the serving certificate comes from: ``file``, ``acme`` or ``spiffe``."""
        if self.spiffe_socket is not None:
            return "spiffe"
        return "acme" if self.acme is not None else "file"


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
        if self.authn.trust_bundles and (self.tls is None or not self.tls.mutual):
            raise ConfigurationError(
                "authn.trust_bundles (--trust-bundle) binds client SPIFFE IDs: set tls.client_ca "
                "(--client-ca)"
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
        from grpcsec.server.schema import parse_toml  # noqa: PLC0415 (it builds this class)

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
        from grpcsec.server.schema import read_mapping  # noqa: PLC0415 (it builds this class)

        return read_mapping(data, base=base or Path.cwd(), source=source)

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
                "reload": tls.reload,
                "reload_interval": tls.reload_interval,
                "max_connection_age": tls.max_connection_age,
                "allow_weak_keys": tls.allow_weak_keys,
                "crl": [str(p) for p in tls.crl],
                "allow_undetermined": tls.allow_undetermined,
            }
            for name in ("cert", "key", "client_ca", "next_ca", "spiffe_socket"):
                value = getattr(tls, name)
                if value is not None:
                    data["tls"][name] = str(value)
            if tls.acme is not None:
                data["tls"]["acme"] = tls.acme.to_mapping()
        data["authn"] = {
            "allow_cns": list(authn.allow_common_names),
            "allow_spiffe_ids": list(authn.allow_spiffe_ids),
            "allow_trust_domains": list(authn.allow_trust_domains),
            "allow_spiffe_prefixes": list(authn.allow_spiffe_prefixes),
            "trust_bundles": {domain: str(path) for domain, path in authn.trust_bundles},
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
