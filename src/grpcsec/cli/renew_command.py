"""``grpcsec renew``: the certificate renewal agent.

Renews the leaf in ``--cert``/``--key`` with the CA in ``--ca-dir`` at 2/3 of its lifetime (or
after ``--every`` when that is sooner), with jitter, a new key every time, atomic writes and an
optional hook (``--exec``, run without a shell). Without ``--once`` it runs until SIGINT or
SIGTERM, re-reading the certificate at least every ``--check-interval`` and backing off after a
failure (5 s, doubling up to 5 min). With ``--once`` it renews if due (``--force``: even if
not) and exits. The library side is :class:`grpcsec.rotation.Renewer`.

Exit codes: 0 renewed, not due yet, or the agent was stopped by a signal; 1 the renewal failed
(the certificate has already expired, the CA cannot issue it, the files cannot be written, the
hook failed); 2 bad usage or input (an unreadable certificate or CA, a bad duration).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from grpcsec import pki
from grpcsec.cli import app
from grpcsec.cli._common import (
    EXIT_FAILED,
    console,
    errors_to_exit,
    escape,
    fail,
    print_json,
    say_error,
    versioned,
)
from grpcsec.cli._logging import LogFormat, LogFormatOption, configure_logging
from grpcsec.cli._pki import CaDirOption, load_ca
from grpcsec.errors import ConfigurationError, GrpcsecError, IssuanceError
from grpcsec.rotation.agent import RenewalAgent
from grpcsec.rotation.renew import ExecHook, Renewer
from grpcsec.rotation.renew_plan import AgentStep, RenewalPlan, RenewalResult

__all__ = [
    "AgentJsonOption",
    "CheckIntervalOption",
    "ExecOption",
    "ForceOption",
    "OnceOption",
    "exec_hook",
    "interval_seconds",
    "renew",
    "run_agent",
]

# The agent options, shared by every renewing command (renew, acme renew).
ExecOption = Annotated[
    str | None,
    typer.Option(
        "--exec",
        metavar="CMD",
        help="Run CMD (split like a shell would, but no shell) after each renewal, with "
        "GRPCSEC_CERT, GRPCSEC_KEY, GRPCSEC_SERIAL and GRPCSEC_NOT_AFTER set.",
    ),
]
OnceOption = Annotated[
    bool, typer.Option("--once", help="Renew if due, then exit (for cron and tests).")
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Renew now even if not due (with or without --once).")
]
CheckIntervalOption = Annotated[
    str,
    typer.Option(
        "--check-interval",
        metavar="DURATION",
        help="Re-read the certificate at least this often (agent mode).",
    ),
]
AgentJsonOption = Annotated[
    bool,
    typer.Option("--json", help="JSON on stdout (agent mode: one JSON object per event)."),
]


def _delta(text: str | None, option: str) -> dt.timedelta | None:
    if text is None:
        return None
    try:
        return pki.parse_duration(text)
    except IssuanceError as exc:
        raise ConfigurationError(f"{option}: {exc.message}") from exc


def interval_seconds(text: str, option: str) -> float:
    """A duration option in seconds (60 when not given)."""
    delta = _delta(text, option)
    return delta.total_seconds() if delta is not None else 60.0


def _moment(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def exec_hook(command: str | None) -> ExecHook | None:
    """The ``--exec`` hook (split like a shell would, run without one)."""
    if command is None:
        return None
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ConfigurationError(f"--exec: {exc}") from exc
    if not words:
        raise ConfigurationError("--exec: the command is empty")
    return ExecHook(tuple(words))


def _say_plan(plan: RenewalPlan) -> None:
    left = pki.format_duration(plan.renew_at - plan.now)
    console.print(
        f"not due: {escape(plan.path)} (serial {plan.serial}) renews at "
        f"{_moment(plan.renew_at)} (in {left}); valid until {_moment(plan.not_after)}",
        markup=True,
    )


def _say_result(result: RenewalResult) -> None:
    console.print(
        f"renewed {escape(result.cert)}: serial {result.previous_serial} -> {result.serial}, "
        f"valid until {_moment(result.not_after)}; next renewal around {_moment(result.renew_at)}",
        markup=True,
    )
    if result.hook_error is not None:
        say_error(f"the hook failed: {result.hook_error}")


@contextmanager
def _quiet_library() -> Iterator[None]:
    """In one-shot mode the command reports everything itself; keep the library's own
    warnings (``renewed X, but the hook failed``, ``no renewal information``) off stderr."""
    loggers = [logging.getLogger(name) for name in ("grpcsec.renew", "grpcsec.acme")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _once(renewer: RenewalAgent, *, force: bool, json_output: bool) -> None:
    with _quiet_library():
        _renew_once(renewer, force=force, json_output=json_output)


def _renew_once(renewer: RenewalAgent, *, force: bool, json_output: bool) -> None:
    now = pki.utcnow()
    with errors_to_exit():
        plan = renewer.plan(now)  # an unreadable certificate is bad input: exit 2
    if not force and not plan.due:
        if json_output:
            print_json({"action": "not_due", "plan": plan.to_json(), "result": None})
        else:
            _say_plan(plan)
        return
    try:
        result = renewer.renew(now)
    except GrpcsecError as exc:
        if json_output:
            print_json({"action": "failed", "plan": plan.to_json(), "error": str(exc)})
            raise typer.Exit(EXIT_FAILED) from None
        fail(str(exc), EXIT_FAILED)
    if json_output:
        print_json({"action": "renewed", "plan": plan.to_json(), "result": result.to_json()})
    else:
        _say_result(result)
    if result.hook_error is not None:
        raise typer.Exit(EXIT_FAILED)


def _event(value: dict[str, object]) -> None:
    """One JSON object on one line (JSON Lines), flushed at once for whoever tails it."""
    sys.stdout.write(json.dumps(versioned(value), sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def _print_step(step: AgentStep) -> None:
    if step.renewed is not None:
        _event({"event": "renewed", "result": step.renewed.to_json()})
    if step.error is not None:
        _event(
            {
                "event": "failed",
                "error": str(step.error),
                "failures": step.failures,
                "retry_in_seconds": round(step.delay, 3),
            }
        )


def _daemon(
    renewer: RenewalAgent, *, force: bool, json_output: bool, log_format: LogFormat
) -> None:
    """Run until SIGINT/SIGTERM. Renewals and failures are logged on stderr (and, with
    ``--json``, also printed as one JSON object per line on stdout)."""
    configure_logging(log_format)
    stop = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in signals}
    try:
        with errors_to_exit():
            plan = renewer.plan(pki.utcnow())
        if json_output:
            _event({"event": "started", "plan": plan.to_json()})
        else:
            console.print(
                f"watching {escape(plan.path)} (serial {plan.serial}); renewal at "
                f"{_moment(plan.renew_at)}, valid until {_moment(plan.not_after)}",
                markup=True,
            )
        renewer.run(
            stop,
            clock=pki.utcnow,
            force_first=force,
            on_step=_print_step if json_output else None,
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_agent(
    renewer: RenewalAgent, *, once: bool, force: bool, json_output: bool, log_format: LogFormat
) -> None:
    """``--once`` (renew if due or forced, report, exit) or the agent until a signal."""
    if once:
        _once(renewer, force=force, json_output=json_output)
    else:
        _daemon(renewer, force=force, json_output=json_output, log_format=log_format)


@app.command("renew")
def renew(
    *,
    ca_dir: CaDirOption,
    cert: Annotated[
        Path, typer.Option("--cert", metavar="FILE", help="The certificate chain to renew.")
    ],
    key: Annotated[
        Path, typer.Option("--key", metavar="FILE", help="Where the new private key goes (0600).")
    ],
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            metavar="DURATION",
            help="Renew once the certificate is this old, if that is sooner than 2/3 of its "
            "lifetime (e.g. 8h).",
        ),
    ] = None,
    valid: Annotated[
        str | None,
        typer.Option(
            "--valid",
            metavar="DURATION",
            help="Lifetime of the new certificate (default: that of the current one).",
        ),
    ] = None,
    exec_command: ExecOption = None,
    once: OnceOption = False,
    force: ForceOption = False,
    check_interval: CheckIntervalOption = "1m",
    allow_expired: Annotated[
        bool,
        typer.Option(
            "--allow-expired",
            help="Renew a certificate that has already expired (refused by default: it means "
            "renewal stopped for a whole lifetime, or the clock is wrong).",
        ),
    ] = False,
    new_issuer: Annotated[
        bool,
        typer.Option(
            "--new-issuer",
            help="Re-issue a certificate signed by another CA under this one (CA rollover).",
        ),
    ] = False,
    json_output: AgentJsonOption = False,
    log_format: LogFormatOption = LogFormat.TEXT,
) -> None:
    """Renew a certificate at 2/3 of its lifetime with a new key, now or as an agent."""
    with errors_to_exit():
        renewer = Renewer(
            load_ca(ca_dir),
            cert,
            key,
            lifetime=_delta(valid, "--valid"),
            every=_delta(every, "--every"),
            allow_expired=allow_expired,
            allow_other_issuer=new_issuer,
            hook=exec_hook(exec_command),
            check_interval=interval_seconds(check_interval, "--check-interval"),
            record_in=ca_dir,
        )
    run_agent(renewer, once=once, force=force, json_output=json_output, log_format=log_format)
