"""The ``grpcsec`` command line: a Typer app that parses, calls the library and formats.

One sub-module per command group registers its commands on :data:`app`; nothing outside this
package imports it. ``main`` is the console-script entry point.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated

import typer

from grpcsec.cli._help import HelpGroup

__all__ = ["app", "main"]

# grpc core prints an info line for every failed handshake; the CLI reports failures itself, so
# core logging is limited to errors unless the user chose a verbosity. Core reads this when grpc
# is first imported, which happens below (the command modules), so it is set first.
# Commands that explain a failed connection themselves (call, doctor, check) silence core
# entirely, so its "E1205 ... SSLV3_ALERT_BAD_CERTIFICATE" lines never come before (or instead
# of) grpcsec's one-line explanation; always, since a GRPC_VERBOSITY inherited from a parent
# grpcsec would otherwise win. `serve` asks core for INFO, where core reports a failed
# handshake, and retells those lines through grpcsec's logger (cli/_core_log.py).
# GRPCSEC_DEBUG=1 keeps core's lines as they are.
DEBUG_ENV = "GRPCSEC_DEBUG"
_EXPLAINING_COMMANDS = frozenset({"call", "doctor", "check"})
_RETELLING_COMMANDS = frozenset({"serve"})
_command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
RETELL_CORE_LOG = _command in _RETELLING_COMMANDS and not os.environ.get(DEBUG_ENV)
if _command in _EXPLAINING_COMMANDS and not os.environ.get(DEBUG_ENV):
    os.environ["GRPC_VERBOSITY"] = "NONE"
elif RETELL_CORE_LOG:
    os.environ["GRPC_VERBOSITY"] = "INFO"
else:
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

app = typer.Typer(
    name="grpcsec",
    cls=HelpGroup,
    help="Secure gRPC services: certificates, TLS/mTLS credentials, identity and diagnostics.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion (docs/cli.md)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from grpcsec import __version__  # noqa: PLC0415 (only when asked)

        sys.stdout.write(f"grpcsec {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print grpcsec's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Secure gRPC services: certificates, TLS/mTLS credentials, identity and diagnostics."""


# Command groups register themselves on import; the order here is the order in --help (call
# imports monitor's check and exporter, so they follow it).
_COMMAND_MODULES = (
    "call_command",
    "monitor_commands",
    "demo_command",
    "doctor_command",
    "init_command",
    "issue_commands",
    "ca_commands",
    "inspect_commands",
    "policy_commands",
    "renew_command",
    "acme_commands",
    "serve_command",
    "config_command",
    "token_commands",
    "spiffe_commands",
)
for _module in _COMMAND_MODULES:
    importlib.import_module(f"grpcsec.cli.{_module}")


def _usage_line(exc: Exception) -> tuple[str, int] | None:
    """The one line and exit code for a Click/Typer usage error, or ``None`` for any other
    exception. Duck-typed, because Typer vendors its own copy of Click in some versions."""
    message = getattr(exc, "format_message", None)
    code = getattr(exc, "exit_code", None)
    if not callable(message) or not isinstance(code, int):
        return None
    from grpcsec.text import inert  # noqa: PLC0415

    # Typer's value coercion words a bad choice "Value error, 'x' is not one of ...": the
    # phrase says nothing to a person
    text = inert(str(message()).strip().rstrip(".").replace("Value error, ", ""))
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None)
    fix = f"; fix: see '{inert(path)} --help'" if path else ""
    return f"error: {text}{fix}", code


def main() -> None:
    """Console-script entry point: every error is one line on stderr, never a panel or a
    traceback.

    * usage errors (an unknown option, a missing argument, a bad value) are Click's, raised
      because the app runs with ``standalone_mode=False``: ``error: <what>; fix: see
      '<command> --help'`` and exit 2 (``grpcsec`` alone still prints the help);
    * each library layer maps the exceptions it knows to a :class:`~grpcsec.errors.GrpcsecError`
      (one line, exit 2, see :mod:`grpcsec.cli._common`);
    * anything that still escapes is a grpcsec bug, but the person at the terminal gets one line
      and exit 2 instead of a traceback that may quote hostile input; ``GRPCSEC_DEBUG=1`` shows
      the traceback.
    """
    try:
        code = app(standalone_mode=False, prog_name="grpcsec")
    except Exception as exc:  # the documented last net (see the docstring)
        if os.environ.get(DEBUG_ENV):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]  # Click's own: the help text
            raise SystemExit(getattr(exc, "exit_code", 2)) from None
        if type(exc).__name__ == "Abort":
            sys.stderr.write("error: aborted\n")
            raise SystemExit(1) from None
        usage = _usage_line(exc)
        if usage is not None:
            sys.stderr.write(usage[0] + "\n")
            raise SystemExit(usage[1]) from None
        from grpcsec.text import inert  # noqa: PLC0415

        first = inert(str(exc).split("\n", 1)[0][:200])
        sys.stderr.write(
            f"error: unexpected {type(exc).__name__}: {first}; this is a grpcsec bug, "
            f"please report it (set {DEBUG_ENV}=1 to see the traceback)\n"
        )
        raise SystemExit(2) from None
    raise SystemExit(code if isinstance(code, int) else 0)
