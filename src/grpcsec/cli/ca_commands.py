"""``grpcsec ca init`` and ``grpcsec ca intermediate``: a root CA, or an intermediate under one.

Each writes ``ca.crt`` and ``ca.key`` (0400) in one :func:`~grpcsec.pki.write_files` call; with
``--encrypt-key`` the key is encrypted with a password from ``GRPCSEC_KEY_PASSWORD`` or a
prompt (asked twice), never from an argument.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grpcsec import pki
from grpcsec.cli import app
from grpcsec.cli._common import PASSWORD_ENV, errors_to_exit, read_password
from grpcsec.cli._pki import (
    CaDirOption,
    ForceOption,
    JsonOption,
    KeyTypeOption,
    load_ca,
    parse_lifetime,
    report,
    warn_if_ed25519_ca,
)
from grpcsec.errors import ConfigurationError
from grpcsec.pki import CertificateAuthority, KeyType, Validity
from grpcsec.pki.layout import CA_CERT, CA_KEY, CertificateFiles, ca_files, distinct_ca_name

__all__ = ["ca_app"]

ca_app = typer.Typer(
    name="ca",
    help="Create certificate authorities: a root (ca init) or an intermediate under one.",
    no_args_is_help=True,
)
app.add_typer(ca_app, name="ca")


def _ca_key_password(encrypt_key: bool) -> bytes | None:
    if not encrypt_key:
        return None
    password = read_password(prompt="Password for the new CA key: ", confirm=True)
    if password is None:
        raise ConfigurationError(
            f"--encrypt-key needs a password: set {PASSWORD_ENV} or run in a terminal to be "
            "prompted (it is never taken from the command line)"
        )
    return password


EncryptKeyOption = Annotated[
    bool,
    typer.Option(
        "--encrypt-key",
        help=f"Encrypt the CA key with a password from {PASSWORD_ENV} or a prompt "
        "(asked twice). Commands that use the CA ask for it the same way.",
    ),
]


@ca_app.command("init")
def ca_init_command(
    *,
    directory: Annotated[
        Path, typer.Option("--dir", metavar="DIR", help="Directory for ca.crt and ca.key.")
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--name", metavar="CN", help="Common name of the CA [default: grpcsec root CA <id>]."
        ),
    ] = None,
    organization: Annotated[
        str | None, typer.Option("--org", metavar="O", help="Organization (O) of the CA's subject.")
    ] = None,
    key_type: KeyTypeOption = KeyType.ECDSA_P256,
    valid: Annotated[
        str, typer.Option("--valid", metavar="DURATION", help="Lifetime of the CA.")
    ] = "10y",
    path_length: Annotated[
        int | None,
        typer.Option(
            "--path-length",
            metavar="N",
            min=0,
            help="How many intermediate CAs may follow (default: no limit).",
        ),
    ] = None,
    encrypt_key: EncryptKeyOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Create a self-signed root CA: DIR/ca.crt and DIR/ca.key (mode 0400)."""
    now = pki.utcnow()
    with errors_to_exit():
        window = Validity.lasting(parse_lifetime(valid, "--valid"), now=now)
        password = _ca_key_password(encrypt_key)
        ca = CertificateAuthority.create(
            name or distinct_ca_name(),
            organization=organization,
            key_type=key_type,
            validity=window,
            path_length=path_length,
            now=now,
        )
        files = ca_files(ca, directory, password=password)
        pki.write_files(files, force=force)
    warn_if_ed25519_ca(ca)
    written = [CertificateFiles("CA", ca.certificate, directory / CA_CERT, directory / CA_KEY)]
    report(written, files, now=now, json_output=json_output, extra={"encrypted": encrypt_key})


@ca_app.command("intermediate")
def ca_intermediate_command(
    *,
    ca_dir: CaDirOption,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out-dir",
            metavar="DIR",
            help="Directory for the intermediate's ca.crt (it first, then its parents) and "
            "ca.key; usable as --ca-dir afterwards.",
        ),
    ],
    name: Annotated[
        str, typer.Option("--name", metavar="CN", help="Common name of the intermediate.")
    ] = ("grpcsec intermediate CA"),
    organization: Annotated[
        str | None, typer.Option("--org", metavar="O", help="Organization (O) of the subject.")
    ] = None,
    key_type: KeyTypeOption = KeyType.ECDSA_P256,
    valid: Annotated[
        str, typer.Option("--valid", metavar="DURATION", help="Lifetime of the intermediate.")
    ] = "5y",
    path_length: Annotated[
        int,
        typer.Option("--path-length", metavar="N", min=0, help="How many CAs may follow below it."),
    ] = 0,
    encrypt_key: EncryptKeyOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Create an intermediate CA signed by the CA in --ca-dir."""
    now = pki.utcnow()
    with errors_to_exit():
        if out_dir.resolve() == ca_dir.resolve():
            raise ConfigurationError(
                "--out-dir must differ from --ca-dir (it would replace the parent CA)"
            )
        window = Validity.lasting(parse_lifetime(valid, "--valid"), now=now)
        parent = load_ca(ca_dir)
        password = _ca_key_password(encrypt_key)
        ca = parent.create_intermediate(
            name,
            organization=organization,
            key_type=key_type,
            validity=window,
            path_length=path_length,
            now=now,
        )
        files = ca_files(ca, out_dir, password=password)
        pki.write_files(files, force=force)
    warn_if_ed25519_ca(parent, ca)
    written = [
        CertificateFiles("intermediate CA", ca.certificate, out_dir / CA_CERT, out_dir / CA_KEY)
    ]
    report(written, files, now=now, json_output=json_output, extra={"encrypted": encrypt_key})
