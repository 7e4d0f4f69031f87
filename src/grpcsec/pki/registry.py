"""What a CA directory remembers: the certificates issued from it, its revocations and the
number of the last CRL it published.

Two files sit next to ``ca.crt`` and ``ca.key`` (both 0644; they hold no secret):

``issued.jsonl``
    One JSON object per line, appended once per certificate issued from the directory::

        {"serial": "5f3a...", "subject": "CN=alice", "not_after": "2027-03-05T18:00:00+00:00",
         "file": "/srv/pki/alice.crt", "role": "client certificate",
         "issued_at": "2026-12-05T18:00:00+00:00", "ca_key_id": "9e11..."}

    ``serial`` is lower-case hex, times are RFC 3339 UTC, ``file`` is the absolute path of
    the certificate file written. Appending (one ``write`` of whole lines, then ``fsync``)
    never rewrites what is already recorded, so one file serves hundreds of thousands of
    certificates.

``revoked.json``
    The revocation state, replaced atomically (temporary file, then rename) on each change::

        {"format": 1, "ca_key_id": "9e11...", "crl_number": 3,
         "revoked": [{"serial": "5f3a...", "revoked_at": "...", "reason": "key_compromise",
                      "subject": "CN=alice"}]}

    ``crl_number`` is the number of the last CRL published (0: none yet); ``reason`` is an
    RFC 5280 reason name (:class:`~grpcsec.pki.crl.RevocationReason`) or ``null``.

Both carry ``ca_key_id``, the subject key identifier (hex) of the CA they belong to. When
``grpcsec init --force`` or ``ca init --force`` puts a new CA (a new key) into the directory,
the old CA's lines stay in ``issued.jsonl`` for the audit trail but are not this CA's, and the
old ``revoked.json`` is replaced on the new CA's first revocation or CRL (its numbers start
again at 1: a CRL number counts per CA).

Every read-modify-write of these files happens under an exclusive ``flock`` of the directory
itself (no lock file), so two ``grpcsec`` processes issuing or revoking at once do not lose
each other's records. Both files are read through :func:`grpcsec.fileio.read_file`
(``FileKind.CA_RECORDS``, 64 MiB) and parsed completely; a file that is not what this module
writes is one :class:`MaterialError` naming the file and the line, never a traceback.

Not decided here: whether a certificate belongs to the CA (:mod:`~grpcsec.pki.revoke` checks
it) or when to issue. Nothing here reads or writes keys.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import stat
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography import x509

from grpcsec.errors import MaterialError
from grpcsec.fileio import FileKind, read_file
from grpcsec.pki.crl import Revocation, RevocationReason
from grpcsec.pki.files import CERT_MODE, PendingFile, write_files
from grpcsec.pki.layout import CertificateFiles

if sys.platform != "win32":
    import fcntl

__all__ = [
    "ISSUED_FILE",
    "REVOKED_FILE",
    "CaRecords",
    "IssuedRecord",
    "RevocationState",
    "ca_key_id",
    "write_issued",
]

ISSUED_FILE = "issued.jsonl"
REVOKED_FILE = "revoked.json"
_FORMAT = 1


def _hex(serial: int) -> str:
    return format(serial, "x")


def ca_key_id(ca_certificate: x509.Certificate) -> str:
    """The CA's subject key identifier in hex (computed from its key when the certificate
    carries none): what ties records to one CA key."""
    try:
        ski = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return ski.value.digest.hex()
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(ca_certificate.public_key()).digest.hex()


def _authority_key_id(certificate: x509.Certificate) -> str:
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        return ""
    return (aki.value.key_identifier or b"").hex()


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat()


def _parse_serial(value: object) -> int:
    if not isinstance(value, str) or not value or len(value) > 40:
        raise TypeError("serial is not a hex string of at most 40 digits")
    return int(value, 16)


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("not a JSON object")
    return value


def _parse_time(value: object, name: str) -> dt.datetime:
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{name} has no time zone")
    return moment.astimezone(dt.timezone.utc)


def _optional_str(value: object, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedRecord:
    """One certificate issued from the directory: one line of ``issued.jsonl``."""

    serial: int
    subject: str
    not_after: dt.datetime
    file: str | None
    role: str
    issued_at: dt.datetime
    ca_key_id: str

    def to_json(self) -> dict[str, Any]:
        """The line's object (serial hex, times RFC 3339 UTC)."""
        return {
            "serial": _hex(self.serial),
            "subject": self.subject,
            "not_after": _time(self.not_after),
            "file": self.file,
            "role": self.role,
            "issued_at": _time(self.issued_at),
            "ca_key_id": self.ca_key_id,
        }

    @classmethod
    def from_json(cls, data: object) -> IssuedRecord:
        """Parse one line's object; ``ValueError`` or ``TypeError`` saying what is wrong."""
        data = _object(data)
        subject = data.get("subject")
        if not isinstance(subject, str):
            raise TypeError("subject is not a string")
        return cls(
            serial=_parse_serial(data.get("serial")),
            subject=subject,
            not_after=_parse_time(data.get("not_after"), "not_after"),
            file=_optional_str(data.get("file"), "file"),
            role=_optional_str(data.get("role"), "role") or "",
            issued_at=_parse_time(data.get("issued_at"), "issued_at"),
            ca_key_id=_optional_str(data.get("ca_key_id"), "ca_key_id") or "",
        )

    @classmethod
    def of(cls, item: CertificateFiles, *, now: dt.datetime) -> IssuedRecord:
        """The record of a certificate just written to ``item.certificate_file``."""
        return cls(
            serial=item.certificate.serial_number,
            subject=item.certificate.subject.rfc4514_string(),
            not_after=item.certificate.not_valid_after_utc,
            file=str(item.certificate_file.absolute()),
            role=item.role,
            issued_at=now,
            ca_key_id=_authority_key_id(item.certificate),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationState:
    """``revoked.json``: the revocations by serial (with the subject when known) and the
    number of the last CRL published, for the CA whose key identifier is ``ca_key_id``."""

    ca_key_id: str
    revocations: Mapping[int, Revocation] = field(default_factory=lambda: MappingProxyType({}))
    subjects: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    crl_number: int = 0

    def to_json(self) -> dict[str, Any]:
        """The file's object, revocations in serial order."""
        return {
            "format": _FORMAT,
            "ca_key_id": self.ca_key_id,
            "crl_number": self.crl_number,
            "revoked": [
                {**self.revocations[s].to_json(), "subject": self.subjects.get(s)}
                for s in sorted(self.revocations)
            ],
        }

    @classmethod
    def from_json(cls, data: object) -> RevocationState:
        """Parse the file's object; ``ValueError`` or ``TypeError`` saying what is wrong."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f'not a revocation record (expected "format": {_FORMAT})')
        number = data.get("crl_number")
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise ValueError("crl_number is not a non-negative integer")
        entries = data.get("revoked")
        if not isinstance(entries, list):
            raise TypeError("revoked is not a list")
        revocations: dict[int, Revocation] = {}
        subjects: dict[int, str] = {}
        for index, raw in enumerate(entries):
            try:
                entry = _object(raw)
                serial = _parse_serial(entry.get("serial"))
                reason = _optional_str(entry.get("reason"), "reason")
                revocations[serial] = Revocation(
                    serial=serial,
                    revoked_at=_parse_time(entry.get("revoked_at"), "revoked_at"),
                    reason=None if reason is None else RevocationReason(reason),
                )
                subject = _optional_str(entry.get("subject"), "subject")
            except (ValueError, TypeError) as exc:
                raise ValueError(f"revoked[{index}]: {exc}") from exc
            if subject is not None:
                subjects[serial] = subject
        key_id = data.get("ca_key_id")
        if not isinstance(key_id, str):
            raise TypeError("ca_key_id is not a string")
        return cls(
            ca_key_id=key_id,
            revocations=MappingProxyType(revocations),
            subjects=MappingProxyType(subjects),
            crl_number=number,
        )

    def with_revocation(self, revocation: Revocation, subject: str | None) -> RevocationState:
        """A copy with ``revocation`` added."""
        subjects = dict(self.subjects)
        if subject is not None:
            subjects[revocation.serial] = subject
        return replace(
            self,
            revocations=MappingProxyType({**self.revocations, revocation.serial: revocation}),
            subjects=MappingProxyType(subjects),
        )

    def with_crl_number(self, number: int) -> RevocationState:
        """A copy whose last published CRL number is ``number``."""
        return replace(self, crl_number=number)


def _one_line(exc: Exception) -> str:
    return str(exc).split("\n", 1)[0][:160]


class CaRecords:
    """The record files of one CA directory, as they concern the CA whose key identifier is
    ``ca_key_id`` (see the module docstring for their format)."""

    __slots__ = ("ca_key_id", "directory")

    def __init__(self, directory: str | os.PathLike[str], ca_key_id: str) -> None:
        self.directory = Path(directory)
        self.ca_key_id = ca_key_id

    @property
    def issued_path(self) -> Path:
        """``DIR/issued.jsonl``."""
        return self.directory / ISSUED_FILE

    @property
    def revoked_path(self) -> Path:
        """``DIR/revoked.json``."""
        return self.directory / REVOKED_FILE

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's exclusive lock (creating the directory 0700 if missing)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if sys.platform == "win32":  # pragma: no cover (no flock: one process at a time)
            yield
            return
        try:
            fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as exc:
            raise MaterialError(
                f"cannot open the CA directory to lock it: {exc.strerror or exc}",
                path=self.directory,
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self, path: Path) -> bytes | None:
        if not path.exists() and not path.is_symlink():
            return None
        return read_file(path, kind=FileKind.CA_RECORDS)

    def issued(self) -> Mapping[int, IssuedRecord]:
        """Every certificate recorded for this CA, by serial (lines of a CA that was in the
        directory before are skipped)."""
        data = self._read(self.issued_path)
        records: dict[int, IssuedRecord] = {}
        if data is None:
            return records
        for number, line in enumerate(data.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                record = IssuedRecord.from_json(json.loads(line))
            except (ValueError, TypeError, RecursionError) as exc:
                raise MaterialError(
                    f"line {number} is not an issuance record ({_one_line(exc)}); "
                    "restore the file or remove that line",
                    path=self.issued_path,
                ) from exc
            if record.ca_key_id == self.ca_key_id:
                records[record.serial] = record
        return records

    def state(self) -> RevocationState:
        """This CA's revocation state (empty, CRL number 0, when nothing was revoked yet or the
        file belongs to a CA that was in the directory before)."""
        data = self._read(self.revoked_path)
        if data is None:
            return RevocationState(ca_key_id=self.ca_key_id)
        try:
            state = RevocationState.from_json(json.loads(data))
        except (ValueError, TypeError, RecursionError) as exc:
            raise MaterialError(
                f"is not a grpcsec revocation record ({_one_line(exc)}); restore it from a backup",
                path=self.revoked_path,
            ) from exc
        return (
            state
            if state.ca_key_id == self.ca_key_id
            else RevocationState(ca_key_id=self.ca_key_id)
        )

    def save_state(self, state: RevocationState) -> None:
        """Replace ``revoked.json`` atomically (call under :meth:`locked`)."""
        text = json.dumps(state.to_json(), indent=1, ensure_ascii=True) + "\n"
        write_files([PendingFile(self.revoked_path, text.encode(), CERT_MODE)], force=True)

    def check_appendable(self) -> None:
        """Refuse (before anything is written) an ``issued.jsonl`` that exists but is not a
        regular file (a FIFO, a device, a directory)."""
        try:
            mode = self.issued_path.stat().st_mode
        except FileNotFoundError:
            return
        except OSError as exc:
            raise MaterialError(
                f"cannot record: {exc.strerror or exc}", path=self.issued_path
            ) from exc
        if not stat.S_ISREG(mode):
            raise MaterialError(
                "is not a regular file; refusing to record issued certificates in it",
                path=self.issued_path,
            )

    def append_issued(self, records: Sequence[IssuedRecord]) -> None:
        """Append one line per record with one ``write`` and ``fsync`` (call under
        :meth:`locked`). A record file that is not a regular file is refused."""
        if not records:
            return
        data = b"".join(
            json.dumps(r.to_json(), ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
            for r in records
        )
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0)
        flags |= getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.issued_path, flags, CERT_MODE)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise MaterialError("is not a regular file", path=self.issued_path)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise MaterialError(
                f"cannot record: {exc.strerror or exc}", path=self.issued_path
            ) from exc


def write_issued(
    ca_dir: str | os.PathLike[str],
    certificates: Sequence[CertificateFiles],
    files: Sequence[PendingFile],
    *,
    force: bool,
    now: dt.datetime,
) -> None:
    """Write the files of certificates just issued from the CA in ``ca_dir`` and record each
    certificate in its ``issued.jsonl``: the one way grpcsec's commands write what a CA issued.

    ``files`` go through :func:`~grpcsec.pki.files.write_files` (all or nothing); the records
    are appended after that, under the directory's lock, so a refused write records nothing.
    ``certificates`` that are CAs of ``ca_dir`` itself (``grpcsec init`` lists its new root)
    are not recorded. When the files are written but recording fails, the error says so and
    names the serials (revoke such a certificate by its file).
    """
    issued = [
        IssuedRecord.of(item, now=now)
        for item in certificates
        if item.certificate.issuer != item.certificate.subject
    ]
    records = CaRecords(ca_dir, ca_key_id="")  # each record names its CA itself
    with records.locked():
        records.check_appendable()
        write_files(files, force=force)
        try:
            records.append_issued(issued)
        except MaterialError as exc:
            serials = ", ".join(_hex(r.serial) for r in issued)
            raise MaterialError(
                f"the certificate files were written but serial(s) {serials} could not be "
                f"recorded ({exc.message})",
                path=exc.path,
            ) from exc
