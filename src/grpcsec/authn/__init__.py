"""Authentication: who is calling, decided with plain functions over values.

Modules, one concept each:

* :mod:`grpcsec.call` (shared with :mod:`grpcsec.authz`): :class:`CallInfo` and the
  :class:`Check` protocol that :mod:`grpcsec.interceptors` runs;
* :mod:`~grpcsec.authn.mtls`: client-certificate allow-lists (:class:`RequireClientCert`);
* :mod:`~grpcsec.authn.trust_domains` and :mod:`~grpcsec.authn.spiffe_check`: which CAs speak
  for which SPIFFE trust domain (:class:`TrustDomainBundles`), and the check that holds a
  client's SPIFFE ID to its own trust domain's CAs (:class:`SpiffeBindingCheck`);
* :mod:`~grpcsec.authn.bearer`: the one ``authorization: Bearer`` entry of a call;
* :mod:`~grpcsec.authn.verifier` (with :mod:`~grpcsec.authn.claim_rules`,
  :mod:`~grpcsec.authn.token_cache`, :mod:`~grpcsec.authn.verified` and
  :mod:`~grpcsec.authn.report`): JWT verification (:class:`JWTVerifier`);
* :mod:`~grpcsec.authn.requirement`: the check a server runs (:class:`RequireBearerToken`);
* :mod:`~grpcsec.authn.keys`, :mod:`~grpcsec.authn.key_sources` and
  :mod:`~grpcsec.authn.jwks_url`: verification keys from static keys, a JWKS file or a JWKS URL;
* :mod:`~grpcsec.authn.token_sources`: where a client's token comes from;
  :mod:`~grpcsec.authn.token_transport`: where it may be sent;
  :mod:`~grpcsec.authn.client`: the client interceptors and channels that attach it;
* :mod:`~grpcsec.authn.tokens`: test tokens and JWKS documents from local keys (development
  only);
* :mod:`~grpcsec.authn.options`: command-line style settings (:class:`AuthnOptions`) turned
  into checks, with conflicts refused up front.

Only :mod:`~grpcsec.authn.client` imports grpc, and its names here load on first use.
"""

from typing import TYPE_CHECKING

from grpcsec.authn.bearer import bearer_token
from grpcsec.authn.jwks_url import JWKSUrl
from grpcsec.authn.key_sources import JWKSFile, KeySource, StaticKeys
from grpcsec.authn.keys import KeySet, VerificationKey
from grpcsec.authn.mtls import ClientCertAllowList, RequireClientCert
from grpcsec.authn.options import AuthnOptions
from grpcsec.authn.report import TokenReport
from grpcsec.authn.requirement import RequireBearerToken, TokenRequirement
from grpcsec.authn.spiffe_check import ClientCABundles, SpiffeBindingCheck
from grpcsec.authn.token_sources import RefreshingToken, StaticToken, TokenFile, TokenSource
from grpcsec.authn.tokens import mint_token, public_jwks
from grpcsec.authn.trust_domains import TrustDomainBundles
from grpcsec.authn.verified import VerifiedToken
from grpcsec.authn.verifier import JWTVerifier
from grpcsec.call import AsyncCheck, CallInfo, Check
from grpcsec.lazy import lazy_names

if TYPE_CHECKING:
    from grpcsec.authn.client import (
        BearerTokenInterceptor,
        aio_bearer_interceptors,
        aio_token_channel,
        token_channel,
    )

# The client interceptors and channels import grpc; they load on first use, so that
# ``import grpcsec.authn`` (a verifier, a CLI command) does not start grpc core.
__getattr__ = lazy_names(
    __name__,
    {
        "BearerTokenInterceptor": "grpcsec.authn.client",
        "aio_bearer_interceptors": "grpcsec.authn.client",
        "aio_token_channel": "grpcsec.authn.client",
        "token_channel": "grpcsec.authn.client",
    },
    globals(),
)


__all__ = [
    "AsyncCheck",
    "AuthnOptions",
    "BearerTokenInterceptor",
    "CallInfo",
    "Check",
    "ClientCABundles",
    "ClientCertAllowList",
    "JWKSFile",
    "JWKSUrl",
    "JWTVerifier",
    "KeySet",
    "KeySource",
    "RefreshingToken",
    "RequireBearerToken",
    "RequireClientCert",
    "SpiffeBindingCheck",
    "StaticKeys",
    "StaticToken",
    "TokenFile",
    "TokenReport",
    "TokenRequirement",
    "TokenSource",
    "TrustDomainBundles",
    "VerificationKey",
    "VerifiedToken",
    "aio_bearer_interceptors",
    "aio_token_channel",
    "bearer_token",
    "mint_token",
    "public_jwks",
    "token_channel",
]
