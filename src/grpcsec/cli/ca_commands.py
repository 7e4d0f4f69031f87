"""``grpcsec ca init``, ``ca intermediate``, ``ca revoke`` and ``ca crl``: a root CA, an
intermediate under one, and revoking what a CA issued.

``init`` and ``intermediate`` write ``ca.crt`` and ``ca.key`` (0400) in one write (all or
nothing; an intermediate is recorded in its parent's ``issued.jsonl``); with ``--encrypt-key``
the key is encrypted with a password from ``GRPCSEC_KEY_PASSWORD`` or a prompt (asked twice),
never from an argument. ``revoke`` records a revocation in the CA directory
(:func:`grpcsec.pki.revoke.revoke`; it reads ``ca.crt`` only, never the key) and ``crl``
publishes the signed CRL (:func:`grpcsec.pki.revoke.publish_crl`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grpcsec import pki
from grpcsec.cli import app
from grpcsec.cli._common import (
    PASSWORD_ENV,
    console,
    errors_to_exit,
    escape,
    print_json,
    read_password,
)
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
from grpcsec.pki.crl import RevocationReason
from grpcsec.pki.layout import CA_CERT, CA_KEY, CertificateFiles, ca_files, distinct_ca_name
from grpcsec.pki.registry import write_issued
from grpcsec.pki.revoke import publish_crl, revoke

__all__ = ["ca_app"]

ca_app = typer.Typer(
    name="ca",
    help="Certificate authorities: create a root (ca init) or an intermediate under one; "
    "revoke what a CA issued (ca revoke) and publish its CRL (ca crl).",
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
        written = [
            CertificateFiles("intermediate CA", ca.certificate, out_dir / CA_CERT, out_dir / CA_KEY)
        ]
        write_issued(ca_dir, written, files, force=force, now=now)
    warn_if_ed25519_ca(parent, ca)
    report(written, files, now=now, json_output=json_output, extra={"encrypted": encrypt_key})


# -- grpcsec ca revoke / ca crl -------------------------------------------------------------------
def _parse_serial(text: str) -> int:
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    try:
        value = int(cleaned, 16)
    except ValueError:
        value = 0
    if not cleaned or len(cleaned) > 40 or value <= 0:
        raise ConfigurationError(
            f"--serial {text!r} is not a serial number (hex, as 'grpcsec inspect' prints it)"
        )
    return value


@ca_app.command("revoke")
def ca_revoke_command(
    *,
    cert: Annotated[
        Path | None,
        typer.Argument(metavar="[CERT]", help="The certificate to revoke (its first block)."),
    ] = None,
    ca_dir: CaDirOption,
    serial: Annotated[
        str | None,
        typer.Option(
            "--serial", metavar="HEX", help="Revoke by serial instead (must be recorded as issued)."
        ),
    ] = None,
    reason: Annotated[
        RevocationReason | None,
        typer.Option(
            "--reason", case_sensitive=False, help="RFC 5280 reason code (default: none recorded)."
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Record the revocation of a certificate issued by the CA in --ca-dir.

    The certificate must be signed by that CA (name, key identifier and signature are checked);
    a serial must be in the CA's issued.jsonl. Revoking twice changes nothing (exit 0). Run
    'grpcsec ca crl' afterwards to publish the CRL. Only ca.crt is read, never the key.
    """
    now = pki.utcnow()
    with errors_to_exit():
        if (cert is None) == (serial is None):
            raise ConfigurationError("pass a certificate file or --serial HEX (one of them)")
        ca_certificate = pki.load_certificate_file(ca_dir / CA_CERT)[0]
        certificate = pki.load_certificate_file(cert)[0] if cert is not None else None
        result = revoke(
            ca_dir,
            ca_certificate,
            certificate=certificate,
            serial=_parse_serial(serial) if serial is not None else None,
            reason=reason,
            now=now,
            source=cert,
        )
    if json_output:
        print_json({**result.to_json(), "ca_dir": str(ca_dir)})
        return
    entry = result.revocation
    who = f"serial {entry.serial:x}" + (f" ({result.subject})" if result.subject else "")
    why = entry.reason.value if entry.reason is not None else "no reason given"
    if result.already_revoked:
        console.print(
            f"{escape(who)} was already revoked on {entry.revoked_at:%Y-%m-%d %H:%M:%SZ} "
            f"({escape(why)}); nothing changed",
            markup=True,
        )
        return
    console.print(f"[green]Revoked[/] {escape(who)}: {escape(why)}", markup=True)
    console.print("  publish it with: grpcsec ca crl --ca-dir DIR --out FILE")


@ca_app.command("crl")
def ca_crl_command(
    *,
    ca_dir: CaDirOption,
    out: Annotated[
        Path,
        typer.Option("--out", metavar="FILE", help="CRL file to write (PEM; replaced atomically)."),
    ],
    next_update: Annotated[
        str,
        typer.Option(
            "--next-update",
            metavar="DURATION",
            help="How long the CRL is valid: publish a new one well before then.",
        ),
    ] = "7d",
    json_output: JsonOption = False,
) -> None:
    """Publish the CRL of the CA in --ca-dir: every revocation, the next CRL number, signed.

    FILE is replaced atomically (a CRL is meant to be re-published); the CRL number increases
    on every run and is kept in the CA directory's revoked.json.
    """
    now = pki.utcnow()
    with errors_to_exit():
        lifetime = parse_lifetime(next_update, "--next-update")
        ca = load_ca(ca_dir)
        published = publish_crl(ca_dir, ca, out, lifetime=lifetime, now=now)
    if json_output:
        print_json({**published.to_json(), "ca_dir": str(ca_dir)})
        return
    assert published.next_update is not None  # noqa: S101 (publish_crl always sets it)
    console.print(
        f"[green]Wrote[/] {escape(out)}: CRL number {published.number}, "
        f"{len(published.entries)} revoked, next update "
        f"{published.next_update:%Y-%m-%d %H:%M:%SZ}",
        markup=True,
    )
