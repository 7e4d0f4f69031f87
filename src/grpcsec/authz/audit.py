"""Audit logging (gRFC A59): conditions, events, the logger registry and the built-in loggers.

A policy's ``audit_logging_options`` name a condition and a list of loggers by **type**. Each type
is looked up in an :class:`AuditLoggerRegistry` when the policy is loaded; the type's factory
validates the logger's ``config`` then (a bad config makes the policy invalid, even for an
optional logger), and builds the logger when the policy is compiled. Building from a validated
config must not fail.

The one policy-level condition becomes a condition per RBAC engine, so that an RPC is audited at
most once (authz-a43.md §8)::

    policy              deny engine   allow engine
    NONE                NONE          NONE
    ON_DENY             ON_DENY       ON_DENY
    ON_ALLOW            NONE          ON_ALLOW
    ON_DENY_AND_ALLOW   ON_DENY       ON_DENY_AND_ALLOW

Built-in types, registered in :func:`default_registry`:

* ``stdout_logger`` (A59): one JSON line per event on a stream (``sys.stdout`` by default),
  ``{"grpc_audit_log": {"rpc_method", "principal", "policy_name", "matched_rule", "authorized",
  "timestamp"}}`` with an RFC 3339 UTC timestamp in nanoseconds. Its config is ignored, as in
  grpc-go.
* ``grpcsec_file_logger`` (ours): the same line appended to the file named by
  ``{"path": "..."}``. The file is opened for each event (``O_APPEND``, created ``0600``), so
  log rotation needs no signal and nothing stays open.

Add a type with :func:`register_audit_logger` (process-wide) or a registry of your own passed to
the parser. Loggers run synchronously during authorization: keep ``log`` fast and non-blocking.
A logger that raises is counted and reported in the server log; it never changes a decision.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar

from grpcsec.errors import ConfigurationError, PolicyError

__all__ = [
    "FILE_LOGGER",
    "STDOUT_LOGGER",
    "AuditCondition",
    "AuditEvent",
    "AuditLogger",
    "AuditLoggerFactory",
    "AuditLoggerRegistry",
    "FileAuditLogger",
    "FileLoggerFactory",
    "StdoutAuditLogger",
    "StdoutLoggerFactory",
    "default_registry",
    "register_audit_logger",
    "rfc3339_nanos",
]

STDOUT_LOGGER = "stdout_logger"
FILE_LOGGER = "grpcsec_file_logger"

Clock = Callable[[], int]
"""Nanoseconds since the Unix epoch (``time.time_ns``); a parameter so tests fix the time."""


class AuditCondition(enum.Enum):
    """When to audit. Values are the exact, upper-case names of the policy JSON."""

    NONE = "NONE"
    ON_DENY = "ON_DENY"
    ON_ALLOW = "ON_ALLOW"
    ON_DENY_AND_ALLOW = "ON_DENY_AND_ALLOW"

    @property
    def deny_engine(self) -> AuditCondition:
        """The condition of the deny engine (A59's mapping: an allow is never audited there)."""
        if self in {AuditCondition.ON_DENY, AuditCondition.ON_DENY_AND_ALLOW}:
            return AuditCondition.ON_DENY
        return AuditCondition.NONE

    @property
    def allow_engine(self) -> AuditCondition:
        """The condition of the allow engine: the policy's own."""
        return self

    def covers(self, *, authorized: bool) -> bool:
        """Whether an engine with this condition audits an outcome of ``authorized``."""
        if authorized:
            return self in {AuditCondition.ON_ALLOW, AuditCondition.ON_DENY_AND_ALLOW}
        return self in {AuditCondition.ON_DENY, AuditCondition.ON_DENY_AND_ALLOW}


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """One audited authorization decision (A59's fields).

    ``principal`` is the caller's SPIFFE ID (a leaf with exactly one URI SAN that is a SPIFFE
    ID), otherwise empty; ``matched_rule`` is the bare rule name, empty for a default deny.
    """

    rpc_method: str
    principal: str
    policy_name: str
    matched_rule: str
    authorized: bool

    def to_json(self, *, timestamp: str | None = None) -> dict[str, object]:
        """The A59 fields as a JSON-ready dict (plus ``timestamp`` when given)."""
        data: dict[str, object] = {
            "rpc_method": self.rpc_method,
            "principal": self.principal,
            "policy_name": self.policy_name,
            "matched_rule": self.matched_rule,
            "authorized": self.authorized,
        }
        if timestamp is not None:
            data["timestamp"] = timestamp
        return data


class AuditLogger(Protocol):
    """Receives audit events. Called on the RPC's thread: must be fast and must not block."""

    def log(self, event: AuditEvent) -> None:
        """Record one event."""
        ...


ConfigT = TypeVar("ConfigT")


class AuditLoggerFactory(Protocol[ConfigT]):
    """A logger type: validates a policy's ``config`` for it and builds loggers.

    ``parse_config`` runs when a policy is loaded and raises :class:`ValueError` or
    :class:`~grpcsec.errors.PolicyError` (whose ``location`` is relative to ``config``) for a
    config it refuses; ``build`` runs when the policy is compiled and must not fail.
    """

    @property
    def name(self) -> str:
        """The type name used in policies (``audit_loggers[].name``)."""
        ...

    def parse_config(self, config: Mapping[str, Any]) -> ConfigT:
        """Validate ``config`` (a JSON object, ``{}`` when absent) into a typed value."""
        ...

    def build(self, config: ConfigT) -> AuditLogger:
        """A logger for a config returned by :meth:`parse_config`."""
        ...


class AuditLoggerRegistry:
    """Logger types by name. Thread-safe; the parser reads it, users add types to it."""

    def __init__(self, factories: Iterable[AuditLoggerFactory[Any]] = ()) -> None:
        self._lock = threading.Lock()
        self._factories: dict[str, AuditLoggerFactory[Any]] = {}
        for factory in factories:
            self.register(factory)

    def register(self, factory: AuditLoggerFactory[Any], *, replace: bool = False) -> None:
        """Add a logger type. A name already taken is an error unless ``replace`` is true."""
        name = factory.name
        if not name or not isinstance(name, str):
            raise ConfigurationError("an audit logger type needs a non-empty name")
        with self._lock:
            if name in self._factories and not replace:
                raise ConfigurationError(
                    f"an audit logger type named {name!r} is already registered "
                    "(pass replace=True to replace it)"
                )
            self._factories[name] = factory

    def unregister(self, name: str) -> None:
        """Remove a logger type (policies loaded before keep their loggers)."""
        with self._lock:
            self._factories.pop(name, None)

    def get(self, name: str) -> AuditLoggerFactory[Any] | None:
        """The factory registered under ``name``, or ``None``."""
        return self._factories.get(name)

    def names(self) -> tuple[str, ...]:
        """Registered type names, sorted."""
        return tuple(sorted(self._factories))

    def copy(self) -> AuditLoggerRegistry:
        """An independent registry with the same types (for tests and isolated servers)."""
        with self._lock:
            return AuditLoggerRegistry(self._factories.values())


def rfc3339_nanos(nanoseconds: int) -> str:
    """``2026-11-21T08:00:00.123456789Z``: UTC, nine fractional digits."""
    seconds, nanos = divmod(nanoseconds, 1_000_000_000)
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def _audit_line(event: AuditEvent, clock: Clock) -> str:
    body = event.to_json(timestamp=rfc3339_nanos(clock()))
    # ensure_ascii: one line per event whatever the names hold (newlines, ESC, bidi -> \u)
    return json.dumps({"grpc_audit_log": body}, separators=(",", ":"), ensure_ascii=True) + "\n"


class StdoutAuditLogger:
    """A59's ``stdout_logger``: one JSON line per event on ``stream`` (``sys.stdout`` at the time
    of each event when not given, so redirections apply)."""

    def __init__(self, stream: TextIO | None = None, *, clock: Clock = time.time_ns) -> None:
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()

    def log(self, event: AuditEvent) -> None:
        """Write the event's line and flush."""
        line = _audit_line(event, self._clock)
        stream = self._stream if self._stream is not None else sys.stdout
        with self._lock:
            stream.write(line)
            stream.flush()


@dataclass(frozen=True, slots=True)
class StdoutLoggerFactory:
    """The ``stdout_logger`` type. Its config is ignored (as in grpc-go)."""

    name: str = STDOUT_LOGGER
    stream: TextIO | None = None
    clock: Clock = time.time_ns

    def parse_config(self, config: Mapping[str, Any]) -> None:
        """Accept any config."""
        del config

    def build(self, config: None) -> AuditLogger:
        """A :class:`StdoutAuditLogger` on this factory's stream."""
        del config
        return StdoutAuditLogger(self.stream, clock=self.clock)


class FileAuditLogger:
    """Appends the ``stdout_logger`` line of each event to a file (created ``0600``)."""

    def __init__(self, path: str | Path, *, clock: Clock = time.time_ns) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()

    def log(self, event: AuditEvent) -> None:
        """Open, append one line, close: one ``write`` of the whole line with ``O_APPEND``."""
        data = _audit_line(event, self._clock).encode("utf-8")
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)


@dataclass(frozen=True, slots=True)
class FileLoggerFactory:
    """The ``grpcsec_file_logger`` type: config ``{"path": "<file>"}``, nothing else."""

    name: str = FILE_LOGGER
    clock: Clock = time.time_ns

    def parse_config(self, config: Mapping[str, Any]) -> Path:
        """The path; unknown keys and a missing or empty path are errors. The file system is
        not consulted (``policy check`` must give the same answer on every machine); a file
        that cannot be written is reported in the server log when an event is logged."""
        for key in config:
            if key != "path":
                raise PolicyError("unknown field (the file logger takes only 'path')", location=key)
        path = config.get("path")
        if path is None:
            raise PolicyError("is required (the file to append audit lines to)", location="path")
        if not isinstance(path, str):
            raise PolicyError("must be a string", location="path")
        if not path:
            raise PolicyError("must not be empty", location="path")
        return Path(path)

    def build(self, config: Path) -> AuditLogger:
        """A :class:`FileAuditLogger` for the path."""
        return FileAuditLogger(config, clock=self.clock)


_DEFAULT = AuditLoggerRegistry([StdoutLoggerFactory(), FileLoggerFactory()])


def default_registry() -> AuditLoggerRegistry:
    """The process-wide registry the parser uses unless given another one."""
    return _DEFAULT


def register_audit_logger(factory: AuditLoggerFactory[Any], *, replace: bool = False) -> None:
    """Register a logger type in the process-wide registry."""
    _DEFAULT.register(factory, replace=replace)
