"""What ``grpcsec check`` prints: the certificate table, the CRL table and the summary line.

Kept apart from the command so that the demo can print the same table.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from grpcsec.monitor import CheckReport, ErrorKind, Status
from grpcsec.pki import format_duration
from grpcsec.text import inert

__all__ = ["check_summary", "render_check_table", "render_crl_table"]

_STYLES = {
    Status.OK: "green",
    Status.WARNING: "yellow",
    Status.CRITICAL: "bold red",
    Status.EXPIRED: "bold red",
    Status.NOT_YET_VALID: "bold red",
}


# -- tables -----------------------------------------------------------------------------------
def render_check_table(report: CheckReport, *, relative_to: Path | None = None) -> Table:
    """The certificates of ``report`` as a Rich table, most urgent first; file sources under
    ``relative_to`` are shown relative to it (the demo's temporary directory)."""
    now = report.now
    table = Table(
        title=(
            f"Certificates at {now:%Y-%m-%d %H:%M}Z "
            f"(warning at {report.thresholds.warning}, critical at {report.thresholds.critical})"
        ),
        title_justify="left",
        header_style="bold",
    )
    table.add_column("status", no_wrap=True)
    table.add_column("left", justify="right", no_wrap=True)
    table.add_column("not after (UTC)", no_wrap=True)
    table.add_column("used", justify="right", no_wrap=True)
    table.add_column("subject CN", overflow="fold")
    table.add_column("issuer CN", overflow="fold")
    table.add_column("role", no_wrap=True)
    table.add_column("source", overflow="fold")
    for checked in report.certificates:
        info = checked.info
        status = f"[{_STYLES[checked.status]}]{checked.status.value}[/]"
        if checked.effective is not checked.status:
            status += " [dim](bundle ok)[/]" if checked.effective is Status.OK else " [dim]*[/]"
        source = checked.source
        if relative_to is not None and source.startswith(f"{relative_to}/"):
            source = source[len(str(relative_to)) + 1 :]
        if checked.served:
            source += f" #{checked.position}"
        table.add_row(
            Text.from_markup(status),
            format_duration(info.time_left(now)),
            f"{info.not_after:%Y-%m-%d %H:%M}",
            f"{info.lifetime_used(now) * 100:.0f}%",
            inert(info.common_name or "-"),
            inert(info.issuer_common_name or "-"),
            checked.role,
            inert(source),
        )
    return table


def render_crl_table(report: CheckReport) -> Table:
    """The CRLs of ``report`` as a Rich table, the next update soonest first."""
    now = report.now
    table = Table(
        title="Certificate revocation lists (judged by their next update)",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("status", no_wrap=True)
    table.add_column("left", justify="right", no_wrap=True)
    table.add_column("next update (UTC)", no_wrap=True)
    table.add_column("used", justify="right", no_wrap=True)
    table.add_column("issuer CN", overflow="fold")
    table.add_column("number", justify="right", no_wrap=True)
    table.add_column("revoked", justify="right", no_wrap=True)
    table.add_column("source", overflow="fold")
    for checked in report.crls:
        window = checked.window
        crl = checked.crl
        table.add_row(
            Text.from_markup(f"[{_STYLES[checked.status]}]{checked.status.value}[/]"),
            "-" if window is None else format_duration(window.time_left(now)),
            "-" if crl.next_update is None else f"{crl.next_update:%Y-%m-%d %H:%M}",
            "-" if window is None else f"{window.lifetime_used(now) * 100:.0f}%",
            inert(checked.issuer_common_name or "-"),
            "-" if crl.number is None else str(crl.number),
            str(len(crl.entries)),
            inert(checked.source),
        )
    return table


def check_summary(report: CheckReport) -> str:
    """One line: how many certificates have each status, how many targets failed, the code."""
    counts = report.counts()
    parts = [f"{n} {name.replace('_', ' ')}" for name, n in counts.items() if n]
    total = len(report.certificates)
    text = f"{total} certificate{'s' if total != 1 else ''}"
    if parts:
        text += f" ({', '.join(parts)})"
    if report.crls:
        crls = len(report.crls)
        stale = sum(1 for c in report.crls if c.status is not Status.OK)
        text += f"; {crls} CRL{'s' if crls != 1 else ''}"
        if stale:
            text += f" ({stale} not ok)"
    read = sum(1 for e in report.errors if e.kind is ErrorKind.READ)
    probe = len(report.errors) - read
    if read:
        text += f"; {read} unreadable"
    if probe:
        text += f"; {probe} unreachable"
    return f"{text}; exit {int(report.exit_code)} ({report.status})"
