"""The SPIFFE Workload API as a certificate source: the one module here that speaks gRPC (through
py-spiffe's :class:`spiffe.WorkloadApiClient`; the protocol is not re-implemented).

:class:`WorkloadAPISource` holds one ``FetchX509SVID`` stream open to the agent (SPIRE, Istio's
agent). Every push becomes new :class:`~grpcsec.rotation.sources.RawMaterial`: the default SVID
(chain leaf first, PKCS#8 key), ``trust`` = the bundle of the SVID's own trust domain plus every
federated bundle (what peers are verified against), ``issuers`` = the own trust domain's bundle
(the SVID must chain to it; this also lets the rotation lineage follow a CA change the agent
announced in the bundle). ``version()`` changes on every push and subscribers (the rotation
watcher's ``request_reload``) are called at once, so a swap does not wait for a poll. Nothing is
checked here: the watcher checks each push like a rotated file (dates, key match, chain) and
keeps the last good material when a push is refused (an expired SVID, for instance).

Start: construction waits at most ``start_timeout`` seconds for the first push and raises
:class:`~grpcsec.errors.WorkloadAPIError` (one line) otherwise; a missing socket fails at once.
Later: when the stream breaks, the material in service stays (the SVID serves until it expires),
``status().connected`` turns false, a WARNING is logged (then at most once per ``warn_every``
seconds while it stays down), and the stream is re-opened with exponential backoff (``backoff``
doubling up to ``max_backoff``). grpc's own reconnect backoff to the socket applies beneath
that, so after a long outage the first update can lag the agent's return by a few seconds.
Not done: JWT-SVIDs, picking a non-default SVID.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from spiffe import WorkloadApiClient
from spiffe.errors import PySpiffeError
from spiffe.workloadapi.x509_context import X509Context

from grpcsec.clock import SYSTEM_CLOCK, Clock, format_moment
from grpcsec.errors import ConfigurationError, MaterialError, WorkloadAPIError
from grpcsec.pki import certificates_pem
from grpcsec.pki.keys import private_key_pem
from grpcsec.rotation.sources import RawMaterial
from grpcsec.spiffe.address import WorkloadAPIAddress
from grpcsec.spiffe.status import SpiffeStatus
from grpcsec.text import get_logger

__all__ = ["WorkloadAPISource"]

log = get_logger("grpcsec.spiffe")


@dataclass(frozen=True, slots=True)
class _Update:
    """One push, converted: the raw material and the public facts about it."""

    raw: RawMaterial
    spiffe_id: str
    serial: str
    not_after: dt.datetime
    trust_domain: str
    bundles: dict[str, tuple[x509.Certificate, ...]]


def _sorted(certificates: set[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    return tuple(sorted(certificates, key=lambda c: c.fingerprint(hashes.SHA256())))


def _convert(context: X509Context, description: str) -> _Update:
    svid = context.default_svid
    bundles = {
        bundle.trust_domain.name: _sorted(bundle.x509_authorities)
        for bundle in context.x509_bundle_set.bundles
    }
    own = svid.spiffe_id.trust_domain.name
    trust = [ca for name in sorted(bundles) for ca in bundles[name]]
    raw = RawMaterial(
        chain=certificates_pem(svid.cert_chain),
        key=private_key_pem(svid.private_key),  # type: ignore[arg-type]  # DSA never occurs
        trust=certificates_pem(trust) if trust else None,
        issuers=certificates_pem(bundles[own]) if bundles.get(own) else None,
        chain_name=f"{description} X.509 SVID",
        key_name=f"{description} SVID key",
        trust_name=f"{description} bundles",
        issuers_name=f"{description} bundle of {own}",
    )
    return _Update(
        raw=raw,
        spiffe_id=str(svid.spiffe_id),
        serial=format(svid.leaf.serial_number, "x"),
        not_after=svid.leaf.not_valid_after_utc,
        trust_domain=own,
        bundles=bundles,
    )


class _Client(WorkloadApiClient):
    """py-spiffe's client, also dialling ``tcp://IP:PORT``: py-spiffe 0.3.2 accepts such an
    address in its configuration but dials Unix sockets only. Only the dial target changes;
    the protocol, the security header and the streams stay py-spiffe's."""

    @staticmethod
    def _check_spiffe_socket_exists(spiffe_socket: str) -> None:
        if not spiffe_socket.startswith(_TCP):
            WorkloadApiClient._check_spiffe_socket_exists(spiffe_socket)

    @staticmethod
    def _grpc_target(value: str) -> str:
        if value.startswith(_TCP):
            return value[len(_TCP) :]
        return WorkloadApiClient._grpc_target(value)


_TCP = "tcp://"


class WorkloadAPISource:
    """A :class:`~grpcsec.rotation.sources.CertificateSource` fed by the Workload API (module
    docstring). Close it with :meth:`close` (or ``with``)."""

    def __init__(
        self,
        address: WorkloadAPIAddress,
        *,
        start_timeout: float = 10.0,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        warn_every: float = 60.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if start_timeout <= 0 or backoff <= 0 or max_backoff < backoff:
            raise ConfigurationError("Workload API timeouts and backoff must be positive")
        self.address = address
        self._clock = clock
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._warn_every = warn_every
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._first = threading.Event()
        self._subscribers: list[Callable[[], None]] = []
        self._update: _Update | None = None
        self._generation = 0
        self._connected = False
        self._failures = 0
        self._last_update: dt.datetime | None = None
        self._down_since: dt.datetime | None = None
        self._last_error: str | None = None
        self._last_warning: float | None = None
        self._handler: object | None = None
        if address.path is not None and not address.path.exists():
            raise WorkloadAPIError(
                f"no SPIFFE Workload API socket at {address.path} (is the SPIRE or Istio agent "
                "running, and is the socket mounted here?)"
            )
        try:
            self._client = _Client(address.uri)
        except PySpiffeError as exc:
            raise WorkloadAPIError(f"SPIFFE Workload API {address}: {exc}") from exc
        self._open_stream()
        if not self._first.wait(start_timeout):
            error = self._last_error or "no answer"
            self.close()
            raise WorkloadAPIError(
                f"no X.509 SVID from the SPIFFE Workload API at {address} within "
                f"{start_timeout:g}s ({error}); is the agent running and this workload registered?"
            )

    # -- CertificateSource ------------------------------------------------------------------------
    @property
    def description(self) -> str:
        """``SPIFFE Workload API unix:///...``."""
        return f"SPIFFE Workload API {self.address}"

    def version(self) -> Hashable:
        """A counter bumped by every push from the agent."""
        return self._generation

    def read(self) -> RawMaterial:
        """The material of the latest push."""
        update = self._update
        if update is None:  # pragma: no cover (construction waits for the first push)
            raise MaterialError(f"{self.description}: no X.509 SVID received yet")
        return update.raw

    # -- for the rotation watcher and the SPIFFE authorizer ---------------------------------------
    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the stream thread; it must not block) after every push."""
        with self._lock:
            self._subscribers.append(callback)

    def bundles(self) -> dict[str, tuple[x509.Certificate, ...]]:
        """Trust domain name → its CA certificates, as last pushed (own and federated)."""
        update = self._update
        return {} if update is None else dict(update.bundles)

    @property
    def connected(self) -> bool:
        """Whether the stream to the agent is open (it delivered an update since it opened)."""
        return self._connected

    def status(self) -> SpiffeStatus:
        """A snapshot for ``/status`` and metrics."""
        with self._lock:
            update = self._update
            return SpiffeStatus(
                address=str(self.address),
                connected=self._connected,
                spiffe_id=update.spiffe_id if update else None,
                serial=update.serial if update else None,
                not_after=update.not_after if update else None,
                trust_domain=update.trust_domain if update else None,
                trust_domains=tuple(sorted(update.bundles)) if update else (),
                updates=self._generation,
                last_update=self._last_update,
                disconnected_since=self._down_since,
                last_error=self._last_error,
            )

    # -- the stream -----------------------------------------------------------------------------
    def _open_stream(self) -> None:
        if self._closed.is_set():
            return
        handler = self._client.stream_x509_contexts(
            self._on_update, self._on_error, retry_connect=False
        )
        with self._lock:
            self._handler = handler
        if self._closed.is_set():
            handler.cancel()

    def _on_update(self, context: X509Context) -> None:
        try:
            update = _convert(context, self.description)
        except (PySpiffeError, ValueError, TypeError, KeyError, IndexError) as exc:
            log.warning("%s: unusable update ignored: %s", self.description, exc)
            return
        now = self._clock.now()
        with self._lock:
            came_back = not self._connected and self._first.is_set()
            self._update = update
            self._generation += 1
            self._connected = True
            self._failures = 0
            self._last_update = now
            self._down_since = None
            self._last_warning = None
            subscribers = list(self._subscribers)
        if came_back:
            log.info("%s: connected again", self.description)
        self._first.set()
        for callback in subscribers:
            self._notify(callback)

    def _notify(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("%s: update subscriber failed", self.description)

    def _on_error(self, error: Exception) -> None:
        """The stream ended (py-spiffe calls this on its stream thread, which then exits):
        mark the source down, warn (rate-limited), wait the backoff, open a new stream."""
        now = self._clock.now()
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        with self._lock:
            self._connected = False
            self._down_since = self._down_since or now
            self._last_error = message
            delay = min(self._backoff * (2**self._failures), self._max_backoff)
            self._failures += 1
            warn = self._first.is_set() and (
                self._last_warning is None
                or self._clock.monotonic() - self._last_warning >= self._warn_every
            )
            if warn:
                self._last_warning = self._clock.monotonic()
        if warn:
            update = self._update
            expiry = f"; the last SVID expires {format_moment(update.not_after)}" if update else ""
            log.warning(
                "%s is unavailable (%s): keeping the last SVID, reconnecting%s",
                self.description,
                message,
                expiry,
            )
        if not self._closed.wait(delay):
            self._open_stream()

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the stream and close the connection to the agent (idempotent)."""
        self._closed.set()
        with self._lock:
            handler, self._handler = self._handler, None
        cancel = getattr(handler, "cancel", None)
        if callable(cancel):
            cancel()
        self._client.close()

    def __enter__(self) -> WorkloadAPISource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WorkloadAPISource({str(self.address)!r}, generation={self._generation})"
