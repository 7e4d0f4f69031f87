"""Verification keys: JWK parsing, thumbprints, key sets and the keys they refuse."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from grpcsec.authn import (
    JWTVerifier,
    KeySet,
    StaticKeys,
    VerificationKey,
    public_jwks,
)
from grpcsec.authn.keys import jwk_thumbprint
from grpcsec.errors import ConfigurationError, MaterialError
from tests.authn.conftest import (
    AUDIENCE,
    Keys,
    Minter,
    jwk,
    refused,
)

NOW = 1_900_000_000.0


# -- parsing ---------------------------------------------------------------------------------------
def test_jwks_round_trip_and_thumbprint_kid(keys: Keys) -> None:
    document = public_jwks([(keys.ec, None), (keys.rsa, "r")])
    parsed = KeySet.from_jwks(json.dumps(document))
    assert parsed.kids() == [jwk_thumbprint(keys.ec.public_key()), "r"]
    assert parsed.keys[0].algorithms == frozenset({"ES256"})
    assert parsed.keys[1].algorithms == frozenset({"RS256"})
    assert all("d" not in entry for entry in document["keys"])


def test_unusable_keys_are_skipped_and_listed(keys: Keys) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (on purpose)
    small_jwk = {**RSAAlgorithm.to_jwk(small.public_key(), as_dict=True), "kid": "small"}
    document = {
        "keys": [
            jwk(keys.ec, "sig"),
            jwk(keys.foreign, "enc", use="enc"),
            small_jwk,
            jwk(keys.ec, "weird", kty="XYZ"),
            "not an object",
        ]
    }
    parsed = KeySet.from_jwks(document)
    assert parsed.kids() == ["sig"]
    assert len(parsed.skipped) == 4
    assert any("2048" in reason for reason in parsed.skipped)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"not json", "not valid JSON"),
        ({"nokeys": []}, "not a JWKS"),
        ({"keys": []}, "no usable signature key"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "private or symmetric"),
    ],
)
def test_bad_jwks_documents_are_refused(document: Any, message: str) -> None:
    with pytest.raises(MaterialError, match=message):
        KeySet.from_jwks(document)


def test_private_and_duplicate_keys_are_refused(keys: Keys) -> None:
    private = {**jwk(keys.ec, "p"), "d": "AAAA"}
    with pytest.raises(MaterialError, match="private"):
        KeySet.from_jwks({"keys": [private]})
    with pytest.raises(MaterialError, match="share the kid"):
        KeySet.from_jwks({"keys": [jwk(keys.ec, "same"), jwk(keys.foreign, "same")]})


def test_jwk_alg_restricts_the_key(keys: Keys, mint: Minter) -> None:
    """An RSA JWK marked ``alg: RS256`` does not verify a PS256 token."""
    document = {"keys": [jwk(keys.rsa, "r", alg="RS256")]}
    verifier = JWTVerifier(
        StaticKeys(KeySet.from_jwks(document)), audience=AUDIENCE, algorithms=["RS256", "PS256"]
    )
    token = mint(key=keys.rsa, kid="r", now=NOW, algorithm="PS256")
    assert refused(verifier, token, NOW) == "key_algorithm_mismatch"
    verifier.verify(mint(key=keys.rsa, kid="r", now=NOW), now=NOW)


def test_verification_key_refuses_unfit_keys(keys: Keys) -> None:
    with pytest.raises(ConfigurationError, match="2048"):
        VerificationKey.from_public_key(rsa.generate_private_key(65537, 1024))  # noqa: S505
    with pytest.raises(ConfigurationError, match="does not fit"):
        VerificationKey.from_public_key(keys.ec, algorithm="RS256")
    with pytest.raises(ConfigurationError, match="unsupported key"):
        VerificationKey.from_public_key(ec.generate_private_key(ec.SECP256K1()))
