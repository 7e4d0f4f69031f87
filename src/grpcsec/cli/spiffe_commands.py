"""``grpcsec spiffe fetch``: the workload's X.509 SVID and bundles from the Workload API, as files.

One fetch (at most ``--timeout`` seconds), then ``svid.pem``, ``svid.key`` (0600) and
``bundle.pem`` in ``--out-dir`` (:mod:`grpcsec.spiffe.files`), so ``grpcsec check``, ``doctor``,
``inspect`` and ``verify`` can work on what the agent hands out. The address is ``--socket`` or,
without it, ``$SPIFFE_ENDPOINT_SOCKET``. Prints the SPIFFE ID, serial, expiry and trust domains.

Exit codes: 0 written, 2 bad input or no answer from the Workload API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grpcsec.cli import app
from grpcsec.cli._common import JsonOption, console, errors_to_exit, print_json
from grpcsec.errors import ConfigurationError
from grpcsec.spiffe import ENDPOINT_VARIABLE, WorkloadAPIAddress, require_py_spiffe
from grpcsec.spiffe.files import write_svid_files
from grpcsec.text import inert

__all__ = ["spiffe_app"]

spiffe_app = typer.Typer(
    help="SPIFFE Workload API: fetch the workload's SVID and bundles.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(spiffe_app, name="spiffe")


@spiffe_app.command("fetch")
def fetch(
    *,
    out_dir: Annotated[
        Path, typer.Option("--out-dir", metavar="DIR", help="Write svid.pem, svid.key, bundle.pem.")
    ],
    socket: Annotated[
        str | None,
        typer.Option(
            "--socket",
            metavar="ADDR",
            help=f"Workload API address, unix:///path (default: ${ENDPOINT_VARIABLE}).",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", help="Seconds to wait.")
    ] = 10.0,
    json_output: JsonOption = False,
) -> None:
    """Fetch the X.509 SVID and bundles once and write them to files."""
    with errors_to_exit():
        address = (
            WorkloadAPIAddress.parse(socket, what="--socket")
            if socket is not None
            else WorkloadAPIAddress.from_environment()
        )
        if address is None:
            raise ConfigurationError(f"give --socket unix:///path or set ${ENDPOINT_VARIABLE}")
        if timeout <= 0:
            raise ConfigurationError("--timeout must be positive")
        require_py_spiffe("grpcsec spiffe fetch")
        from grpcsec.spiffe.workload import WorkloadAPISource  # noqa: PLC0415 (py-spiffe)

        with WorkloadAPISource(address, start_timeout=timeout) as source:
            material, status = source.read(), source.status()
        files = write_svid_files(material, out_dir)
    result = {**status.to_json(), "files": files.to_json()}
    for name in ("connected", "updates", "last_error", "disconnected_since"):
        result.pop(name, None)
    if json_output:
        print_json(result)
        return
    console.print(
        inert(
            f"{status.spiffe_id} serial {status.serial}, expires {result['not_after']}; "
            f"bundles: {', '.join(status.trust_domains)}; wrote {files.cert}, {files.key}, "
            f"{files.bundle}"
        )
    )
