"""A policy compiled once into indexed matchers, and the decision it gives for a request.

Evaluation (authz-a43.md §6, §7): if any deny rule matches, the RPC is denied; otherwise, if any
allow rule matches, it is allowed; otherwise it is denied (default deny). The reported rule is
the **first matching rule in document order**, by its bare name (``None`` for a default deny).

Compilation makes a call cost independent of the number of rules that cannot apply to its method:

* each rule list is indexed by its path patterns: exact paths in a dict, prefix and suffix
  paths in dicts probed once per distinct pattern length, ``*`` and path-less rules in lists
  that every call considers. Only the rules whose path constraint holds are candidates;
* the candidates of a method are memoized in a bounded per-engine cache (a server has few
  methods; an unbounded stream of made-up method names only ever costs the index walk);
* each candidate's remaining constraints are :class:`~grpcsec.authz.patterns.PatternSet` s
  (set lookups and single ``startswith``/``endswith`` calls), and the peer's principals and the
  joined headers are computed at most once per call, and only when a candidate needs them;
* decisions are built at compile time, so a call allocates only its small scratch object.

:meth:`Engine.evaluate` is pure. :meth:`Engine.authorize` also runs the audit loggers under A59's
per-engine conditions; a logger that raises is counted and reported in the server log and never
changes the decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grpcsec.authz.audit import AuditCondition, AuditEvent, AuditLogger
from grpcsec.authz.model import Policy, Rule
from grpcsec.authz.patterns import PatternKind, PatternSet, is_present
from grpcsec.authz.request import claim_values, joined_headers, peer_principals
from grpcsec.call import CallInfo
from grpcsec.errors import PolicyError
from grpcsec.text import get_logger

__all__ = ["Decision", "Engine", "compile_policy"]

log = get_logger("grpcsec.authz")

_CACHE_LIMIT = 4096
_REPORT_EVERY = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The outcome for one RPC: allowed or not, the policy, and the rule that decided it
    (``None`` when no allow rule matched: a default deny)."""

    allowed: bool
    policy_name: str
    matched_rule: str | None = None

    @property
    def decision(self) -> str:
        """``"allow"`` or ``"deny"``."""
        return "allow" if self.allowed else "deny"

    @property
    def default_deny(self) -> bool:
        """Denied because no allow rule matched (rather than by a deny rule)."""
        return not self.allowed and self.matched_rule is None

    def to_json(self) -> dict[str, object]:
        """``{"decision", "matched_rule", "policy_name"}`` (``grpcsec policy eval --json``)."""
        return {
            "decision": self.decision,
            "matched_rule": self.matched_rule,
            "policy_name": self.policy_name,
        }


class _Scratch:
    """Per-call facts, computed lazily and at most once."""

    __slots__ = ("headers", "principals", "principals_known", "request")

    def __init__(self, request: CallInfo) -> None:
        self.request = request
        self.principals_known = False
        self.principals: tuple[str, ...] | None = None
        self.headers: dict[str, str] | None = None


class _CompiledRule:
    """A rule's non-path constraints (the index already checked its paths)."""

    __slots__ = ("claims", "decision", "headers", "name", "position", "principals")

    def __init__(self, rule: Rule, position: int, decision: Decision) -> None:
        self.name = rule.name
        self.position = position
        self.decision = decision
        self.principals = PatternSet(rule.principals) if rule.principals else None
        self.headers = tuple((h.key, PatternSet(h.values)) for h in rule.headers)
        self.claims = tuple((c.claim, PatternSet(c.values)) for c in rule.claims)

    def matches(self, scratch: _Scratch) -> bool:
        if self.principals is not None:
            if not scratch.principals_known:
                scratch.principals = peer_principals(scratch.request.peer)
                scratch.principals_known = True
            identities = scratch.principals
            if identities is None or not self.principals.matches_any(identities):
                return False
        if self.headers:
            headers = scratch.headers
            if headers is None:
                headers = scratch.headers = joined_headers(scratch.request.metadata)
            for key, patterns in self.headers:
                value = headers.get(key)
                if value is None or not patterns.matches(value):
                    return False
        if self.claims:
            claims = scratch.request.claims
            if claims is None:
                return False
            for claim, patterns in self.claims:
                if not patterns.matches_any(claim_values(claims, claim)):
                    return False
        return True


class _PathIndex:
    """The rules of one list by path constraint; :meth:`candidates` is exact: a rule is
    returned iff one of its path patterns (or the absence of any) admits the method."""

    def __init__(self, rules: Sequence[Rule], compiled: Sequence[_CompiledRule]) -> None:
        self._compiled = tuple(compiled)
        self._unconstrained: list[int] = []
        self._presence: list[int] = []
        self._exact: dict[str, list[int]] = {}
        self._prefix: dict[str, list[int]] = {}
        self._suffix: dict[str, list[int]] = {}
        for position, rule in enumerate(rules):
            if not rule.paths:
                self._unconstrained.append(position)
            for pattern in rule.paths:
                if pattern.kind is PatternKind.EXACT:
                    self._exact.setdefault(pattern.value, []).append(position)
                elif pattern.kind is PatternKind.PREFIX:
                    self._prefix.setdefault(pattern.value, []).append(position)
                elif pattern.kind is PatternKind.SUFFIX:
                    self._suffix.setdefault(pattern.value, []).append(position)
                else:
                    self._presence.append(position)
        self._prefix_lengths = tuple(sorted({len(p) for p in self._prefix}))
        self._suffix_lengths = tuple(sorted({len(s) for s in self._suffix}))

    def candidates(self, method: str) -> tuple[_CompiledRule, ...]:
        positions = set(self._unconstrained)
        hit = self._exact.get(method)
        if hit:
            positions.update(hit)
        size = len(method)
        for length in self._prefix_lengths:
            if length > size:
                break
            hit = self._prefix.get(method[:length])
            if hit:
                positions.update(hit)
        for length in self._suffix_lengths:
            if length > size:
                break
            hit = self._suffix.get(method[size - length :])
            if hit:
                positions.update(hit)
        if self._presence and is_present(method):
            positions.update(self._presence)
        return tuple(self._compiled[p] for p in sorted(positions))


class Engine:
    """A compiled :class:`~grpcsec.authz.model.Policy` with its audit loggers built.

    Immutable after construction and safe to share between threads; a reload builds a new
    engine and swaps it in, so in-flight RPCs finish with the engine they started with.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.name = policy.name
        deny = [
            _CompiledRule(
                r, i, Decision(allowed=False, policy_name=policy.name, matched_rule=r.name)
            )
            for i, r in enumerate(policy.deny_rules)
        ]
        allow = [
            _CompiledRule(
                r, i, Decision(allowed=True, policy_name=policy.name, matched_rule=r.name)
            )
            for i, r in enumerate(policy.allow_rules)
        ]
        self._deny = _PathIndex(policy.deny_rules, deny)
        self._allow = _PathIndex(policy.allow_rules, allow)
        self._default_deny = Decision(allowed=False, policy_name=policy.name)
        self._cache: dict[str, tuple[tuple[_CompiledRule, ...], tuple[_CompiledRule, ...]]] = {}
        self._condition = policy.audit.condition
        self._loggers = self._build_loggers(policy) if policy.audit.active else ()
        self.audit_failures = 0

    @staticmethod
    def _build_loggers(policy: Policy) -> tuple[tuple[str, AuditLogger], ...]:
        loggers: list[tuple[str, AuditLogger]] = []
        for index, spec in enumerate(policy.audit.loggers):
            location = f"audit_logging_options.audit_loggers[{index}]"
            if spec.factory is None:
                raise PolicyError("has no logger factory", location=location)
            try:
                loggers.append((spec.type_name, spec.factory.build(spec.parsed_config)))
            except (ValueError, TypeError, OSError) as exc:
                raise PolicyError(
                    f"the audit logger cannot be built: {exc}", location=location
                ) from exc
        return tuple(loggers)

    def _candidates(
        self, method: str
    ) -> tuple[tuple[_CompiledRule, ...], tuple[_CompiledRule, ...]]:
        found = (self._deny.candidates(method), self._allow.candidates(method))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[method] = found
        return found

    def evaluate(self, request: CallInfo) -> Decision:
        """The decision for ``request``; pure (no audit, no I/O)."""
        candidates = self._cache.get(request.method) or self._candidates(request.method)
        scratch = _Scratch(request)
        for rule in candidates[0]:
            if rule.matches(scratch):
                return rule.decision
        for rule in candidates[1]:
            if rule.matches(scratch):
                return rule.decision
        return self._default_deny

    def audit(self, request: CallInfo, decision: Decision) -> None:
        """Log ``decision`` to the policy's audit loggers if its condition says so."""
        if not self._loggers:
            return
        by_deny_rule = not decision.allowed and decision.matched_rule is not None
        condition = self._condition.deny_engine if by_deny_rule else self._condition.allow_engine
        if not condition.covers(authorized=decision.allowed):
            return
        event = AuditEvent(
            rpc_method=request.method,
            principal=request.peer.spiffe_id or "",
            policy_name=decision.policy_name,
            matched_rule=decision.matched_rule or "",
            authorized=decision.allowed,
        )
        for type_name, logger in self._loggers:
            self._emit(type_name, logger, event)

    def _emit(self, type_name: str, logger: AuditLogger, event: AuditEvent) -> None:
        try:
            logger.log(event)
        except Exception as exc:  # noqa: BLE001 (a logger can never change a decision)
            self.audit_failures += 1
            if self.audit_failures % _REPORT_EVERY == 1:
                log.warning(
                    "audit logger %s of policy %r failed (%d failures so far): %s: %s",
                    type_name,
                    self.name,
                    self.audit_failures,
                    type(exc).__name__,
                    exc,
                )

    def authorize(self, request: CallInfo) -> Decision:
        """:meth:`evaluate`, then :meth:`audit`; what an interceptor calls once per RPC."""
        decision = self.evaluate(request)
        self.audit(request, decision)
        return decision

    @property
    def condition(self) -> AuditCondition:
        """The policy's audit condition."""
        return self._condition

    def __repr__(self) -> str:
        return (
            f"Engine(policy={self.name!r}, deny_rules={len(self.policy.deny_rules)}, "
            f"allow_rules={len(self.policy.allow_rules)})"
        )


def compile_policy(policy: Policy) -> Engine:
    """Compile ``policy`` (raises :class:`PolicyError` if an audit logger cannot be built)."""
    return Engine(policy)
