"""The object an authorization interceptor holds: ``evaluate(request) -> Decision``, audited.

::

    authorizer = Authorizer.from_file("authz.json", reload_interval=30)
    decision = authorizer.evaluate(CallInfo(method=..., peer=peer(context), metadata=...))
    if not decision.allowed:
        ...  # PERMISSION_DENIED with a generic message; decision.explanation to the server log

Each call reads the provider's current engine once, so a reload between two RPCs is seen by the
second and never half-applied to one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from grpcsec.authz.audit import AuditLoggerRegistry
from grpcsec.authz.engine import Decision, Engine
from grpcsec.authz.model import Policy
from grpcsec.authz.parse import load_policy
from grpcsec.authz.provider import (
    FileWatcherPolicyProvider,
    PolicyProvider,
    PolicySource,
    StaticPolicyProvider,
)
from grpcsec.call import CallInfo

__all__ = ["DENIED_MESSAGE", "Authorizer", "explain"]

DENIED_MESSAGE = "grpcsec: unauthorized RPC request rejected"
"""The generic status message for a denied RPC; which rule fired goes to the server log only."""


def explain(decision: Decision) -> str:
    """One line for the server log: which rule decided, or that none allowed the RPC."""
    if decision.allowed:
        return f'allowed by rule "{decision.matched_rule}" of policy "{decision.policy_name}"'
    if decision.matched_rule is not None:
        return f'denied by rule "{decision.matched_rule}" of policy "{decision.policy_name}"'
    return f'denied: no allow rule of policy "{decision.policy_name}" matched'


class Authorizer:
    """Evaluates requests against the provider's current policy and audits the decisions."""

    def __init__(self, provider: PolicyProvider) -> None:
        self._provider = provider

    @classmethod
    def from_policy(
        cls,
        policy: PolicySource,
        *,
        registry: AuditLoggerRegistry | None = None,
        extensions: bool = True,
    ) -> Authorizer:
        """A fixed policy (JSON text, mapping or :class:`Policy`); invalid: PolicyError."""
        return cls(StaticPolicyProvider(policy, registry=registry, extensions=extensions))

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        reload_interval: float | dt.timedelta | None = None,
        on_update: Callable[[Policy], None] | None = None,
        registry: AuditLoggerRegistry | None = None,
        extensions: bool = True,
    ) -> Authorizer:
        """A policy file, read once, or watched every ``reload_interval`` when given.

        ``on_update`` is called with each policy that takes effect. Read once, it is called
        before this returns and an exception from it propagates; watched, it runs on the
        watcher's thread and an exception from it is logged and ignored.
        """
        if reload_interval is None:
            policy = load_policy(path, registry=registry, extensions=extensions)
            if on_update is not None:
                on_update(policy)
            return cls(StaticPolicyProvider(policy))
        return cls(
            FileWatcherPolicyProvider(
                path,
                interval=reload_interval,
                on_update=on_update,
                registry=registry,
                extensions=extensions,
            )
        )

    @property
    def provider(self) -> PolicyProvider:
        """Where the policy comes from."""
        return self._provider

    @property
    def engine(self) -> Engine:
        """The engine in force now."""
        return self._provider.engine

    @property
    def policy(self) -> Policy:
        """The policy in force now."""
        return self._provider.engine.policy

    def evaluate(self, request: CallInfo) -> Decision:
        """Decide one RPC and audit the decision per the policy's audit options."""
        return self._provider.engine.authorize(request)

    def close(self) -> None:
        """Stop the provider's background work (a file watcher's thread)."""
        self._provider.close()

    def __enter__(self) -> Authorizer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Authorizer({self._provider!r})"
