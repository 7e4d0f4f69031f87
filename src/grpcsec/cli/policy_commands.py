"""``grpcsec policy check|eval``: validate an A43 authorization policy and explain one decision.

``check`` parses the file strictly (:func:`grpcsec.authz.load_policy`) and prints a summary, or
the first error with its location. ``eval`` evaluates one described RPC against the policy
(without running its audit loggers) and says which rule decided. Exit codes follow
:mod:`grpcsec.cli._common`: ``check`` 0 valid, 2 invalid; ``eval`` 0 allow, 1 deny, 2 invalid
policy or input.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from grpcsec import pki
from grpcsec.authz import Engine, Policy, Request, load_policy
from grpcsec.authz.nearest import NearestRule, nearest_allow_rule
from grpcsec.authz.policy_json import error_reason
from grpcsec.authz.request import MetadataValue, peer_principals, principal_source
from grpcsec.cli import app
from grpcsec.cli._common import (
    EXIT_FAILED,
    JsonOption,
    console,
    errors_to_exit,
    escape,
    fail,
    print_json,
)
from grpcsec.errors import ConfigurationError, PolicyError
from grpcsec.identity import Peer, TransportSecurity

__all__ = ["policy_app"]

policy_app = typer.Typer(
    name="policy",
    help="gRPC authorization policies (A43): validate a policy, explain a decision.",
    no_args_is_help=True,
)
app.add_typer(policy_app, name="policy")

PolicyFile = Annotated[Path, typer.Argument(metavar="FILE", help="The A43 policy (JSON).")]
PortableOption = Annotated[
    bool,
    typer.Option(
        "--portable",
        help="Reject grpcsec extensions (grpcsec_claims): the policy must be plain A43, "
        "loadable by grpc-go, C++ and Java.",
    ),
]


# -- grpcsec policy check --------------------------------------------------------------------------
def _print_summary(path: Path, policy: Policy) -> None:
    audit = policy.audit
    console.print(f"[green]valid[/]: {escape(str(path))}", markup=True)
    console.print(f"  policy       {escape(policy.name)}", markup=True)
    for label, rules in (("deny rules", policy.deny_rules), ("allow rules", policy.allow_rules)):
        names = ", ".join(escape(rule.name) for rule in rules) or "-"
        console.print(f"  {label:<12} {len(rules)}: {names}", markup=True)
    loggers = ", ".join(escape(spec.type_name) for spec in audit.loggers) or "none"
    console.print(f"  audit        {audit.condition.value}; loggers: {loggers}", markup=True)
    if audit.skipped:
        skipped = ", ".join(escape(name) for name in audit.skipped)
        console.print(
            f"  [yellow]skipped optional audit loggers (not registered):[/] {skipped}", markup=True
        )
    if policy.uses_extensions:
        console.print(
            "  extensions   grpcsec_claims (grpc-go and C++ reject this policy; grpc-java "
            "ignores the field, which widens the rules that use it)"
        )
    for warning in policy.warnings:
        console.print(f"  [yellow]warning:[/] {escape(warning)}", markup=True)


@policy_app.command("check")
def check_command(
    *,
    file: PolicyFile,
    portable: PortableOption = False,
    json_output: JsonOption = False,
) -> None:
    """Validate a policy file and summarise it (exit 0 valid, 2 invalid).

    The first error is printed with its location, e.g.
    ``allow_rules[2].request.headers[0].key: unsupported header key "grpc-timeout"``.
    """
    try:
        policy = load_policy(file, extensions=not portable)
    except PolicyError as exc:
        if json_output:
            print_json(
                {
                    "valid": False,
                    "path": str(file),
                    "location": exc.location,
                    "error": error_reason(exc),
                }
            )
        fail(str(exc))
    if json_output:
        print_json({"valid": True, "path": str(file), **policy.summary()})
    else:
        _print_summary(file, policy)


# -- grpcsec policy eval ---------------------------------------------------------------------------
def _metadata(items: Sequence[str]) -> list[tuple[str, MetadataValue]]:
    pairs: list[tuple[str, MetadataValue]] = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise ConfigurationError(f"--metadata {item!r}: expected KEY=VALUE")
        if key.endswith("-bin"):
            try:
                raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ConfigurationError(
                    f"--metadata {key}: a -bin value must be base64 (the bytes to send)"
                ) from exc
            pairs.append((key, raw))
        else:
            pairs.append((key, value))
    return pairs


def _peer(peer_cert: Path | None, *, no_client_cert: bool, plaintext: bool) -> Peer:
    chosen = [peer_cert is not None, no_client_cert, plaintext].count(True)
    if chosen != 1:
        raise ConfigurationError(
            "describe the peer with exactly one of --peer-cert PEM, --no-client-cert "
            "(TLS without a client certificate) or --plaintext (no TLS)"
        )
    if plaintext:
        return Peer(address="", transport=TransportSecurity.PLAINTEXT)
    if peer_cert is None:
        return Peer(address="", transport=TransportSecurity.TLS)
    return Peer.from_certificate(pki.load_certificate_file(peer_cert)[0])


def _claims(text: str | None) -> Mapping[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"--claims is not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise ConfigurationError("--claims must be a JSON object of token claims")
    return value


def _print_decision(
    engine: Engine,
    request: Request,
    decision_json: Mapping[str, object],
    nearest: NearestRule | None,
) -> None:
    allowed = decision_json["decision"] == "allow"
    verdict = "[bold green]ALLOW[/]" if allowed else "[bold red]DENY[/]"
    console.print(f"{verdict} {escape(request.method)}", markup=True)
    console.print(f"  policy        {escape(engine.name)}", markup=True)
    rule = decision_json["matched_rule"]
    if rule is None:
        console.print("  matched rule  - (no allow rule matched: denied by default)")
        if nearest is not None:
            console.print(
                f"  nearest rule  {escape(nearest.name)} ({escape(nearest.location)}), which "
                f"failed on:",
                markup=True,
            )
            for failure in nearest.failed:
                console.print(f"                {escape(failure.describe())}", markup=True)
    else:
        kind = "allow rule" if allowed else "deny rule"
        console.print(f"  matched rule  {escape(str(rule))} ({kind})", markup=True)
    principals = peer_principals(request.peer)
    names = ", ".join(json.dumps(p) for p in principals) if principals is not None else "-"
    console.print(
        f"  principals    {escape(principal_source(request.peer))}: {escape(names)}", markup=True
    )
    if request.claims is not None:
        console.print(
            f"  token claims  {escape(', '.join(sorted(request.claims))) or '(none)'}", markup=True
        )


@policy_app.command("eval")
def eval_command(
    *,
    file: PolicyFile,
    method: Annotated[
        str,
        typer.Option(
            "--method", metavar="/PKG.SERVICE/METHOD", help="The full method name of the RPC."
        ),
    ],
    metadata: Annotated[
        list[str] | None,
        typer.Option(
            "--metadata",
            metavar="KEY=VALUE",
            help="A request header; repeat for more, and repeat a key for several values (in "
            "order). A -bin key takes its bytes as base64.",
        ),
    ] = None,
    peer_cert: Annotated[
        Path | None,
        typer.Option(
            "--peer-cert",
            metavar="PEM",
            help="The client certificate the peer presented over TLS (the first one is the leaf).",
        ),
    ] = None,
    no_client_cert: Annotated[
        bool,
        typer.Option("--no-client-cert", help="A TLS peer that presented no certificate."),
    ] = False,
    plaintext: Annotated[bool, typer.Option("--plaintext", help="A peer without TLS.")] = False,
    claims: Annotated[
        str | None,
        typer.Option(
            "--claims",
            metavar="JSON",
            help="Verified bearer-token claims as a JSON object (for grpcsec_claims rules).",
        ),
    ] = None,
    portable: PortableOption = False,
    json_output: JsonOption = False,
) -> None:
    """Explain the decision for one RPC (exit 0 allow, 1 deny, 2 invalid policy or input).

    A default deny names the allow rule that came nearest and each condition it failed (what it
    wanted, what the call had). Audit loggers are not run. With --json: {"decision",
    "matched_rule", "policy_name", "nearest_allow_rule"}.
    """
    with errors_to_exit():
        if not method.startswith("/"):
            raise ConfigurationError(
                f"--method {method!r}: expected a full method name, /package.Service/Method"
            )
        request = Request(
            method=method,
            peer=_peer(peer_cert, no_client_cert=no_client_cert, plaintext=plaintext),
            metadata=_metadata(metadata or []),
            claims=_claims(claims),
        )
        engine = Engine(load_policy(file, extensions=not portable))
    decision = engine.evaluate(request)
    nearest = None
    if not decision.allowed and decision.matched_rule is None:
        nearest = nearest_allow_rule(engine.policy, request)
    if json_output:
        print_json(
            {**decision.to_json(), "nearest_allow_rule": nearest.to_json() if nearest else None}
        )
    else:
        _print_decision(engine, request, decision.to_json(), nearest)
    if not decision.allowed:
        raise typer.Exit(EXIT_FAILED)
