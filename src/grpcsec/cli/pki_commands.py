"""Certificate commands: ``init``, ``ca init``, ``ca intermediate``, ``issue`` and ``sign``.

Each command parses its options into library values, calls :mod:`grpcsec.pki`, writes every file
it produces in one :func:`~grpcsec.pki.write_files` call (all or nothing; private keys 0600, CA
keys 0400, certificates 0644) and prints a short summary, or JSON with ``--json``. Key passwords
come from ``GRPCSEC_KEY_PASSWORD`` or an interactive prompt, never from an argument; no command
prints key material.
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
from cryptography.hazmat.primitives.asymmetric import ed25519

from grpcsec import pki
from grpcsec.cli import app
from grpcsec.cli._common import (
    PASSWORD_ENV,
    console,
    errors_to_exit,
    escape,
    print_json,
    read_password,
    stderr,
)
from grpcsec.errors import ConfigurationError, IssuanceError, PasswordError
from grpcsec.fileio import FileKind, read_file
from grpcsec.pki import (
    CertificateAuthority,
    KeyType,
    PendingFile,
    PrivateKey,
    Profile,
    SpiffeId,
    SubjectAltNames,
    Validity,
)
from grpcsec.pki.keys import key_type_of
from grpcsec.pki.validity import BACKDATE, DEFAULT_LEAF_VALIDITY, parse_time

__all__ = ["ca_app", "load_ca", "load_key"]

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

ca_app = typer.Typer(
    name="ca",
    help="Create certificate authorities: a root (ca init) or an intermediate under one.",
    no_args_is_help=True,
)
app.add_typer(ca_app, name="ca")

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


def _distinct_ca_name() -> str:
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


def _warn(message: str) -> None:
    stderr.print(f"[yellow]warning:[/] {escape(message)}", markup=True)


def _warn_if_ed25519_ca(*cas: CertificateAuthority) -> None:
    if any(key_type_of(ca.key) is KeyType.ED25519 for ca in cas):
        _warn(ED25519_CA_WARNING)


def _lifetime(text: str, option: str) -> dt.timedelta:
    try:
        return pki.parse_duration(text)
    except IssuanceError as exc:
        raise IssuanceError(f"{option}: {exc.message}") from exc


def _moment(text: str, option: str) -> dt.datetime:
    try:
        return parse_time(text)
    except IssuanceError as exc:
        raise IssuanceError(f"{option}: {exc.message}") from exc


def _leaf_validity(
    valid: str | None, not_before: str | None, not_after: str | None, now: dt.datetime
) -> Validity | None:
    """The window from ``--valid`` / ``--not-before`` / ``--not-after`` (``None``: the default)."""
    if not_after is not None and valid is not None:
        raise ConfigurationError("--valid and --not-after cannot be combined; pass one of them")
    if not_before is None and not_after is None:
        return None if valid is None else Validity.lasting(_lifetime(valid, "--valid"), now=now)
    start = _moment(not_before, "--not-before") if not_before is not None else now - BACKDATE
    if not_after is not None:
        return Validity(not_before=start, not_after=_moment(not_after, "--not-after"))
    lifetime = _lifetime(valid, "--valid") if valid is not None else DEFAULT_LEAF_VALIDITY
    return Validity(not_before=start, not_after=start + lifetime)


def _names(
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


def _prefix_paths(out: Path) -> tuple[Path, Path]:
    if out.suffix in {".crt", ".key", ".pem"}:
        raise ConfigurationError(
            f"--out is a prefix: pass {str(out.with_suffix(''))!r} to write "
            f"{out.with_suffix('').name}.crt and {out.with_suffix('').name}.key"
        )
    return out.with_name(out.name + ".crt"), out.with_name(out.name + ".key")


def _client_stems(names: Sequence[str]) -> list[str]:
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
class _Written:
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


def _report(
    written: Sequence[_Written],
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


# -- grpcsec init --------------------------------------------------------------------------------
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
        lifetime = _lifetime(valid, "--valid")
        server_names = SubjectAltNames.from_identities(hosts or DEFAULT_HOSTS)
        client_list = list(clients or [DEFAULT_CLIENT])
        stems = _client_stems(client_list)
        client_names = [SubjectAltNames.from_identities([name]) for name in client_list]
        ca = CertificateAuthority.create(_distinct_ca_name(), key_type=key_type, now=now)
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
        written = [_Written("CA", ca.certificate, directory / CA_CERT, directory / CA_KEY)]
        for role, stem, leaf in issued:
            cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
            files += [
                PendingFile(cert_file, leaf.chain_pem(), pki.CERT_MODE),
                PendingFile(key_file, leaf.key_pem(), pki.KEY_MODE),
            ]
            written.append(_Written(role, leaf.certificate, cert_file, key_file))
        pki.write_files(files, force=force)
    _warn_if_ed25519_ca(ca)
    _report(written, files, now=now, json_output=json_output, extra={"directory": str(directory)})


# -- grpcsec ca init / ca intermediate -----------------------------------------------------------
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
        window = Validity.lasting(_lifetime(valid, "--valid"), now=now)
        password = _ca_key_password(encrypt_key)
        ca = CertificateAuthority.create(
            name or _distinct_ca_name(),
            organization=organization,
            key_type=key_type,
            validity=window,
            path_length=path_length,
            now=now,
        )
        files = [
            PendingFile(directory / CA_CERT, ca.certificate_pem(), pki.CERT_MODE),
            PendingFile(directory / CA_KEY, pki.private_key_pem(ca.key, password), pki.CA_KEY_MODE),
        ]
        pki.write_files(files, force=force)
    _warn_if_ed25519_ca(ca)
    written = [_Written("CA", ca.certificate, directory / CA_CERT, directory / CA_KEY)]
    _report(written, files, now=now, json_output=json_output, extra={"encrypted": encrypt_key})


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
        window = Validity.lasting(_lifetime(valid, "--valid"), now=now)
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
        files = [
            PendingFile(out_dir / CA_CERT, ca.certificate_pem(), pki.CERT_MODE),
            PendingFile(out_dir / CA_KEY, pki.private_key_pem(ca.key, password), pki.CA_KEY_MODE),
        ]
        pki.write_files(files, force=force)
    _warn_if_ed25519_ca(parent, ca)
    written = [_Written("intermediate CA", ca.certificate, out_dir / CA_CERT, out_dir / CA_KEY)]
    _report(written, files, now=now, json_output=json_output, extra={"encrypted": encrypt_key})


# -- grpcsec issue -------------------------------------------------------------------------------
@app.command("issue")
def issue_command(
    *,
    profile: Annotated[
        Profile,
        typer.Argument(
            case_sensitive=False,
            help="server (serverAuth), client (clientAuth) or peer (both).",
        ),
    ],
    ca_dir: CaDirOption,
    out: Annotated[
        Path,
        typer.Option(
            "--out", metavar="PREFIX", help="Path prefix: writes PREFIX.crt and PREFIX.key."
        ),
    ],
    hosts: HostOption = None,
    dns: Annotated[
        list[str] | None, typer.Option("--dns", metavar="NAME", help="A DNS SAN; repeatable.")
    ] = None,
    ips: Annotated[
        list[str] | None,
        typer.Option("--ip", metavar="ADDR", help="An IP address SAN; repeatable."),
    ] = None,
    uris: Annotated[
        list[str] | None, typer.Option("--uri", metavar="URI", help="A URI SAN; repeatable.")
    ] = None,
    spiffe_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--spiffe-id", metavar="ID", help="A SPIFFE ID (spiffe://domain/path) as a URI SAN."
        ),
    ] = None,
    emails: Annotated[
        list[str] | None, typer.Option("--email", metavar="ADDR", help="An e-mail SAN; repeatable.")
    ] = None,
    common_name: Annotated[
        str | None,
        typer.Option("--cn", metavar="CN", help="Subject common name (default: the first name)."),
    ] = None,
    key_type: KeyTypeOption = KeyType.ECDSA_P256,
    valid: Annotated[
        str | None,
        typer.Option(
            "--valid", metavar="DURATION", help="Lifetime, e.g. 24h or 90d (default 90d)."
        ),
    ] = None,
    not_before: Annotated[
        str | None,
        typer.Option(
            "--not-before",
            metavar="TIME",
            help="Start, ISO 8601 (naive means UTC); with --valid the lifetime counts from here.",
        ),
    ] = None,
    not_after: Annotated[
        str | None,
        typer.Option(
            "--not-after",
            metavar="TIME",
            help="Explicit end, ISO 8601 (naive means UTC); may lie in the past, for tests.",
        ),
    ] = None,
    allow_unsupported_key: AllowUnsupportedOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Issue a server, client or peer certificate from the CA in --ca-dir.

    Writes PREFIX.crt (the leaf, then the CA certificates below the root) and PREFIX.key (0600).
    """
    now = pki.utcnow()
    with errors_to_exit():
        cert_file, key_file = _prefix_paths(out)
        names = _names(
            hosts=hosts or (),
            dns=dns or (),
            ips=ips or (),
            uris=uris or (),
            spiffe_ids=spiffe_ids or (),
            emails=emails or (),
        )
        window = _leaf_validity(valid, not_before, not_after, now)
        ca = load_ca(ca_dir)
        _warn_if_ed25519_ca(ca)
        issued = ca.issue(
            profile,
            names,
            common_name=common_name,
            key_type=key_type,
            validity=window,
            now=now,
            allow_unsupported_key=allow_unsupported_key,
        )
        files = [
            PendingFile(cert_file, issued.chain_pem(), pki.CERT_MODE),
            PendingFile(key_file, issued.key_pem(), pki.KEY_MODE),
        ]
        pki.write_files(files, force=force)
    written = [_Written(f"{profile.value} certificate", issued.certificate, cert_file, key_file)]
    _report(written, files, now=now, json_output=json_output, extra={"profile": profile.value})


# -- grpcsec sign --------------------------------------------------------------------------------
@app.command("sign")
def sign_command(
    *,
    csr_file: Annotated[Path, typer.Argument(metavar="CSR", help="A PEM or DER CSR.")],
    ca_dir: CaDirOption,
    profile: Annotated[
        Profile,
        typer.Option(
            "--profile",
            case_sensitive=False,
            help="server, client or peer: decides every extension, whatever the CSR asks for.",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", metavar="FILE", help="Certificate file to write (chain).")
    ],
    hosts: HostOption = None,
    valid: Annotated[
        str, typer.Option("--valid", metavar="DURATION", help="Lifetime of the certificate.")
    ] = "90d",
    allow_unsupported_key: AllowUnsupportedOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Sign a certificate signing request under a profile.

    Only the CSR's public key, CN and SANs are used; --host replaces the SANs.

    A CSR asking for CA:true or other usages still gets the profile's leaf extensions (CA:false).
    """
    now = pki.utcnow()
    with errors_to_exit():
        csr = pki.load_csr(read_file(csr_file, kind=FileKind.CSR), source=csr_file)
        names = SubjectAltNames.from_identities(hosts) if hosts else None
        window = Validity.lasting(_lifetime(valid, "--valid"), now=now)
        ca = load_ca(ca_dir)
        _warn_if_ed25519_ca(ca)
        try:
            issued = ca.sign_csr(
                csr,
                profile,
                names=names,
                validity=window,
                now=now,
                allow_unsupported_key=allow_unsupported_key,
            )
        except IssuanceError as exc:
            raise IssuanceError(exc.message, path=exc.path or csr_file) from exc
        if isinstance(issued.certificate.public_key(), ed25519.Ed25519PublicKey):
            _warn(ED25519_LEAF_WARNING)
        files = [PendingFile(out, issued.chain_pem(), pki.CERT_MODE)]
        pki.write_files(files, force=force)
    written = [_Written(f"{profile.value} certificate", issued.certificate, out, None)]
    _report(
        written,
        files,
        now=now,
        json_output=json_output,
        extra={"profile": profile.value, "csr": str(csr_file)},
    )
