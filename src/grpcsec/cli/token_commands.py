"""``grpcsec token verify|mint|jwks``: JWT bearer tokens.

``verify`` explains why a token is or is not accepted by a verifier configured like a grpcsec
server (:class:`~grpcsec.authn.JWTVerifier`): exit 0 accepted, 1 rejected (with the stable
reason), 2 bad input (a JWKS that cannot be read or fetched, a bad option).

``mint`` and ``jwks`` are for **development and tests only**: they sign a token with a local
private key (ES256 for a P-256 key, ES384/ES512 for P-384/P-521, RS256 for RSA, EdDSA for
Ed25519) and print the matching JWKS, so a test server can verify tokens without an identity
provider. The default ``kid`` is the key's RFC 7638 thumbprint in both, so they match. Key
passwords come from ``GRPCSEC_KEY_PASSWORD`` or a prompt, never from an argument.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from grpcsec import pki
from grpcsec.authn.jwks_url import JWKSUrl
from grpcsec.authn.key_sources import key_source
from grpcsec.authn.numeric import numeric_date
from grpcsec.authn.report import TokenReport
from grpcsec.authn.tokens import (
    RESERVED_CLAIMS,
    SigningKey,
    load_public_key,
    mint_token,
    public_jwks,
    signing_algorithm,
)
from grpcsec.authn.verifier import DEFAULT_ALGORITHMS, DEFAULT_LEEWAY, JWTVerifier
from grpcsec.cli import app
from grpcsec.cli._common import (
    EXIT_FAILED,
    JsonOption,
    console,
    errors_to_exit,
    escape,
    print_json,
    stderr,
    with_key_password,
)
from grpcsec.cli._pki import load_key
from grpcsec.errors import ConfigurationError, IssuanceError
from grpcsec.pki.validity import parse_time

__all__ = ["token_app"]

token_app = typer.Typer(
    name="token",
    help="JWT bearer tokens: verify one, or mint test tokens and JWKS (development only).",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")

DEV_ONLY = "test token signed with a local key: for development and tests only"


def _moment(seconds: object) -> str:
    if seconds is None:
        return "-"
    try:
        when = dt.datetime.fromtimestamp(numeric_date(seconds), tz=dt.timezone.utc)
    except ValueError:
        return "invalid"
    return f"{when:%Y-%m-%d %H:%M:%SZ}"


def _relative(seconds: float | None) -> str:
    if seconds is None:
        return ""
    delta = pki.format_duration(dt.timedelta(seconds=seconds))
    return f" (in {delta})" if seconds >= 0 else f" ({delta.lstrip('-')} ago)"


def _print_report(report: TokenReport) -> None:
    data = report.to_json()
    header = data["header"] or {}
    claims: dict[str, Any] = data["claims"] or {}
    what = f"token {report.token_id} ({header.get('alg', '?')}, kid {header.get('kid', '-')})"
    if report.accepted:
        console.print(f"[green]accepted[/]: {escape(what)}", markup=True)
    else:
        console.print(
            f"[red]rejected[/] ({report.reason}): {escape(report.message or '')}", markup=True
        )
        console.print(f"  {escape(what)}", markup=True)
        if claims:
            console.print("  [yellow]the claims below are NOT verified[/]", markup=True)
    seconds = data["seconds_until"]
    rows = [
        ("subject", claims.get("sub", "-")),
        ("issuer", claims.get("iss", "-")),
        ("audience", claims.get("aud", "-")),
        ("scopes", " ".join(data["scopes"]) or "-"),
        ("expires", _moment(claims.get("exp")) + _relative(seconds["exp"])),
    ]
    if "nbf" in claims:
        rows.append(("not before", _moment(claims.get("nbf")) + _relative(seconds["nbf"])))
    if "iat" in claims:
        rows.append(("issued", _moment(claims.get("iat"))))
    if report.missing_scopes:
        rows.append(("missing", " ".join(report.missing_scopes)))
    rows.append(("keys", f"{data['keys'].get('source')} (kids {data['keys'].get('kids')})"))
    for label, value in rows:
        console.print(f"  {label:<11} {escape(str(value))}", markup=True)


def _read_token(argument: str) -> str:
    text = argument
    if argument == "-":
        text = sys.stdin.read(64 * 1024 + 1)
        if len(text) > 64 * 1024:
            raise ConfigurationError("the token on stdin is larger than 64 KiB")
    text = text.strip()
    if text.lower().startswith("bearer "):
        text = text[len("bearer ") :].strip()
    if not text:
        raise ConfigurationError("the token is empty")
    return text


@token_app.command("verify")
def verify_command(
    *,
    token: Annotated[
        str,
        typer.Argument(
            metavar="TOKEN",
            help="The JWT (a leading 'Bearer ' is ignored), or - to read it from stdin "
            "(keeps it out of the process list and shell history).",
        ),
    ],
    jwks: Annotated[
        str,
        typer.Option("--jwks", metavar="FILE|URL", help="JWKS file, or an https:// JWKS URL."),
    ],
    audience: Annotated[
        list[str],
        typer.Option("--audience", metavar="AUDIENCE", help="Accepted audience; repeatable."),
    ],
    issuer: Annotated[
        list[str] | None,
        typer.Option("--issuer", metavar="ISSUER", help="Accepted issuer; repeatable."),
    ] = None,
    require_scope: Annotated[
        list[str] | None,
        typer.Option("--require-scope", metavar="SCOPE", help="A scope the token must have."),
    ] = None,
    algorithm: Annotated[
        list[str] | None,
        typer.Option(
            "--algorithm",
            metavar="ALG",
            help=f"Allowed algorithm; repeatable (default {', '.join(DEFAULT_ALGORITHMS)}).",
        ),
    ] = None,
    leeway: Annotated[
        float, typer.Option("--leeway", metavar="SECONDS", help="Allowed clock skew.")
    ] = DEFAULT_LEEWAY,
    ca: Annotated[
        Path | None,
        typer.Option("--ca", metavar="FILE", help="CA bundle for a JWKS URL (default: system)."),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", metavar="TIME", help="Verify at this ISO 8601 time (naive = UTC)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Explain whether a token is accepted (signature, key, times, issuer, audience, scopes).

    Exit 0 accepted, 1 rejected, 2 bad input (JWKS unreadable or unreachable, bad options).
    """
    with errors_to_exit():
        value = _read_token(token)
        now = parse_time(at).timestamp() if at is not None else pki.utcnow().timestamp()
        source = key_source(jwks, ca=ca)
        if isinstance(source, JWKSUrl):
            source.fetch(now)
        verifier = JWTVerifier(
            source,
            audience=audience,
            issuer=issuer or None,
            algorithms=algorithm or DEFAULT_ALGORITHMS,
            leeway=leeway,
            cache_size=0,
        )
        report = verifier.explain(value, now=now, required_scopes=require_scope or ())
    if json_output:
        print_json(report.to_json())
    else:
        _print_report(report)
    if not report.accepted:
        raise typer.Exit(EXIT_FAILED)


def _claim(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ConfigurationError(f"--claim {text!r}: use NAME=VALUE")
    if name in RESERVED_CLAIMS:
        raise ConfigurationError(
            f"--claim {name}: set it with its own option (--issuer, --audience, --subject, "
            "--scope, --ttl, --not-before, --issued-at)"
        )
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return name, value


def _signing_key(path: Path) -> SigningKey:
    key = load_key(path)
    signing_algorithm(key)  # refuses what cannot sign a JWS
    return key


@token_app.command("mint")
def mint_command(
    *,
    key: Annotated[Path, typer.Option("--key", metavar="FILE", help="Private key (PEM).")],
    issuer: Annotated[str, typer.Option("--issuer", metavar="ISSUER", help="The iss claim.")],
    audience: Annotated[
        list[str], typer.Option("--audience", metavar="AUDIENCE", help="The aud claim; repeatable.")
    ],
    subject: Annotated[str, typer.Option("--subject", metavar="SUB", help="The sub claim.")],
    kid: Annotated[
        str | None,
        typer.Option("--kid", metavar="KID", help="Key id (default: the key's JWK thumbprint)."),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", metavar="SCOPE", help="A scope (the scope claim); repeatable."),
    ] = None,
    ttl: Annotated[
        str, typer.Option("--ttl", metavar="DURATION", help="Lifetime: 30s, 5m, 1h...")
    ] = "5m",
    claim: Annotated[
        list[str] | None,
        typer.Option(
            "--claim",
            metavar="NAME=VALUE",
            help="Another claim; VALUE is JSON when it parses (5, true, [1,2]), else a string.",
        ),
    ] = None,
    not_before: Annotated[
        str | None,
        typer.Option("--not-before", metavar="TIME", help="The nbf claim (ISO 8601)."),
    ] = None,
    issued_at: Annotated[
        str | None,
        typer.Option(
            "--issued-at", metavar="TIME", help="Issue as of this time (ISO 8601; default now)."
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Sign a test token with a local key (development and tests only).

    Prints the token on stdout (with --json: the token, kid, algorithm and claims).
    """
    with errors_to_exit():
        extra = dict(_claim(item) for item in claim or [])
        try:
            lifetime = pki.parse_duration(ttl)
        except IssuanceError as exc:
            raise ConfigurationError(f"--ttl: {exc.message}") from exc
        issued = parse_time(issued_at).timestamp() if issued_at else pki.utcnow().timestamp()
        signing_key = _signing_key(key)
        token = mint_token(
            signing_key,
            issuer=issuer,
            audience=audience[0] if len(audience) == 1 else audience,
            subject=subject,
            scopes=scope or (),
            ttl=lifetime,
            kid=kid,
            claims=extra,
            now=issued,
            not_before=parse_time(not_before).timestamp() if not_before else None,
        )
    stderr.print(f"[yellow]note:[/] {DEV_ONLY}", markup=True)
    if json_output:
        header, payload = (json.loads(_b64decode(part)) for part in token.split(".")[:2])
        print_json(
            {
                "token": token,
                "kid": header.get("kid"),
                "algorithm": header["alg"],
                "claims": payload,
            }
        )
    else:
        sys.stdout.write(token + "\n")


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@token_app.command("jwks")
def jwks_command(
    *,
    key: Annotated[
        list[Path],
        typer.Option(
            "--key",
            metavar="FILE",
            help="Private key, public key or certificate (PEM); repeatable.",
        ),
    ],
    kid: Annotated[
        list[str] | None,
        typer.Option(
            "--kid", metavar="KID", help="Key id per --key, in order (default: thumbprints)."
        ),
    ] = None,
) -> None:
    """Print the JWKS of public keys (development and tests only; never private material)."""
    with errors_to_exit():
        kids: list[str | None] = list(kid or [])
        if kids and len(kids) != len(key):
            raise ConfigurationError("give one --kid per --key, or none")
        entries = []
        for index, path in enumerate(key):
            public = with_key_password(
                lambda password: load_public_key(path, password=password),  # noqa: B023 (called at once)
                path,
            )
            entries.append((public, kids[index] if kids else None))
        document = public_jwks(entries)
    print_json(document, schema=False)  # a JWKS (RFC 7517), read by JWT libraries
