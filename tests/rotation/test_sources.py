"""Certificate sources: change tokens and reads for the three on-disk layouts, and memory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from grpcsec.errors import ConfigurationError, MaterialError
from grpcsec.rotation import CertificateSource, FileSource, MemorySource, RawMaterial
from tests.rotation.conftest import CertDir, Layout, RotPki, bundle, server_leaf


@pytest.mark.parametrize("layout", list(Layout))
def test_every_layout_changes_the_token_and_reads_the_new_pair(
    layout: Layout, rot_pki: RotPki, make_dir: Callable[[Layout], CertDir]
) -> None:
    certs = make_dir(layout)
    first, second = server_leaf(rot_pki.ca), server_leaf(rot_pki.ca)
    certs.write(first, ca=bundle(rot_pki.ca))
    source = FileSource.of(certs.cert, certs.key, trust=certs.ca)
    assert isinstance(source, CertificateSource)
    token = source.version()
    assert source.version() == token  # stable while nothing changes (negative control)
    raw = source.read()
    assert raw.chain == first.chain_pem()
    assert raw.key == first.key_pem()
    assert raw.trust == bundle(rot_pki.ca)
    certs.write(second)
    assert source.version() != token
    again = source.read()
    assert again.chain == second.chain_pem()
    assert again.key == second.key_pem()
    assert again.digest != raw.digest


def test_data_symlink_reads_name_the_configured_path_not_the_timestamped_dir(
    rot_pki: RotPki, make_dir: Callable[[Layout], CertDir]
) -> None:
    certs = make_dir(Layout.DATA_SYMLINK)
    certs.write(server_leaf(rot_pki.ca))
    assert certs.cert.is_symlink()
    certs.delete("tls.crt")
    with pytest.raises(MaterialError, match="no such file") as info:
        FileSource.of(certs.cert, certs.key).read()
    assert info.value.path == str(certs.cert)
    assert "..2026" not in str(info.value)


def test_a_missing_file_is_a_token_not_an_exception(tmp_path: Path) -> None:
    source = FileSource.of(tmp_path / "missing.crt", tmp_path / "missing.key")
    token = source.version()
    assert token == source.version()
    with pytest.raises(MaterialError, match="no such file"):
        source.read()


def test_half_a_pair_is_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="both the certificate and the key"):
        FileSource.of(tmp_path / "a.crt", None, trust=tmp_path / "ca.crt")
    with pytest.raises(ConfigurationError, match="needs a certificate and key, or a CA"):
        FileSource.of(None, None)


def test_memory_source_bumps_its_version_and_keeps_parts_on_request(rot_pki: RotPki) -> None:
    leaf = server_leaf(rot_pki.ca)
    source = MemorySource.of(leaf, trust=rot_pki.ca)
    assert source.version() == 0
    source.set(keep_identity=True, trust=bundle(rot_pki.ca, rot_pki.new_ca))
    assert source.version() == 1
    raw = source.read()
    assert raw.chain == leaf.chain_pem()
    assert raw.trust == bundle(rot_pki.ca, rot_pki.new_ca)
    source.set_raw(b"junk", None)
    assert source.read().chain == b"junk"
    assert source.version() == 2


def test_raw_material_never_shows_the_key(rot_pki: RotPki) -> None:
    leaf = server_leaf(rot_pki.ca)
    raw = RawMaterial(chain=leaf.chain_pem(), key=leaf.key_pem())
    assert "PRIVATE KEY" not in repr(raw)
    assert "key" in repr(raw)
    # The digest separates parts: moving bytes between fields changes it.
    assert RawMaterial(chain=b"ab", key=b"c").digest != RawMaterial(chain=b"a", key=b"bc").digest
