"""Why a call was denied by default: the allow rule that came nearest, and what it lacked.

The engine answers allow or deny fast and says nothing about rules that did not match. A person
reading a deny wants the opposite: "which of my allow rules was meant to let this through, and
which condition stopped it". :func:`nearest_allow_rule` evaluates every condition of every allow
rule separately (paths, principals, each header, each claim) and returns the nearest rule: one
whose paths match the method before one whose paths do not, then the fewest failed conditions,
then the first in the document, with each failed condition spelled out: what
the rule wanted and what the call had. It is for explanations (``grpcsec policy eval``), not for
the per-call path: it does no indexing and allocates freely. No grpc import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grpcsec.authz.model import CLAIMS_FIELD, Policy, Rule
from grpcsec.authz.patterns import PatternSet
from grpcsec.authz.request import claim_values, joined_headers, peer_principals
from grpcsec.call import CallInfo

__all__ = ["FailedCondition", "NearestRule", "nearest_allow_rule"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FailedCondition:
    """One condition of a rule that the call did not meet."""

    condition: str
    """Where it is written, e.g. ``allow_rules[0].request.headers[0]``."""
    wanted: tuple[str, ...]
    """The patterns as written."""
    got: tuple[str, ...] | None
    """What the call had (``None``: nothing at all, e.g. the header was absent)."""
    subject: str
    """What was compared: ``path``, ``principal``, ``header x-tenant``, ``claim scope``."""

    def describe(self) -> str:
        """One line: ``header x-tenant: absent; wanted acme, acme-*``."""
        have = "absent" if not self.got else ", ".join(self.got)
        return f"{self.subject}: {have}; wanted {', '.join(self.wanted)}"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "condition": self.condition,
            "subject": self.subject,
            "wanted": list(self.wanted),
            "got": None if self.got is None else list(self.got),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NearestRule:
    """The allow rule that came nearest to allowing the call."""

    name: str
    location: str
    failed: tuple[FailedCondition, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "name": self.name,
            "location": self.location,
            "failed": [f.to_json() for f in self.failed],
        }


def _texts(patterns: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(p.text for p in patterns)


def _failures(rule: Rule, call: CallInfo, headers: Mapping[str, str]) -> list[FailedCondition]:
    failed: list[FailedCondition] = []
    if rule.paths and not PatternSet(rule.paths).matches(call.method):
        failed.append(
            FailedCondition(
                condition=f"{rule.location}.request.paths",
                wanted=_texts(rule.paths),
                got=(call.method,),
                subject="path",
            )
        )
    if rule.principals:
        principals = peer_principals(call.peer)
        if principals is None or not PatternSet(rule.principals).matches_any(principals):
            failed.append(
                FailedCondition(
                    condition=f"{rule.location}.source.principals",
                    wanted=_texts(rule.principals),
                    got=principals,
                    subject="principal",
                )
            )
    for i, header in enumerate(rule.headers):
        value = headers.get(header.key)
        if value is None or not PatternSet(header.values).matches(value):
            failed.append(
                FailedCondition(
                    condition=f"{rule.location}.request.headers[{i}]",
                    wanted=_texts(header.values),
                    got=None if value is None else (value,),
                    subject=f"header {header.key}",
                )
            )
    for i, claim in enumerate(rule.claims):
        values = () if call.claims is None else tuple(claim_values(call.claims, claim.claim))
        if call.claims is None or not PatternSet(claim.values).matches_any(values):
            failed.append(
                FailedCondition(
                    condition=f"{rule.location}.source.{CLAIMS_FIELD}[{i}]",
                    wanted=_texts(claim.values),
                    got=values or None,
                    subject=f"claim {claim.claim}",
                )
            )
    return failed


def nearest_allow_rule(policy: Policy, call: CallInfo) -> NearestRule | None:
    """The allow rule with the fewest failed conditions for ``call`` (``None`` when the policy
    has no allow rules, or when one matches: then nothing was near, it was allowed)."""
    headers = joined_headers(call.metadata)
    best: NearestRule | None = None
    best_rank: tuple[bool, int] | None = None
    for rule in policy.allow_rules:
        failed = _failures(rule, call, headers)
        if not failed:
            return None
        # A rule written for this method is nearer than one for another method, however few
        # conditions the other one failed; then the fewest failures; then document order.
        rank = (any(f.subject == "path" for f in failed), len(failed))
        if best_rank is None or rank < best_rank:
            best, best_rank = (
                NearestRule(name=rule.name, location=rule.location, failed=tuple(failed)),
                rank,
            )
    return best
