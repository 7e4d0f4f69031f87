"""A server TLS configuration that rotates: certificates and client-CA bundles, no restart.

:class:`ReloadingServerTLS` is what ``ServeConfig.tls`` (or any ``add_secure_port``) takes in
place of a fixed :class:`~grpcsec.credentials.ServerTLS`: ``mutual`` and ``credentials()``,
the latter returning ``grpc.dynamic_ssl_server_credentials``. A :class:`Watcher` thread loads
and checks new material (:mod:`grpcsec.rotation.checks`, and :mod:`grpcsec.rotation.trust`
for client-CA bundles) and prepares the ``grpc.ServerCertificateConfiguration`` ahead of time.

The fetcher grpcio calls is the only code on the handshake path. grpc core calls it on a
C-core thread, holding the GIL, once per accepted TCP connection, with other handshakes queued
behind it (grpcio-security.md §1.2). So it reads one attribute, compares one integer and returns
either the prepared configuration (once per new generation) or ``None`` ("unchanged", which
spares core a rebuild of its TLS context per connection). It never reads files, never raises,
never returns unchecked material. Each ``credentials()`` call gets its own fetcher state, so
call it once per ``add_secure_port``: a credentials object shared by two ports would hand a new
configuration to only one of them.

Rotation affects *new* connections only; an established connection keeps its certificate.
Set the server options ``grpc.max_connection_age_ms`` (and ``grpc.max_connection_age_grace_ms``)
to make long-lived clients reconnect, and so re-handshake, within a bound (docs/rotation.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, NamedTuple

import grpc
from cryptography import x509

from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import ConfigurationError, RotationError
from grpcsec.material import StrPath
from grpcsec.rotation.checks import ServerMaterial, check_server_material
from grpcsec.rotation.sources import CertificateSource, FileSource, RawMaterial
from grpcsec.rotation.trust import ClientIssuerLog, check_trust_change
from grpcsec.rotation.watcher import (
    ReloadOutcome,
    RotationStatus,
    Watcher,
    WatcherCounters,
)

__all__ = ["ReloadingServerTLS"]


class _Served(NamedTuple):
    generation: int
    configuration: Any  # grpc.ServerCertificateConfiguration (grpc is untyped)
    material: ServerMaterial


class ReloadingServerTLS(WatcherCounters):
    """Server TLS (mTLS when the source has a client-CA bundle) that follows its source.

    Construction reads and checks the source and raises :class:`RotationError` when the
    material is not servable: a server must not start on bad material. Then :meth:`start`
    polls every ``interval`` seconds, and :meth:`reload` (safe in a signal handler) or
    :meth:`request_reload` load at once.

    ``mutual`` defaults to whether the first material has a client-CA bundle, and cannot change
    later (grpcio fixes it at bind time). A new chain must lead to a CA the server was served
    from, or to a CA in the source's next-CA bundle (:mod:`grpcsec.rotation.lineage`); a
    foreign pair is refused with failure kind ``untrusted_issuer``. Client-CA bundle changes follow
    :func:`~grpcsec.rotation.trust.check_trust_change`: a bundle that shares no CA with the one
    in service is refused unless ``allow_client_ca_replacement``; a bundle must keep every CA in
    ``required_client_issuers``; and it must keep every CA that verified a client (as recorded
    by :meth:`observe_client`) within ``client_ca_grace`` seconds. ``clock`` is the time checks
    run at (:class:`grpcsec.clock.Clock`); ``monotonic`` the clock of the client log (default:
    the clock's monotonic reading).

    Plain attributes for metrics: :attr:`handshakes`, :attr:`reload_successes`,
    :attr:`reload_failures`, :attr:`last_success_time`, :attr:`last_error`, :attr:`serial`,
    :attr:`not_after`, :attr:`generation`.
    """

    def __init__(
        self,
        source: CertificateSource,
        *,
        mutual: bool | None = None,
        interval: float = 1.0,
        require_host_san: bool = True,
        allow_unsupported_key: bool = False,
        allow_weak_keys: bool = False,
        required_client_issuers: Iterable[x509.Certificate] = (),
        client_ca_grace: float = 600.0,
        allow_client_ca_replacement: bool = False,
        attempts: int = 4,
        retry_delay: float = 0.1,
        full_check_every: int = 10,
        clock: Clock = SYSTEM_CLOCK,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        if client_ca_grace < 0:
            raise ConfigurationError("client_ca_grace must not be negative")
        self._mutual = mutual
        self._require_host_san = require_host_san
        self._allow_unsupported_key = allow_unsupported_key
        self._allow_weak_keys = allow_weak_keys
        self._required = tuple(required_client_issuers)
        self._grace = client_ca_grace
        self._allow_replacement = allow_client_ca_replacement
        self.client_log = ClientIssuerLog(clock=monotonic or clock.monotonic)
        #: Fetcher calls: one per accepted TCP connection (approximate under concurrent ports).
        self.handshakes = 0
        self._generation = 0
        self._served: _Served | None = None
        self._watcher: Watcher[ServerMaterial] = Watcher(
            source,
            load=self._check,
            apply=self._apply,
            describe=ServerMaterial.describe,
            what="server certificate",
            interval=interval,
            attempts=attempts,
            retry_delay=retry_delay,
            full_check_every=full_check_every,
            clock=clock,
        )

    @classmethod
    def from_files(
        cls,
        cert: StrPath,
        key: StrPath,
        *,
        client_ca: StrPath | None = None,
        issuers: StrPath | None = None,
        next_ca: StrPath | None = None,
        **options: Any,  # noqa: ANN401 (the keyword options of __init__)
    ) -> ReloadingServerTLS:
        """Watch a chain file, its key, and optionally a client-CA bundle (mTLS), an issuers
        bundle the chain must verify against, and a next-CA bundle the chain may rotate to
        (:mod:`grpcsec.rotation.lineage`). ``options`` are those of the class."""
        source = FileSource.of(cert, key, trust=client_ca, issuers=issuers, next_ca=next_ca)
        return cls(source, mutual=client_ca is not None, **options)

    # -- checks and swaps (watcher thread) ------------------------------------------------------
    def _check(
        self, raw: RawMaterial, now: dt.datetime, current: ServerMaterial | None
    ) -> ServerMaterial:
        mutual = self._mutual if self._mutual is not None else raw.trust is not None
        material = check_server_material(
            raw,
            now=now,
            mutual=mutual,
            require_host_san=self._require_host_san,
            allow_unsupported_key=self._allow_unsupported_key,
            allow_weak_keys=self._allow_weak_keys,
            lineage=current.lineage if current is not None else None,
        )
        if mutual:
            check_trust_change(
                current.client_cas if current is not None else (),
                material.client_cas,
                what="client-CA bundle",
                source=raw.trust_name,
                required=self._required,
                log=self.client_log if current is not None else None,
                grace=self._grace,
                allow_replacement=self._allow_replacement,
            )
        self._mutual = mutual
        return material

    def _apply(self, material: ServerMaterial) -> None:
        identity = material.tls.identity
        client_ca = material.tls.client_ca
        configuration = grpc.ssl_server_certificate_configuration(
            [(identity.key_pem, identity.chain_pem)],
            root_certificates=client_ca.pem if client_ca is not None else None,
        )
        self._generation += 1
        # One attribute assignment: the fetcher sees the old or the new tuple, never a mix.
        self._served = _Served(self._generation, configuration, material)

    def _now_served(self) -> _Served:
        served = self._served
        if served is None:  # pragma: no cover (the constructor loads or raises)
            raise RotationError("no server certificate has been loaded")
        return served

    # -- what ServeConfig.tls needs -------------------------------------------------------------
    @property
    def mutual(self) -> bool:
        """Whether clients must present a certificate that verifies against the client CAs."""
        return bool(self._mutual)

    def configuration_fetcher(self) -> tuple[Any, Callable[[], Any]]:
        """The current ``grpc.ServerCertificateConfiguration`` and a new fetcher for it.

        The fetcher returns the prepared configuration of a newer generation once, and ``None``
        (unchanged) otherwise; it never raises and never touches files. :meth:`credentials`
        is built from this; it is public for benchmarks and for callers composing their own
        ``grpc.dynamic_ssl_server_credentials``.
        """
        generation, configuration, _ = self._now_served()
        handed_out = [generation]
        owner = self

        def fetch() -> Any:  # noqa: ANN401 (a grpc.ServerCertificateConfiguration or None)
            try:
                owner.handshakes += 1
                served = owner._served
                if served is None or served[0] == handed_out[0]:
                    return None
                handed_out[0] = served[0]
                return served[1]
            except BaseException:  # noqa: BLE001 (never raise into grpc core; keep serving)
                return None

        return configuration, fetch

    def credentials(self) -> grpc.ServerCredentials:
        """Fresh ``grpc.dynamic_ssl_server_credentials`` for one ``add_secure_port`` call."""
        configuration, fetch = self.configuration_fetcher()
        return grpc.dynamic_ssl_server_credentials(
            configuration, fetch, require_client_authentication=self.mutual
        )

    # -- control ---------------------------------------------------------------------------------
    def reload(self) -> ReloadOutcome:
        """Check the source now and swap in what passes. Never raises; safe in signal handlers."""
        return self._watcher.reload()

    def request_reload(self) -> None:
        """Ask the watcher thread to reload now and return at once (needs :meth:`start`)."""
        self._watcher.request_reload()

    def poll(self) -> ReloadOutcome:
        """One poll as the watcher thread does it (cheap when nothing changed)."""
        return self._watcher.poll()

    def start(self) -> ReloadingServerTLS:
        """Start polling the source in a daemon thread (idempotent); returns ``self``."""
        self._watcher.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; the material in service stays in service."""
        self._watcher.stop(timeout)

    def __enter__(self) -> ReloadingServerTLS:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def observe_client(self, context: Any) -> None:  # noqa: ANN401 (sync or aio ServicerContext)
        """Record which CA verified the caller of an RPC (call from a handler or interceptor).

        This is the evidence for refusing a client-CA bundle that drops a CA still in use.
        Cheap after the first call from a given certificate (a dictionary lookup).
        """
        self.client_log.observe(context)

    # -- state -----------------------------------------------------------------------------------
    @property
    def material(self) -> ServerMaterial:
        """The checked material in service."""
        return self._now_served().material

    @property
    def generation(self) -> int:
        """1 for the first material, +1 per swap."""
        return self._now_served().generation

    @property
    def serial(self) -> str:
        """The served certificate's serial (lower-case hex)."""
        return f"{self.material.leaf.serial_number:x}"

    @property
    def not_after(self) -> dt.datetime:
        """When the served certificate expires (aware UTC)."""
        return self.material.leaf.not_valid_after_utc

    @property
    def watching(self) -> bool:
        """Whether the polling thread runs."""
        return self._watcher.running

    def status(self) -> RotationStatus:
        """A snapshot of all of the above."""
        served = self._now_served()
        return self._watcher.status(
            served.material.leaf, generation=served.generation, handshakes=self.handshakes
        )

    def __repr__(self) -> str:
        return (
            f"ReloadingServerTLS(source={self._watcher.source.description!r}, "
            f"mutual={self.mutual}, serial={self.serial}, generation={self.generation})"
        )
