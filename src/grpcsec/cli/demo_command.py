"""``grpcsec demo``: run the mTLS Greeter scenario and show that the refusals really refuse.

Exit codes: 0 when every row behaved as expected, 1 when one did not, 2 for bad input (for
instance ``--keep`` pointing at a directory that already holds the demo's files).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from grpcsec.cli import app
from grpcsec.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    JsonOption,
    console,
    print_json,
    print_table,
    run,
)
from grpcsec.cli.monitor_commands import check_summary, render_check_table
from grpcsec.demo.rotation_act import RotationReport
from grpcsec.demo.rows import DemoRow
from grpcsec.demo.scenario import DemoReport, run_demo
from grpcsec.pki import utcnow

__all__ = ["demo"]


def _table(report: DemoReport) -> Table:
    return _rows_table(f"mTLS Greeter on {report.address}", report.rows)


def _rows_table(title: str, rows: tuple[DemoRow, ...]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("scenario", overflow="fold")
    table.add_column("expected", overflow="fold")
    table.add_column("result", overflow="fold")
    table.add_column("ok", justify="center")
    for row in rows:
        result = row.outcome if row.code == "OK" else f"{row.code}: {row.outcome}"
        table.add_row(
            row.scenario,
            row.expected,
            result,
            Text.from_markup("[green]yes[/]" if row.passed else "[bold red]NO[/]"),
        )
    return table


def _rotation_table(rotation: RotationReport) -> Table:
    table = Table(
        title=f"certificate rotation: {rotation.swaps} swaps while calls flow",
        title_justify="left",
    )
    table.add_column("calls made", justify="right")
    table.add_column("calls failed", justify="right")
    table.add_column("serials served (new connections)", overflow="fold")
    table.add_column("ok", justify="center")
    table.add_row(
        str(rotation.calls),
        str(rotation.failed),
        " -> ".join(serial[:8] for serial in rotation.serials),
        Text.from_markup("[green]yes[/]" if rotation.passed else "[bold red]NO[/]"),
    )
    return table


@app.command("demo")
def demo(
    json_output: JsonOption = False,
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            metavar="DIR",
            file_okay=False,
            help="Write the demo CA, certificates and keys to DIR and keep them (default: a "
            "temporary directory, removed afterwards). Existing files are never replaced.",
        ),
    ] = None,
) -> None:
    """Run a real mTLS Greeter on 127.0.0.1 and call it three ways: with a valid client
    certificate (works, and the server names the caller), without one and with one from another
    CA (both refused)."""
    if keep is not None:
        report = run(lambda: run_demo(keep, utcnow()))
    else:
        with tempfile.TemporaryDirectory(prefix="grpcsec-demo-") as workdir:
            report = run(lambda: run_demo(Path(workdir), utcnow()))
    if json_output:
        print_json(report.to_json())
    else:
        print_table(_table(report))
        if report.rotation is not None:
            print_table(_rotation_table(report.rotation))
        if report.access:
            console.print(
                _rows_table("bearer tokens and an A43 policy (edited live)", report.access)
            )
        if report.check is not None:
            print_table(render_check_table(report.check, relative_to=report.workdir))
            console.print(check_summary(report.check), markup=False)
        if keep is not None:
            console.print(f"files kept in {report.workdir}", markup=False)
        verdict = "all scenarios behaved as expected" if report.passed else "a scenario FAILED"
        console.print(verdict, markup=False)
    raise typer.Exit(EXIT_OK if report.passed else EXIT_FAILED)
