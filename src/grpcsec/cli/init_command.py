"""``grpcsec init``: a CA, a server certificate and client certificates in one step.

Every file is written in one :func:`~grpcsec.pki.write_files` call (all or nothing; private keys
0600, the CA key 0400, certificates 0644); the command prints a short summary, or JSON with
``--json``. No key material is printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grpcsec import pki
from grpcsec.cli import app
from grpcsec.cli._common import errors_to_exit
from grpcsec.cli._pki import (
    CA_CERT,
    CA_KEY,
    DEFAULT_CLIENT,
    DEFAULT_HOSTS,
    AllowUnsupportedOption,
    ForceOption,
    HostOption,
    JsonOption,
    KeyTypeOption,
    Written,
    client_stems,
    distinct_ca_name,
    parse_lifetime,
    report,
    warn_if_ed25519_ca,
)
from grpcsec.pki import (
    CertificateAuthority,
    KeyType,
    PendingFile,
    Profile,
    SubjectAltNames,
    Validity,
)

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
        server_names = SubjectAltNames.from_identities(hosts or DEFAULT_HOSTS)
        client_list = list(clients or [DEFAULT_CLIENT])
        stems = client_stems(client_list)
        client_names = [SubjectAltNames.from_identities([name]) for name in client_list]
        ca = CertificateAuthority.create(distinct_ca_name(), key_type=key_type, now=now)
        window = Validity.lasting(lifetime, now=now)
        issued = [
            (
                "server",
                "server",
                ca.issue(
                    Profile.SERVER,
                    server_names,
                    key_type=key_type,
                    validity=window,
                    now=now,
                    allow_unsupported_key=allow_unsupported_key,
                ),
            )
        ]
        for stem, names in zip(stems, client_names, strict=True):
            leaf = ca.issue(
                Profile.CLIENT,
                names,
                key_type=key_type,
                validity=window,
                now=now,
                allow_unsupported_key=allow_unsupported_key,
            )
            issued.append(("client", stem, leaf))
        files = [
            PendingFile(directory / CA_CERT, ca.certificate_pem(), pki.CERT_MODE),
            PendingFile(directory / CA_KEY, pki.private_key_pem(ca.key), pki.CA_KEY_MODE),
        ]
        written = [Written("CA", ca.certificate, directory / CA_CERT, directory / CA_KEY)]
        for role, stem, leaf in issued:
            cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
            files += [
                PendingFile(cert_file, leaf.chain_pem(), pki.CERT_MODE),
                PendingFile(key_file, leaf.key_pem(), pki.KEY_MODE),
            ]
            written.append(Written(role, leaf.certificate, cert_file, key_file))
        pki.write_files(files, force=force)
    warn_if_ed25519_ca(ca)
    report(written, files, now=now, json_output=json_output, extra={"directory": str(directory)})
