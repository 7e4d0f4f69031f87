"""The client certificate and key given to the doctor, loaded without judging them. No grpc.

:class:`~grpcsec.material.KeyPair` refuses a key that is not the certificate's, which is right
for building credentials and wrong for a doctor, whose job is to *report* that mismatch. So the
chain and the key are parsed separately here, and whether they match is a fact to check.
Unreadable or unparseable files still raise (:class:`~grpcsec.errors.MaterialError`, exit 2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from grpcsec.doctor.probe import ClientFiles
from grpcsec.fileio import FileKind
from grpcsec.material import StrPath
from grpcsec.pki import (
    PrivateKey,
    certificates_pem,
    load_certificates,
    load_private_key,
    private_key_pem,
    read_file,
)
from grpcsec.pki.keys import public_keys_equal

__all__ = ["ClientMaterial"]


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class ClientMaterial:
    """A client chain (leaf first, as in the file) and its private key, with file names."""

    cert_path: str
    key_path: str
    chain: tuple[x509.Certificate, ...]
    key: PrivateKey = field(repr=False)
    password: bytes | None = field(default=None, repr=False)

    @classmethod
    def load(cls, cert: StrPath, key: StrPath, *, password: bytes | None = None) -> ClientMaterial:
        """Read both files (PEM); raises :class:`~grpcsec.errors.PasswordError` for an
        encrypted key without the right password."""
        cert_path, key_path = os.fspath(cert), os.fspath(key)
        chain = load_certificates(read_file(Path(cert_path)), source=cert_path, allow_der=False)
        key_pem = read_file(Path(key_path), kind=FileKind.KEY)
        private = load_private_key(key_pem, password=password, source=key_path)
        return cls(
            cert_path=cert_path,
            key_path=key_path,
            chain=tuple(chain),
            key=private,
            password=password,
        )

    @property
    def leaf(self) -> x509.Certificate:
        """The client certificate itself."""
        return self.chain[0]

    @property
    def key_matches(self) -> bool:
        """Whether the key is the private half of the leaf."""
        return public_keys_equal(self.leaf.public_key(), self.key.public_key())

    def files(self) -> ClientFiles:
        """The files for the raw TLS probe."""
        return ClientFiles(cert=self.cert_path, key=self.key_path, password=self.password)

    def grpc_pair(self) -> tuple[bytes, bytes]:
        """``(private key PEM, chain PEM)`` as grpcio wants them (the key unencrypted, in
        memory only)."""
        return private_key_pem(self.key), certificates_pem(self.chain)

    def __repr__(self) -> str:
        return f"ClientMaterial(cert_path={self.cert_path!r}, key_path={self.key_path!r})"
