"""Authentication settings as a command line gives them, turned into checks in one place.

``grpcsec serve`` (and any program with similar flags) parses its options into
:class:`AuthnOptions` and calls :meth:`AuthnOptions.checks`; the result goes to
:class:`grpcsec.interceptors.Guard`. Conflicts fail here, before a server starts:

* an allow-list (``--allow-*``) without mTLS: nobody could ever match it;
* ``--allow-any-client`` together with other allow-list entries;
* token settings (``--issuer``, ``--audience``, ``--require-scope``) without ``--jwks``, and
  ``--jwks`` without ``--audience``;
* ``--trust-bundle`` (``trust_bundles``) without mTLS, a CA there that names another trust
  domain, or client CAs whose SPIFFE trust domain cannot be told (several, or not ``spiffe://T``).

With mTLS, :meth:`AuthnOptions.checks` also installs
:class:`~grpcsec.authn.spiffe_check.SpiffeBindingCheck` first: a SPIFFE ID is accepted only
from a chain that leads to its own trust domain's CAs (docs/authentication.md, "SPIFFE trust
domains").

``exempt`` methods (default: the gRPC health service, which load balancers call without
credentials) skip both checks; reflection is *not* exempt. No grpc import.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from grpcsec.authn.jwks_url import JWKSUrl
from grpcsec.authn.key_sources import key_source
from grpcsec.authn.mtls import ClientCertAllowList, RequireClientCert
from grpcsec.authn.requirement import RequireBearerToken
from grpcsec.authn.spiffe_check import BundleSource, ClientCABundles, SpiffeBindingCheck
from grpcsec.authn.trust_domains import parse_trust_domain
from grpcsec.authn.verifier import JWTVerifier
from grpcsec.call import Check
from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import ConfigurationError, IssuanceError
from grpcsec.material import TrustBundle
from grpcsec.pki.files import load_certificates
from grpcsec.text import get_logger

__all__ = ["HEALTH_METHODS", "AuthnOptions"]

HEALTH_METHODS = ("/grpc.health.v1.Health/*",)

log = get_logger("grpcsec.authn")


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
    allow_spiffe_prefixes: tuple[str, ...] = ()
    """SPIFFE IDs whose path, whole segments, starts another's (``--allow-spiffe-prefix``)."""
    trust_bundles: tuple[tuple[str, Path], ...] = ()
    """``(trust domain, CA file)`` pairs (``--trust-bundle T=FILE``): the CAs that may issue
    that trust domain's SVIDs, besides client CAs naming it in their own URI SAN."""
    allow_common_names: tuple[str, ...] = ()
    allow_dns_names: tuple[str, ...] = ()
    allow_fingerprints: tuple[str, ...] = ()
    allow_any_client: bool = False
    exempt: tuple[str, ...] = HEALTH_METHODS
    fetch_at_start: bool = True
    """Fetch a JWKS URL in :meth:`checks`, so an unreachable one fails at startup."""
    clock: Clock = field(default=SYSTEM_CLOCK, repr=False, compare=False)
    """Where the JWKS source and the token verifier read the time."""

    def __post_init__(self) -> None:
        ClientCertAllowList(  # SPIFFE entries are checked when the options are read
            spiffe_ids=self.allow_spiffe_ids,
            trust_domains=self.allow_trust_domains,
            spiffe_prefixes=self.allow_spiffe_prefixes,
        )
        seen: set[str] = set()
        for domain, _path in self.trust_bundles:
            try:
                name = parse_trust_domain(domain)
            except IssuanceError as exc:
                raise ConfigurationError(f"trust bundle: {exc.message}") from exc
            if name != domain or name in seen:
                raise ConfigurationError(
                    f"trust bundle: {domain!r} is given twice or not in canonical form ({name})"
                )
            seen.add(name)

    @property
    def uses_spiffe(self) -> bool:
        """Whether a SPIFFE allow-list is configured."""
        return bool(self.allow_spiffe_ids or self.allow_trust_domains or self.allow_spiffe_prefixes)

    @property
    def _allow_entries(self) -> bool:
        return bool(
            self.uses_spiffe
            or self.allow_common_names
            or self.allow_dns_names
            or self.allow_fingerprints
        )

    @property
    def requires_client_certificates(self) -> bool:
        """Whether a client-certificate check will run."""
        return self.allow_any_client or self._allow_entries

    def trust_domain_bundles(
        self, client_cas: Callable[[], Sequence[x509.Certificate]]
    ) -> ClientCABundles:
        """The trust-domain bundles of the client CAs ``client_cas`` returns (those in service,
        rotated ones included) and of ``trust_bundles`` (read now; a bad file is a
        :class:`~grpcsec.errors.MaterialError`)."""
        explicit = {
            domain: tuple(load_certificates(TrustBundle.from_file(path).pem))
            for domain, path in self.trust_bundles
        }
        return ClientCABundles(client_cas, explicit)

    def _binding_check(self, bundles: BundleSource) -> SpiffeBindingCheck:
        current = bundles()
        if current.problems:
            raise ConfigurationError(
                "SPIFFE trust domains: " + "; ".join(current.problems) + " (give the CA's "
                "trust domain with --trust-bundle T=FILE, or fix its URI SAN)"
            )
        if self.uses_spiffe and not current.bound:
            log.warning(
                "no client CA names a SPIFFE trust domain (URI SAN spiffe://T) and no "
                "--trust-bundle is given: SPIFFE IDs are not bound to their trust domain, so the "
                "client CA file must hold one trust domain's CAs only"
            )
        return SpiffeBindingCheck(bundles, require_svid=self.uses_spiffe, clock=self.clock)

    def checks(
        self, *, mutual: bool, now: float | None = None, bundles: BundleSource | None = None
    ) -> list[Check]:
        """The checks, in order: SPIFFE trust-domain binding (with mTLS and ``bundles``: see
        :meth:`trust_domain_bundles`), client certificate, then bearer token. ``mutual`` says
        whether the server requires client certificates (mTLS). Raises
        :class:`ConfigurationError` for conflicting options and
        :class:`~grpcsec.errors.MaterialError` for an unreadable or unreachable JWKS."""
        found: list[Check] = []
        if self.trust_bundles and not mutual:
            raise ConfigurationError(
                "trust bundles (--trust-bundle) bind client SPIFFE IDs: they need mTLS "
                "(--client-ca)"
            )
        if mutual and bundles is not None:
            found.append(self._binding_check(bundles))
        elif self.trust_bundles:
            raise ConfigurationError(
                "trust bundles (--trust-bundle) need the client CAs in service (bundles=...)"
            )
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
                    spiffe_prefixes=self.allow_spiffe_prefixes,
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
