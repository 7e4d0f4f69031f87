"""A CRL's freshness judged like a certificate's expiry. No grpc, no I/O, no clock.

A CRL has no "not after", but its next update plays that part: once it has passed, a verifier
that denies undetermined revocation (``grpcsec serve --crl``, grpc-go's ``advancedtls`` with
``DenyUndetermined``, ``openssl verify -crl_check``) refuses every certificate of that issuer.
:class:`CrlWindow` exposes this-update..next-update as a validity window, so the same
:func:`~grpcsec.monitor.thresholds.judge` and the same ``--warn``/``--crit`` thresholds apply,
and :class:`CheckedCrl` carries the verdict into ``grpcsec check``.

Not judged here: whether the CRL is signed by the CA you trust (``check`` has no trust anchor;
``grpcsec verify --crl`` and the server do that).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from grpcsec.monitor.sources import CrlFile
from grpcsec.monitor.thresholds import Status, Thresholds, judge
from grpcsec.pki import format_duration
from grpcsec.pki.crl import RevocationList
from grpcsec.pki.inspect import common_name
from grpcsec.pki.validity import elapsed_fraction

__all__ = ["CheckedCrl", "CrlWindow", "judge_crl"]


def _rfc3339(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class CrlWindow:
    """A CRL's this-update..next-update as a :class:`~grpcsec.monitor.thresholds.Window`."""

    not_before: dt.datetime
    not_after: dt.datetime

    def time_left(self, now: dt.datetime) -> dt.timedelta:
        """Time until the next update (negative once past it)."""
        return self.not_after - now

    def lifetime_used(self, now: dt.datetime) -> float:
        """Share of this-update..next-update elapsed at ``now`` (0 before, above 1 after)."""
        return elapsed_fraction(self.not_before, self.not_after, now)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedCrl:
    """One CRL and its verdict at ``now``; ``source`` is the file it was read from."""

    target: str
    source: str
    crl: RevocationList
    status: Status
    reason: str

    @property
    def issuer_common_name(self) -> str | None:
        """The issuer's CN, when it has one."""
        return common_name(self.crl.issuer)

    @property
    def window(self) -> CrlWindow | None:
        """The this-update..next-update window (``None``: the CRL has no next update)."""
        if self.crl.next_update is None:
            return None
        return CrlWindow(not_before=self.crl.this_update, not_after=self.crl.next_update)

    def to_json(self, now: dt.datetime) -> dict[str, object]:
        """A JSON-ready dict, with the certificates' conventions (RFC 3339 UTC times,
        ``seconds_left``, ``time_left``, ``lifetime_used``), the next update as the deadline."""
        window = self.window
        crl = self.crl
        return {
            "target": self.target,
            "source": self.source,
            "status": self.status.value,
            "reason": self.reason,
            "issuer": crl.issuer.rfc4514_string(),
            "issuer_common_name": self.issuer_common_name,
            "authority_key_id": None
            if crl.authority_key_id is None
            else crl.authority_key_id.hex(),
            "number": crl.number,
            "this_update": _rfc3339(crl.this_update),
            "next_update": None if crl.next_update is None else _rfc3339(crl.next_update),
            "seconds_left": None if window is None else int(window.time_left(now).total_seconds()),
            "time_left": None if window is None else format_duration(window.time_left(now)),
            "lifetime_used": None if window is None else round(window.lifetime_used(now), 4),
            "revoked": len(crl.entries),
        }


def judge_crl(found: CrlFile, thresholds: Thresholds, now: dt.datetime) -> CheckedCrl:
    """The verdict on one CRL: the certificate thresholds applied to its update window.

    Past the next update is ``expired`` (critical) with the fix; a CRL without a next update
    never goes stale by this measure and is ``ok`` with a note saying so."""
    crl = found.crl
    if crl.next_update is None:
        status, reason = Status.OK, "no next update: it never goes stale (nor is it refreshed)"
    else:
        window = CrlWindow(not_before=crl.this_update, not_after=crl.next_update)
        status, reason = judge(window, thresholds, now)
        if status is Status.EXPIRED:
            reason = (
                f"past its next update ({reason}); verifiers now refuse this issuer's "
                "certificates: publish a fresh CRL (grpcsec ca crl)"
            )
        elif status is not Status.OK:
            reason = f"next update {reason}"
    return CheckedCrl(
        target=found.target, source=found.origin, crl=crl, status=status, reason=reason
    )
