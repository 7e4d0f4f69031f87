"""The one reader (:mod:`grpcsec.fileio`) and every public entry that reads a file through it.

Real files, FIFOs, device symlinks, symlink loops and a Unix socket in ``tmp_path``. Every call
that could block is run under :func:`tests.hostile.bounded`, so a regression to a blocking
``open`` fails in seconds instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from grpcsec.authn.key_sources import JWKSFile
from grpcsec.authn.token_sources import TokenFile
from grpcsec.authn.tokens import load_public_key
from grpcsec.authz import load_policy
from grpcsec.doctor.roots import default_grpc_roots
from grpcsec.errors import GrpcsecError, MaterialError, PolicyError
from grpcsec.fileio import FileKind, file_version, read_file
from grpcsec.material import KeyPair, TrustBundle
from grpcsec.pki import load_certificate_file, load_csr, load_key_file
from grpcsec.rotation import FileSource
from tests.hostile import Hostile, bounded, make, replaced_by


@pytest.fixture
def fifo_with_writer(tmp_path: Path) -> Iterator[Path]:
    """A FIFO whose writing end is open (and never written): a blocking read would wait."""
    path = tmp_path / "pipe.pem"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer open without waiting
    writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        yield path
    finally:
        os.close(writer)
        os.close(reader)


def test_a_regular_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.pem"
    path.write_bytes(b"x" * 1000)
    assert read_file(path) == b"x" * 1000


def test_a_file_at_the_cap_is_read_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    cap = FileKind.TOKEN.max_bytes
    path = tmp_path / "token"
    path.write_bytes(b"t" * cap)
    assert len(read_file(path, kind=FileKind.TOKEN)) == cap
    path.write_bytes(b"t" * (cap + 1))
    with pytest.raises(MaterialError, match=f"larger than {cap} bytes, the cap for a token file"):
        read_file(path, kind=FileKind.TOKEN)


def test_each_kind_has_a_cap_and_a_name() -> None:
    assert {k.name: k.max_bytes for k in FileKind} == {
        "CERTIFICATES": 16 * 1024 * 1024,
        "KEY": 256 * 1024,
        "CSR": 1024 * 1024,
        "POLICY": 4 * 1024 * 1024,
        "JWKS": 1024 * 1024,
        "TOKEN": 64 * 1024,
        "CONFIG": 1024 * 1024,
        "CRL": 64 * 1024 * 1024,
        "CA_RECORDS": 64 * 1024 * 1024,
    }
    assert len({k.noun for k in FileKind}) == len(FileKind)


@pytest.mark.parametrize("kind", list(Hostile), ids=lambda k: k.name)
def test_a_fifo_device_or_loop_is_refused_at_once(tmp_path: Path, kind: Hostile) -> None:
    path = tmp_path / "ca.pem"
    make(path, kind)
    with pytest.raises(MaterialError) as caught:
        bounded(lambda: read_file(path), release_path=path)
    message = str(caught.value)
    assert kind.words in message
    assert message.startswith(f"{path}: ")
    assert "\n" not in message


def test_a_fifo_with_a_writer_that_never_writes_is_refused(fifo_with_writer: Path) -> None:
    with pytest.raises(MaterialError, match="FIFO"):
        bounded(lambda: read_file(fifo_with_writer), release_path=fifo_with_writer)


def test_a_directory_a_socket_and_a_missing_file_are_named(tmp_path: Path) -> None:
    with pytest.raises(MaterialError, match="is a directory"):
        read_file(tmp_path)
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(MaterialError, match="is a socket"):
            read_file(sock_path)
    with pytest.raises(MaterialError, match="no such file"):
        read_file(tmp_path / "missing.pem")
    (tmp_path / "plain").write_text("x")
    with pytest.raises(MaterialError, match="not a directory"):
        read_file(tmp_path / "plain" / "below.pem")


def test_file_version_never_raises_and_changes_with_the_kind_of_file(tmp_path: Path) -> None:
    path = tmp_path / "tls.crt"
    path.write_bytes(b"one")
    versions = {file_version(path)}
    for kind in Hostile:
        with replaced_by(path, kind):
            versions.add(file_version(path))
            assert file_version(path) == file_version(path)
    assert len(versions) == 1 + len(Hostile)
    path.unlink()
    assert file_version(path) != file_version(tmp_path)


# -- every public entry that reads a file refuses a FIFO without blocking ----------------------
def _policy_text() -> bytes:
    rule = {"name": "all", "request": {"paths": ["*"]}}
    return json.dumps({"name": "p", "allow_rules": [rule]}).encode()


ENTRIES: dict[str, tuple[Callable[[Path], Any], type[GrpcsecError]]] = {
    "load_certificate_file": (load_certificate_file, MaterialError),
    "load_key_file": (load_key_file, MaterialError),
    "load_csr": (lambda p: load_csr(read_file(p, kind=FileKind.CSR)), MaterialError),
    "TrustBundle.from_file": (TrustBundle.from_file, MaterialError),
    "KeyPair.from_files(key)": (lambda p: KeyPair.from_files(p, p), MaterialError),
    "load_public_key": (load_public_key, MaterialError),
    "load_policy": (load_policy, PolicyError),
    "JWKSFile": (JWKSFile, MaterialError),
    "TokenFile": (TokenFile, MaterialError),
    "FileSource.read": (lambda p: FileSource.of(p, p).read(), MaterialError),
}


@pytest.mark.parametrize("entry", list(ENTRIES), ids=str)
def test_every_reader_refuses_a_fifo_with_its_own_error(tmp_path: Path, entry: str) -> None:
    function, error = ENTRIES[entry]
    path = tmp_path / "input"
    os.mkfifo(path)
    with pytest.raises(error, match="FIFO") as caught:
        bounded(lambda: function(path), release_path=path)
    assert "\n" not in str(caught.value)


def test_default_roots_from_a_fifo_are_empty_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "roots.pem"
    os.mkfifo(path)
    roots = bounded(
        lambda: default_grpc_roots({"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(path)}),
        release_path=path,
    )
    assert roots.certificates == ()
