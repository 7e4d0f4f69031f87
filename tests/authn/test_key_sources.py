"""Key sources: JWKS files that change (and hostile replacements), and picking file or URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grpcsec.authn import (
    JWKSFile,
    JWKSUrl,
    JWTVerifier,
    public_jwks,
)
from grpcsec.authn.key_sources import key_source
from grpcsec.errors import ConfigurationError, MaterialError
from tests.authn.conftest import (
    AUDIENCE,
    EC_KID,
    Keys,
    Minter,
    jwk,
    refused,
)
from tests.conftest import Pki
from tests.hostile import Hostile, bounded, put, replaced_by

NOW = 1_900_000_000.0


# -- files -----------------------------------------------------------------------------------------
def test_jwks_file_is_reread_when_it_changes(tmp_path: Path, keys: Keys, mint: Minter) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(keys.ec, EC_KID)]}))
    source = JWKSFile(path, poll_interval=5.0, now=NOW)
    verifier = JWTVerifier(source, audience=AUDIENCE)
    new_token = mint(key=keys.foreign, kid="new", now=NOW)
    assert refused(verifier, new_token, NOW) == "unknown_kid"

    path.write_text(json.dumps({"keys": [jwk(keys.ec, EC_KID), jwk(keys.foreign, "new")]}))
    assert refused(verifier, new_token, NOW + 1) == "unknown_kid"  # not polled yet
    verifier.verify(new_token, now=NOW + 6)
    assert source.reloads == 1

    path.write_text("{broken")
    verifier.verify(mint(key=keys.foreign, kid="new", now=NOW, subject="b"), now=NOW + 12)
    assert source.status(NOW)["last_error"] is not None


def test_jwks_file_errors_at_construction(tmp_path: Path) -> None:
    with pytest.raises(MaterialError, match="no such file"):
        JWKSFile(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(MaterialError, match="not a JWKS"):
        JWKSFile(tmp_path / "bad.json")


def test_key_source_picks_file_or_url(tmp_path: Path, keys: Keys, pki: Pki) -> None:
    path = tmp_path / "k.json"
    path.write_text(json.dumps(public_jwks([(keys.ec, "a")])))
    assert isinstance(key_source(str(path)), JWKSFile)
    assert isinstance(key_source("https://idp.example/jwks", ca=pki.ca), JWKSUrl)
    with pytest.raises(ConfigurationError, match="only applies"):
        key_source(str(path), ca=pki.ca)


@pytest.mark.parametrize("hostile", list(Hostile), ids=lambda k: k.name)
def test_jwks_file_replaced_by_a_fifo_device_or_loop_keeps_the_keys(
    tmp_path: Path, keys: Keys, mint: Minter, hostile: Hostile
) -> None:
    """Verification never blocks on the hostile file: the old keys keep verifying, the refusal
    is counted once, and the next good file is read at the next poll."""
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(keys.ec, EC_KID)]}))
    source = JWKSFile(path, poll_interval=1.0, now=NOW)
    verifier = JWTVerifier(source, audience=AUDIENCE)
    old_token = mint(now=NOW)
    with replaced_by(path, hostile) as words:
        for tick in (2, 4):
            bounded(lambda t=tick: verifier.verify(old_token, now=NOW + t), release_path=path)
        assert words in str(source.status(NOW)["last_error"])
        assert source.reload_failures == 1
        assert source.status(NOW)["reload_failures"] == 1
    put(path, json.dumps({"keys": [jwk(keys.foreign, "new")]}).encode())
    verifier.verify(mint(key=keys.foreign, kid="new", now=NOW), now=NOW + 6)
    assert source.reloads == 1
    assert source.status(NOW)["last_error"] is None
    assert refused(verifier, old_token, NOW + 7) == "unknown_kid"
