"""``grpcsec init``: a CA, a server certificate and client certificates in one step.

Every file is written in one :func:`~grpcsec.pki.registry.write_issued` call (all or nothing;
private keys 0600, the CA key 0400, certificates 0644), which records the server and client
certificates in the new CA directory's ``issued.jsonl``; the command prints a short summary, or
JSON with ``--json``. No key material is printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grpcsec import pki
from grpcsec.cli import app
from grpcsec.cli._common import errors_to_exit
from grpcsec.cli._pki import (
    AllowUnsupportedOption,
    ForceOption,
    HostOption,
    JsonOption,
    KeyTypeOption,
    parse_lifetime,
    report,
    requested_names,
    warn_if_ed25519_ca,
)
from grpcsec.errors import ConfigurationError
from grpcsec.pki import KeyType
from grpcsec.pki.layout import DEFAULT_CLIENT, DEFAULT_HOSTS, create_starter_pki
from grpcsec.pki.registry import write_issued

__all__ = ["init_command"]


@app.command("init")
def init_command(
    *,
    directory: Annotated[
        Path,
        typer.Option(
            "--dir", metavar="DIR", help="Directory to write into (created 0700 if missing)."
        ),
    ],
    hosts: HostOption = None,
    clients: Annotated[
        list[str] | None,
        typer.Option(
            "--client",
            metavar="NAME",
            help="A client identity (DNS name, e-mail, URI or SPIFFE ID); repeatable. The first "
            "is written to client.crt/client.key, each further one to client-NAME.crt/.key "
            "(NAME with '/' and ':' turned into '-'). Default: 'client'.",
        ),
    ] = None,
    client_uris: Annotated[
        list[str] | None,
        typer.Option(
            "--uri",
            metavar="URI",
            help="A client identity that must be a URI (URI SAN); repeatable; follows --client.",
        ),
    ] = None,
    client_spiffe_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--spiffe-id",
            metavar="ID",
            help="A client identity that must be a SPIFFE ID (spiffe://domain/path); repeatable; "
            "follows --client and --uri.",
        ),
    ] = None,
    key_type: KeyTypeOption = KeyType.ECDSA_P256,
    valid: Annotated[
        str,
        typer.Option(
            "--valid", metavar="DURATION", help="Lifetime of the server and client certificates."
        ),
    ] = "90d",
    allow_unsupported_key: AllowUnsupportedOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Create a CA, a server certificate and client certificates in one step (all or nothing).

    Writes ca.crt, ca.key (0400), server.crt, server.key and client.crt, client.key (0600) in DIR.

    Server names default to localhost, 127.0.0.1 and ::1.
    """
    now = pki.utcnow()
    with errors_to_exit():
        lifetime = parse_lifetime(valid, "--valid")
        # checked as their kind here, so the starter's sorting by form finds them URIs
        typed = requested_names(uris=client_uris, spiffe_ids=client_spiffe_ids).uris
        named = [*(clients or ()), *typed]
        try:
            starter = create_starter_pki(
                directory,
                hosts=hosts or DEFAULT_HOSTS,
                clients=named or [DEFAULT_CLIENT],
                key_type=key_type,
                lifetime=lifetime,
                now=now,
                allow_unsupported_key=allow_unsupported_key,
            )
        except ConfigurationError as exc:  # only the client names raise it
            raise ConfigurationError(f"--client {exc.message}") from exc
        write_issued(directory, starter.certificates, starter.files, force=force, now=now)
    warn_if_ed25519_ca(starter.ca)
    report(
        starter.certificates,
        starter.files,
        now=now,
        json_output=json_output,
        extra={"directory": str(directory)},
    )
