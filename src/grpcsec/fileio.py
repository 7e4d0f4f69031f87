"""Bounded, non-blocking reads of the files grpcsec is given, and cheap change tokens for them.

Every file grpcsec reads (certificates and bundles, keys, CSRs, policies, JWKS and token files)
goes through :func:`read_file`, so one place decides what a readable file is:

* it is opened with ``O_NONBLOCK | O_NOCTTY | O_CLOEXEC``, so a FIFO without a writer, a
  terminal or a device never blocks the caller (a watcher thread, or a handshake waiting on it);
* only a regular file is read: a FIFO, a character or block device (``/dev/zero``, also through
  a symlink), a socket or a directory is refused with one line naming what it is. The path is
  checked with ``stat`` before it is opened (so a device is not even opened) and the open
  descriptor again with ``fstat`` (so a file swapped in between is caught too);
* a symlink loop is reported as such, not as a generic ``OSError``;
* at most the cap of its :class:`FileKind` is read; a larger file is refused, never truncated.

Caps (bytes; generous for real material, small enough that a mistaken path cannot exhaust memory):

============================  ========  ==================================================
kind                          cap       why this size
============================  ========  ==================================================
certificate or bundle         16 MiB    the largest OS bundles are a few hundred KiB
private or public key         256 KiB   an RSA-16384 key in PEM is about 13 KiB
certificate signing request   1 MiB     a CSR with thousands of names
authorization policy          4 MiB     A43 policies are a few KiB
JWKS                          1 MiB     the same cap as a fetched JWKS
bearer token file             64 KiB    tokens are a few KiB; gRPC metadata is smaller
CA record file                64 MiB    about 250,000 issued certificates at ~250 bytes each
============================  ========  ==================================================

:func:`file_version` is the cheap token watchers poll: it never raises and never opens the file,
so a watched path that turns into a FIFO, a device or a symlink loop changes the token, and the
next :func:`read_file` says what is wrong. :class:`FileSet` is the files one value is built
from, the source :class:`grpcsec.watch.Watch` (the one watcher behind rotation, policy, JWKS
and token files) polls; :class:`WatchedFile` is that watcher for one file, polled on use.
Not checked here: file permissions and ownership (see
``grpcsec doctor``), and what the bytes contain (each caller parses them).
"""

from __future__ import annotations

import enum
import errno
import hashlib
import logging
import os
import stat
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import ConfigurationError, GrpcsecError, MaterialError

if TYPE_CHECKING:
    from grpcsec.watch import Watch, WatchStatus

__all__ = [
    "FileContents",
    "FileKind",
    "FileSet",
    "WatchedFile",
    "WatchedFileCounters",
    "file_version",
    "read_file",
]

T = TypeVar("T")

_KIB = 1024
_MIB = 1024 * 1024

# O_NOCTTY and O_NONBLOCK do not exist on Windows, where a FIFO cannot be opened by path anyway.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


class FileKind(enum.Enum):
    """What a file is expected to hold: names it in errors and caps how much is read."""

    CERTIFICATES = ("certificate or bundle file", 16 * _MIB)
    KEY = ("key file", 256 * _KIB)
    CSR = ("certificate signing request", 1 * _MIB)
    POLICY = ("authorization policy", 4 * _MIB)
    JWKS = ("JWKS file", 1 * _MIB)
    TOKEN = ("token file", 64 * _KIB)
    CONFIG = ("configuration file", 1 * _MIB)
    CRL = ("certificate revocation list", 64 * _MIB)
    CA_RECORDS = ("CA record file", 64 * _MIB)

    def __init__(self, noun: str, max_bytes: int) -> None:
        self.noun = noun
        self.max_bytes = max_bytes


_NOT_REGULAR = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> str | None:
    """Why a file of this mode is not read, or ``None`` for a regular file."""
    if stat.S_ISREG(mode):
        return None
    what = next((noun for test, noun in _NOT_REGULAR if test(mode)), "of an unknown type")
    return f"is {what}, not a regular file; refusing to read it"


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "no such file"
    if exc.errno in {errno.EACCES, errno.EPERM}:
        return "permission denied"
    if exc.errno == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links)"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is not a directory"
    return f"cannot read: {exc.strerror or exc}"


def _too_large(kind: FileKind) -> str:
    return f"larger than {kind.max_bytes} bytes, the cap for a {kind.noun}"


def read_file(path: str | os.PathLike[str], *, kind: FileKind = FileKind.CERTIFICATES) -> bytes:
    """The whole content of a regular file, at most ``kind.max_bytes`` long.

    Raises :class:`MaterialError` naming the path and the reason: missing, permission denied,
    a symlink loop, not a regular file (FIFO, device, socket, directory; nothing is read and
    nothing blocks), or larger than the cap. Callers with their own error type (policies)
    translate it.
    """
    p = Path(path)
    try:
        reason = _not_regular(p.stat().st_mode)
        if reason is not None:
            raise MaterialError(reason, path=p)
        fd = os.open(p, _OPEN_FLAGS)
    except OSError as exc:
        raise MaterialError(_os_reason(exc), path=p) from exc
    try:
        st = os.fstat(fd)
        reason = _not_regular(st.st_mode)  # replaced between stat and open
        if reason is not None:
            raise MaterialError(reason, path=p)
        if st.st_size > kind.max_bytes:
            raise MaterialError(_too_large(kind), path=p)
        chunks: list[bytes] = []
        left = kind.max_bytes + 1  # one byte more than allowed tells "too large" from "at cap"
        while left > 0:
            chunk = os.read(fd, min(left, _MIB))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise MaterialError(_os_reason(exc), path=p) from exc
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > kind.max_bytes:  # the file grew while it was read
        raise MaterialError(_too_large(kind), path=p)
    return data


def file_version(path: str | os.PathLike[str]) -> Hashable:
    """A token that changes when the file at ``path`` may have changed; never raises, never
    opens the file.

    It holds the resolved path (a Kubernetes ``..data`` symlink swap changes it) and the
    followed ``stat``: device, inode, type, size and times. A path that cannot be resolved or
    stat'ed (missing, a symlink loop) gives an error token with the ``errno``, which differs
    from any file's token, so the caller reads and reports the problem.
    """
    try:
        real = os.path.realpath(path)
        st = Path(real).stat()
    except (OSError, ValueError) as exc:
        return (os.fspath(path), "error", getattr(exc, "errno", None))
    return (real, st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class FileContents:
    """The bytes of a :class:`FileSet`'s files as one read saw them, in the set's order.

    ``digest`` is a SHA-256 over every part (length-prefixed), so a watcher tells new content
    from content it already loaded or refused without keeping the bytes; ``repr`` shows the
    paths and the digest, never the content (a key file may be among them).
    """

    paths: tuple[Path, ...]
    parts: tuple[bytes, ...]
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        hasher = hashlib.sha256()
        for part in self.parts:
            hasher.update(len(part).to_bytes(8, "big") + part)
        object.__setattr__(self, "digest", hasher.hexdigest())

    @property
    def data(self) -> bytes:
        """The first file's bytes (the whole content of a one-file set)."""
        return self.parts[0]

    def __repr__(self) -> str:
        names = ", ".join(str(p) for p in self.paths)
        return f"FileContents([{names}], digest={self.digest[:12]})"


def _read_named(path: Path, real: Path, kind: FileKind) -> bytes:
    """Read ``real`` (the resolved ``path``); an error names ``path`` as configured."""
    try:
        return read_file(real, kind=kind)
    except MaterialError as exc:
        raise MaterialError(exc.message, path=path) from exc


class FileSet:
    """The files one value is built from (a certificate and its key; a policy; a JWKS), as a
    source for :class:`grpcsec.watch.Watch`.

    :meth:`version` is the tuple of every file's :func:`file_version` (stat only, never
    raises). :meth:`read` resolves every path first and then reads the real files with
    :func:`read_file`, so a Kubernetes ``..data`` symlink swap is seen as one generation, and
    an error names the configured path rather than the timestamped directory behind it. Not
    checked: that the files belong together (the caller's load function decides).
    """

    __slots__ = ("files",)

    def __init__(self, files: Iterable[tuple[str | os.PathLike[str], FileKind]]) -> None:
        self.files = tuple((Path(path), kind) for path, kind in files)
        if not self.files:
            raise ConfigurationError("a file set needs at least one file")

    @property
    def paths(self) -> tuple[Path, ...]:
        """The configured paths, in order."""
        return tuple(path for path, _ in self.files)

    @property
    def description(self) -> str:
        """The paths, comma-separated (for log lines and status)."""
        return ", ".join(str(p) for p in self.paths)

    def version(self) -> Hashable:
        """A token that changes when any file may have changed."""
        return tuple(file_version(path) for path, _ in self.files)

    def read(self) -> FileContents:
        """Every file's bytes; :class:`MaterialError` naming the configured path otherwise."""
        resolved = [(path, Path(os.path.realpath(path)), kind) for path, kind in self.files]
        parts = [_read_named(path, real, kind) for path, real, kind in resolved]
        return FileContents(self.paths, tuple(parts))

    def __repr__(self) -> str:
        return f"FileSet({self.description!r})"


class WatchedFile(Generic[T]):
    """A value parsed from one file, re-read and re-parsed when the file changes: the
    :class:`grpcsec.watch.Watch` core, polled on use (no thread) by the JWKS and token files.

    The first read happens at construction and raises (:class:`MaterialError`, or what
    ``parse`` raises). Later, :meth:`check` never raises: a new version that cannot be read
    (missing, a FIFO, a device, a symlink loop, too large) or parsed leaves :attr:`value` as it
    was, logs one warning per distinct problem on ``log`` and counts it in :attr:`failures`;
    the next good version is picked up at a later check. Safe to call from several threads
    (the core serialises checks). ``what`` names the file in log lines (never its content);
    ``clock`` stamps the status times.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        kind: FileKind,
        parse: Callable[[bytes], T],
        what: str,
        log: logging.Logger,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        from grpcsec.watch import Watch  # noqa: PLC0415 (grpcsec.watch imports this module)

        self.path = Path(path)
        self.kind = kind
        self._watch: Watch[FileContents, T] = Watch(
            FileSet([(self.path, kind)]),
            load=lambda contents, _now, _current: parse(contents.data),
            what=what,
            describe=lambda _value: "the last good one",
            log=log,
            clock=clock,
            attempts=1,
        )

    @property
    def value(self) -> T:
        """The last good value."""
        return self._watch.current

    def check(self) -> bool:
        """Re-read when the file changed; whether a new value was taken. Never raises."""
        before = self._watch.reload_successes
        self._watch.poll()
        return self._watch.reload_successes > before

    @property
    def reloads(self) -> int:
        """Successful re-reads after the first."""
        return self._watch.reload_successes

    @property
    def failures(self) -> int:
        """Refused versions (each distinct problem once)."""
        return self._watch.reload_failures

    @property
    def last_error(self) -> str | None:
        """Why the file's current version is not in use, ``None`` when it is."""
        failure = self._watch.last_failure
        if failure is None:
            return None
        cause = failure.cause
        return cause.message if isinstance(cause, GrpcsecError) else failure.message

    def status(self) -> WatchStatus:
        """The core's status value (paths, counts, times, last error)."""
        return self._watch.status()


class WatchedFileCounters:
    """``reloads`` and ``reload_failures`` of a class that keeps its :class:`WatchedFile` in
    ``_file`` (the JWKS and token files)."""

    __slots__ = ()
    _file: WatchedFile[Any]

    @property
    def reloads(self) -> int:
        """Successful re-reads after the first."""
        return self._file.reloads

    @property
    def reload_failures(self) -> int:
        """Refused new versions (each distinct problem once)."""
        return self._file.failures
