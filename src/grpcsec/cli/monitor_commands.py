"""``grpcsec check`` and ``grpcsec exporter``: certificate expiry, once or for Prometheus.

``check`` reads files, bundles, directories and endpoints (:func:`grpcsec.monitor.check_targets`)
and prints a table sorted by time left, or ``--json``. Its exit codes are its own (see
:class:`grpcsec.monitor.CheckExit` and docs/monitoring.md): 0 ok, 1 warning, 2 critical, expired
or not yet valid, 3 a file could not be read, 4 an endpoint could not be reached, the highest
that applies; bad usage is **64** for both commands here, because 2 means critical.

``exporter`` serves the same targets as Prometheus metrics, re-read on each scrape (or at most
once per ``--interval``), on ``--listen`` (default 127.0.0.1:9309, loopback only) until
SIGINT/SIGTERM. Exit 0 when stopped, 1 when the address cannot be bound, 64 for bad usage.

:func:`render_check_table` is the table ``check`` prints; the demo prints it too.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer
from prometheus_client import CollectorRegistry
from typer.core import TyperCommand

from grpcsec.cli import app
from grpcsec.cli._check_output import check_summary, render_check_table, render_crl_table
from grpcsec.cli._common import (
    JsonOption,
    console,
    escape,
    fail,
    print_json,
    print_table,
    say_error,
    stderr,
    with_key_password,
)
from grpcsec.cli._logging import LogFormat, LogFormatOption, configure_logging
from grpcsec.errors import ConfigurationError, GrpcsecError
from grpcsec.material import load_key_pair
from grpcsec.monitor import (
    CertificateCollector,
    CheckExit,
    ProbeOptions,
    Prober,
    Status,
    Thresholds,
    check_targets,
    parse_source,
    serve_metrics,
)
from grpcsec.pki import parse_duration, utcnow
from grpcsec.pki.validity import parse_time
from grpcsec.target import Target

__all__ = ["DEFAULT_EXPORTER_LISTEN", "check_summary", "render_check_table", "render_crl_table"]

DEFAULT_EXPORTER_LISTEN = "127.0.0.1:9309"
_CLICK_USAGE_EXIT = 2  # what click uses for a usage error, which means "critical" here


class _MonitorCommand(TyperCommand):
    """A command whose usage errors (unknown option, missing argument) exit 64, not 2."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Any = None,  # noqa: ANN401 (click's Context; its module is private to typer)
        **extra: Any,  # noqa: ANN401
    ) -> Any:  # noqa: ANN401
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except Exception as exc:
            # click's UsageError (and BadParameter...) carry exit_code 2 and can show()
            # themselves; typer.Exit (--help) carries 0 and is left alone.
            if getattr(exc, "exit_code", None) == _CLICK_USAGE_EXIT and hasattr(exc, "show"):
                exc.exit_code = int(CheckExit.USAGE)  # type: ignore[attr-defined]
            raise


def _usage(message: str) -> NoReturn:
    fail(message, int(CheckExit.USAGE))


# -- shared options ------------------------------------------------------------------------------
TargetsArgument = Annotated[
    list[str],
    typer.Argument(
        metavar="TARGET",
        help="Certificate files, bundles, CRL files, directories (searched recursively) or "
        "HOST:PORT endpoints (their served chain).",
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", metavar="SECONDS", help="Connect and handshake timeout per probe."),
]
ClientCertOption = Annotated[
    Path | None,
    typer.Option(
        "--client-cert", metavar="FILE", help="Present this client certificate to endpoints."
    ),
]
ClientKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--client-key",
        metavar="FILE",
        help="The client certificate's key (password from GRPCSEC_KEY_PASSWORD).",
    ),
]
ServerNameOption = Annotated[
    str | None,
    typer.Option("--server-name", metavar="NAME", help="SNI to send (default: the host name)."),
]


def _probe_options(
    timeout: float, client_cert: Path | None, client_key: Path | None, server_name: str | None
) -> ProbeOptions:
    def load(password: bytes | None) -> bytes | None:
        load_key_pair(client_cert, client_key, password=password)
        return password

    password = with_key_password(load, client_key)
    return ProbeOptions(
        timeout=timeout,
        server_name=server_name,
        client_cert=client_cert,
        client_key=client_key,
        password=password,
    )


# -- grpcsec check -------------------------------------------------------------------------------
@app.command("check", cls=_MonitorCommand)
def check_command(
    *,
    targets: TargetsArgument,
    warn: Annotated[
        list[str] | None,
        typer.Option(
            "--warn",
            metavar="30d|75%",
            help="Warning point: time left, share of lifetime used, or both (30d,75%: the "
            "later of the two). Default 30d,75%.",
        ),
    ] = None,
    crit: Annotated[
        list[str] | None,
        typer.Option(
            "--crit",
            metavar="7d|90%",
            help="Critical point, the same way. Default 7d,90%.",
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", metavar="TIME", help="Check as of this ISO 8601 time (naive = UTC)."),
    ] = None,
    json_output: JsonOption = False,
    timeout: TimeoutOption = 5.0,
    client_cert: ClientCertOption = None,
    client_key: ClientKeyOption = None,
    server_name: ServerNameOption = None,
) -> None:
    """Check certificate expiry (and CRLs' next update) in files, directories and served chains.

    Exit 0 all fine, 1 warning, 2 critical, expired or not yet valid, 3 a file could not be
    read or parsed, 4 an endpoint could not be reached (the highest that applies); 64 bad usage.
    """
    try:
        thresholds = Thresholds.parse(warn, crit)
        now = parse_time(at) if at is not None else utcnow()
        options = _probe_options(timeout, client_cert, client_key, server_name)
        report = check_targets(targets, thresholds, now, probe=Prober(options))
    except GrpcsecError as exc:
        _usage(str(exc))
    if json_output:
        print_json(report.to_json())
    else:
        if report.certificates:
            print_table(render_check_table(report))
        if report.crls:
            print_table(render_crl_table(report))
        for finding in report.findings:
            style = "yellow" if finding.status is Status.OK else "bold red"
            label = "note" if finding.status is Status.OK else finding.status.value
            where = escape(finding.source)
            console.print(f"[{style}]{label}:[/] {where}: {escape(finding.message)}", markup=True)
        console.print(check_summary(report))
    for error in report.errors:
        say_error(error.message)
    raise typer.Exit(int(report.exit_code))


# -- grpcsec exporter ----------------------------------------------------------------------------
def _listen_address(text: str) -> Target:
    cleaned = text.strip()
    if cleaned.isdigit():
        cleaned = f"127.0.0.1:{cleaned}"
    return Target.listen(cleaned)


def _interval(text: str) -> dt.timedelta:
    if text.strip() in {"0", "0s"}:
        return dt.timedelta(0)
    try:
        return parse_duration(text)
    except GrpcsecError as exc:
        raise ConfigurationError(f"--interval: {exc.message}") from exc


@app.command("exporter", cls=_MonitorCommand)
def exporter_command(
    *,
    targets: TargetsArgument,
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Where to serve /metrics (a bare PORT means 127.0.0.1:PORT; 0 picks a port).",
        ),
    ] = DEFAULT_EXPORTER_LISTEN,
    interval: Annotated[
        str,
        typer.Option(
            "--interval",
            metavar="DURATION",
            help="Re-read the targets at most this often (0: on every scrape).",
        ),
    ] = "0",
    timeout: TimeoutOption = 5.0,
    client_cert: ClientCertOption = None,
    client_key: ClientKeyOption = None,
    server_name: ServerNameOption = None,
    log_format: LogFormatOption = LogFormat.TEXT,
) -> None:
    """Serve certificate expiry metrics for Prometheus, re-reading the targets on each scrape.

    Runs until SIGINT or SIGTERM (exit 0). Exit 1 when the address cannot be bound, 64 for bad
    usage. Targets that fail are counted (grpcsec_exporter_*_errors_total) and retried; the log
    on stderr says why a target went down (once per change) and when it is back.
    """
    configure_logging(log_format)
    try:
        address = _listen_address(listen)
        min_interval = _interval(interval)
        sources = [parse_source(t) for t in targets]
        prober = Prober(_probe_options(timeout, client_cert, client_key, server_name))
    except GrpcsecError as exc:
        _usage(str(exc))
    registry = CollectorRegistry()
    registry.register(CertificateCollector(sources, prober=prober, min_interval=min_interval))
    try:
        server = serve_metrics(registry, address)
    except GrpcsecError as exc:
        fail(str(exc), 1)
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        count = len(sources)
        console.print(
            f"grpcsec exporter: serving {server.url} for {count} target{'s' if count != 1 else ''}",
            markup=False,
        )
        if not server.address.is_loopback:
            stderr.print(
                f"[yellow]warning:[/] {server.address} is not a loopback address: the metrics "
                "(certificate names and serials) are served to anyone who can reach it, "
                "without authentication",
                markup=True,
            )
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    console.print("grpcsec exporter: stopped", markup=False)
