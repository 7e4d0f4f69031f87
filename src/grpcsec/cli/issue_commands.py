"""``grpcsec issue`` and ``grpcsec sign``: a leaf certificate from the CA in ``--ca-dir``, with a
new key (issue) or for a certificate signing request (sign).

The profile decides every extension, whatever a CSR asks for. Files are written by
:func:`~grpcsec.pki.registry.write_issued` (all or nothing; the key 0600, the chain 0644), which
also records the certificate in the CA directory's ``issued.jsonl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric import ed25519

from grpcsec import pki
from grpcsec.cli import app
from grpcsec.cli._common import errors_to_exit
from grpcsec.cli._pki import (
    ED25519_LEAF_WARNING,
    AllowUnsupportedOption,
    CaDirOption,
    DnsOption,
    EmailOption,
    ForceOption,
    HostOption,
    IpOption,
    JsonOption,
    KeyTypeOption,
    SpiffeIdOption,
    UriOption,
    load_ca,
    out_paths,
    parse_lifetime,
    report,
    requested_names,
    warn,
    warn_if_ed25519_ca,
    window_options,
)
from grpcsec.errors import IssuanceError
from grpcsec.fileio import FileKind, read_file
from grpcsec.pki import KeyType, PendingFile, Profile, Validity
from grpcsec.pki.layout import CertificateFiles, leaf_files
from grpcsec.pki.registry import write_issued

__all__ = ["issue_command", "sign_command"]


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
    dns: DnsOption = None,
    ips: IpOption = None,
    uris: UriOption = None,
    spiffe_ids: SpiffeIdOption = None,
    emails: EmailOption = None,
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
        cert_file, key_file = out_paths(out)
        names = requested_names(
            hosts=hosts, dns=dns, ips=ips, uris=uris, spiffe_ids=spiffe_ids, emails=emails
        )
        window = window_options(valid, not_before, not_after, now)
        ca = load_ca(ca_dir)
        warn_if_ed25519_ca(ca)
        issued = ca.issue(
            profile,
            names,
            common_name=common_name,
            key_type=key_type,
            validity=window,
            now=now,
            allow_unsupported_key=allow_unsupported_key,
        )
        files = leaf_files(issued, cert_file, key_file)
        written = [
            CertificateFiles(
                f"{profile.value} certificate", issued.certificate, cert_file, key_file
            )
        ]
        write_issued(ca_dir, written, files, force=force, now=now)
    report(written, files, now=now, json_output=json_output, extra={"profile": profile.value})


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
    dns: DnsOption = None,
    ips: IpOption = None,
    uris: UriOption = None,
    spiffe_ids: SpiffeIdOption = None,
    emails: EmailOption = None,
    valid: Annotated[
        str, typer.Option("--valid", metavar="DURATION", help="Lifetime of the certificate.")
    ] = "90d",
    allow_unsupported_key: AllowUnsupportedOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Sign a certificate signing request under a profile.

    Only the CSR's public key, CN and SANs are used; names given here (--host, --dns, --ip,
    --uri, --spiffe-id, --email) replace the SANs.

    A CSR asking for CA:true or other usages still gets the profile's leaf extensions (CA:false).
    """
    now = pki.utcnow()
    with errors_to_exit():
        csr = pki.load_csr(read_file(csr_file, kind=FileKind.CSR), source=csr_file)
        requested = requested_names(
            hosts=hosts, dns=dns, ips=ips, uris=uris, spiffe_ids=spiffe_ids, emails=emails
        )
        names = requested if requested.as_strings() else None  # None: the CSR's own names
        window = Validity.lasting(parse_lifetime(valid, "--valid"), now=now)
        ca = load_ca(ca_dir)
        warn_if_ed25519_ca(ca)
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
            warn(ED25519_LEAF_WARNING)
        files = [PendingFile(out, issued.chain_pem(), pki.CERT_MODE)]
        written = [CertificateFiles(f"{profile.value} certificate", issued.certificate, out, None)]
        write_issued(ca_dir, written, files, force=force, now=now)
    report(
        written,
        files,
        now=now,
        json_output=json_output,
        extra={"profile": profile.value, "csr": str(csr_file)},
    )
