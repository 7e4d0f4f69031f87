"""``grpcsec call``: call helloworld.Greeter/SayHello (or the health check) and explain failures.

Trust is always explicit: ``--ca FILE``, or ``--system-roots`` (the OS bundle, reported by
path); plaintext only with ``--insecure``. Each call uses a fresh connection so the answer
reflects this handshake, not an earlier one. On failure it prints one line: the status code,
the diagnosis and what it most likely means, with the fix.

Exit codes: 0 success (SERVING for ``--health``), 1 the call failed (or not SERVING), 2 bad
usage or input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpcsec.authn.client import token_channel
from grpcsec.authn.token_sources import StaticToken, TokenFile, TokenSource
from grpcsec.cli import app
from grpcsec.cli._common import (
    EXIT_FAILED,
    AllowWeakKeysOption,
    JsonOption,
    console,
    errors_to_exit,
    fail,
    load_identity,
    print_json,
    say_error,
)
from grpcsec.credentials import ChannelTLS
from grpcsec.demo.greeter import say_hello
from grpcsec.doctor import CallContext, explain_failure
from grpcsec.errors import ConfigurationError
from grpcsec.target import Target
from grpcsec.text import inert

__all__ = ["call"]


def _channel_setup(
    *,
    ca: Path | None,
    system_roots: bool,
    cert: Path | None,
    key: Path | None,
    insecure: bool,
    server_name: str | None,
    allow_weak_keys: bool = False,
) -> tuple[ChannelTLS | None, list[tuple[str, Any]]]:
    options: list[tuple[str, Any]] = [("grpc.use_local_subchannel_pool", 1)]
    if insecure:
        if ca or system_roots or cert or key or server_name:
            raise ConfigurationError(
                "--insecure calls in plaintext; drop --ca/--system-roots/--cert/--key/--server-name"
            )
        return None, options
    if ca is None and not system_roots:
        raise ConfigurationError(
            "say whom to trust: --ca FILE (the CA that issued the server certificate) or "
            "--system-roots; plaintext needs --insecure"
        )
    tls = ChannelTLS.create(
        ca=ca,
        identity=load_identity(cert, key),
        use_system_roots=system_roots,
        server_name=server_name,
        allow_weak_keys=allow_weak_keys,
    )
    return tls, options + tls.channel_options()


def _token_source(token: str | None, token_file: Path | None) -> TokenSource | None:
    if token is not None and token_file is not None:
        raise ConfigurationError("pass --token or --token-file, not both")
    if token_file is not None:
        return TokenFile(token_file)
    if token == "-":  # noqa: S105 (the stdin marker, not a password)
        token = sys.stdin.readline().strip()
    return StaticToken(token) if token is not None else None


def _health(channel: grpc.Channel, timeout: float) -> str:
    stub = health_pb2_grpc.HealthStub(channel)
    response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


@app.command("call")
def call(
    *,
    target: Annotated[str, typer.Argument(metavar="TARGET", help="HOST:PORT of the server.")],
    name: Annotated[str, typer.Option("--name", help="The name to greet.")] = "world",
    ca: Annotated[
        Path | None, typer.Option("--ca", metavar="FILE", help="CA bundle to trust.")
    ] = None,
    system_roots: Annotated[
        bool, typer.Option("--system-roots", help="Trust the operating system's CA bundle.")
    ] = False,
    cert: Annotated[
        Path | None, typer.Option("--cert", metavar="FILE", help="Client chain (mTLS).")
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", metavar="FILE", help="Client private key (mTLS).")
    ] = None,
    server_name: Annotated[
        str | None,
        typer.Option("--server-name", metavar="NAME", help="Name to verify the server as."),
    ] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Call in plaintext.")] = False,
    health: Annotated[
        bool, typer.Option("--health", help="Call grpc.health.v1.Health/Check instead.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", help="Seconds to wait.")
    ] = 5.0,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            metavar="TOKEN",
            help="Bearer token to send ('-' reads it from stdin, out of shell history).",
        ),
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", metavar="FILE", help="Read the token here.")
    ] = None,
    allow_weak_keys: AllowWeakKeysOption = False,
    json_output: JsonOption = False,
) -> None:
    """Call SayHello (or the health check) on TARGET and print the reply or why it failed."""
    with errors_to_exit():
        address = Target.parse(target)
        tls, options = _channel_setup(
            ca=ca,
            system_roots=system_roots,
            cert=cert,
            key=key,
            insecure=insecure,
            server_name=server_name,
            allow_weak_keys=allow_weak_keys,
        )
    if timeout <= 0:
        fail("--timeout must be positive")
    mode = "plaintext" if tls is None else ("mtls" if tls.mutual else "tls")
    result: dict[str, object] = {"target": str(address), "mode": mode}
    if tls is not None:
        result["roots"] = {"origin": tls.trust.origin.value, "source": tls.trust.source}
    with errors_to_exit():
        source = _token_source(token, token_file)
        if source is not None:
            # refuses to send a token in plaintext (no opt-in flag on the CLI on purpose)
            channel = token_channel(str(address), tls, source, options=options)
        elif tls is None:
            channel = grpc.insecure_channel(str(address), options=options)
        else:
            channel = grpc.secure_channel(str(address), tls.credentials(), options=options)
    try:
        if health:
            status = _health(channel, timeout)
            result.update(ok=status == "SERVING", health=status)
        else:
            result.update(ok=True, reply=say_hello(channel, name, timeout=timeout))
    except grpc.RpcError as exc:
        code = exc.code().name
        details = exc.details() or ""
        why = explain_failure(
            code,
            details,
            CallContext(tls=tls is not None, client_cert_sent=bool(tls and tls.mutual)),
        )
        result.update(
            ok=False,
            code=code,
            details=details,
            diagnosis=why.diagnosis,
            meaning=why.meaning,
            fix=why.fix,
        )
    finally:
        channel.close()
    _report(result, json_output=json_output)


def _report(result: dict[str, object], *, json_output: bool) -> None:
    if json_output:
        print_json(result)
    elif "code" in result:
        line = (
            f"{result['code']} ({result['diagnosis']}): {result['meaning']}; fix: {result['fix']}"
        )
        say_error(line)
    elif "health" in result:
        console.print(inert(result["health"]))
    else:
        console.print(inert(result["reply"]))
    if not result["ok"]:
        raise typer.Exit(EXIT_FAILED)
