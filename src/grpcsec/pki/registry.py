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
from pathlib import Path

from grpcsec.errors import MaterialError
from grpcsec.fileio import FileKind, read_file
from grpcsec.pki.files import CERT_MODE, PendingFile, write_files
from grpcsec.pki.layout import CertificateFiles
from grpcsec.pki.records import IssuedRecord, RevocationState, ca_key_id, serial_hex

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
        """Refuse, before anything is written, an ``issued.jsonl`` that exists but is not a
        regular file (a FIFO, a device, a directory) or that this process may not write (nor
        create, when it is missing). Not a guarantee (the disk may fill up meanwhile), but it
        turns the common mistakes into "nothing written"."""
        try:
            mode = self.issued_path.stat().st_mode
        except FileNotFoundError:
            mode = None
        except OSError as exc:
            raise MaterialError(
                f"cannot record: {exc.strerror or exc}", path=self.issued_path
            ) from exc
        if mode is not None and not stat.S_ISREG(mode):
            raise MaterialError(
                "is not a regular file; refusing to record issued certificates in it",
                path=self.issued_path,
            )
        target = self.issued_path if mode is not None else self.directory
        if not os.access(target, os.W_OK):
            raise MaterialError("cannot record issued certificates: permission denied", path=target)

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
            serials = ", ".join(serial_hex(r.serial) for r in issued)
            raise MaterialError(
                f"the certificate files were written but serial(s) {serials} could not be "
                f"recorded ({exc.message})",
                path=exc.path,
            ) from exc
