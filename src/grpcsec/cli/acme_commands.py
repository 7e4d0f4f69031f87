"""``grpcsec acme issue|renew``: certificates from an ACME CA (Let's Encrypt, step-ca, pebble).

``issue`` creates or reuses the account (key 0600 in ``--account-key``, default
``acme-account.key`` beside ``--cert``), orders a certificate for every ``--domain``, answers
http-01 on ``--http-port`` (default 80) with a built-in responder bound only during the order,
finalizes with a new key (``--key-type``, ECDSA P-256 by default) and writes the chain (leaf
first) and key atomically. ``renew`` takes the same options and behaves like ``grpcsec renew``
(same agent, same ``--once``/``--force``/``--exec``/``--json``), renewing inside the CA's
renewal window (ARI) when it offers one, else at 2/3 of the lifetime. The library side is
:mod:`grpcsec.acme`.

Exit codes: ``issue``: 0 issued; 2 bad input or the CA did not issue (one line, old files
untouched). ``renew``: as ``grpcsec renew`` (0 renewed, not due, or stopped by a signal; 1 the
renewal failed; 2 bad usage or an unreadable certificate).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from grpcsec.cli import app
from grpcsec.cli._common import JsonOption, console, errors_to_exit, escape, fail, print_json
from grpcsec.cli._logging import LogFormat, LogFormatOption
from grpcsec.cli.renew_command import (
    AgentJsonOption,
    CheckIntervalOption,
    ExecOption,
    ForceOption,
    OnceOption,
    exec_hook,
    interval_seconds,
    run_agent,
)
from grpcsec.clock import format_moment, rfc3339
from grpcsec.errors import ConfigurationError

if TYPE_CHECKING:
    from grpcsec.acme import AcmeConfig

__all__ = ["acme_app"]

acme_app = typer.Typer(
    name="acme",
    help="Certificates from an ACME CA: issue one (acme issue) and keep it renewed "
    "(acme renew), answering http-01 with a built-in responder.",
    no_args_is_help=True,
)
app.add_typer(acme_app, name="acme")

DirectoryOption = Annotated[
    str,
    typer.Option("--directory", metavar="URL", help="The CA's ACME directory URL (https)."),
]
DomainOption = Annotated[
    list[str],
    typer.Option("--domain", metavar="NAME", help="A DNS name to certify (repeat for more)."),
]
CertOption = Annotated[
    Path, typer.Option("--cert", metavar="FILE", help="Where the chain goes (leaf first).")
]
KeyOption = Annotated[
    Path, typer.Option("--key", metavar="FILE", help="Where the new private key goes (0600).")
]
DirectoryCaOption = Annotated[
    Path | None,
    typer.Option(
        "--directory-ca",
        metavar="FILE",
        help="CA bundle that verifies the directory's HTTPS (default: the system store).",
    ),
]
AccountKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--account-key",
        metavar="FILE",
        help="The ACME account key, created (0600) if missing (default: acme-account.key "
        "beside --cert).",
    ),
]
EmailOption = Annotated[
    str | None, typer.Option("--email", metavar="ADDR", help="Contact address for the account.")
]
HttpPortOption = Annotated[
    int,
    typer.Option(
        "--http-port",
        metavar="PORT",
        help="Port of the http-01 responder, bound only while an order runs.",
    ),
]
KeyTypeOption = Annotated[
    str,
    typer.Option(
        "--key-type",
        metavar="TYPE",
        help="Key of the certificate: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096.",
    ),
]


def _config(  # noqa: PLR0917 (the shared options of issue and renew, in flag order)
    directory: str,
    domains: list[str],
    cert: Path,
    directory_ca: Path | None,
    account_key: Path | None,
    email: str | None,
    http_port: int,
    key_type: str,
) -> AcmeConfig:
    try:
        from grpcsec.acme import AcmeConfig, parse_key_type  # noqa: PLC0415 (optional extra)
    except ImportError as exc:
        raise ConfigurationError(
            f"ACME needs the optional extra: pip install 'grpcsec[acme]' ({exc.name} is missing)"
        ) from exc
    return AcmeConfig(
        directory=directory,
        domains=tuple(domains),
        account_key=account_key or cert.with_name("acme-account.key"),
        directory_ca=directory_ca,
        email=email,
        http_port=http_port,
        key_type=parse_key_type(key_type),
    )


@acme_app.command("issue")
def issue(
    *,
    directory: DirectoryOption,
    domain: DomainOption,
    cert: CertOption,
    key: KeyOption,
    directory_ca: DirectoryCaOption = None,
    account_key: AccountKeyOption = None,
    email: EmailOption = None,
    http_port: HttpPortOption = 80,
    key_type: KeyTypeOption = "ecdsa-p256",
    json_output: JsonOption = False,
) -> None:
    """Obtain a certificate from an ACME CA with a new key, answering http-01 itself."""
    with errors_to_exit():
        config = _config(
            directory, domain, cert, directory_ca, account_key, email, http_port, key_type
        )
        from grpcsec.acme import issue_certificate  # noqa: PLC0415 (optional extra)
        from grpcsec.acme.schedule import acme_renewal_time  # noqa: PLC0415

        material = issue_certificate(config, cert, key)
    leaf = material.leaf
    renew_at = acme_renewal_time(leaf, None, draw=0.5)
    if json_output:
        print_json(
            {
                "action": "issued",
                "cert": str(cert),
                "key": str(key),
                "domains": list(config.domains),
                "serial": f"{leaf.serial_number:x}",
                "issuer": leaf.issuer.rfc4514_string(),
                "not_before": rfc3339(leaf.not_valid_before_utc),
                "not_after": rfc3339(leaf.not_valid_after_utc),
                "chain_length": len(material.chain),
                "reused_authorizations": material.reused,
                "next_renewal": rfc3339(renew_at),
                "account_key": str(config.account_key),
            }
        )
        return
    console.print(
        f"issued {escape(cert)} for {escape(', '.join(config.domains))}: serial "
        f"{leaf.serial_number:x}, valid until {format_moment(leaf.not_valid_after_utc)}; "
        f"renew around {format_moment(renew_at)} (grpcsec acme renew)",
        markup=True,
    )


@acme_app.command("renew")
def renew(
    *,
    directory: DirectoryOption,
    domain: DomainOption,
    cert: CertOption,
    key: KeyOption,
    directory_ca: DirectoryCaOption = None,
    account_key: AccountKeyOption = None,
    email: EmailOption = None,
    http_port: HttpPortOption = 80,
    key_type: KeyTypeOption = "ecdsa-p256",
    exec_command: ExecOption = None,
    once: OnceOption = False,
    force: ForceOption = False,
    check_interval: CheckIntervalOption = "1m",
    json_output: AgentJsonOption = False,
    log_format: LogFormatOption = LogFormat.TEXT,
) -> None:
    """Renew an ACME certificate inside the CA's renewal window (else at 2/3 of its life)."""
    with errors_to_exit():
        config = _config(
            directory, domain, cert, directory_ca, account_key, email, http_port, key_type
        )
        from grpcsec.acme import AcmeRenewer  # noqa: PLC0415 (optional extra)

        renewer = AcmeRenewer(
            config,
            cert,
            key,
            hook=exec_hook(exec_command),
            check_interval=interval_seconds(check_interval, "--check-interval"),
        )
    if not cert.exists():
        fail(f"{cert}: no certificate to renew; obtain one with grpcsec acme issue")
    run_agent(renewer, once=once, force=force, json_output=json_output, log_format=log_format)
