"""grpc core's own log lines, read from its stderr and retold through grpcsec's logger.

Why: grpc core reports a refused TLS handshake (the client sent no certificate, a certificate
from another CA, a client that is not speaking TLS) only in its own log, at INFO, in a format
of its own (``I1205 19:50:57.714007 27435 ssl_transport_security.cc:2563] Handshake failed
...``). Silencing core hides why a client could not connect; showing core raw puts unformatted,
unlimited lines beside grpcsec's (and ahead of grpcsec's explanation of a port in use).

How: ``grpcsec serve`` asks core for INFO (``GRPC_VERBOSITY``, set in :mod:`grpcsec.cli` before
grpc starts) and :func:`core_log_to_logger` points file descriptor 2, where core writes, at a
pipe. Python's own ``sys.stderr`` is moved to a copy of the real stderr first, so grpcsec's
lines never pass through the pipe. A daemon thread reads the pipe line by line and
:func:`retell` sorts each line:

* a handshake failure becomes one WARNING on ``grpcsec.grpc`` naming the TLS reason and what
  it usually means, at most one per reason per :data:`WINDOW` (the next one says how many were
  left out);
* lines grpcsec explains itself (a port that cannot be bound) and core's INFO chatter become
  DEBUG;
* other core warnings and errors keep their level on ``grpcsec.grpc``; anything that is not a
  core log line is copied to the real stderr unchanged.

The thread only reads, parses and logs, so core never waits on it for long; a line is cut at
:data:`MAX_LINE` bytes. Not covered: lines core writes in the instant before a crash may be
lost in the pipe (``GRPCSEC_DEBUG=1`` leaves stderr alone), and the count of left-out lines of
a reason is reported only when that reason occurs again after the window.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from grpcsec.text import get_logger, inert

__all__ = ["WINDOW", "RateLimit", "Retold", "core_log_to_logger", "retell"]

WINDOW = 60.0
"""Seconds during which further handshake failures of one reason are counted, not logged."""
MAX_LINE = 8192

log = get_logger("grpcsec.grpc")

_CORE_LINE = re.compile(
    r"^(?P<severity>[DIWEF])\d{4} [\d:.]+\s+\d+ (?P<file>[\w.+-]+):\d+\] (?P<message>.*)$"
)
_TLS_REASON = re.compile(r"OPENSSL_internal:(?P<code>[A-Z0-9_]+)(?::\s*(?P<detail>.*))?")
_LEVELS = {"D": logging.DEBUG, "I": logging.DEBUG, "W": logging.WARNING}

_MEANING = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the client sent no certificate and this server "
    "requires one (mTLS); the client must pass its certificate and key",
    "CERTIFICATE_VERIFY_FAILED": "the client's certificate does not verify against --client-ca "
    "(another CA, expired, or a missing intermediate)",
    "WRONG_VERSION_NUMBER": "the client is not speaking TLS (a plaintext client?)",
    "HTTP_REQUEST": "the client is not speaking TLS (a plaintext client?)",
    "NO_SHARED_CIPHER": "the client and this server share no cipher suite",
    "NO_COMMON_SIGNATURE_ALGORITHMS": "the client and this server share no signature algorithm",
    "UNSUPPORTED_PROTOCOL": "the client offers only TLS versions this server refuses",
}
_EXPLAINED_ELSEWHERE = ("Failed to add port", "not suitable for production")
"""Core lines grpcsec states better itself (``cannot listen on ...: the port is already in
use``), or that only describe the INFO level grpcsec asked for."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Retold:
    """What to do with one core line: log ``message`` at ``level``; ``key`` names the kind
    of handshake failure (reason and detail) for rate limiting (``None``: not limited)."""

    level: int
    message: str
    key: str | None = None


def _tls_reason(message: str) -> tuple[str, str]:
    """The reason code and a person's reading of a core handshake-failure message."""
    match = _TLS_REASON.search(message)
    if match is None:
        return "handshake", message
    code, detail = match["code"], (match["detail"] or "").strip()
    if code in _MEANING:
        meaning = _MEANING[code]
    elif "ALERT" in code:
        meaning = "the client refused this server's certificate (wrong CA or name on its side)"
    else:
        meaning = "see the reason"
    if detail and detail != "Invalid certificate verification context":
        meaning = f"{meaning}; {detail}"
    return code, meaning


def retell(line: str) -> Retold | None:
    """How grpcsec tells ``line`` from core's stderr; ``None`` when it is not a core log line."""
    match = _CORE_LINE.match(line.strip())
    if match is None:
        return None
    message = match["message"]
    if "Handshake failed" in message:
        code, meaning = _tls_reason(message)
        return Retold(
            level=logging.WARNING,
            message=f"TLS handshake with a client failed: {code}: {meaning}",
            key=f"{code}: {meaning}",  # an expired certificate is not held back by an unknown CA
        )
    level = _LEVELS.get(match["severity"], logging.ERROR)
    if any(text in message for text in _EXPLAINED_ELSEWHERE):
        level = logging.DEBUG
    return Retold(level=level, message=f"grpc core ({match['file']}): {message}")


@dataclass(slots=True)
class RateLimit:
    """At most one line per key per ``window`` seconds; time is passed in."""

    window: float = WINDOW
    _last: dict[str, float] = field(default_factory=dict)
    _held: dict[str, int] = field(default_factory=dict)

    def admit(self, key: str, now: float) -> int | None:
        """``None`` when the line is to be left out (and counted); otherwise how many lines of
        ``key`` were left out since the last admitted one."""
        last = self._last.get(key)
        if last is not None and now - last < self.window:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)


def _tell(line: str, raw: IO[str], limit: RateLimit) -> None:
    """Log one line read from core's stderr, or copy it to ``raw`` when it is not core's."""
    told = retell(line)
    if told is None:
        raw.write(inert(line) + "\n")
        raw.flush()
        return
    if told.key is not None:
        held = limit.admit(told.key, time.monotonic())
        if held is None:
            return
        if held:
            told = Retold(
                level=told.level,
                message=f"{told.message} ({held} more like it in the last {limit.window:g}s)",
            )
    log.log(told.level, "%s", told.message)


def _pump(source: IO[bytes], raw: IO[str], limit: RateLimit) -> None:
    """Read core's lines until the pipe closes. Never stops early: a thread that died would
    leave core blocked on a full pipe."""
    for chunk in iter(lambda: source.readline(MAX_LINE), b""):
        with contextlib.suppress(Exception):  # keep draining whatever one line did
            _tell(chunk.decode("utf-8", "replace").rstrip("\n"), raw, limit)


@contextlib.contextmanager
def core_log_to_logger(*, enabled: bool, window: float = WINDOW) -> Iterator[None]:
    """Within the block, core's stderr lines go through :func:`retell` (see the module
    docstring). Does nothing unless ``enabled`` and ``sys.stderr`` is the process's fd 2 (an
    in-process test runner captures ``sys.stderr`` and keeps its own fd 2)."""
    try:
        real = enabled and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        real = False
    if not real:
        yield
        return
    sys.stderr.flush()
    saved_fd = os.dup(2)
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(
        os.dup(saved_fd), "w", buffering=1, encoding="utf-8", errors="backslashreplace"
    )
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    source = os.fdopen(read_fd, "rb")
    thread = threading.Thread(
        target=_pump,
        args=(source, sys.stderr, RateLimit(window)),
        name="grpcsec-core-log",
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        os.dup2(saved_fd, 2)  # closes the pipe's last writer: the thread reads to the end
        os.close(saved_fd)
        thread.join(timeout=2.0)
        sys.stderr.flush()  # left open: log handlers made inside the block still hold it
        sys.stderr = python_stderr
        if not thread.is_alive():
            source.close()
