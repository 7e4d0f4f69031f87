"""The parsed policy: frozen values produced once by :mod:`grpcsec.authz.parse`.

A :class:`Policy` holds two rule lists (deny, allow) and its audit options. Every pattern is
already a :class:`~grpcsec.authz.patterns.Pattern`, header keys are lowercased, and each rule
remembers where it was written (``allow_rules[2]``) for messages. Evaluation lives in
:mod:`grpcsec.authz.engine`, which compiles a policy into indexed matchers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from grpcsec.authz.audit import AuditCondition, AuditLoggerFactory
from grpcsec.authz.patterns import Pattern

__all__ = [
    "CLAIMS_FIELD",
    "AuditLoggerSpec",
    "AuditOptions",
    "ClaimMatch",
    "HeaderMatch",
    "Policy",
    "Rule",
]

CLAIMS_FIELD = "grpcsec_claims"
"""The grpcsec extension field of ``source`` (token claims; see docs/authorization.md)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderMatch:
    """A header constraint: the request's (joined) value for ``key`` matches one of
    ``values``. ``key`` is lowercased."""

    key: str
    values: tuple[Pattern, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimMatch:
    """A token-claim constraint (grpcsec extension): one of the claim's values matches one of
    ``values``. Never matches a caller without verified token claims."""

    claim: str
    values: tuple[Pattern, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One deny or allow rule. Empty tuples mean "no constraint"; a rule with none matches every
    RPC. ``location`` is where it was written, e.g. ``allow_rules[2]``."""

    name: str
    location: str
    principals: tuple[Pattern, ...] = ()
    paths: tuple[Pattern, ...] = ()
    headers: tuple[HeaderMatch, ...] = ()
    claims: tuple[ClaimMatch, ...] = ()

    @property
    def uses_extensions(self) -> bool:
        """Whether the rule uses a grpcsec extension (so other gRPC implementations reject it)."""
        return bool(self.claims)

    def patterns(self) -> tuple[tuple[str, Pattern], ...]:
        """Every pattern of the rule with its location, in document order."""
        found: list[tuple[str, Pattern]] = [
            (f"{self.location}.source.principals[{i}]", p) for i, p in enumerate(self.principals)
        ]
        for i, claim in enumerate(self.claims):
            found += [
                (f"{self.location}.source.{CLAIMS_FIELD}[{i}].values[{j}]", p)
                for j, p in enumerate(claim.values)
            ]
        found += [(f"{self.location}.request.paths[{i}]", p) for i, p in enumerate(self.paths)]
        for i, header in enumerate(self.headers):
            found += [
                (f"{self.location}.request.headers[{i}].values[{j}]", p)
                for j, p in enumerate(header.values)
            ]
        return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditLoggerSpec:
    """One configured audit logger: its type, its config as written and as its factory parsed
    it, and the factory that builds it."""

    type_name: str
    config: Mapping[str, Any]
    is_optional: bool = False
    parsed_config: Any = field(default=None, compare=False, repr=False)
    factory: AuditLoggerFactory[Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditOptions:
    """``audit_logging_options``: the condition and the loggers that will be built.
    ``skipped`` names optional logger types that were not registered (dropped, per A59)."""

    condition: AuditCondition = AuditCondition.NONE
    loggers: tuple[AuditLoggerSpec, ...] = ()
    skipped: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """Whether anything can ever be logged."""
        return self.condition is not AuditCondition.NONE and bool(self.loggers)


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """A valid A43 policy (with grpcsec extensions, if any).

    ``warnings`` are located remarks about a valid policy that probably does not say what was
    meant (``*abc*`` patterns, paths that can never name a gRPC method...).
    """

    name: str
    allow_rules: tuple[Rule, ...]
    deny_rules: tuple[Rule, ...] = ()
    audit: AuditOptions = AuditOptions()
    warnings: tuple[str, ...] = ()

    @property
    def uses_extensions(self) -> bool:
        """Whether any rule uses a grpcsec extension (``grpcsec_claims``)."""
        return any(rule.uses_extensions for rule in (*self.deny_rules, *self.allow_rules))

    def summary(self) -> dict[str, object]:
        """A JSON-ready description (``grpcsec policy check --json``)."""
        return {
            "policy_name": self.name,
            "deny_rules": [rule.name for rule in self.deny_rules],
            "allow_rules": [rule.name for rule in self.allow_rules],
            "audit_condition": self.audit.condition.value,
            "audit_loggers": [spec.type_name for spec in self.audit.loggers],
            "skipped_audit_loggers": list(self.audit.skipped),
            "extensions": [CLAIMS_FIELD] if self.uses_extensions else [],
            "warnings": list(self.warnings),
        }
