"""``grpcsec config check FILE``: is this configuration valid, and what does it amount to?

Reads the file as ``serve --config`` would, then (unless ``--shape-only``) loads everything it
names the way the server does before binding: the certificate, key and CA files, the JWKS (a
URL is fetched once) and the policy. Nothing binds, nothing is served. Prints the effective
configuration as JSON (every default filled in, paths absolute, a JWKS URL's credentials and
query masked). Exit 0 when valid, 2 with a one-line reason when not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grpcsec.cli import app
from grpcsec.cli._common import errors_to_exit, print_json
from grpcsec.server import SecurityConfig

__all__ = ["config_app"]

config_app = typer.Typer(
    help="Check grpcsec configuration files.", no_args_is_help=True, add_completion=False
)
app.add_typer(config_app, name="config")


@config_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A grpcsec TOML configuration.")],
    *,
    shape_only: Annotated[
        bool,
        typer.Option("--shape-only", help="Check keys and values only; do not open the files."),
    ] = False,
) -> None:
    """Validate FILE and print the effective configuration as JSON (exit 2 when invalid)."""
    with errors_to_exit():
        config = SecurityConfig.load(file)
        if not shape_only:
            from grpcsec.server.core import ServerCore  # noqa: PLC0415 (starts grpc core)

            core = ServerCore(config, aio=config.aio, interceptors=(), options=())
            core.close()
    print_json({"valid": True, "files_checked": not shape_only, "config": config.to_json()})
