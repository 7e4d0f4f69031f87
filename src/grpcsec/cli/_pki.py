"""What the certificate commands share: option types, loading a CA directory or a key (asking
for a password when the key is encrypted), parsing durations and times with the option's name
in the error, and the summary or JSON every command prints about the files it wrote.

Key passwords come from ``GRPCSEC_KEY_PASSWORD`` or an interactive prompt, never from an
argument; nothing here prints key material.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509

from grpcsec import pki
from grpcsec.cli._common import PASSWORD_ENV, console, escape, print_json, read_password, stderr
from grpcsec.errors import ConfigurationError, IssuanceError, PasswordError
from grpcsec.pki import (
    CertificateAuthority,
    KeyType,
    PendingFile,
    PrivateKey,
    SpiffeId,
    SubjectAltNames,
    Validity,
)
from grpcsec.pki.keys import key_type_of
from grpcsec.pki.validity import BACKDATE, DEFAULT_LEAF_VALIDITY, parse_time

__all__ = [
    "CA_CERT",
    "CA_KEY",
    "DEFAULT_CLIENT",
    "DEFAULT_HOSTS",
    "ED25519_LEAF_WARNING",
    "AllowUnsupportedOption",
    "CaDirOption",
    "ForceOption",
    "HostOption",
    "JsonOption",
    "KeyTypeOption",
    "Written",
    "client_stems",
    "distinct_ca_name",
    "leaf_validity",
    "load_ca",
    "load_key",
    "parse_lifetime",
    "prefix_paths",
    "report",
    "requested_names",
    "warn",
    "warn_if_ed25519_ca",
]

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
DEFAULT_CLIENT = "client"

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
        case_sensitive=False,
        help="Key type of the new key(s).",
    ),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Overwrite existing files (otherwise nothing is written).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
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


def distinct_ca_name() -> str:
    """A default CA name with a short random id, so that two CAs made by grpcsec on different
    days are told apart in error messages ("unknown authority ... grpcsec root CA 3f9a2c")."""
    return f"grpcsec root CA {secrets.token_hex(3)}"


# -- helpers -------------------------------------------------------------------------------------
def load_key(path: Path) -> PrivateKey:
    """Load a private key file, asking for its password (environment or prompt) only when the
    key is encrypted. A missing password leaves the library's :class:`PasswordError`."""
    try:
        return pki.load_key_file(path)
    except PasswordError as exc:
        password = read_password(prompt=f"Password for {path}: ")
        if password is None:
            raise PasswordError(
                f"{exc.message} (set {PASSWORD_ENV} or run in a terminal to be asked)",
                path=exc.path,
            ) from exc
        return pki.load_key_file(path, password=password)


def load_ca(ca_dir: Path) -> CertificateAuthority:
    """The CA in ``ca_dir`` (``ca.crt`` and ``ca.key``), checked to be a CA matching its key."""
    cert_path = ca_dir / CA_CERT
    certificate_pem = pki.read_file(cert_path)
    pki.load_certificates(certificate_pem, source=cert_path)  # a bad ca.crt fails before a prompt
    return CertificateAuthority.from_pem(
        certificate_pem,
        load_key(ca_dir / CA_KEY),
        source=str(cert_path),
        key_source=str(ca_dir / CA_KEY),
    )


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


def leaf_validity(
    valid: str | None, not_before: str | None, not_after: str | None, now: dt.datetime
) -> Validity | None:
    """The window from ``--valid`` / ``--not-before`` / ``--not-after`` (``None``: the default)."""
    if not_after is not None and valid is not None:
        raise ConfigurationError("--valid and --not-after cannot be combined; pass one of them")
    if not_before is None and not_after is None:
        return (
            None if valid is None else Validity.lasting(parse_lifetime(valid, "--valid"), now=now)
        )
    start = parse_moment(not_before, "--not-before") if not_before is not None else now - BACKDATE
    if not_after is not None:
        return Validity(not_before=start, not_after=parse_moment(not_after, "--not-after"))
    lifetime = parse_lifetime(valid, "--valid") if valid is not None else DEFAULT_LEAF_VALIDITY
    return Validity(not_before=start, not_after=start + lifetime)


def requested_names(
    *,
    hosts: Iterable[str],
    dns: Iterable[str],
    ips: Iterable[str],
    uris: Iterable[str],
    spiffe_ids: Iterable[str],
    emails: Iterable[str],
) -> SubjectAltNames:
    spiffe = [str(SpiffeId.parse(text)) for text in spiffe_ids]
    explicit = SubjectAltNames.build(dns=dns, ips=ips, uris=[*uris, *spiffe], emails=emails)
    return SubjectAltNames.from_identities(hosts).merged(explicit)


def prefix_paths(out: Path) -> tuple[Path, Path]:
    if out.suffix in {".crt", ".key", ".pem"}:
        raise ConfigurationError(
            f"--out is a prefix: pass {str(out.with_suffix(''))!r} to write "
            f"{out.with_suffix('').name}.crt and {out.with_suffix('').name}.key"
        )
    return out.with_name(out.name + ".crt"), out.with_name(out.name + ".key")


def client_stems(names: Sequence[str]) -> list[str]:
    """File stems for ``init --client``: ``client`` for the first, ``client-NAME`` after it."""
    stems: list[str] = []
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigurationError(f"--client {name!r} is given twice")
        slug = re.sub(r"[^A-Za-z0-9._@-]+", "-", name.split("://", 1)[-1]).strip("-.")
        stem = DEFAULT_CLIENT if index == 0 else f"{DEFAULT_CLIENT}-{slug}"
        if not slug or stem in stems:
            raise ConfigurationError(
                f"--client {name!r} does not give a file name of its own ({stem}.crt); "
                "use distinct client names"
            )
        stems.append(stem)
    return stems


@dataclass(frozen=True, slots=True)
class Written:
    """One certificate a command wrote, for the summary and the JSON output."""

    role: str
    certificate: x509.Certificate
    certificate_file: Path
    key_file: Path | None

    def to_json(self, now: dt.datetime) -> dict[str, object]:
        return {
            "role": self.role,
            "certificate_file": str(self.certificate_file),
            "key_file": str(self.key_file) if self.key_file is not None else None,
            "certificate": pki.CertificateInfo.of(self.certificate).to_json(now),
        }


def report(
    written: Sequence[Written],
    files: Sequence[PendingFile],
    *,
    now: dt.datetime,
    json_output: bool,
    extra: dict[str, object] | None = None,
) -> None:
    if json_output:
        print_json(
            {
                **(extra or {}),
                "files": [{"path": str(f.path), "mode": f"{f.mode:04o}"} for f in files],
                "certificates": [w.to_json(now) for w in written],
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
