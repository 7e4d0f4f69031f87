"""Private keys: generation per type, PEM round trips, encrypted keys and bad input."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from grpcsec.errors import MaterialError, PasswordError
from grpcsec.pki.keys import (
    KeyType,
    generate_key,
    key_type_of,
    load_private_key,
    private_key_pem,
    public_keys_equal,
)


@pytest.mark.parametrize("key_type", [k for k in KeyType if k is not KeyType.RSA_4096])
def test_generated_keys_have_their_type(key_type: KeyType) -> None:
    key = generate_key(key_type)
    assert key_type_of(key) is key_type
    assert key_type_of(key.public_key()) is key_type


def test_default_key_type_is_ecdsa_p256() -> None:
    assert key_type_of(generate_key()) is KeyType.ECDSA_P256


def test_pem_round_trip_plain_and_encrypted() -> None:
    key = generate_key()
    plain = private_key_pem(key)
    assert plain.startswith(b"-----BEGIN " + b"PRIVATE KEY-----")
    assert public_keys_equal(load_private_key(plain).public_key(), key.public_key())
    encrypted = private_key_pem(key, b"s3cret")
    assert encrypted.startswith(b"-----BEGIN ENCRYPTED " + b"PRIVATE KEY-----")
    loaded = load_private_key(encrypted, password=b"s3cret")
    assert public_keys_equal(loaded.public_key(), key.public_key())


def test_encrypted_key_without_password_says_so() -> None:
    encrypted = private_key_pem(generate_key(), b"s3cret")
    with pytest.raises(PasswordError, match="encrypted and no password") as info:
        load_private_key(encrypted, source="tls.key")
    assert str(info.value).startswith("tls.key: ")


def test_wrong_password_says_so() -> None:
    encrypted = private_key_pem(generate_key(), b"s3cret")
    with pytest.raises(PasswordError, match="does not decrypt"):
        load_private_key(encrypted, password=b"wrong")


def test_password_for_a_plain_key_is_ignored() -> None:
    key = generate_key()
    loaded = load_private_key(private_key_pem(key), password=b"unused")
    assert public_keys_equal(loaded.public_key(), key.public_key())


def test_der_key_loads() -> None:
    key = generate_key()
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert public_keys_equal(load_private_key(der).public_key(), key.public_key())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello world\n", "corrupt or truncated"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "found"),
        (b"-----BEGIN " + b"PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n", "corrupt"),
    ],
)
def test_garbage_keys_give_one_line_reasons(data: bytes, reason: str) -> None:
    with pytest.raises(MaterialError, match=reason) as info:
        load_private_key(data, source="k.pem")
    assert "\n" not in str(info.value)


def test_truncated_pem_key_is_reported() -> None:
    pem = private_key_pem(generate_key())
    with pytest.raises(MaterialError, match="corrupt or truncated"):
        load_private_key(pem[: len(pem) // 2], source="half.key")
