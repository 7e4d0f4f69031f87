"""What a secured server is made of, checked before anything binds; shared by sync and aio.

:class:`ServerCore` turns a :class:`~grpcsec.server.config.SecurityConfig` into the pieces a
grpcio server needs, in an order chosen so that a bad input fails before any thread starts or
any port binds: the TLS files (key matches certificate, chain and dates, client CA is a CA), the
CRLs (parsed, and signed by the client CA they name), the authentication checks (a JWKS file is
parsed, a JWKS URL fetched once), then the A43 policy (parsed and compiled; its watcher is the
first background thread, closed again if anything after it fails). One
:class:`~grpcsec.interceptors.Guard` runs the checks in order (revocation first, then the
SPIFFE trust-domain binding, client certificate, bearer token, policy) and counts every call, so
``status()`` and ``/metrics`` have allowed and denied counts even with no checks configured.

Background work (rotation watcher, CRL watcher, metrics pump, ``/metrics`` + ``/status``
endpoint) starts in :meth:`ServerCore.start_background` and stops in
:meth:`ServerCore.stop_background`, which are idempotent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Sequence
from typing import Any

from cryptography import x509
from prometheus_client import CollectorRegistry

from grpcsec.authn.requirement import RequireBearerToken
from grpcsec.authz import Authorizer, Decision
from grpcsec.authz.check import AuthorizeCheck
from grpcsec.authz.model import Policy
from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.credentials import ServerTLS
from grpcsec.errors import ConfigurationError
from grpcsec.interceptors import Guard
from grpcsec.material import load_key_pair
from grpcsec.monitor.endpoint import MetricsServer, serve_metrics
from grpcsec.monitor.metrics import ServiceMetrics
from grpcsec.monitor.pump import MetricsPump
from grpcsec.pki import load_certificates
from grpcsec.revocation import CRLStore, RevocationCheck
from grpcsec.rotation import ReloadingServerTLS
from grpcsec.rotation.checks import check_dates
from grpcsec.server.bind import bind_all
from grpcsec.server.config import SecurityConfig
from grpcsec.spiffe import SpiffeCollector, open_server_tls
from grpcsec.target import Target
from grpcsec.text import get_logger

__all__ = ["DEFAULT_SERVER_OPTIONS", "ServerCore"]

log = get_logger("grpcsec.server")

# grpcio sets SO_REUSEPORT by default, so a second server on a busy port binds *too* and the
# kernel splits connections between them; grpcsec refuses to share a port silently.
DEFAULT_SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (("grpc.so_reuseport", 0),)


def _tls_source(
    config: SecurityConfig, clock: Clock, key_password: bytes | None
) -> ServerTLS | ReloadingServerTLS | None:
    tls = config.tls
    if tls is None:
        return None
    if tls.spiffe_socket is not None:  # the Workload API's SVID, watched (docs/spiffe.md)
        return open_server_tls(
            tls.spiffe_socket,
            interval=tls.reload_interval,
            allow_weak_keys=tls.allow_weak_keys,
            clock=clock,
        )
    if tls.cert is None or tls.key is None:  # not reachable: TLSConfig requires a source
        raise ConfigurationError("tls.cert and tls.key are both required")
    # Checked once the same way for both modes (clearest messages, and a server without reload
    # refuses exactly what the watcher would refuse).
    identity = load_key_pair(tls.cert, tls.key, password=key_password)
    if identity is None:  # not reachable: both paths are given
        raise ConfigurationError("tls.cert and tls.key are both required")
    check_dates(identity.chain, clock.now(), source=str(tls.cert))
    static = ServerTLS.create(
        identity, client_ca=tls.client_ca, allow_weak_keys=tls.allow_weak_keys
    )
    if not tls.reload:
        return static
    if key_password is not None:
        log.warning("the key is encrypted: certificate files are not watched for rotation")
        return static
    return ReloadingServerTLS.from_files(
        tls.cert,
        tls.key,
        client_ca=tls.client_ca,
        next_ca=tls.next_ca,
        interval=tls.reload_interval,
        allow_weak_keys=tls.allow_weak_keys,
        clock=clock,
    )


def _acme_renewer(config: SecurityConfig, clock: Clock) -> Any:  # noqa: ANN401 (AcmeRenewer)
    """With ``[tls.acme]``: the renewer, after issuing now if the files are missing or due."""
    tls = config.tls
    if tls is None or tls.acme is None or tls.cert is None or tls.key is None:
        return None  # (TLSConfig requires cert and key beside acme)
    from grpcsec.acme.renewer import server_renewer  # noqa: PLC0415 (optional extra)

    return server_renewer(tls.acme, tls.cert, tls.key, clock=clock)


def _client_cas(tls: ServerTLS | ReloadingServerTLS) -> Callable[[], tuple[x509.Certificate, ...]]:
    """The client CAs in service (rotated ones included), for checks that judge chains."""
    if isinstance(tls, ReloadingServerTLS):
        rotating = tls

        def anchors() -> tuple[x509.Certificate, ...]:
            return rotating.material.client_cas

    else:
        bundle = tls.client_ca
        fixed = tuple(load_certificates(bundle.pem)) if bundle is not None else ()

        def anchors() -> tuple[x509.Certificate, ...]:
            return fixed

    return anchors


def _crl_store(
    config: SecurityConfig, tls: ServerTLS | ReloadingServerTLS | None, clock: Clock
) -> CRLStore | None:
    """The watched CRLs, checked against the client CAs in service (rotated ones included)."""
    if config.tls is None or not config.tls.crl or tls is None:
        return None
    return CRLStore(
        config.tls.crl, anchors=_client_cas(tls), interval=config.tls.reload_interval, clock=clock
    )


class ServerCore:
    """The validated pieces of one secured server (see the module docstring)."""

    def __init__(
        self,
        config: SecurityConfig,
        *,
        aio: bool,
        interceptors: Sequence[Any],
        options: Sequence[tuple[str, Any]],
        clock: Clock = SYSTEM_CLOCK,
        key_password: bytes | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.aio = aio
        self.authorizer: Authorizer | None = None
        self.policy_updated_at: dt.datetime | None = None
        self.metrics: ServiceMetrics | None = None
        self._exporter: MetricsServer | None = None
        self._pump: MetricsPump | None = None
        self._lock = threading.Lock()
        self._running = False
        self.renewer = _acme_renewer(config, clock)  # issues before anything binds
        self.tls = _tls_source(config, clock, key_password)
        try:
            self._assemble(interceptors, options)
        except BaseException:
            self._close_tls()
            raise

    def _assemble(self, interceptors: Sequence[Any], options: Sequence[tuple[str, Any]]) -> None:
        """Everything after the certificate source (which is closed again if this fails)."""
        config, clock, aio = self.config, self.clock, self.aio
        self.crls = _crl_store(config, self.tls, clock)
        mutual = config.tls is not None and config.tls.mutual
        authn = dataclasses.replace(config.authn, clock=clock)  # tokens judged on our clock
        checks: list[Any] = []
        if self.crls is not None and config.tls is not None:
            allow = config.tls.allow_undetermined
            checks.append(RevocationCheck(self.crls, allow_undetermined=allow, clock=clock))
        # SPIFFE IDs are held to their own trust domain's CAs (authn.options): from the client
        # CA files, or as the Workload API names them (grpcsec.spiffe.binding).
        bundles: Any = None
        if self.workload is not None:
            from grpcsec.spiffe.binding import WorkloadBundles  # noqa: PLC0415 (optional extra)

            bundles = WorkloadBundles(self.workload)
        elif mutual and self.tls:
            bundles = authn.trust_domain_bundles(_client_cas(self.tls))
        self.spiffe_bundles = bundles
        checks.extend(authn.checks(mutual=mutual, bundles=bundles))
        self.key_sources = [c.verifier.keys for c in checks if isinstance(c, RequireBearerToken)]
        if config.metrics is not None:
            self.metrics = ServiceMetrics(CollectorRegistry())
        if config.authz is not None:
            self.authorizer = Authorizer.from_file(
                config.authz.policy,
                reload_interval=config.authz.reload_interval,
                on_update=self._policy_updated,
            )
            checks.append(AuthorizeCheck(self.authorizer, on_decision=self._decided))
        self.guard = Guard(*checks)
        guard_interceptor = (
            self.guard.aio_server_interceptor() if aio else self.guard.server_interceptor()
        )
        self.interceptors: tuple[Any, ...] = (guard_interceptor, *interceptors)
        extra: tuple[tuple[str, Any], ...] = ()
        if config.tls is not None and config.tls.max_connection_age > 0:
            # Long-lived connections re-handshake, so rotated (or dropped) certificates apply.
            extra = (
                ("grpc.max_connection_age_ms", int(config.tls.max_connection_age * 1000)),
                ("grpc.max_connection_age_grace_ms", int(config.shutdown_grace * 1000)),
            )
        self.options: tuple[tuple[str, Any], ...] = (
            *DEFAULT_SERVER_OPTIONS,
            *extra,
            *tuple(options),
        )

    # -- callbacks ------------------------------------------------------------------------------
    def _policy_updated(self, _policy: Policy) -> None:
        self.policy_updated_at = self.clock.now()

    def _decided(self, decision: Decision) -> None:
        if self.metrics is not None:
            self.metrics.authorization_decision(
                decision.policy_name, decision.matched_rule, decision.allowed
            )

    # -- pieces ---------------------------------------------------------------------------------
    @property
    def reloading(self) -> ReloadingServerTLS | None:
        """The rotating credential source, when certificate files are watched."""
        return self.tls if isinstance(self.tls, ReloadingServerTLS) else None

    def bind(self, server: Any) -> list[Target]:  # noqa: ANN401 (grpc servers are untyped)
        """Add every listening port with the checked credentials; the real addresses."""
        tls = self.tls
        return bind_all(server, self.config.listen, None if tls is None else tls.credentials)

    def start_background(self, status: Any) -> None:  # noqa: ANN401 (a StatusSource)
        """Start rotation, the metrics pump and the ``/metrics`` + ``/status`` endpoint."""
        with self._lock:
            if self._running:
                return
            self._running = True
        rotation = self.reloading
        if rotation is not None:
            rotation.start()
        if self.renewer is not None:
            self.renewer.start(clock=self.clock.now)
        if self.crls is not None:
            self.crls.start()
        if self.metrics is not None and self.config.metrics is not None:
            self._exporter = serve_metrics(
                self.metrics.registry, self.config.metrics.listen, status=status
            )
            self._pump = MetricsPump(
                self.metrics,
                rotation=rotation,
                stats=self.guard.stats,
                crls=self.crls,
                renewal=self.renewer,
                source=self.config.tls.source if self.config.tls is not None else None,
            )
            if isinstance(self.tls, ServerTLS):
                self.metrics.observe_serving_certificate(self.tls.identity.leaf)
            if self.workload is not None:
                self.metrics.registry.register(SpiffeCollector(self.workload.status))
            self._pump.start()
            log.info("metrics on http://%s/metrics", self._exporter.address)
            log.info("status on http://%s/status", self._exporter.address)

    @property
    def metrics_address(self) -> Target | None:
        """Where ``/metrics`` is served (``None`` before start or without metrics)."""
        return None if self._exporter is None else self._exporter.address

    def stop_background(self) -> None:
        """Stop everything :meth:`start_background` started, and the policy watcher."""
        if self._pump is not None:
            self._pump.stop()
            self._pump = None
        if self._exporter is not None:
            self._exporter.stop()
            self._exporter = None
        if self.renewer is not None:
            self.renewer.stop()
        rotation = self.reloading
        if rotation is not None:
            rotation.stop()
        if self.crls is not None:
            self.crls.stop()
        self.close()

    def close(self) -> None:
        """Release what construction started (policy watcher, Workload API); idempotent."""
        if self.authorizer is not None:
            self.authorizer.close()
        self._close_tls()

    def _close_tls(self) -> None:
        close = getattr(self.tls, "close", None)  # a Workload API connection to let go
        if callable(close):
            close()

    @property
    def workload(self) -> Any:  # noqa: ANN401 (a WorkloadAPISource; py-spiffe is optional)
        """The SPIFFE Workload API source when the certificate comes from one."""
        return getattr(self.tls, "workload", None)

    def request_reload(self) -> None:
        """Ask the watchers to check their files soon (safe from a signal handler)."""
        rotation = self.reloading
        if rotation is not None:
            rotation.request_reload()
        if self.crls is not None:
            self.crls.request_reload()

    def reload(self) -> dict[str, str]:
        """Check the certificate and policy files now; what each check did."""
        done: dict[str, str] = {}
        rotation = self.reloading
        if rotation is not None:
            done["tls"] = rotation.reload().value
        if self.crls is not None:
            done["crl"] = self.crls.reload()
        if self.authorizer is not None:
            reload = getattr(self.authorizer.provider, "reload", None)
            if callable(reload):
                done["policy"] = str(getattr(reload(), "value", "checked"))
        return done
