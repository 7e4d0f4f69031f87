"""``grpcsec serve``: a secured server from flags and/or a config file, serving your services.

The flags and the TOML file (``--config``) build the same :class:`~grpcsec.server.SecurityConfig`
(flags override the file); :func:`~grpcsec.server.secure_server` checks everything before any
port binds. ``--app module:function`` imports your function and calls it with the server to
register servicers (the demo ``helloworld.Greeter`` without ``--app``).

Prints ``listening on HOST:PORT (mode)`` per address once bound (port 0 picks a free one), and
stops gracefully on SIGINT or SIGTERM (in-flight calls get ``shutdown_grace``). A SIGINT or
SIGTERM before ``listening on`` stops start-up at once with one line on stderr
(:mod:`grpcsec.cli._startup`). SIGHUP checks the certificate (and CRL) files now. Plaintext
only with ``--insecure``.

Exit codes: 0 after a clean shutdown, 2 for bad usage or input (unreadable or mismatched
files, a bad config file, an ``--app`` that cannot be imported, an address that cannot be
bound), 130 or 143 when SIGINT or SIGTERM arrived before the server was listening.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from grpcsec.cli import RETELL_CORE_LOG, app
from grpcsec.cli._common import AllowWeakKeysOption, errors_to_exit, with_key_password
from grpcsec.cli._core_log import core_log_to_logger
from grpcsec.cli._logging import LogFormat, LogFormatOption, configure_logging
from grpcsec.cli._serve_options import ServeFlags, config_from
from grpcsec.cli._startup import STOP_SIGNALS, stop_during_startup
from grpcsec.errors import ConfigurationError
from grpcsec.material import load_key_pair
from grpcsec.server import SecurityConfig
from grpcsec.server.app import load_app
from grpcsec.spiffe.address import ENDPOINT_VARIABLE
from grpcsec.text import get_logger

__all__ = ["serve"]

log = get_logger("grpcsec.serve")


def _key_password(config: SecurityConfig) -> bytes | None:
    """The key's password when the key is encrypted (environment or prompt), else ``None``.
    An ACME key is never encrypted, and may not exist yet (the server orders it)."""
    tls = config.tls
    if tls is None or tls.acme is not None or tls.cert is None or tls.key is None:
        return None
    cert, key = tls.cert, tls.key
    return with_key_password(
        lambda password: password if load_key_pair(cert, key, password=password) else None, key
    )


def _register(server: Any, reference: str | None) -> Any:  # noqa: ANN401 (grpc servers)
    """Call the ``--app`` function with ``server`` (the demo Greeter without one); returns
    what it returned (a coroutine on aio, awaited by the caller)."""
    if reference is None:
        from grpcsec.demo.greeter import add_greeter  # noqa: PLC0415 (only when no --app)

        add_greeter(server)
        return None
    function = load_app(reference)
    try:
        return function(server)
    except Exception as exc:
        raise ConfigurationError(
            f"--app {reference!r}: the function raised {type(exc).__name__}: {exc}"
        ) from exc


def _announce(addresses: Any, mode: str) -> None:  # noqa: ANN401
    for address in addresses:
        sys.stdout.write(f"listening on {address} ({mode})\n")
    sys.stdout.flush()


def _serve_sync(config: SecurityConfig, reference: str | None, password: bytes | None) -> None:
    from grpcsec.server import secure_server  # noqa: PLC0415 (grpc starts here, not at import)

    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    with errors_to_exit():
        secure = secure_server(config, key_password=password)
        try:
            _register(secure.server, reference)
            secure.start()
        except BaseException:
            secure.stop(0)
            raise
    try:
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: secure.request_reload())
        for sig in STOP_SIGNALS:  # listening: a stop request now drains in-flight calls
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
        _announce(secure.addresses, config.mode)
        while not stop.wait(0.5):
            pass
        log.info("shutting down")
    finally:
        secure.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _serve_aio(config: SecurityConfig, reference: str | None, password: bytes | None) -> None:
    from grpcsec.server import aio_secure_server  # noqa: PLC0415

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with errors_to_exit():
        secure = aio_secure_server(config, key_password=password)
        try:
            registered = _register(secure.server, reference)
            if inspect.isawaitable(registered):
                await registered
            await secure.start()
        except BaseException:
            await secure.stop(0)
            raise
    signals: list[signal.Signals] = []
    try:
        loop.add_signal_handler(signal.SIGHUP, secure.request_reload)
        signals.append(signal.SIGHUP)
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop.set)
            signals.append(sig)
        _announce(secure.addresses, config.mode + ", asyncio")
        await stop.wait()
        log.info("shutting down")
    finally:
        await secure.stop()
        for sig in signals:
            loop.remove_signal_handler(sig)


@app.command("serve")
def serve(
    *,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", metavar="FILE", help="TOML configuration (flags override it)."),
    ] = None,
    app_reference: Annotated[
        str | None,
        typer.Option(
            "--app",
            metavar="MODULE:FUNCTION",
            help="Function called with the server to register your servicers "
            "(default: the demo Greeter).",
        ),
    ] = None,
    listen: Annotated[
        list[str] | None,
        typer.Option(
            "--listen", metavar="HOST:PORT", help="Address to bind (repeatable); port 0 = any."
        ),
    ] = None,
    cert: Annotated[
        Path | None, typer.Option("--cert", metavar="FILE", help="Server chain, leaf first.")
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="FILE",
            help="Server private key (encrypted: password from GRPCSEC_KEY_PASSWORD or a prompt).",
        ),
    ] = None,
    client_ca: Annotated[
        Path | None,
        typer.Option(
            "--client-ca",
            metavar="FILE",
            help="CA bundle for client certificates: turns on mTLS (required and verified).",
        ),
    ] = None,
    spiffe_socket: Annotated[
        str | None,
        typer.Option(
            "--spiffe-socket",
            metavar="ADDR",
            help="Serve the SPIFFE Workload API's X.509 SVID (unix:///path) with mTLS against "
            "its bundles, instead of --cert/--key/--client-ca (default without those: "
            f"${ENDPOINT_VARIABLE}).",
        ),
    ] = None,
    aio: Annotated[bool, typer.Option("--aio", help="Run on grpc.aio instead of threads.")] = False,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Serve plaintext (no TLS). Never for production.")
    ] = False,
    reload_interval: Annotated[
        str | None,
        typer.Option(
            "--reload-interval",
            metavar="DURATION",
            help="How often to check the certificate and policy files (default 1s; SIGHUP: now).",
        ),
    ] = None,
    no_reload: Annotated[
        bool, typer.Option("--no-reload", help="Do not watch the certificate files.")
    ] = False,
    next_ca: Annotated[
        Path | None,
        typer.Option(
            "--next-ca",
            metavar="FILE",
            help="CA bundle a rotated certificate may move to (besides the CA it was served "
            "from); watched like the certificate.",
        ),
    ] = None,
    allow_weak_keys: AllowWeakKeysOption = False,
    crl: Annotated[
        list[Path] | None,
        typer.Option(
            "--crl",
            metavar="FILE|DIR",
            help="Refuse clients whose chain a CRL here revokes (repeatable; a directory: every "
            "file in it is one CRL); re-read every --reload-interval, also with --no-reload.",
        ),
    ] = None,
    allow_undetermined: Annotated[
        bool,
        typer.Option(
            "--allow-undetermined",
            help="Allow calls when a configured CRL is expired or wrongly signed (logged); "
            "default: refuse them.",
        ),
    ] = False,
    max_connection_age: Annotated[
        str | None,
        typer.Option(
            "--max-connection-age",
            metavar="DURATION",
            help="Close connections after this long so clients re-handshake "
            "(default 1h; 0: never).",
        ),
    ] = None,
    jwks: Annotated[
        str | None,
        typer.Option(
            "--jwks", metavar="FILE|URL", help="Require a bearer token signed by these keys."
        ),
    ] = None,
    jwks_ca: Annotated[
        Path | None, typer.Option("--jwks-ca", metavar="FILE", help="CA bundle for a JWKS URL.")
    ] = None,
    issuer: Annotated[
        list[str] | None,
        typer.Option("--issuer", metavar="ISSUER", help="Accepted token issuer (repeatable)."),
    ] = None,
    audience: Annotated[
        list[str] | None,
        typer.Option(
            "--audience", metavar="AUDIENCE", help="Accepted token audience (repeatable)."
        ),
    ] = None,
    require_scope: Annotated[
        list[str] | None,
        typer.Option("--require-scope", metavar="SCOPE", help="Scope every token must carry."),
    ] = None,
    allow_spiffe_id: Annotated[
        list[str] | None,
        typer.Option("--allow-spiffe-id", metavar="SPIFFE_ID", help="Allow this client SPIFFE ID."),
    ] = None,
    allow_trust_domain: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-trust-domain",
            metavar="DOMAIN",
            help="Allow clients of this SPIFFE trust domain.",
        ),
    ] = None,
    allow_spiffe_prefix: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-spiffe-prefix",
            metavar="SPIFFE_ID",
            help="Allow client SPIFFE IDs at or under this path (whole segments).",
        ),
    ] = None,
    trust_bundle: Annotated[
        list[str] | None,
        typer.Option(
            "--trust-bundle",
            metavar="DOMAIN=FILE",
            help="CAs that issue this SPIFFE trust domain's client SVIDs (repeatable).",
        ),
    ] = None,
    allow_cn: Annotated[
        list[str] | None,
        typer.Option("--allow-cn", metavar="CN", help="Allow clients with this subject CN."),
    ] = None,
    allow_any_client: Annotated[
        bool,
        typer.Option("--allow-any-client", help="Allow every client the client CA verified."),
    ] = False,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", metavar="FILE", help="Enforce this gRPC A43 policy (reloaded)."),
    ] = None,
    metrics_listen: Annotated[
        str | None,
        typer.Option(
            "--metrics", metavar="HOST:PORT", help="Serve Prometheus /metrics and /status here."
        ),
    ] = None,
    reflection: Annotated[
        bool | None,
        typer.Option(
            "--reflection/--no-reflection",
            help="Serve gRPC reflection for the registered services (default: off).",
            show_default=False,
        ),
    ] = None,
    log_format: LogFormatOption = LogFormat.TEXT,
) -> None:
    """Serve your gRPC services (or the demo Greeter) over TLS or mTLS, with health.

    Rotated certificate files (cert-manager, SPIRE, Vault agent, grpcsec renew) are picked up
    without a restart; invalid new files are refused and the last good ones keep serving.
    With --spiffe-socket the SVID and bundles come from the SPIFFE Workload API, swapped on
    every push.
    """
    with (
        core_log_to_logger(enabled=RETELL_CORE_LOG),
        stop_during_startup("serve"),  # until the graceful handlers take over
    ):
        configure_logging(log_format)
        flags = ServeFlags(
            listen=tuple(listen or ()),
            cert=cert,
            key=key,
            client_ca=client_ca,
            next_ca=next_ca,
            spiffe_socket=spiffe_socket,
            aio=aio,
            insecure=insecure,
            reload_interval=reload_interval,
            no_reload=no_reload,
            allow_weak_keys=allow_weak_keys,
            crl=tuple(crl or ()),
            allow_undetermined=allow_undetermined,
            max_connection_age=max_connection_age,
            jwks=jwks,
            jwks_ca=jwks_ca,
            issuers=tuple(issuer or ()),
            audiences=tuple(audience or ()),
            require_scopes=tuple(require_scope or ()),
            allow_spiffe_ids=tuple(allow_spiffe_id or ()),
            allow_trust_domains=tuple(allow_trust_domain or ()),
            allow_spiffe_prefixes=tuple(allow_spiffe_prefix or ()),
            trust_bundles=tuple(trust_bundle or ()),
            allow_cns=tuple(allow_cn or ()),
            allow_any_client=allow_any_client,
            policy=policy,
            metrics=metrics_listen,
            reflection=reflection,
        )
        with errors_to_exit():
            config = config_from(config_file, flags)
            password = _key_password(config)
            if app_reference is not None:
                load_app(app_reference)  # import errors before anything binds
        if config.aio:
            asyncio.run(_serve_aio(config, app_reference, password))
        else:
            _serve_sync(config, app_reference, password)
