"""The renewal agent: re-issue a leaf at 2/3 of its lifetime, with a new key, atomically.

:class:`Renewer` holds a CA (:class:`~grpcsec.pki.CertificateAuthority`) and the paths of a
certificate chain and its key. It reads the certificate, asks :mod:`grpcsec.rotation.renew_plan`
when it is due and for the new leaf (same names, CN, organization, profile, key type and
lifetime, **with a new key**: cert-manager's ``rotationPolicy: Always``), and does the rest: it
writes the key and then the chain, each to a temporary file renamed into place
(:func:`grpcsec.pki.write_files`), so a reader sees whole files; a reader between the two
renames sees a new key with the old certificate, which the rotation watcher detects and
retries. An optional hook (:class:`ExecHook`) runs after each renewal.

Failures (an unreadable certificate, a CA that expired, a disk error) are retried with
exponential backoff (:class:`~grpcsec.rotation.renew_plan.Backoff`). An **expired** certificate
is not renewed unless ``allow_expired``: it means renewal has not run for a whole lifetime, or
the clock is wrong, and issuing under a wrong clock would make things worse; the error says so.
A certificate from another CA is not re-issued unless ``allow_other_issuer`` (the CA rollover
step).

Time is a parameter (``now``) everywhere except :meth:`Renewer.run`, which takes a clock.
Not done here: reusing keys (HSM keys), CSR-based renewal against a remote CA, revoking the
previous certificate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from grpcsec.errors import ConfigurationError, GrpcsecError, RotationError
from grpcsec.material import StrPath
from grpcsec.pki import (
    CERT_MODE,
    KEY_MODE,
    CertificateAuthority,
    CertificateInfo,
    PendingFile,
    load_certificate_file,
    utcnow,
    write_files,
)
from grpcsec.pki.layout import CertificateFiles
from grpcsec.pki.registry import write_issued
from grpcsec.rotation.renew_plan import (
    AgentStep,
    Backoff,
    RenewalPlan,
    RenewalResult,
    check_issuer,
    check_not_expired,
    reissue,
    renewal_backdate,
    renewal_time,
    rfc3339,
)
from grpcsec.text import get_logger

__all__ = ["ExecHook", "Renewer"]

log = get_logger("grpcsec.renew")

MIN_DELAY = 0.5  # seconds between agent steps at least: never a hot loop


@dataclass(frozen=True, slots=True)
class ExecHook:
    """Run a command (no shell) after each renewal, with ``GRPCSEC_CERT``, ``GRPCSEC_KEY``,
    ``GRPCSEC_SERIAL`` and ``GRPCSEC_NOT_AFTER`` in its environment. A non-zero exit, a
    timeout or a missing program raises :class:`RotationError`. Its output is not captured."""

    command: tuple[str, ...]
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if not self.command:
            raise ConfigurationError("the hook command is empty")

    def __call__(self, result: RenewalResult) -> None:
        """Run the command for ``result``."""
        env = {
            **os.environ,
            "GRPCSEC_CERT": result.cert,
            "GRPCSEC_KEY": result.key,
            "GRPCSEC_SERIAL": result.serial,
            "GRPCSEC_NOT_AFTER": rfc3339(result.not_after),
        }
        try:
            completed = subprocess.run(  # noqa: S603 (the operator's own command, no shell)
                list(self.command), env=env, timeout=self.timeout, check=False
            )
        except FileNotFoundError as exc:
            raise RotationError(f"the hook program {self.command[0]!r} was not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise RotationError(f"the hook did not finish within {self.timeout:g}s") from exc
        except OSError as exc:
            raise RotationError(f"the hook could not run: {exc.strerror or exc}") from exc
        if completed.returncode != 0:
            raise RotationError(f"the hook exited with status {completed.returncode}")


class Renewer:
    """Keeps the certificate at ``cert`` (with its key at ``key``) renewed by ``ca``.

    Use :meth:`plan` / :meth:`renew_if_due` / :meth:`renew` for one-shot work, :meth:`step` for
    one agent iteration (never raises; returns how long to sleep), :meth:`run` to loop until an
    event is set, or :meth:`start` / :meth:`stop` for a background thread. ``hook`` runs after
    every renewal (an :class:`ExecHook`, or any callable; its failure is reported in
    ``RenewalResult.hook_error`` and does not undo the renewal). ``rng`` draws the jitter
    (seed it in tests); the draw is fixed per certificate serial, so plans are stable.
    ``record_in`` is the CA directory whose ``issued.jsonl`` records each renewal
    (:func:`grpcsec.pki.registry.write_issued`, the write path of every issuing command);
    ``None`` records nothing (a CA held in memory).

    Counters for metrics: ``renewals``, ``failures`` (consecutive), ``total_failures``,
    ``last_result``, ``last_error``.
    """

    def __init__(
        self,
        ca: CertificateAuthority,
        cert: StrPath,
        key: StrPath,
        *,
        lifetime: dt.timedelta | None = None,
        every: dt.timedelta | None = None,
        allow_expired: bool = False,
        allow_other_issuer: bool = False,
        hook: Callable[[RenewalResult], None] | None = None,
        backoff: Backoff | None = None,
        check_interval: float = 60.0,
        rng: random.Random | None = None,
        record_in: StrPath | None = None,
    ) -> None:
        if lifetime is not None and lifetime <= dt.timedelta(0):
            raise ConfigurationError("the certificate lifetime must be positive")
        if every is not None and every <= dt.timedelta(0):
            raise ConfigurationError("the renewal period (--every) must be positive")
        if check_interval <= 0:
            raise ConfigurationError("the check interval must be positive")
        self.ca = ca
        self.cert = Path(cert)
        self.key = Path(key)
        self.lifetime = lifetime
        self.every = every
        self.allow_expired = allow_expired
        self.allow_other_issuer = allow_other_issuer
        self.hook = hook
        self.record_in = Path(record_in) if record_in is not None else None
        self.backoff = backoff or Backoff()
        self.check_interval = check_interval
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not a secret)
        self._draws: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.renewals = 0
        self.failures = 0
        self.total_failures = 0
        self.last_result: RenewalResult | None = None
        self.last_error: GrpcsecError | None = None

    # -- planning -----------------------------------------------------------------------------
    def _draw(self, serial: str) -> float:
        if serial not in self._draws:
            if len(self._draws) > 64:
                self._draws.clear()
            self._draws[serial] = self._rng.random()
        return self._draws[serial]

    def _renew_at(self, leaf: x509.Certificate) -> dt.datetime:
        return renewal_time(
            leaf.not_valid_before_utc,
            leaf.not_valid_after_utc,
            every=self.every,
            draw=self._draw(f"{leaf.serial_number:x}"),
        )

    def _leaf(self) -> x509.Certificate:
        return load_certificate_file(self.cert, allow_der=False)[0]

    def plan(self, now: dt.datetime) -> RenewalPlan:
        """Read the certificate and say when it is due. Raises MaterialError if unreadable, and
        RotationError at once when this CA did not issue it (without ``allow_other_issuer``):
        otherwise a wrong ``--ca-dir`` would read "not due" until the day renewal fails."""
        leaf = self._leaf()
        self._check_issuer(leaf)
        info = CertificateInfo.of(leaf)
        return RenewalPlan(
            path=str(self.cert),
            serial=info.serial,
            subject=info.subject,
            not_before=info.not_before,
            not_after=info.not_after,
            renew_at=self._renew_at(leaf),
            now=now,
        )

    # -- renewing -----------------------------------------------------------------------------
    def _check_issuer(self, leaf: x509.Certificate) -> None:
        check_issuer(
            leaf, self.ca.certificate, allow_other_issuer=self.allow_other_issuer, path=self.cert
        )

    def renew(self, now: dt.datetime) -> RenewalResult:
        """Renew now, due or not (an expired certificate only with ``allow_expired``)."""
        leaf = self._leaf()
        if not self.allow_expired:
            check_not_expired(leaf, now, path=self.cert)
        self._check_issuer(leaf)
        backdate = renewal_backdate(leaf, every=self.every, lifetime=self.lifetime)
        issued = reissue(self.ca, leaf, now=now, lifetime=self.lifetime, backdate=backdate)
        files = [
            PendingFile(self.key, issued.key_pem(), KEY_MODE),
            PendingFile(self.cert, issued.chain_pem(), CERT_MODE),
        ]
        if self.record_in is None:
            write_files(files, force=True)
        else:
            written = CertificateFiles(
                "renewed certificate", issued.certificate, self.cert, self.key
            )
            write_issued(self.record_in, [written], files, force=True, now=now)
        new = issued.certificate
        result = RenewalResult(
            cert=str(self.cert),
            key=str(self.key),
            serial=f"{new.serial_number:x}",
            previous_serial=f"{leaf.serial_number:x}",
            not_before=new.not_valid_before_utc,
            not_after=new.not_valid_after_utc,
            renew_at=self._renew_at(new),
            renewed_at=now,
        )
        self.renewals += 1
        log.info(
            "renewed %s: serial %s -> %s, valid until %s",
            self.cert,
            result.previous_serial,
            result.serial,
            rfc3339(result.not_after),
        )
        if self.hook is not None:
            try:
                self.hook(result)
            except Exception as exc:  # noqa: BLE001 (reported in the result; renewal stands)
                log.warning("renewed %s, but the hook failed: %s", self.cert, exc)
                result = dataclasses.replace(result, hook_ran=True, hook_error=str(exc))
            else:
                result = dataclasses.replace(result, hook_ran=True)
        self.last_result = result
        return result

    def renew_if_due(self, now: dt.datetime) -> RenewalResult | None:
        """Renew when the plan says so; ``None`` when not due yet."""
        plan = self.plan(now)
        return self.renew(now) if plan.due else None

    # -- the agent ------------------------------------------------------------------------------
    def step(self, now: dt.datetime, *, force: bool = False) -> float:
        """One agent iteration at ``now``: renew if due (or ``force``); return the seconds to
        sleep.

        Never raises: a failure is logged (once per distinct message), counted, kept in
        ``last_error``, and answered with a backoff delay.
        """
        try:
            plan = self.plan(now)
            if plan.due or force:
                result = self.renew(now)
                next_at = result.renew_at
            else:
                next_at = plan.renew_at
        except GrpcsecError as exc:
            self.failures += 1
            self.total_failures += 1
            if self.last_error is None or str(self.last_error) != str(exc):
                log.error("renewal of %s failed: %s", self.cert, exc)  # noqa: TRY400 (one line)
            self.last_error = exc
            return self.backoff.delay(self.failures, self._rng.random())
        self.failures = 0
        self.last_error = None
        until = (next_at - now).total_seconds()
        return max(MIN_DELAY, min(self.check_interval, until))

    def run(
        self,
        stop: threading.Event,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        max_iterations: int | None = None,
        force_first: bool = False,
        on_step: Callable[[AgentStep], None] | None = None,
    ) -> None:
        """Call :meth:`step` until ``stop`` is set (or ``max_iterations`` steps). The first step
        renews even when not due with ``force_first``; ``on_step`` hears what each step did
        (a renewal, a new failure, the delay), e.g. to print events; it runs on this thread."""
        iterations = 0
        while not stop.is_set():
            renewals, error = self.renewals, self.last_error
            delay = self.step(clock(), force=force_first and iterations == 0)
            iterations += 1
            if on_step is not None:
                failed = self.last_error is not None and self.last_error is not error
                on_step(
                    AgentStep(
                        renewed=self.last_result if self.renewals != renewals else None,
                        error=self.last_error if failed else None,
                        failures=self.failures,
                        delay=delay,
                    )
                )
            if max_iterations is not None and iterations >= max_iterations:
                return
            stop.wait(delay)

    def start(self, *, clock: Callable[[], dt.datetime] = utcnow) -> Renewer:
        """Run the agent in a daemon thread until :meth:`stop`; returns ``self``."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run,
            args=(self._stop,),
            kwargs={"clock": clock},
            daemon=True,
            name=f"grpcsec-renew {self.cert.name}",
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread started by :meth:`start`."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
