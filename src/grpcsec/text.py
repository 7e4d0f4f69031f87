"""Untrusted text made inert for display: one function for logs, tables and text output.

Names in certificates, claims in tokens, rule names in policies and method names sent by peers
are chosen by someone else. Printed raw they can forge log lines (a newline), drive a terminal
(``ESC [``... sequences), reverse what a reader sees (bidi overrides such as U+202E) or, in a
Rich console, restyle the output. :func:`inert` turns every such character into a visible
backslash escape, so the text shows what it holds and can do nothing else::

    >>> inert("alice\\x1b[31m\\nINJECTED\\u202e")
    'alice\\\\x1b[31m\\\\nINJECTED\\\\u202e'

Escaped: C0 controls, DEL, C1 controls, the Unicode line/paragraph separators, bidi embeddings,
overrides and isolates (U+202A-U+202E, U+2066-U+2069, plus the marks U+200E/U+200F/U+061C) and
any other "format" (Cf), surrogate or unassigned code point, each as ``\\n``, ``\\xNN``,
``\\uNNNN`` or ``\\UNNNNNNNN``. A backslash itself is kept as it is, so the function is
idempotent (a value escaped twice, say by :attr:`grpcsec.Peer.display` and then the log filter,
reads the same) at the price that a name written with a literal ``\\x1b`` looks like one holding
ESC; both are harmless on display. Rich markup (``[bold]``) and emoji codes (``:smile:``) are
ordinary characters here: the CLI consoles never interpret them (see ``grpcsec.cli._common``).

:class:`InertLogFilter` applies :func:`inert` to every record of grpcsec's loggers, so each log
line stays one line whatever a peer sent; :func:`get_logger` is how grpcsec modules get a
logger with it attached. JSON output needs no help: ``json.dumps`` with ``ensure_ascii`` (its
default) escapes every non-ASCII and control character. No grpc import.
"""

from __future__ import annotations

import logging
import unicodedata

__all__ = ["InertLogFilter", "get_logger", "has_unsafe_characters", "inert"]

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_DANGEROUS_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _escape(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    point = ord(char)
    if point <= 0xFF:
        return f"\\x{point:02x}"
    if point <= 0xFFFF:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


def _is_safe(char: str) -> bool:
    return unicodedata.category(char) not in _DANGEROUS_CATEGORIES


def inert(value: object) -> str:
    """``str(value)`` with every control, format and line-breaking character backslash-escaped.

    Printable text (any script, emoji, ``[`` and ``:``) is unchanged; ``None`` gives ``"None"``.
    """
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        return text  # the common case, checked in C
    return "".join(char if _is_safe(char) else _escape(char) for char in text)


def has_unsafe_characters(text: str) -> bool:
    """Whether :func:`inert` would change ``text``: a control, format (bidi) or line-breaking
    character is in it. Issuance refuses such names (:mod:`grpcsec.pki.names`)."""
    return not (text.isascii() and text.isprintable()) and not all(map(_is_safe, text))


class InertLogFilter(logging.Filter):
    """Render each record's message once, inert, so no handler can print what a peer sent raw.

    The record's ``msg`` becomes the formatted, escaped message and ``args`` is emptied, so
    handlers and formatters further on see one safe line. Tracebacks (``exc_info``) are left
    alone: they are grpcsec's own frames.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Escape ``record`` in place; never drops it."""
        message = record.getMessage()
        escaped = inert(message)
        if escaped is not message or record.args:
            record.msg = escaped
            record.args = None
        return True


_FILTER = InertLogFilter()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with :class:`InertLogFilter` attached (once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, InertLogFilter) for f in logger.filters):
        logger.addFilter(_FILTER)
    return logger
