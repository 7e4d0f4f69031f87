"""Authentication: who is calling, decided with plain functions over values.

* :mod:`~grpcsec.authn.call`: :class:`CallInfo` and the :class:`Check` protocol that
  :mod:`grpcsec.interceptors` runs;
* :mod:`~grpcsec.authn.mtls`: client-certificate allow-lists (:class:`RequireClientCert`);
* :mod:`~grpcsec.authn.jwks` and :mod:`~grpcsec.authn.jwt`: JWT bearer tokens verified against
  static keys, a JWKS file or a JWKS URL (:class:`JWTVerifier`, :class:`RequireBearerToken`);
* :mod:`~grpcsec.authn.client`: token sources and client interceptors that attach tokens;
* :mod:`~grpcsec.authn.tokens`: test tokens and JWKS documents from local keys (development
  only);
* :mod:`~grpcsec.authn.options`: command-line style settings (:class:`AuthnOptions`) turned
  into checks, with conflicts refused up front.

Only :mod:`~grpcsec.authn.client` imports grpc.
"""

from grpcsec.authn.call import AsyncCheck, CallInfo, Check
from grpcsec.authn.client import (
    BearerTokenInterceptor,
    RefreshingToken,
    StaticToken,
    TokenFile,
    TokenSource,
    aio_bearer_interceptors,
    aio_token_channel,
    token_channel,
)
from grpcsec.authn.jwks import JWKSFile, JWKSUrl, KeySet, KeySource, StaticKeys, VerificationKey
from grpcsec.authn.jwt import (
    JWTVerifier,
    RequireBearerToken,
    TokenReport,
    TokenRequirement,
    VerifiedToken,
    bearer_token,
)
from grpcsec.authn.mtls import ClientCertAllowList, RequireClientCert
from grpcsec.authn.options import AuthnOptions
from grpcsec.authn.tokens import mint_token, public_jwks

__all__ = [
    "AsyncCheck",
    "AuthnOptions",
    "BearerTokenInterceptor",
    "CallInfo",
    "Check",
    "ClientCertAllowList",
    "JWKSFile",
    "JWKSUrl",
    "JWTVerifier",
    "KeySet",
    "KeySource",
    "RefreshingToken",
    "RequireBearerToken",
    "RequireClientCert",
    "StaticKeys",
    "StaticToken",
    "TokenFile",
    "TokenReport",
    "TokenRequirement",
    "TokenSource",
    "VerificationKey",
    "VerifiedToken",
    "aio_bearer_interceptors",
    "aio_token_channel",
    "bearer_token",
    "mint_token",
    "public_jwks",
    "token_channel",
]
