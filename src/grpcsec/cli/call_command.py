"""``grpcsec call``: call helloworld.Greeter/SayHello (or the health check) and explain failures.

Trust is always explicit: ``--ca FILE``, or ``--system-roots`` (the OS bundle, reported by
path), or ``--spiffe-socket ADDR`` (the workload's X.509 SVID as client certificate and the
Workload API's bundles as CAs; ``--server-spiffe-id`` then checks the server's SPIFFE ID on an
extra handshake, :mod:`grpcsec.spiffe.server_id`); plaintext only with ``--insecure``. Each
call uses a fresh connection so the answer reflects this handshake, not an earlier one. On
failure it prints one line: the status code, the diagnosis and what it most likely means, with
the fix.

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
from grpcsec.errors import AuthenticationError, ConfigurationError
from grpcsec.spiffe import WorkloadAPIAddress, require_py_spiffe
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


def _spiffe_address(
    spiffe_socket: str | None, server_spiffe_id: str | None, **others: object
) -> WorkloadAPIAddress | None:
    """The Workload API address when the call takes its identity from one; conflicts refused."""
    if spiffe_socket is None:
        if server_spiffe_id is not None:
            raise ConfigurationError("--server-spiffe-id needs --spiffe-socket")
        return None
    given = [f"--{name.replace('_', '-')}" for name, value in others.items() if value]
    if given:
        raise ConfigurationError(
            f"--spiffe-socket takes the certificate and CAs from the Workload API; drop "
            f"{'/'.join(given)}"
        )
    return WorkloadAPIAddress.parse(spiffe_socket)


def _spiffe_channel(
    address: Target,
    workload: WorkloadAPIAddress,
    *,
    server_name: str | None,
    server_spiffe_id: str | None,
    timeout: float,
    options: list[tuple[str, Any]],
    result: dict[str, object],
) -> grpc.Channel | None:
    """A reloading channel fed by the Workload API (``None`` after a failed server-ID check,
    recorded in ``result``)."""
    require_py_spiffe("--spiffe-socket")
    from grpcsec.spiffe.server_id import check_server_spiffe_id  # noqa: PLC0415
    from grpcsec.spiffe.tls import SpiffeChannel, open_source  # noqa: PLC0415 (py-spiffe)

    source = open_source(workload, start_timeout=timeout)
    result.update(
        mode="mtls",
        roots={"origin": "spiffe", "source": str(workload)},
        spiffe_id=source.status().spiffe_id,
    )
    if server_spiffe_id is not None:
        try:
            result["server_spiffe_id"] = check_server_spiffe_id(
                server_spiffe_id, address, source.read(), server_name=server_name, timeout=timeout
            )
        except AuthenticationError as exc:
            source.close()
            result.update(ok=False, error=exc.message)
            return None
    return SpiffeChannel(str(address), source, server_name=server_name, options=options)


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
    spiffe_socket: Annotated[
        str | None,
        typer.Option(
            "--spiffe-socket",
            metavar="ADDR",
            help="Take the client SVID and the CA bundles from this SPIFFE Workload API "
            "(unix:///path) instead of --ca/--cert/--key.",
        ),
    ] = None,
    server_spiffe_id: Annotated[
        str | None,
        typer.Option(
            "--server-spiffe-id",
            metavar="SPIFFE_ID",
            help="With --spiffe-socket: require the server to present this SPIFFE ID (checked "
            "on an extra handshake; grpcio cannot check URI SANs).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Call SayHello (or the health check) on TARGET and print the reply or why it failed."""
    with errors_to_exit():
        address = Target.parse(target)
        workload = _spiffe_address(
            spiffe_socket,
            server_spiffe_id,
            ca=ca,
            system_roots=system_roots,
            cert=cert,
            key=key,
            insecure=insecure,
            token=token,
            token_file=token_file,
        )
        tls, options = (
            (None, [("grpc.use_local_subchannel_pool", 1)])
            if workload is not None
            else _channel_setup(
                ca=ca,
                system_roots=system_roots,
                cert=cert,
                key=key,
                insecure=insecure,
                server_name=server_name,
                allow_weak_keys=allow_weak_keys,
            )
        )
    if timeout <= 0:
        fail("--timeout must be positive")
    mode = "plaintext" if tls is None else ("mtls" if tls.mutual else "tls")
    result: dict[str, object] = {"target": str(address), "mode": mode}
    if tls is not None:
        result["roots"] = {"origin": tls.trust.origin.value, "source": tls.trust.source}
    with errors_to_exit():
        source = _token_source(token, token_file)
        if workload is not None:
            spiffe_channel = _spiffe_channel(
                address,
                workload,
                server_name=server_name,
                server_spiffe_id=server_spiffe_id,
                timeout=timeout,
                options=options,
                result=result,
            )
            if spiffe_channel is None:
                _report(result, json_output=json_output)
                return
            channel = spiffe_channel
        elif source is not None:
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
            CallContext(
                tls=tls is not None or workload is not None,
                client_cert_sent=bool(tls and tls.mutual) or workload is not None,
            ),
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
    elif "error" in result:
        say_error(str(result["error"]))
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
