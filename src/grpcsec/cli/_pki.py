"""What the certificate commands share: option types, loading a CA directory or a key (asking
for a password when the key is encrypted), parsing durations and times with the option's name
in the error, and the summary or JSON every command prints about the files it wrote.

Key passwords come from ``GRPCSEC_KEY_PASSWORD`` or an interactive prompt, never from an
argument; nothing here prints key material.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from grpcsec import pki
from grpcsec.cli._common import (
    PASSWORD_ENV,
    JsonOption,
    console,
    escape,
    print_json,
    stderr,
    with_key_password,
)
from grpcsec.errors import ConfigurationError, IssuanceError
from grpcsec.pki import (
    CertificateAuthority,
    KeyType,
    PendingFile,
    PrivateKey,
    SubjectAltNames,
    Validity,
)
from grpcsec.pki.keys import key_type_of
from grpcsec.pki.layout import CA_CERT, CA_KEY, CertificateFiles, load_ca_dir, prefix_paths
from grpcsec.pki.validity import leaf_validity, parse_time

__all__ = [
    "ED25519_LEAF_WARNING",
    "AllowUnsupportedOption",
    "CaDirOption",
    "DnsOption",
    "EmailOption",
    "ForceOption",
    "HostOption",
    "IpOption",
    "JsonOption",
    "KeyTypeOption",
    "SpiffeIdOption",
    "UriOption",
    "load_ca",
    "load_key",
    "out_paths",
    "parse_lifetime",
    "report",
    "requested_names",
    "warn",
    "warn_if_ed25519_ca",
    "window_options",
]

ED25519_CA_WARNING = (
    "an Ed25519 CA is rejected by cryptography's web PKI verifier (so 'grpcsec verify' fails "
    "on its certificates) and by many TLS peers; prefer ecdsa-p256 unless every peer accepts it"
)
ED25519_LEAF_WARNING = (
    "the CSR has an Ed25519 key; grpcio cannot complete a TLS handshake with an Ed25519 leaf "
    "(NO_COMMON_SIGNATURE_ALGORITHMS), so use it only outside gRPC"
)

# -- shared option types -------------------------------------------------------------------------
KeyTypeOption = Annotated[
    KeyType,
    typer.Option(
        "--key-type",
        metavar="TYPE",
        case_sensitive=False,
        help="Key type of the new key(s): " + ", ".join(member.value for member in KeyType) + ".",
    ),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Overwrite existing files (otherwise nothing is written).")
]
AllowUnsupportedOption = Annotated[
    bool,
    typer.Option(
        "--allow-unsupported-key",
        help="Allow an Ed25519 leaf key, which grpcio cannot use in a TLS handshake.",
    ),
]
CaDirOption = Annotated[
    Path,
    typer.Option(
        "--ca-dir",
        metavar="DIR",
        help=f"Directory of the issuing CA: {CA_CERT} (the CA first, then its parents) and "
        f"{CA_KEY} (password from {PASSWORD_ENV} or a prompt when encrypted).",
    ),
]
HostOption = Annotated[
    list[str] | None,
    typer.Option(
        "--host",
        metavar="NAME",
        help="A name to put in the SAN extension; repeatable. Sorted by form: an IP address, "
        "a URI (a://b, e.g. a SPIFFE ID), an e-mail (a@b), else a DNS name.",
    ),
]


DnsOption = Annotated[
    list[str] | None, typer.Option("--dns", metavar="NAME", help="A DNS SAN; repeatable.")
]
IpOption = Annotated[
    list[str] | None, typer.Option("--ip", metavar="ADDR", help="An IP address SAN; repeatable.")
]
UriOption = Annotated[
    list[str] | None, typer.Option("--uri", metavar="URI", help="A URI SAN; repeatable.")
]
SpiffeIdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--spiffe-id",
        metavar="ID",
        help="A SPIFFE ID (spiffe://domain/path) as a URI SAN; repeatable.",
    ),
]
EmailOption = Annotated[
    list[str] | None, typer.Option("--email", metavar="ADDR", help="An e-mail SAN; repeatable.")
]


def requested_names(
    *,
    hosts: Sequence[str] | None = None,
    dns: Sequence[str] | None = None,
    ips: Sequence[str] | None = None,
    uris: Sequence[str] | None = None,
    spiffe_ids: Sequence[str] | None = None,
    emails: Sequence[str] | None = None,
) -> SubjectAltNames:
    """The names of ``--host`` (sorted by form) and of the one-kind options, validated."""
    return SubjectAltNames.requested(
        hosts=hosts or (),
        dns=dns or (),
        ips=ips or (),
        uris=uris or (),
        spiffe_ids=spiffe_ids or (),
        emails=emails or (),
    )


# -- helpers -------------------------------------------------------------------------------------
def load_key(path: Path) -> PrivateKey:
    """Load a private key file, asking for its password (environment or prompt) only when the
    key is encrypted. A missing password leaves the library's :class:`PasswordError`."""
    return with_key_password(lambda password: pki.load_key_file(path, password=password), path)


def load_ca(ca_dir: Path) -> CertificateAuthority:
    """The CA in ``ca_dir`` (``ca.crt`` and ``ca.key``), asking for the key's password only
    when it is encrypted and only once ``ca.crt`` has been read."""
    return load_ca_dir(ca_dir, load_key)


def warn(message: str) -> None:
    stderr.print(f"[yellow]warning:[/] {escape(message)}", markup=True)


def warn_if_ed25519_ca(*cas: CertificateAuthority) -> None:
    if any(key_type_of(ca.key) is KeyType.ED25519 for ca in cas):
        warn(ED25519_CA_WARNING)


def parse_lifetime(text: str, option: str) -> dt.timedelta:
    try:
        return pki.parse_duration(text)
    except IssuanceError as exc:
        raise IssuanceError(f"{option}: {exc.message}") from exc


def parse_moment(text: str, option: str) -> dt.datetime:
    try:
        return parse_time(text)
    except IssuanceError as exc:
        raise IssuanceError(f"{option}: {exc.message}") from exc


def window_options(
    valid: str | None, not_before: str | None, not_after: str | None, now: dt.datetime
) -> Validity | None:
    """The window from ``--valid`` / ``--not-before`` / ``--not-after`` (``None``: the default);
    the options are parsed here, combined by :func:`~grpcsec.pki.validity.leaf_validity`."""
    if not_after is not None and valid is not None:
        raise ConfigurationError("--valid and --not-after cannot be combined; pass one of them")
    return leaf_validity(
        not_before=parse_moment(not_before, "--not-before") if not_before is not None else None,
        not_after=parse_moment(not_after, "--not-after") if not_after is not None else None,
        lifetime=parse_lifetime(valid, "--valid") if valid is not None else None,
        now=now,
    )


def out_paths(out: Path) -> tuple[Path, Path]:
    """``--out PREFIX`` as the certificate and key paths (``layout.prefix_paths``)."""
    try:
        return prefix_paths(out)
    except ConfigurationError as exc:
        raise ConfigurationError(f"--out {exc.message}") from exc


def _certificate_json(item: CertificateFiles, now: dt.datetime) -> dict[str, object]:
    return {
        "role": item.role,
        "certificate_file": str(item.certificate_file),
        "key_file": str(item.key_file) if item.key_file is not None else None,
        "certificate": pki.CertificateInfo.of(item.certificate).to_json(now),
    }


def report(
    written: Sequence[CertificateFiles],
    files: Sequence[PendingFile],
    *,
    now: dt.datetime,
    json_output: bool,
    extra: dict[str, object] | None = None,
) -> None:
    """What a command wrote: JSON with ``--json`` (files with their modes, each certificate
    described), otherwise a short summary per certificate; never key material."""
    if json_output:
        print_json(
            {
                **(extra or {}),
                "files": [{"path": str(f.path), "mode": f"{f.mode:04o}"} for f in files],
                "certificates": [_certificate_json(w, now) for w in written],
            }
        )
        return
    console.print(f"[green]Wrote {len(files)} file{'s' if len(files) > 1 else ''}:[/]", markup=True)
    for item in written:
        info = pki.CertificateInfo.of(item.certificate)
        paths = str(item.certificate_file)
        if item.key_file is not None:
            paths += f", {item.key_file}"
        names = ", ".join(info.names.as_strings()) or "(no SANs)"
        status = info.status(now)
        when = f"not after {info.not_after:%Y-%m-%d %H:%M:%SZ}"
        left = (
            f"{pki.format_duration(info.time_left(now))} left"
            if status == "valid"
            else status.replace("_", " ").upper()
        )
        console.print(f"  [bold]{escape(item.role)}[/]: {escape(paths)}", markup=True)
        console.print(f"      subject {escape(info.subject)}", markup=True)
        if not info.is_ca:
            console.print(f"      names   {escape(names)}", markup=True)
        console.print(f"      {when} ({left})")
    modes = ", ".join(f"{f.path.name} {f.mode:04o}" for f in files if f.mode != pki.CERT_MODE)
    if modes:
        console.print(f"  key file modes: {escape(modes)}", markup=True)
