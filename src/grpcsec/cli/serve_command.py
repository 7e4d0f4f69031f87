"""``grpcsec serve``: the helloworld Greeter, health and reflection over TLS or mTLS.

Prints ``listening on HOST:PORT (mode)`` once the port is bound (port 0 picks a free one), logs
each caller's identity on stderr, and stops gracefully on SIGINT or SIGTERM (in-flight calls get
five seconds). A SIGINT or SIGTERM before ``listening on`` (a large bundle still being parsed, a
slow JWKS) stops start-up at once with one line on stderr (:mod:`grpcsec.cli._startup`).
Plaintext only with ``--insecure``.

Certificate files are watched (``--reload-interval``, SIGHUP for now) and rotated without a
restart through :class:`~grpcsec.rotation.ReloadingServerTLS`; connections are closed after
``--max-connection-age`` so long-lived clients re-handshake with the new certificate.

Exit codes: 0 after a clean shutdown, 2 for bad usage or input (unreadable or mismatched
certificate files, an address that cannot be bound), 130 or 143 when SIGINT or SIGTERM arrived
before the server was listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer
from prometheus_client import CollectorRegistry

from grpcsec.authn.options import AuthnOptions
from grpcsec.authz import Authorizer, Decision
from grpcsec.authz.check import AuthorizeCheck
from grpcsec.cli import app
from grpcsec.cli._common import AllowWeakKeysOption, errors_to_exit, load_identity
from grpcsec.cli._startup import STOP_SIGNALS, stop_during_startup
from grpcsec.credentials import ServerTLS
from grpcsec.demo.service import DEFAULT_SERVER_OPTIONS, ServeConfig, start_aio, start_sync
from grpcsec.errors import ConfigurationError, PasswordError
from grpcsec.interceptors import Guard
from grpcsec.material import load_key_pair
from grpcsec.monitor.metrics import ServiceMetrics, serve_metrics
from grpcsec.monitor.pump import MetricsPump
from grpcsec.pki import parse_duration, utcnow
from grpcsec.rotation import ReloadingServerTLS
from grpcsec.rotation.checks import check_dates
from grpcsec.target import Target
from grpcsec.text import get_logger

__all__ = ["serve"]

_GRACE_SECONDS = 5.0

log = get_logger("grpcsec.serve")


def _config(
    listen: str,
    cert: Path | None,
    key: Path | None,
    client_ca: Path | None,
    *,
    insecure: bool,
    reload_interval: float | None,
    max_connection_age: float,
    next_ca: Path | None = None,
    allow_weak_keys: bool = False,
) -> ServeConfig:
    target = Target.listen(listen)
    if insecure:
        if cert or key or client_ca:
            raise ConfigurationError("--insecure serves plaintext; drop --cert/--key/--client-ca")
        return ServeConfig(listen=target, tls=None, insecure=True)
    identity = load_identity(cert, key)  # checks everything first, with the clearest messages
    if identity is None or cert is None or key is None:
        raise ConfigurationError(
            "pass --cert and --key (TLS), plus --client-ca for mTLS; plaintext needs --insecure"
        )
    # One date check for both modes, so --no-reload refuses what the watcher would refuse.
    check_dates(identity.chain, utcnow(), source=str(cert))
    static = ServerTLS.create(identity, client_ca=client_ca, allow_weak_keys=allow_weak_keys)
    options = DEFAULT_SERVER_OPTIONS
    if max_connection_age > 0:
        # Long-lived connections re-handshake, so rotated (or dropped) certificates take effect.
        options += (
            ("grpc.max_connection_age_ms", int(max_connection_age * 1000)),
            ("grpc.max_connection_age_grace_ms", int(_GRACE_SECONDS * 1000)),
        )
    if reload_interval is None or _key_is_encrypted(cert, key):
        return ServeConfig(listen=target, tls=static, options=options)
    reloading = ReloadingServerTLS.from_files(
        cert,
        key,
        client_ca=client_ca,
        next_ca=next_ca,
        interval=reload_interval,
        allow_weak_keys=allow_weak_keys,
    )
    log.info(
        "watching the certificate files every %gs for rotation (SIGHUP reloads now)",
        reload_interval,
    )
    return ServeConfig(listen=target, tls=reloading, options=options)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Access:
    """What ``serve`` requires of callers beyond TLS, parsed from the options."""

    authn: AuthnOptions
    policy: Path | None
    policy_reload: float


def _guard(
    access: _Access, config: ServeConfig, metrics: ServiceMetrics | None
) -> tuple[Guard | None, Authorizer | None]:
    """The checks in order: client certificate, bearer token, then the A43 policy."""
    mutual = config.tls is not None and config.tls.mutual
    checks: list[Any] = list(access.authn.checks(mutual=mutual))
    authorizer = None
    if access.policy is not None:
        authorizer = Authorizer.from_file(access.policy, reload_interval=access.policy_reload)

        def count(decision: Decision) -> None:
            if metrics is not None:
                metrics.authorization_decision(
                    decision.policy_name, decision.matched_rule, decision.allowed
                )

        checks.append(AuthorizeCheck(authorizer, on_decision=count))
    return (Guard(*checks) if checks else None), authorizer


def _key_is_encrypted(cert: Path, key: Path) -> bool:
    """Rotation re-reads the key file unattended, so an encrypted key (password from a prompt or
    the environment at start) is served statically; the log says so."""
    try:
        load_key_pair(cert, key)
    except PasswordError:
        log.warning("the key is encrypted: certificate files are not watched for rotation")
        return True
    return False


def _announce(address: Target, mode: str) -> None:
    sys.stdout.write(f"listening on {address} ({mode})\n")
    sys.stdout.flush()


@contextlib.contextmanager
def _extras(
    config: ServeConfig, access: _Access, metrics_listen: str | None, *, aio: bool
) -> Iterator[ServeConfig]:
    """Guard, policy watcher and metrics around the server; everything stops on exit."""
    metrics = None
    exporter = None
    pump = None
    with errors_to_exit():
        if metrics_listen is not None:
            metrics = ServiceMetrics(CollectorRegistry())
            exporter = serve_metrics(metrics.registry, Target.listen(metrics_listen))
        guard, authorizer = _guard(access, config, metrics)
    try:
        if guard is not None:
            interceptor = guard.aio_server_interceptor() if aio else guard.server_interceptor()
            config = replace(config, interceptors=(*config.interceptors, interceptor))
        if metrics is not None and exporter is not None:
            pump = MetricsPump(
                metrics, rotation=_reloading(config), stats=guard.stats if guard else None
            )
            if isinstance(config.tls, ServerTLS):
                metrics.observe_serving_certificate(config.tls.identity.leaf)
            pump.start()
            log.info("metrics on http://%s/metrics", exporter.address)
        yield config
    finally:
        if pump is not None:
            pump.stop()
        if exporter is not None:
            exporter.stop()
        if authorizer is not None:
            authorizer.close()


def _reloading(config: ServeConfig) -> ReloadingServerTLS | None:
    return config.tls if isinstance(config.tls, ReloadingServerTLS) else None


def _serve_sync(config: ServeConfig) -> None:
    stop = threading.Event()
    rotation = _reloading(config)
    previous: dict[signal.Signals, Any] = {}
    if rotation is not None:
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: rotation.request_reload())
    try:
        if rotation is not None:
            rotation.start()
        with errors_to_exit():
            running = start_sync(config)
        # Listening: from now on a stop request drains in-flight calls (before, it ends start-up).
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
        _announce(running.address, config.mode)
        while not stop.wait(0.5):
            pass
        log.info("shutting down")
        running.stop(_GRACE_SECONDS)
    finally:
        if rotation is not None:
            rotation.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _serve_aio(config: ServeConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    rotation = _reloading(config)
    signals: list[signal.Signals] = []
    if rotation is not None:
        loop.add_signal_handler(signal.SIGHUP, rotation.request_reload)
        signals.append(signal.SIGHUP)
        rotation.start()
    try:
        with errors_to_exit():
            running = await start_aio(config)
        for sig in STOP_SIGNALS:  # listening: a stop request now drains in-flight calls
            loop.add_signal_handler(sig, stop.set)
            signals.append(sig)
        _announce(running.address, config.mode + ", asyncio")
        await stop.wait()
        log.info("shutting down")
        await running.stop(_GRACE_SECONDS)
    finally:
        if rotation is not None:
            rotation.stop()
        for sig in signals:
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
    reload_interval: Annotated[
        str,
        typer.Option(
            "--reload-interval",
            metavar="DURATION",
            help="How often to check the certificate files for rotation (SIGHUP: now).",
        ),
    ] = "1s",
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
    max_connection_age: Annotated[
        str,
        typer.Option(
            "--max-connection-age",
            metavar="DURATION",
            help="Close connections after this long so clients re-handshake (0: never).",
        ),
    ] = "1h",
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
        list[str] | None, typer.Option("--issuer", help="Accepted token issuer (repeatable).")
    ] = None,
    audience: Annotated[
        list[str] | None, typer.Option("--audience", help="Accepted token audience (repeatable).")
    ] = None,
    require_scope: Annotated[
        list[str] | None, typer.Option("--require-scope", help="Scope every token must carry.")
    ] = None,
    allow_spiffe_id: Annotated[
        list[str] | None, typer.Option("--allow-spiffe-id", help="Allow this client SPIFFE ID.")
    ] = None,
    allow_trust_domain: Annotated[
        list[str] | None,
        typer.Option("--allow-trust-domain", help="Allow clients of this SPIFFE trust domain."),
    ] = None,
    allow_cn: Annotated[
        list[str] | None, typer.Option("--allow-cn", help="Allow clients with this subject CN.")
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
        typer.Option("--metrics", metavar="HOST:PORT", help="Serve Prometheus metrics here."),
    ] = None,
) -> None:
    """Serve helloworld.Greeter, grpc.health.v1.Health and reflection over TLS or mTLS.

    Rotated certificate files (cert-manager, SPIRE, Vault agent, grpcsec renew) are picked up
    without a restart; invalid new files are refused and the last good ones keep serving.
    """
    with stop_during_startup("serve"):  # until the graceful handlers take over
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        with errors_to_exit():
            interval = None if no_reload else parse_duration(reload_interval).total_seconds()
            age = 0.0 if max_connection_age.strip() == "0" else parse_duration(max_connection_age)
            config = _config(
                listen,
                cert,
                key,
                client_ca,
                insecure=insecure,
                reload_interval=interval,
                max_connection_age=age if isinstance(age, float) else age.total_seconds(),
                next_ca=next_ca,
                allow_weak_keys=allow_weak_keys,
            )
            access = _Access(
                authn=AuthnOptions(
                    jwks=jwks,
                    jwks_ca=jwks_ca,
                    issuers=tuple(issuer or ()),
                    audiences=tuple(audience or ()),
                    required_scopes=tuple(require_scope or ()),
                    allow_spiffe_ids=tuple(allow_spiffe_id or ()),
                    allow_trust_domains=tuple(allow_trust_domain or ()),
                    allow_common_names=tuple(allow_cn or ()),
                    allow_any_client=allow_any_client,
                ),
                policy=policy,
                policy_reload=interval or 1.0,
            )
        with _extras(config, access, metrics_listen, aio=aio) as secured:
            if aio:
                asyncio.run(_serve_aio(secured))
            else:
                _serve_sync(secured)
