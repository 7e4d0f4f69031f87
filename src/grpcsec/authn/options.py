"""Authentication settings as a command line gives them, turned into checks in one place.

``grpcsec serve`` (and any program with similar flags) parses its options into
:class:`AuthnOptions` and calls :meth:`AuthnOptions.checks`; the result goes to
:class:`grpcsec.interceptors.Guard`. Conflicts fail here, before a server starts:

* an allow-list (``--allow-*``) without mTLS: nobody could ever match it;
* ``--allow-any-client`` together with other allow-list entries;
* token settings (``--issuer``, ``--audience``, ``--require-scope``) without ``--jwks``, and
  ``--jwks`` without ``--audience``.

``exempt`` methods (default: the gRPC health service, which load balancers call without
credentials) skip both checks; reflection is *not* exempt. No grpc import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from grpcsec.authn.jwks_url import JWKSUrl
from grpcsec.authn.key_sources import key_source
from grpcsec.authn.mtls import ClientCertAllowList, RequireClientCert
from grpcsec.authn.requirement import RequireBearerToken
from grpcsec.authn.verifier import JWTVerifier
from grpcsec.call import Check
from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import ConfigurationError

__all__ = ["HEALTH_METHODS", "AuthnOptions"]

HEALTH_METHODS = ("/grpc.health.v1.Health/*",)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthnOptions:
    """What a server requires of its callers. Empty: nothing (no checks)."""

    jwks: str | os.PathLike[str] | None = None
    """A JWKS file or ``https://`` URL (``--jwks``)."""
    jwks_ca: str | os.PathLike[str] | None = None
    """CA bundle for a JWKS URL (default: the system bundle)."""
    issuers: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    required_scopes: tuple[str, ...] = ()
    allow_spiffe_ids: tuple[str, ...] = ()
    allow_trust_domains: tuple[str, ...] = ()
    allow_common_names: tuple[str, ...] = ()
    allow_dns_names: tuple[str, ...] = ()
    allow_fingerprints: tuple[str, ...] = ()
    allow_any_client: bool = False
    exempt: tuple[str, ...] = HEALTH_METHODS
    fetch_at_start: bool = True
    """Fetch a JWKS URL in :meth:`checks`, so an unreachable one fails at startup."""
    clock: Clock = field(default=SYSTEM_CLOCK, repr=False, compare=False)
    """Where the JWKS source and the token verifier read the time."""

    @property
    def _allow_entries(self) -> bool:
        return bool(
            self.allow_spiffe_ids
            or self.allow_trust_domains
            or self.allow_common_names
            or self.allow_dns_names
            or self.allow_fingerprints
        )

    @property
    def requires_client_certificates(self) -> bool:
        """Whether a client-certificate check will run."""
        return self.allow_any_client or self._allow_entries

    def checks(self, *, mutual: bool, now: float | None = None) -> list[Check]:
        """The checks, in order: client certificate, then bearer token. ``mutual`` says whether
        the server requires client certificates (mTLS). Raises :class:`ConfigurationError` for
        conflicting options and :class:`~grpcsec.errors.MaterialError` for an unreadable or
        unreachable JWKS."""
        found: list[Check] = []
        if self.allow_any_client and self._allow_entries:
            raise ConfigurationError(
                "--allow-any-client already allows every verified client; drop the other "
                "--allow-* options, or drop --allow-any-client"
            )
        if self.requires_client_certificates:
            if not mutual:
                raise ConfigurationError(
                    "client-certificate allow-lists need mTLS: give the server a client CA "
                    "(--client-ca)"
                )
            allow = (
                ClientCertAllowList.any_verified_client()
                if self.allow_any_client
                else ClientCertAllowList(
                    spiffe_ids=self.allow_spiffe_ids,
                    trust_domains=self.allow_trust_domains,
                    common_names=self.allow_common_names,
                    dns_names=self.allow_dns_names,
                    fingerprints=self.allow_fingerprints,
                )
            )
            found.append(RequireClientCert(allow, exempt=self.exempt))
        if self.jwks is None:
            if self.issuers or self.audiences or self.required_scopes:
                raise ConfigurationError(
                    "--issuer, --audience and --require-scope configure bearer tokens; "
                    "add --jwks FILE|URL"
                )
            return found
        if not self.audiences:
            raise ConfigurationError("--jwks needs --audience: the audience tokens must be for")
        source = key_source(self.jwks, ca=self.jwks_ca, clock=self.clock)
        if isinstance(source, JWKSUrl) and self.fetch_at_start:
            source.fetch(now)
        verifier = JWTVerifier(
            source, audience=self.audiences, issuer=self.issuers or None, clock=self.clock
        )
        found.append(RequireBearerToken(verifier, scopes=self.required_scopes, exempt=self.exempt))
        return found
