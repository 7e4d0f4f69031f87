"""How the long-running commands (``serve``, ``exporter``, ``renew --agent``) log: one place.

``--log-format text`` (the default) is ``TIME LEVEL LOGGER: message`` for people;
``--log-format json`` is one JSON object per line for log shippers, schema version 1::

    {"v": 1, "time": "2026-12-05T18:00:00.123+00:00", "level": "INFO",
     "logger": "grpcsec.server", "message": "...", "error": "Traceback ..."}

``error`` is present only when the record carries an exception. Messages are already inert
(grpcsec's loggers escape what a peer or a file sent), and ``json.dumps`` escapes the rest, so
a line can never be split or forged by logged text.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import sys
from typing import Annotated

import typer

__all__ = ["LogFormat", "LogFormatOption", "configure_logging"]

SCHEMA_VERSION = 1


class LogFormat(enum.Enum):
    """``--log-format`` values."""

    TEXT = "text"
    JSON = "json"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "v": SCHEMA_VERSION,
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=True)


def configure_logging(log_format: LogFormat = LogFormat.TEXT, *, level: int = logging.INFO) -> None:
    """Send grpcsec's (and the root) log records to stderr in ``log_format``; replaces any
    handler set before, so calling it twice does not duplicate lines."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format is LogFormat.JSON:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


LogFormatOption = Annotated[
    LogFormat,
    typer.Option(
        "--log-format",
        metavar="text|json",
        help="Log lines on stderr for people (text) or one JSON object per line (json, "
        "schema in docs/cli.md).",
        case_sensitive=False,
    ),
]
