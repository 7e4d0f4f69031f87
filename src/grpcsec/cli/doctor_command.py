"""``grpcsec doctor``: why a secure gRPC connection fails, one ordered check at a time.

``grpcsec doctor TARGET`` probes a server (TCP, TLS or plaintext, TLS versions/ALPN/cipher, the
served chain against ``--ca`` or the roots a default grpcio client would use, client
authentication, then a real health call through grpcio) and stops at the first root cause.
``grpcsec doctor --cert F --key F`` (no TARGET) checks local files instead. ``--crl FILE``
(repeatable) adds revocation checks of the served chain, the client certificate or the local
files against those CRLs.

Exit codes: 0 healthy (warnings allowed), 1 a problem was found, 2 bad usage or unreadable
input. ``--json`` prints ``{"target", "ok", "diagnosis", "checks", "server"}`` (``files``
instead of ``server`` for local files). The token is never printed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from grpcsec.cli import app
from grpcsec.cli._common import (
    EXIT_FAILED,
    JsonOption,
    console,
    errors_to_exit,
    escape,
    fail,
    print_json,
    read_password,
)
from grpcsec.doctor import (
    DoctorReport,
    DoctorRequest,
    LintRequest,
    Status,
    diagnose,
    lint,
)
from grpcsec.errors import PasswordError
from grpcsec.pki import Role, utcnow
from grpcsec.target import Target
from grpcsec.text import inert

__all__ = ["doctor"]

_LABELS = {
    Status.PASS: "[green]PASS[/]",
    Status.WARN: "[yellow]WARN[/]",
    Status.FAIL: "[bold red]FAIL[/]",
    Status.SKIP: "[dim]SKIP[/]",
}


_ROOT_ORIGINS = {
    "explicit": "--ca",
    "env": "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "system": "the system bundle, as grpcio would use it",
    "grpcio_bundled": "grpcio's bundled roots, as a default grpcio client uses them",
    "none": "no roots",
}


def _with_password(run: Callable[[bytes | None], DoctorReport], key: Path | None) -> DoctorReport:
    """Run ``run(password)``; ask for the key's password (environment or prompt) only when
    the key turns out to be encrypted."""
    try:
        report = run(None)
    except PasswordError:
        password = read_password(prompt=f"Password for {key}: ")
        if password is None:
            raise
        report = run(password)
    return report


def _render(report: DoctorReport, heading: str) -> None:
    console.print(inert(heading))
    width = max(len(c.name) for c in report.checks)
    for check in report.checks:
        line = f"  {_LABELS[check.status]} {escape(check.name.ljust(width))}  "
        line += escape(check.message)
        if check.status in {Status.WARN, Status.FAIL} and check.code != "ok":
            line += f" [dim]({escape(check.code)})[/]"
        console.print(line, markup=True, highlight=False)
        if check.fix and check.status in {Status.WARN, Status.FAIL}:
            console.print(
                f"  {' ' * (5 + width)}  [bold]fix:[/] {escape(check.fix)}",
                markup=True,
                highlight=False,
            )
    cause = report.root_cause
    if cause is None:
        console.print("\n[bold green]diagnosis: ok[/]", markup=True, highlight=False)
        return
    console.print(
        f"\n[bold red]diagnosis: {escape(cause.code)}[/] — {escape(cause.message)}",
        markup=True,
        highlight=False,
    )
    if cause.fix:
        console.print(f"[bold]fix:[/] {escape(cause.fix)}", markup=True, highlight=False)


def _remote_heading(report: DoctorReport) -> str:
    facts = report.facts
    parts = []
    if facts.get("server_name"):
        parts.append(f"verifying the name {facts['server_name']}")
    roots = facts.get("roots")
    if isinstance(roots, dict):
        origin = _ROOT_ORIGINS.get(str(roots["origin"]), str(roots["origin"]))
        parts.append(f"trusting {roots['source']} ({roots['count']} certificates, {origin})")
    suffix = f" ({'; '.join(parts)})" if parts else " (plaintext)"
    return f"grpcsec doctor {report.target}{suffix}"


@app.command("doctor")
def doctor(
    *,
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="TARGET",
            help="HOST:PORT of the server (IPv6 in brackets); omit it to check local files.",
        ),
    ] = None,
    ca: Annotated[
        Path | None,
        typer.Option(
            "--ca",
            metavar="FILE",
            help="CA bundle to verify the server with (default: the roots a default grpcio "
            "client uses, reported).",
        ),
    ] = None,
    cert: Annotated[
        Path | None, typer.Option("--cert", metavar="FILE", help="Client (or local) chain.")
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", metavar="FILE", help="Private key of --cert.")
    ] = None,
    server_name: Annotated[
        str | None,
        typer.Option("--server-name", metavar="NAME", help="Name to verify the server as."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            metavar="TOKEN",
            help="Bearer token for the health call (sent as 'authorization: Bearer'; never "
            "printed).",
            show_default=False,
        ),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Check a plaintext (no TLS) server.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", help="Seconds per network operation.")
    ] = 5.0,
    role: Annotated[
        Role | None,
        typer.Option("--role", help="Local files: the certificate's role (default server)."),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", metavar="NAME", help="Local files: a name the certificate needs."),
    ] = None,
    crl: Annotated[
        list[Path] | None,
        typer.Option(
            "--crl",
            metavar="FILE",
            help="Also check revocation against this CRL (PEM or DER; repeatable): the served "
            "chain, the --cert client certificate, or the local files.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Diagnose a gRPC endpoint's TLS/mTLS set-up, or check local certificate files."""
    now = utcnow()
    if target is None:
        if cert is None or key is None:
            fail("give a TARGET (HOST:PORT) to diagnose, or --cert FILE --key FILE to check files")
        if server_name or token or insecure:
            fail("--server-name, --token and --insecure need a TARGET")
        local_cert, local_key = cert, key
        with errors_to_exit():
            report = _with_password(
                lambda password: lint(
                    LintRequest(
                        cert=local_cert,
                        key=local_key,
                        ca=ca,
                        role=role or Role.SERVER,
                        host=host,
                        key_password=password,
                        crls=tuple(crl or ()),
                    ),
                    now=now,
                ),
                local_key,
            )
        heading = f"grpcsec doctor --cert {cert} --key {key} (role {(role or Role.SERVER).value})"
    else:
        if role is not None or host is not None:
            fail("--role and --host are for checking local files (without a TARGET)")
        with errors_to_exit():
            address = Target.parse(target)
            report = _with_password(
                lambda password: diagnose(
                    DoctorRequest(
                        target=address,
                        ca=ca,
                        cert=cert,
                        key=key,
                        key_password=password,
                        server_name=server_name,
                        token=token,
                        insecure=insecure,
                        timeout=timeout,
                        crls=tuple(crl or ()),
                    ),
                    now=now,
                ),
                key,
            )
        heading = _remote_heading(report)
    if json_output:
        print_json(report.to_json())
    else:
        _render(report, heading)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)
