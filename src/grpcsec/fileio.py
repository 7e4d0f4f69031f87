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
============================  ========  ==================================================

:func:`file_version` is the cheap token watchers poll: it never raises and never opens the file,
so a watched path that turns into a FIFO, a device or a symlink loop changes the token, and the
next :func:`read_file` says what is wrong. :class:`WatchedFile` is the small watcher the JWKS
and token files use (certificate rotation and policy files have their own watchers, reading
through the same :func:`read_file`). Not checked here: file permissions and ownership (see
``grpcsec doctor``), and what the bytes contain (each caller parses them).
"""

from __future__ import annotations

import enum
import errno
import logging
import os
import stat
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, Generic, TypeVar

from grpcsec.errors import MaterialError

__all__ = ["FileKind", "WatchedFile", "WatchedFileCounters", "file_version", "read_file"]

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


class WatchedFile(Generic[T]):
    """A value parsed from a file, re-read and re-parsed when :func:`file_version` changes.

    The first read happens at construction and raises. Later, :meth:`check` never raises: a new
    version that cannot be read (missing, a FIFO, a device, a symlink loop, too large) or parsed
    (``parse`` raises :class:`MaterialError`) leaves :attr:`value` as it was, logs one warning
    per distinct problem on ``log`` and counts it in :attr:`failures`; the file is read again at
    the next check, so the next good version is picked up then. Not thread-safe: callers hold
    their own lock. ``what`` names the file in log lines (never its content).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        kind: FileKind,
        parse: Callable[[bytes], T],
        what: str,
        log: logging.Logger,
    ) -> None:
        self.path = Path(path)
        self.kind = kind
        self._parse = parse
        self._what = what
        self._log = log
        self._version = file_version(self.path)
        self.value: T = parse(read_file(self.path, kind=kind))
        #: Successful re-reads after the first.
        self.reloads = 0
        #: Refused versions (each distinct problem once).
        self.failures = 0
        #: Why the file's current version is not in use, ``None`` when it is.
        self.last_error: str | None = None

    def check(self) -> bool:
        """Re-read when the file changed; whether a new value was taken."""
        version = file_version(self.path)
        if version == self._version:
            self.last_error = None  # back to the version in use
            return False
        try:
            value = self._parse(read_file(self.path, kind=self.kind))
        except MaterialError as exc:
            if exc.message != self.last_error:
                self.failures += 1
                self._log.warning("%s not reloaded, keeping the last good one: %s", self._what, exc)
            self.last_error = exc.message
            return False
        self._version = version
        self.value = value
        self.last_error = None
        self.reloads += 1
        return True


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
