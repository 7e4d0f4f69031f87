"""``grpcsec serve``: the helloworld Greeter, health and reflection over TLS or mTLS.

Prints ``listening on HOST:PORT (mode)`` once the port is bound (port 0 picks a free one), logs
each caller's identity on stderr, and stops gracefully on SIGINT or SIGTERM (in-flight calls get
five seconds). Plaintext only with ``--insecure``.

Exit codes: 0 after a clean shutdown, 2 for bad usage or input (unreadable or mismatched
certificate files, an address that cannot be bound).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from grpcsec.cli import app
from grpcsec.cli._common import errors_to_exit, load_identity
from grpcsec.credentials import ServerTLS
from grpcsec.demo.service import ServeConfig, start_aio, start_sync
from grpcsec.errors import ConfigurationError
from grpcsec.target import Target

__all__ = ["serve"]

_GRACE_SECONDS = 5.0


def _config(
    listen: str, cert: Path | None, key: Path | None, client_ca: Path | None, *, insecure: bool
) -> ServeConfig:
    target = Target.parse(listen, allow_port_zero=True)
    if insecure:
        if cert or key or client_ca:
            raise ConfigurationError("--insecure serves plaintext; drop --cert/--key/--client-ca")
        return ServeConfig(listen=target, tls=None, insecure=True)
    identity = load_identity(cert, key)
    if identity is None:
        raise ConfigurationError(
            "pass --cert and --key (TLS), plus --client-ca for mTLS; plaintext needs --insecure"
        )
    return ServeConfig(listen=target, tls=ServerTLS.create(identity, client_ca=client_ca))


def _announce(address: Target, mode: str) -> None:
    sys.stdout.write(f"listening on {address} ({mode})\n")
    sys.stdout.flush()


def _serve_sync(config: ServeConfig) -> None:
    stop = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in signals}
    try:
        with errors_to_exit():
            running = start_sync(config)
        _announce(running.address, config.mode)
        while not stop.wait(0.5):
            pass
        logging.getLogger("grpcsec.serve").info("shutting down")
        running.stop(_GRACE_SECONDS)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _serve_aio(config: ServeConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        with errors_to_exit():
            running = await start_aio(config)
        _announce(running.address, config.mode + ", asyncio")
        await stop.wait()
        logging.getLogger("grpcsec.serve").info("shutting down")
        await running.stop(_GRACE_SECONDS)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@app.command("serve")
def serve(
    *,
    listen: Annotated[
        str, typer.Option("--listen", metavar="HOST:PORT", help="Address to bind; port 0 = any.")
    ] = "127.0.0.1:50051",
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
    aio: Annotated[bool, typer.Option("--aio", help="Run on grpc.aio instead of threads.")] = False,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Serve plaintext (no TLS). Never for production.")
    ] = False,
) -> None:
    """Serve helloworld.Greeter, grpc.health.v1.Health and reflection over TLS or mTLS."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with errors_to_exit():
        config = _config(listen, cert, key, client_ca, insecure=insecure)
    if aio:
        asyncio.run(_serve_aio(config))
    else:
        _serve_sync(config)
