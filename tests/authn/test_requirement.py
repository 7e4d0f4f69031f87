"""RequireBearerToken: per-method scopes and claims, exempt methods, PERMISSION_DENIED reasons."""

from __future__ import annotations

import pytest

from grpcsec.authn import (
    CallInfo,
    RequireBearerToken,
    TokenRequirement,
)
from grpcsec.errors import AuthorizationError
from grpcsec.identity import Peer, TransportSecurity
from tests.authn.conftest import (
    Keys,
    Minter,
    make_verifier,
)


def call(method: str, token: str | None) -> CallInfo:
    metadata = [("authorization", f"Bearer {token}")] if token else []
    return CallInfo(
        method=method, metadata=metadata, peer=Peer(address="", transport=TransportSecurity.TLS)
    )


def test_scopes_and_claims_per_method(keys: Keys, mint: Minter) -> None:
    check = RequireBearerToken(
        make_verifier(keys),
        scopes=["base"],
        methods={
            "/pkg.Admin/*": TokenRequirement(scopes=["admin"]),
            "/pkg.Admin/Audit": TokenRequirement(scopes=["audit"], claims=["tenant"]),
        },
        exempt=["/grpc.health.v1.Health/*"],
    )
    base = mint(scopes=["base"])
    admin = mint(scopes=["admin"])
    audit = mint(scopes=["audit"], claims={"tenant": "acme"})
    result = check.check(call("/pkg.Svc/Get", base))
    assert result is not None
    assert result.claims is not None
    assert result.claims["sub"] == "alice"
    check.check(call("/pkg.Admin/Reset", admin))
    check.check(call("/pkg.Admin/Audit", audit))
    assert check.check(call("/grpc.health.v1.Health/Check", None)) is None
    for method, token, missing in [
        ("/pkg.Svc/Get", admin, "insufficient_scope"),
        ("/pkg.Admin/Reset", base, "insufficient_scope"),
        ("/pkg.Admin/Audit", mint(scopes=["audit"]), "missing_claim"),
    ]:
        with pytest.raises(AuthorizationError) as caught:
            check.check(call(method, token))
        assert getattr(caught.value, "reason", None) == missing
        assert token not in str(caught.value)
