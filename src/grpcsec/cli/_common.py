"""What every command shares: exit codes, the error boundary, output helpers and passwords.

Exit codes (stable, documented in docs/cli.md):

* 0 — success;
* 1 — the check ran and the answer is "no" (verification failed, a problem was found);
* 2 — bad usage or bad input (a file that cannot be read or parsed, conflicting options).

A :class:`~grpcsec.errors.GrpcsecError` becomes one line on stderr and exit code 2, never a
traceback; ``--json`` commands print their JSON on stdout and still use these codes.

Untrusted text (names from certificates, token claims, policy names, file paths) is never
interpreted: the consoles parse neither Rich markup nor emoji codes unless a call says
``markup=True`` for grpcsec's own words, and then every interpolated value goes through
:func:`escape` (markup-escaped and :func:`~grpcsec.text.inert`); plain values printed without
markup go through :func:`~grpcsec.text.inert`. JSON is written with ``ensure_ascii``, so control
and bidi characters appear as ``\\u`` escapes, and names its schema (``"schema":
"grpcsec.<command>/1"``, :func:`json_schema`).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape as escape_markup
from rich.table import Table
from rich.text import Text
from typer._click.globals import get_current_context  # Typer's vendored Click, not re-exported

from grpcsec.errors import ConfigurationError, GrpcsecError, PasswordError
from grpcsec.material import KeyPair, load_key_pair
from grpcsec.text import inert

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "PASSWORD_ENV",
    "AllowWeakKeysOption",
    "JsonOption",
    "cli_words",
    "console",
    "errors_to_exit",
    "escape",
    "fail",
    "json_schema",
    "load_identity",
    "make_console",
    "print_json",
    "print_table",
    "read_password",
    "say_error",
    "stderr",
    "versioned",
    "with_key_password",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

PASSWORD_ENV = "GRPCSEC_KEY_PASSWORD"  # noqa: S105 (the variable name, not a password)


def make_console(*, stderr: bool = False, width: int | None = None) -> Console:
    """A console that never reads markup, emoji codes or highlights in what it prints (a call
    opts in with ``markup=True`` for grpcsec's own styling), so untrusted text stays text."""
    return Console(
        stderr=stderr, width=width, highlight=False, soft_wrap=True, markup=False, emoji=False
    )


console = make_console()
stderr = make_console(stderr=True)

T = TypeVar("T")


def escape(value: object) -> str:
    """``value`` ready to sit inside a markup string: :func:`~grpcsec.text.inert`, then its
    ``[`` escaped, so it is shown as it is and never styles, links or moves the cursor."""
    return escape_markup(inert(value))


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout (docs/json.md).")
]
"""``--json`` of every command that reports something: one wording everywhere."""

AllowWeakKeysOption = Annotated[
    bool,
    typer.Option(
        "--allow-weak-keys",
        help="Accept RSA < 2048 bits, DSA, EC < 256 bits or SHA-1/MD5 signatures in our chain.",
    ),
]


_UNBOUNDED = 100_000


def print_table(table: Table, *, out: Console | None = None) -> None:
    """Print ``table`` so it survives a narrow terminal, a pipe and a CI log.

    On a terminal wide enough for every cell on one line: Rich's table, with colour unless
    ``NO_COLOR`` is set. Otherwise (a pipe, a file, a terminal narrower than the table): a
    plain layout, the title, then one line per row with the columns padded and separated by
    two spaces, no box and no colour, and never a cell folded across lines, so a fingerprint or
    a path stays whole and ``grep``/``awk`` see one row per line.
    """
    out = out or console
    unbounded = out.options.update_width(_UNBOUNDED)  # Rich clamps a measure to the width
    if out.is_terminal and out.measure(table, options=unbounded).maximum <= out.width:
        out.print(table)
        return
    columns = [[_plain(column.header), *map(_plain, column.cells)] for column in table.columns]
    widths = [max(map(len, cells)) for cells in columns]
    lines = [_plain(table.title)] if table.title else []
    for row in zip(*columns, strict=True):
        cells = [
            cell.rjust(width) if column.justify == "right" else cell.ljust(width)
            for cell, width, column in zip(row, widths, table.columns, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    out.file.write("\n".join(lines) + "\n")
    out.file.flush()


def _plain(cell: object) -> str:
    """The text of a table cell without style (a :class:`Text` or a string), made inert."""
    return inert(cell.plain if isinstance(cell, Text) else str(cell))


_LIBRARY_OPTION = re.compile(r"\b[a-z][a-z0-9_]*=\S+ \((--[a-z0-9-]+)\)")
"""How a library message names an option for both audiences: ``allow_weak_keys=True
(--allow-weak-keys)``."""


def cli_words(message: str) -> str:
    """``message`` in the command line's words: each ``python_name=value (--flag)`` of a library
    message becomes ``--flag``, so a person never reads a Python parameter name."""
    return _LIBRARY_OPTION.sub(r"\1", message)


def say_error(message: str) -> None:
    """Print the one ``error: message`` line on stderr, in the command line's words
    (:func:`cli_words`), inert and never read as markup. Every command's errors go through here."""
    stderr.print(Text.assemble(("error:", "bold red"), " ", inert(cli_words(message))))


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """:func:`say_error` and exit with ``code``."""
    say_error(message)
    raise typer.Exit(code)


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn grpcsec errors raised inside the block into a one-line message and exit code 2."""
    try:
        yield
    except GrpcsecError as exc:
        fail(str(exc))


SCHEMA_VERSIONS: dict[str, int] = {}
"""A command's JSON schema version when it is not 1 (``"grpcsec.inspect": 2``): raise it when
a key is removed or changes meaning; adding a key keeps the version."""


def json_schema() -> str | None:
    """``grpcsec.<command path>/<version>`` of the command running now (``grpcsec.issue.server/1``),
    from Click's context, so every command, present or future, is named the same way; ``None``
    outside a command."""
    ctx = get_current_context(silent=True)
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        names.append(str(ctx.info_name))
        ctx = ctx.parent
    if not names:
        return None
    name = ".".join(["grpcsec", *reversed(names)])
    return f"{name}/{SCHEMA_VERSIONS.get(name, 1)}"


def versioned(value: object) -> object:
    """``value`` with ``"schema"`` (:func:`json_schema`) as its first key when it is an object."""
    schema = json_schema()
    if not isinstance(value, dict) or schema is None:
        return value
    return {"schema": schema, **value}


def print_json(value: object, *, schema: bool = True) -> None:
    """Print ``value`` as indented JSON on stdout (no Rich markup or wrapping), with its
    ``"schema"`` unless ``schema=False`` (a document of a standard format, such as a JWKS)."""
    document = versioned(value) if schema else value
    # ensure_ascii (explicit): control, C1 and bidi characters leave as \u escapes
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=True, default=str) + "\n")
    sys.stdout.flush()


def read_password(
    *, env: str = PASSWORD_ENV, prompt: str | None = None, confirm: bool = False
) -> bytes | None:
    """A key password from the environment variable ``env`` or, when ``prompt`` is given and
    stdin is a terminal, from an interactive prompt. Never from a command-line argument.

    Returns ``None`` when neither is available; an empty answer is refused.
    """
    value = os.environ.get(env)
    if value is not None:
        if not value:
            raise ConfigurationError(f"{env} is set but empty")
        return value.encode()
    if prompt is None or not sys.stdin.isatty():
        return None
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Repeat the password: ") != first:
        raise ConfigurationError("the two passwords differ")
    if not first:
        raise ConfigurationError("an empty password is not allowed")
    return first.encode()


def with_key_password(load: Callable[[bytes | None], T], path: object) -> T:
    """``load(None)``; when that finds the key encrypted (:class:`PasswordError`), ``load`` again
    with the password from ``GRPCSEC_KEY_PASSWORD`` or a prompt naming ``path``. With neither,
    the :class:`PasswordError` says how to give one. The one way every command asks."""
    try:
        return load(None)
    except PasswordError as exc:
        password = read_password(prompt=f"Password for {path}: ")
        if password is None:
            raise PasswordError(
                f"{exc.message} (set {PASSWORD_ENV} or run in a terminal to be asked)",
                path=exc.path,
            ) from exc
        return load(password)


def load_identity(cert: Path | None, key: Path | None) -> KeyPair | None:
    """The ``--cert``/``--key`` pair (``None`` when neither is given; half a pair is an error),
    asking for the key's password (environment or prompt) only when the key is encrypted."""
    return with_key_password(lambda password: load_key_pair(cert, key, password=password), key)


def run(call: Callable[[], T]) -> T:
    """Run ``call`` inside :func:`errors_to_exit` and return its value."""
    with errors_to_exit():
        return call()
