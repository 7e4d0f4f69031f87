"""Read-only certificate commands: ``inspect`` (what is in a file) and ``verify`` (is it trusted).

``inspect`` summarises every certificate of each file and judges the order of a served chain;
``verify`` asks :func:`grpcsec.pki.verify_certificate` whether a certificate is trusted by a CA
bundle, for a role and a host, at a time, and optionally whether a key belongs to it and whether
the CRLs given (``--crl``) revoke it. Exit codes
follow :mod:`grpcsec.cli._common`: 0 yes, 1 verification failed, 2 bad input.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509

from grpcsec import pki
from grpcsec.cli import app
from grpcsec.cli._common import (
    EXIT_FAILED,
    EXIT_USAGE,
    JsonOption,
    console,
    errors_to_exit,
    escape,
    print_json,
    say_error,
)
from grpcsec.cli._pki import load_key
from grpcsec.errors import (
    ConfigurationError,
    GrpcsecError,
    KeyMismatchError,
    VerificationError,
    VerifyReason,
)
from grpcsec.pki import BundleReport, CertificateInfo, Role
from grpcsec.pki.crl import load_crl_file
from grpcsec.pki.validity import parse_time

__all__: list[str] = []


def _when(moment: dt.datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%SZ}"


# -- grpcsec inspect -----------------------------------------------------------------------------
def _file_json(
    path: Path,
    report: BundleReport,
    certificates: list[x509.Certificate],
    *,
    now: dt.datetime,
    pem: bool,
) -> dict[str, object]:
    kind = report.kind
    entries: list[dict[str, object]] = []
    for info, certificate in zip(report.certificates, certificates, strict=True):
        entry = info.to_json(now)
        if pem:
            entry["pem"] = pki.certificates_pem([certificate]).decode("ascii")
        entries.append(entry)
    return {
        "path": str(path),
        "kind": kind,
        "certificates": entries,
        "chain_ordered": report.chain_ordered,
        "problems": [] if kind == "trust_bundle" else list(report.problems),
    }


def _print_certificate(index: int, info: CertificateInfo, now: dt.datetime) -> None:
    status = info.status(now)
    if status == "valid":
        left = f"valid, {pki.format_duration(info.time_left(now))} left"
    elif status == "expired":
        left = f"[red]EXPIRED {pki.format_duration(-info.time_left(now))} ago[/]"
    else:
        left = f"[red]NOT YET VALID (starts in {pki.format_duration(info.not_before - now)})[/]"
    if info.is_ca:
        limit = "no limit" if info.path_length is None else f"path length {info.path_length}"
        ca = f"yes ({limit})"
    else:
        ca = "no"
    key = f"{info.key_algorithm} ({info.key_size} bits)"
    rows = [
        ("subject", escape(info.subject) or "(empty)"),
        ("issuer", escape(info.issuer) + (" (self-signed)" if info.self_signed else "")),
        ("serial", info.serial),
        ("not before", _when(info.not_before)),
        ("not after", f"{_when(info.not_after)} ({left})"),
        ("SANs", escape(", ".join(info.names.as_strings())) or "[yellow](none)[/]"),
        ("SPIFFE ID", escape(info.names.spiffe_id or "-")),
        ("key", key),
        ("signature", info.signature_algorithm),
        ("key usage", ", ".join(info.key_usage) or "-"),
        ("EKU", ", ".join(info.extended_key_usage) or "- (any)"),
        ("CA", ca),
        ("SKI", info.subject_key_id or "-"),
        ("AKI", info.authority_key_id or "-"),
        ("SHA-256", info.fingerprint_sha256),
    ]
    console.print(f"  [bold]certificate {index}[/]", markup=True)
    for label, value in rows:
        console.print(f"    {label:<11} {value}", markup=True)


def _print_file(
    path: Path,
    report: BundleReport,
    certificates: list[x509.Certificate],
    *,
    now: dt.datetime,
    pem: bool,
) -> None:
    count = len(report.certificates)
    console.print(
        f"[bold]{escape(str(path))}[/]: {count} certificate{'s' if count > 1 else ''}", markup=True
    )
    for index, (info, certificate) in enumerate(
        zip(report.certificates, certificates, strict=True), start=1
    ):
        _print_certificate(index, info, now)
        if pem:
            console.print(pki.certificates_pem([certificate]).decode("ascii").rstrip())
    kind = report.kind
    if kind == "chain":
        console.print(
            "  chain order: [green]OK[/] (leaf first, each issued by the next)", markup=True
        )
    elif kind == "trust_bundle":
        console.print(
            f"  trust bundle: {count} self-signed roots (fine for --ca; not a chain to serve)"
        )
    elif kind == "unordered":
        console.print("  chain order: [red]PROBLEM[/]", markup=True)
        for problem in report.problems:
            console.print(f"    - {escape(problem)}", markup=True)


@app.command("inspect")
def inspect_command(
    *,
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE", help="PEM bundles or DER certificates."),
    ],
    json_output: JsonOption = False,
    pem: Annotated[bool, typer.Option("--pem", help="Also print each certificate's PEM.")] = False,
) -> None:
    """Show every certificate in each file and whether a chain is in serving order.

    Exit 0, or 2 when a file cannot be read or parsed (the other files are still reported).
    """
    now = pki.utcnow()
    results: list[dict[str, object]] = []
    failed = False
    for path in files:
        try:
            certificates = pki.load_certificate_file(path)
        except GrpcsecError as exc:
            failed = True
            say_error(str(exc))
            results.append({"path": str(path), "error": exc.message})
            continue
        report = pki.inspect_bundle(certificates)
        if json_output:
            results.append(_file_json(path, report, certificates, now=now, pem=pem))
        else:
            _print_file(path, report, certificates, now=now, pem=pem)
    if json_output:
        print_json({"files": results})
    if failed:
        raise typer.Exit(EXIT_USAGE)


# -- grpcsec verify ------------------------------------------------------------------------------
@app.command("verify")
def verify_command(
    *,
    cert: Annotated[
        Path,
        typer.Argument(
            metavar="CERT",
            help="The certificate; any further certificates in the file are intermediates.",
        ),
    ],
    ca: Annotated[Path, typer.Option("--ca", metavar="FILE", help="Trusted CA certificate(s).")],
    untrusted: Annotated[
        Path | None,
        typer.Option("--untrusted", metavar="FILE", help="More intermediate certificates."),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", metavar="NAME", help="Check this DNS name or IP (server role)."),
    ] = None,
    role: Annotated[
        Role | None,
        typer.Option("--role", case_sensitive=False, help="Check the extended key usage."),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key", metavar="FILE", help="Also check that this private key belongs to CERT."
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", metavar="TIME", help="Verify at this ISO 8601 time (naive = UTC)."),
    ] = None,
    crl: Annotated[
        list[Path] | None,
        typer.Option(
            "--crl",
            metavar="FILE",
            help="Check revocation against this CRL (PEM or DER; repeatable). The CRL of the "
            "certificate's issuer must be among them, signed by it and current.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Verify a certificate against a CA bundle: trust, validity, role (EKU), host, key, CRLs.

    Exit 0 when it verifies, 1 when it does not, 2 when an input cannot be read.
    """
    with errors_to_exit():
        if host is not None and role is Role.CLIENT:
            raise ConfigurationError("--host checks a server certificate; drop --role client")
        now = parse_time(at) if at is not None else pki.utcnow()
        chain = pki.load_certificate_file(cert)
        trust = pki.load_certificate_file(ca)
        extra = pki.load_certificate_file(untrusted) if untrusted is not None else []
        private_key = load_key(key) if key is not None else None
        crls = [load_crl_file(path) for path in crl or ()]
        leaf = chain[0]
        try:
            verified = pki.verify_certificate(
                leaf,
                trust=trust,
                intermediates=[*chain[1:], *extra],
                role=role,
                host=host,
                crls=crls,
                now=now,
            )
            if private_key is not None:
                pki.check_key_matches(leaf, private_key, source=str(key))
        except VerificationError as exc:
            _verdict(ok=False, reason=exc.reason, message=str(exc), chain=[], json=json_output)
            raise typer.Exit(EXIT_FAILED) from None
        except KeyMismatchError as exc:
            reason = VerifyReason.KEY_MISMATCH
            _verdict(ok=False, reason=reason, message=str(exc), chain=[], json=json_output)
            raise typer.Exit(EXIT_FAILED) from None
    subjects = [c.subject.rfc4514_string() or "(empty subject)" for c in verified.chain]
    checks = [f"trusted at {_when(now)}"]
    if verified.role is not None:
        checks.append(f"for {verified.role.value} use")
    if host is not None:
        checks.append(f"for host {host}")
    if private_key is not None:
        checks.append("key matches")
    if crls:
        checks.append(f"not revoked ({len(crls)} CRL{'s' if len(crls) != 1 else ''})")
    message = f"{subjects[0]}: {', '.join(checks)}"
    _verdict(ok=True, reason=None, message=message, chain=subjects, json=json_output)


def _verdict(
    *, ok: bool, reason: VerifyReason | None, message: str, chain: list[str], json: bool
) -> None:
    if json:
        print_json(
            {
                "ok": ok,
                "reason": reason.value if reason is not None else None,
                "message": message,
                "chain": chain,
            }
        )
    elif ok:
        console.print(
            f"[green]OK[/]: {escape(message)}; chain: {escape(' -> '.join(chain))}", markup=True
        )
    else:
        code = reason.value if reason is not None else "unknown"
        console.print(f"[red]FAILED[/] ({code}): {escape(message)}", markup=True)
