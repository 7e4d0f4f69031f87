"""The renewal agent loop, shared by every certificate source that renews by itself.

:class:`RenewalAgent` is what ``grpcsec renew`` (a local CA, :class:`~grpcsec.rotation.Renewer`)
and ``grpcsec acme renew`` (an ACME CA, :class:`grpcsec.acme.AcmeRenewer`) have in common: a
subclass says *when* (:meth:`RenewalAgent.plan`) and *how* (:meth:`RenewalAgent.issue`); this
class runs the hook after each renewal, counts renewals and failures, backs off after a failure
(:class:`~grpcsec.rotation.renew_plan.Backoff`, jittered), and loops: :meth:`step` (one
iteration, never raises), :meth:`run` (until an event is set), :meth:`start` / :meth:`stop`
(a daemon thread). The loop never sleeps less than :data:`MIN_DELAY`, so a plan that is always
due cannot become a hot loop.

Time is a parameter (``now``) everywhere except :meth:`run`, which takes a clock. What is not
done here: deciding when a certificate is due, issuing it, writing files (the subclass's).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import threading
from collections.abc import Callable
from pathlib import Path

from grpcsec.errors import ConfigurationError, GrpcsecError
from grpcsec.material import StrPath
from grpcsec.pki import utcnow
from grpcsec.rotation.renew_plan import AgentStep, Backoff, RenewalPlan, RenewalResult
from grpcsec.text import get_logger

__all__ = ["MIN_DELAY", "RenewalAgent"]

log = get_logger("grpcsec.renew")

MIN_DELAY = 0.5  # seconds between agent steps at least: never a hot loop


class RenewalAgent:
    """The agent loop around a certificate at ``cert`` (key at ``key``); see the module
    docstring. ``hook`` runs after every renewal (its failure is reported in
    ``RenewalResult.hook_error`` and does not undo the renewal); ``rng`` draws the jitter.

    Counters for metrics and status: ``renewals``, ``failures`` (consecutive),
    ``total_failures``, ``last_result``, ``last_error``, ``next_renewal`` (the renewal time of
    the last plan or renewal, ``None`` before the first step).
    """

    def __init__(
        self,
        cert: StrPath,
        key: StrPath,
        *,
        hook: Callable[[RenewalResult], None] | None = None,
        backoff: Backoff | None = None,
        check_interval: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        if check_interval <= 0:
            raise ConfigurationError("the check interval must be positive")
        self.cert = Path(cert)
        self.key = Path(key)
        self.hook = hook
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
        self.next_renewal: dt.datetime | None = None

    # -- what a subclass provides ---------------------------------------------------------------
    def plan(self, now: dt.datetime) -> RenewalPlan:
        """Read the certificate and say when it is due (raise a GrpcsecError if unreadable)."""
        raise NotImplementedError

    def issue(self, now: dt.datetime) -> RenewalResult:
        """Obtain and write the new certificate and key, due or not; the result without the
        hook fields (:meth:`renew` runs the hook)."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------
    def draw(self, serial: str) -> float:
        """The jitter draw in [0, 1) for the certificate with ``serial``: fixed per serial, so
        plans are stable from one step to the next."""
        if serial not in self._draws:
            if len(self._draws) > 64:
                self._draws.clear()
            self._draws[serial] = self._rng.random()
        return self._draws[serial]

    def renew(self, now: dt.datetime) -> RenewalResult:
        """Renew now (:meth:`issue`), then run the hook; the result says how the hook went."""
        result = self.issue(now)
        self.renewals += 1
        self.next_renewal = result.renew_at
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
        self.next_renewal = plan.renew_at
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
            self.next_renewal = plan.renew_at
            next_at = self.renew(now).renew_at if plan.due or force else plan.renew_at
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

    def start(self, *, clock: Callable[[], dt.datetime] = utcnow) -> RenewalAgent:
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
