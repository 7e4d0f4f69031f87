"""Reading certificate material and writing it atomically with safe permissions.

Reading turns every way a file can be wrong (missing, not a regular file, unreadable, too large,
empty, garbage, truncated PEM, DER where PEM is needed, a key where a certificate belongs) into
one :class:`MaterialError` that names the file and the problem. Files are read with
:func:`grpcsec.fileio.read_file` (non-blocking, regular files only, capped per kind), re-exported
here.

Writing never leaves a partial file: each file is written to a temporary name in the same
directory with its final mode already set (private keys 0600, CA keys 0400, certificates 0644),
flushed to disk, and renamed into place. A set of files is checked for existing targets before
anything is written, and an existing file is replaced only with ``force=True``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning

from grpcsec.errors import MaterialError
from grpcsec.fileio import FileKind, read_file
from grpcsec.pki.keys import PrivateKey, load_private_key
from grpcsec.pki.wellformed import name_problem
from grpcsec.text import inert

__all__ = [
    "CA_KEY_MODE",
    "CERT_MODE",
    "KEY_MODE",
    "PendingFile",
    "certificates_pem",
    "load_certificate_file",
    "load_certificates",
    "load_csr",
    "load_key_file",
    "read_file",
    "write_files",
]

KEY_MODE = 0o600
CA_KEY_MODE = 0o400
CERT_MODE = 0o644

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


_PARSE_ERRORS = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    InternalError,
    CryptographyDeprecationWarning,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.InvalidVersion,
)
"""What cryptography raises for a certificate it can frame but not read (or only with a
deprecation warning, e.g. a negative serial number)."""


_X509 = TypeVar("_X509", x509.Certificate, x509.CertificateSigningRequest)


class _MalformedError(ValueError):
    """Framed and signed, but with content no peer may rely on; the text is the reason."""


def _parse_x509(load: Callable[[], _X509]) -> _X509:
    """Run ``load`` and read every part cryptography parses lazily (names, serial number,
    extensions, public key), so a malformed certificate or CSR fails here, once, as
    ``ValueError`` (the callers' MaterialError), and not later in inspect, identity, signing or
    a handshake check.

    Found by the ``pem`` fuzz target. Names are then held to :func:`~grpcsec.pki.wellformed.
    name_problem` (NUL bytes, broken DNS names), raised as :class:`_MalformedError` whose text
    callers show. Not checked: whether the values make sense (that is verification's job).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        try:
            value = load()
        except CryptographyDeprecationWarning as exc:  # e.g. a negative serial number
            raise _MalformedError(inert(str(exc).split("\n", 1)[0][:120])) from exc
        except _PARSE_ERRORS as exc:
            raise ValueError(str(exc).split("\n", 1)[0][:120]) from exc
        try:
            _ = value.subject, value.extensions
            value.public_key()
            if isinstance(value, x509.Certificate):
                _ = value.serial_number, value.issuer
        except _PARSE_ERRORS as exc:
            reason = inert(str(exc).split("\n", 1)[0][:120]) or type(exc).__name__
            raise _MalformedError(reason) from exc
    problem = name_problem(value)
    if problem is not None:
        raise _MalformedError(inert(problem))
    return value


def _pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    return [(m.group(1).decode("ascii"), m.group(0)) for m in _PEM_BLOCK.finditer(data)]


def load_certificates(
    data: bytes, *, source: str | Path | None = None, allow_der: bool = True
) -> list[x509.Certificate]:
    """Parse one or more certificates: a PEM bundle in file order, or a single DER certificate.

    With ``allow_der=False`` DER input is refused with a hint, for consumers (grpcio) that only
    take PEM. Private keys and other PEM blocks in the data are refused, not skipped, so a key
    file passed as a certificate is reported as such.
    """
    stripped = data.strip()
    if not stripped:
        raise MaterialError("the file is empty; expected a PEM certificate", path=source)
    begins = _PEM_BEGIN.findall(stripped)
    if not begins:
        stripped = data  # DER: stripping could cut bytes off the end
        if stripped[:1] == b"\x30":
            if not allow_der:
                raise MaterialError(
                    "is DER, but PEM is required here; convert it with "
                    "'openssl x509 -inform der -in FILE -out FILE.pem'",
                    path=source,
                )
            try:
                return [_parse_x509(lambda: x509.load_der_x509_certificate(stripped))]
            except _MalformedError as exc:
                raise MaterialError(f"malformed certificate: {exc}", path=source) from exc
            except ValueError as exc:
                raise MaterialError(
                    "neither PEM nor a valid DER certificate (corrupt or truncated)", path=source
                ) from exc
        raise MaterialError("no PEM certificate found (not a certificate file)", path=source)
    blocks = _pem_blocks(stripped)
    if len(blocks) != len(begins):
        raise MaterialError("truncated PEM: a BEGIN line has no matching END line", path=source)
    certificates: list[x509.Certificate] = []
    for index, (kind, block) in enumerate(blocks, start=1):
        if "PRIVATE KEY" in kind:
            raise MaterialError(
                f"block {index} is a private key, expected a certificate (mixed up files?)",
                path=source,
            )
        if kind != "CERTIFICATE":
            raise MaterialError(f"block {index} is a {kind}, expected a CERTIFICATE", path=source)
        try:
            certificates.append(
                _parse_x509(lambda block=block: x509.load_pem_x509_certificate(block))  # type: ignore[misc]
            )
        except _MalformedError as exc:
            raise MaterialError(f"certificate {index} is malformed: {exc}", path=source) from exc
        except ValueError as exc:
            raise MaterialError(
                f"certificate {index} is corrupt (bad base64 or DER inside the PEM block)",
                path=source,
            ) from exc
    return certificates


def load_certificate_file(path: str | Path, *, allow_der: bool = True) -> list[x509.Certificate]:
    """Read and parse a certificate or bundle file (see :func:`load_certificates`)."""
    return load_certificates(read_file(path), source=path, allow_der=allow_der)


def load_key_file(path: str | Path, *, password: bytes | None = None) -> PrivateKey:
    """Read and parse a private key file, decrypting it in memory when it is encrypted."""
    data = read_file(path, kind=FileKind.KEY)
    if b"-----BEGIN CERTIFICATE-----" in data and b"PRIVATE KEY-----" not in data:
        raise MaterialError("is a certificate, expected a private key (mixed up files?)", path=path)
    return load_private_key(data, password=password, source=str(path))


def load_csr(data: bytes, *, source: str | Path | None = None) -> x509.CertificateSigningRequest:
    """Parse a PEM or DER certificate signing request and check its self-signature."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            csr = _parse_x509(lambda: x509.load_pem_x509_csr(data.strip()))
        else:
            csr = _parse_x509(lambda: x509.load_der_x509_csr(data))
    except _MalformedError as exc:
        raise MaterialError(f"malformed certificate signing request: {exc}", path=source) from exc
    except ValueError as exc:
        raise MaterialError("not a valid certificate signing request", path=source) from exc
    if not csr.is_signature_valid:
        raise MaterialError("the CSR's signature does not verify (tampered?)", path=source)
    return csr


def certificates_pem(certificates: Iterable[x509.Certificate]) -> bytes:
    """Concatenated PEM of certificates, in the order given."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


@dataclass(frozen=True, slots=True)
class PendingFile:
    """One file of a set written by :func:`write_files`. ``data`` is never shown in ``repr``."""

    path: Path
    data: bytes
    mode: int

    def __repr__(self) -> str:
        return f"PendingFile(path={str(self.path)!r}, mode={self.mode:o}, bytes={len(self.data)})"


def _write_temp(target: Path, data: bytes, mode: int) -> Path:
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have cleared bits; set exactly what was asked
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return temp


def write_files(files: Sequence[PendingFile], *, force: bool = False) -> None:
    """Write all files or none: refuse existing targets unless ``force``, then rename into place.

    Directories are created (mode 0700 for new ones). If a later rename fails, files this call
    already placed are removed again, so a failure leaves no new file behind (a file replaced
    with ``force`` stays replaced).
    """
    if not force:
        existing = [f.path for f in files if f.path.exists() or f.path.is_symlink()]
        if existing:
            raise MaterialError(
                "already exists; pass --force to overwrite (nothing was written)",
                path=existing[0],
            )
    temps: list[tuple[Path, PendingFile]] = []
    placed: list[Path] = []
    current = files[0].path if files else Path()
    try:
        for pending in files:
            current = pending.path
            pending.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temps.append((_write_temp(pending.path, pending.data, pending.mode), pending))
        for temp, pending in temps:
            current = pending.path
            if force:
                temp.replace(pending.path)
            else:
                os.link(temp, pending.path)  # fails if the target appeared meanwhile
                temp.unlink()
            placed.append(pending.path)
    except OSError as exc:
        for temp, _ in temps:
            with contextlib.suppress(OSError):
                temp.unlink()
        if not force:
            for path in placed:
                with contextlib.suppress(OSError):
                    path.unlink()
        raise MaterialError(f"cannot write: {exc.strerror or exc}", path=current) from exc
