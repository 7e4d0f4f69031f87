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

import datetime as dt
import os
import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from grpcsec.errors import ConfigurationError, RotationError
from grpcsec.material import StrPath
from grpcsec.pki import (
    CERT_MODE,
    KEY_MODE,
    CertificateAuthority,
    PendingFile,
    load_certificate_file,
    write_files,
)
from grpcsec.pki.layout import CertificateFiles
from grpcsec.pki.registry import write_issued
from grpcsec.rotation.agent import RenewalAgent
from grpcsec.rotation.renew_plan import (
    Backoff,
    RenewalPlan,
    RenewalResult,
    check_issuer,
    check_not_expired,
    plan_for,
    reissue,
    renewal_backdate,
    renewal_time,
    rfc3339,
)
from grpcsec.text import get_logger

__all__ = ["ExecHook", "Renewer"]

log = get_logger("grpcsec.renew")


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


class Renewer(RenewalAgent):
    """Keeps the certificate at ``cert`` (with its key at ``key``) renewed by ``ca``.

    Use :meth:`plan` / :meth:`renew_if_due` / :meth:`renew` for one-shot work, and the agent
    loop of :class:`~grpcsec.rotation.agent.RenewalAgent` (:meth:`step`, :meth:`run`,
    :meth:`start` / :meth:`stop`) otherwise. ``hook`` runs after every renewal (an
    :class:`ExecHook`, or any callable). ``rng`` draws the jitter (seed it in tests); the draw
    is fixed per certificate serial, so plans are stable. ``record_in`` is the CA directory
    whose ``issued.jsonl`` records each renewal (:func:`grpcsec.pki.registry.write_issued`, the
    write path of every issuing command); ``None`` records nothing (a CA held in memory).

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
        super().__init__(
            cert, key, hook=hook, backoff=backoff, check_interval=check_interval, rng=rng
        )
        self.ca = ca
        self.lifetime = lifetime
        self.every = every
        self.allow_expired = allow_expired
        self.allow_other_issuer = allow_other_issuer
        self.record_in = Path(record_in) if record_in is not None else None

    # -- planning -----------------------------------------------------------------------------
    def _renew_at(self, leaf: x509.Certificate) -> dt.datetime:
        return renewal_time(
            leaf.not_valid_before_utc,
            leaf.not_valid_after_utc,
            every=self.every,
            draw=self.draw(f"{leaf.serial_number:x}"),
        )

    def _leaf(self) -> x509.Certificate:
        return load_certificate_file(self.cert, allow_der=False)[0]

    def plan(self, now: dt.datetime) -> RenewalPlan:
        """Read the certificate and say when it is due. Raises MaterialError if unreadable, and
        RotationError at once when this CA did not issue it (without ``allow_other_issuer``):
        otherwise a wrong ``--ca-dir`` would read "not due" until the day renewal fails."""
        leaf = self._leaf()
        self._check_issuer(leaf)
        return plan_for(leaf, self.cert, renew_at=self._renew_at(leaf), now=now)

    # -- renewing -----------------------------------------------------------------------------
    def _check_issuer(self, leaf: x509.Certificate) -> None:
        check_issuer(
            leaf, self.ca.certificate, allow_other_issuer=self.allow_other_issuer, path=self.cert
        )

    def issue(self, now: dt.datetime) -> RenewalResult:
        """Re-issue now, due or not (an expired certificate only with ``allow_expired``); the
        hook is :meth:`renew`'s."""
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
        log.info(
            "renewed %s: serial %s -> %s, valid until %s",
            self.cert,
            result.previous_serial,
            result.serial,
            rfc3339(result.not_after),
        )
        return result
