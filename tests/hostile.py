"""Hostile replacements for a file grpcsec reads or watches: a FIFO, a symlink to a device, a
symlink loop. Shared by the reader tests and the watcher tests.

A reader that regressed to a blocking ``open`` would hang on the FIFO forever. Nothing here can:
:func:`replaced_by` releases any reader stuck on its FIFO when the block ends (it opens and
closes the writing end), and :func:`bounded` fails a call that does not return within a few
seconds, then releases it the same way.
"""

from __future__ import annotations

import contextlib
import enum
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BOUND_SECONDS = 5.0


class Hostile(enum.Enum):
    """What a file is replaced with, and the words the refusal must use."""

    FIFO = "FIFO"
    DEV_ZERO = "character device"
    DEV_NULL = "character device "  # the same words; the space keeps the enum values distinct
    LOOP = "symlink loop"

    @property
    def words(self) -> str:
        return self.value.strip()


def make(path: Path, kind: Hostile) -> None:
    """Create ``path`` as the hostile entry (``path`` must not exist)."""
    if kind is Hostile.FIFO:
        os.mkfifo(path)
    elif kind is Hostile.DEV_ZERO:
        path.symlink_to("/dev/zero")
    elif kind is Hostile.DEV_NULL:
        path.symlink_to("/dev/null")
    else:
        path.symlink_to(path.name)  # a symlink to itself


def release(path: Path) -> None:
    """Unblock any reader waiting in ``open`` on a FIFO at ``path`` (no-op otherwise)."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


@contextlib.contextmanager
def replaced_by(path: Path, kind: Hostile) -> Iterator[str]:
    """Atomically rename a hostile entry over ``path``; yields the words the refusal must use.
    On exit a stuck FIFO reader is released; ``path`` is left for the caller to replace."""
    temp = path.with_name(f".{path.name}.hostile")
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    if kind is Hostile.LOOP:
        temp.symlink_to(path.name)  # once renamed to ``path``, it points at itself
    else:
        make(temp, kind)
    temp.replace(path)
    try:
        yield kind.words
    finally:
        release(path)


def put(path: Path, data: bytes) -> None:
    """Replace ``path`` with a regular file holding ``data`` by renaming over it (writing
    through the hostile entry would block on the FIFO or write to the device)."""
    temp = path.with_name(f".{path.name}.good")
    temp.write_bytes(data)
    temp.replace(path)


def bounded(call: Callable[[], Any], *, release_path: Path, seconds: float = BOUND_SECONDS) -> Any:
    """``call()``'s result (or its exception), failing if it takes longer than ``seconds``."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # noqa: BLE001 (handed back to the test thread)
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        release(release_path)
        thread.join(seconds)
        raise AssertionError(f"the call blocked for more than {seconds}s on {release_path}")
    if "error" in box:
        raise box["error"]
    return box.get("result")
