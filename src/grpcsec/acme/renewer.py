"""ACME as a certificate source: issue once, then renew in place, as a CLI agent or in a server.

:func:`issue_certificate` is ``grpcsec acme issue``: connect (:mod:`grpcsec.acme.network`),
create or reuse the account (:mod:`grpcsec.acme.account`), order with a new key
(:mod:`grpcsec.acme.order`), write key and chain atomically. Any failure raises
:class:`~grpcsec.errors.AcmeError` before anything is written, so the old files stay.

:class:`AcmeRenewer` is ``grpcsec acme renew`` and the ``[tls.acme]`` renewer of a secured
server: the agent loop of :class:`~grpcsec.rotation.agent.RenewalAgent` (hook, backoff,
counters, ``--once``/daemon) with the ACME plan (:mod:`grpcsec.acme.schedule`: the CA's
renewal window when its directory has ``renewalInfo``, fetched at most once per
``Retry-After``; else 2/3 of the lifetime) and ACME issuance. The server's file watcher (the one
watcher) sees the new files and hot-swaps them; the renewer never touches grpcio.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from acme import client as acme_client
from cryptography import x509

from grpcsec.acme.account import account_key, register
from grpcsec.acme.config import AcmeConfig
from grpcsec.acme.network import acme_errors, connect
from grpcsec.acme.order import AcmeMaterial, obtain, write_material
from grpcsec.acme.schedule import (
    RenewalWindow,
    acme_renewal_time,
    certificate_id,
    parse_renewal_info,
)
from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import AcmeError, GrpcsecError
from grpcsec.material import StrPath
from grpcsec.pki import load_certificate_file
from grpcsec.rotation.agent import RenewalAgent
from grpcsec.rotation.renew_plan import Backoff, RenewalPlan, RenewalResult, plan_for, rfc3339
from grpcsec.text import get_logger

__all__ = ["AcmeRenewer", "issue_certificate", "registered_client", "server_renewer"]

log = get_logger("grpcsec.acme")


@contextlib.contextmanager
def registered_client(config: AcmeConfig) -> Iterator[acme_client.ClientV2]:
    """A client for ``config``'s directory with its account created or reused; closed after."""
    client = connect(config)  # the directory first: a wrong URL leaves no account key behind
    try:
        client.net.key, client.net.alg = account_key(config.account_key)
        register(client, config)
        yield client
    finally:
        client.net.session.close()


def issue_certificate(
    config: AcmeConfig,
    cert: StrPath,
    key: StrPath,
    *,
    clock: Clock = SYSTEM_CLOCK,
    sleep: Callable[[float], None] = time.sleep,
) -> AcmeMaterial:
    """Obtain a certificate for ``config`` and write it to ``cert`` and ``key``; what was
    written. Nothing is written unless the whole order succeeded."""
    with registered_client(config) as client:
        material = obtain(client, config, clock=clock, sleep=sleep)
    write_material(material, Path(cert), Path(key))
    log.info(
        "issued %s by ACME: serial %x, valid until %s",
        cert,
        material.leaf.serial_number,
        rfc3339(material.leaf.not_valid_after_utc),
    )
    return material


class AcmeRenewer(RenewalAgent):
    """Keeps ``cert``/``key`` issued and renewed by the ACME CA of ``config`` (module
    docstring). ``clock`` times the issuance; ``sleep`` waits between polls (tests pass a
    no-op); ``use_ari`` asks the CA for renewal information when it offers it."""

    def __init__(
        self,
        config: AcmeConfig,
        cert: StrPath,
        key: StrPath,
        *,
        hook: Callable[[RenewalResult], None] | None = None,
        backoff: Backoff | None = None,
        check_interval: float = 60.0,
        rng: random.Random | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Callable[[float], None] = time.sleep,
        use_ari: bool = True,
    ) -> None:
        super().__init__(
            cert, key, hook=hook, backoff=backoff, check_interval=check_interval, rng=rng
        )
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.use_ari = use_ari
        self.window: RenewalWindow | None = None
        self._window_for: str | None = None
        self._ari_error: str | None = None

    # -- planning -------------------------------------------------------------------------------
    def _leaf(self) -> x509.Certificate:
        return load_certificate_file(self.cert, allow_der=False)[0]

    def _fetch_window(self, leaf: x509.Certificate, now: dt.datetime) -> RenewalWindow | None:
        client = connect(self.config)
        try:
            with acme_errors("fetching renewal information"):
                try:
                    base = client.directory["renewalInfo"]
                except KeyError:
                    return None  # no ARI at this CA (pebble 2.4, for one)
                url = f"{str(base).rstrip('/')}/{certificate_id(leaf)}"
                response = client.net.get(url, content_type="application/json")
                document = response.json()
            return parse_renewal_info(
                document, now=now, retry_after=response.headers.get("Retry-After")
            )
        finally:
            client.net.session.close()

    def renewal_window(self, leaf: x509.Certificate, now: dt.datetime) -> RenewalWindow | None:
        """The CA's window for ``leaf``, fetched again once its ``Retry-After`` has passed; on
        a fetch failure the previous window (or none) stands and the failure is logged once."""
        serial = f"{leaf.serial_number:x}"
        if not self.use_ari:
            return None
        if self._window_for == serial and self.window is not None and now < self.window.poll_at:
            return self.window
        if self._window_for == serial and self.window is None and self._ari_error is None:
            return None  # the CA has no renewalInfo; asked once per certificate
        try:
            window = self._fetch_window(leaf, now)
        except GrpcsecError as exc:
            if self._ari_error != str(exc):
                log.warning("no renewal information for %s: %s", self.cert, exc)
            self._ari_error = str(exc)
            return self.window if self._window_for == serial else None
        self._ari_error = None
        self._window_for, self.window = serial, window
        return window

    def plan(self, now: dt.datetime) -> RenewalPlan:
        """Read the certificate and say when it is due (MaterialError if unreadable)."""
        leaf = self._leaf()
        window = self.renewal_window(leaf, now)
        renew_at = acme_renewal_time(leaf, window, draw=self.draw(f"{leaf.serial_number:x}"))
        return plan_for(leaf, self.cert, renew_at=renew_at, now=now)

    # -- issuing --------------------------------------------------------------------------------
    def issue(self, now: dt.datetime) -> RenewalResult:
        """Order a new certificate now, due or not; the old files stay on any failure."""
        try:
            previous = f"{self._leaf().serial_number:x}"
        except GrpcsecError:
            previous = ""
        material = issue_certificate(
            self.config, self.cert, self.key, clock=self.clock, sleep=self.sleep
        )
        leaf = material.leaf
        serial = f"{leaf.serial_number:x}"
        return RenewalResult(
            cert=str(self.cert),
            key=str(self.key),
            serial=serial,
            previous_serial=previous,
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            renew_at=acme_renewal_time(leaf, None, draw=self.draw(serial)),
            renewed_at=now,
        )

    def ensure(self, now: dt.datetime) -> RenewalResult | None:
        """Issue when the files are missing or unreadable, or renew when due; ``None`` when
        the files on disk are current. What a server does before it binds."""
        try:
            if not self.key.is_file():
                raise AcmeError("the key file is missing", path=self.key)
            plan = self.plan(now)
        except GrpcsecError as exc:
            log.info("no usable ACME certificate at %s (%s): ordering one", self.cert, exc)
            return self.renew(now)
        self.next_renewal = plan.renew_at
        if plan.due:
            return self.renew(now)
        return None


def server_renewer(
    config: AcmeConfig, cert: StrPath, key: StrPath, *, clock: Clock = SYSTEM_CLOCK
) -> AcmeRenewer:
    """The renewer of a secured server's ``[tls.acme]``, after issuing at once when the files
    are missing, unreadable or due (an :class:`AcmeError` then stops the start, before any
    port binds). The server starts it with its background work and stops it at shutdown."""
    renewer = AcmeRenewer(config, cert, key, clock=clock)
    renewer.ensure(clock.now())
    return renewer
