"""The A43 policy as one check of the authentication guard (:mod:`grpcsec.interceptors`).

No grpc import: the guard builds the :class:`~grpcsec.call.CallInfo` inside the wrapped
handler (streams once, before the handler starts) and runs the checks in order; this one comes
after the authentication checks, so it sees their verified token claims. A denied call raises
:class:`~grpcsec.errors.AuthorizationError`, which the guard answers with ``PERMISSION_DENIED``
and a generic message; the rule that decided goes to the server log (and to the policy's audit
loggers through :meth:`Authorizer.evaluate`). ``on_decision`` lets metrics count decisions.
"""

from __future__ import annotations

from collections.abc import Callable

from grpcsec.authz.authorizer import Authorizer, explain
from grpcsec.authz.engine import Decision
from grpcsec.call import CallInfo
from grpcsec.errors import AuthorizationError
from grpcsec.text import get_logger

__all__ = ["AuthorizeCheck"]

log = get_logger("grpcsec.authz")


class AuthorizeCheck:
    """Allow or deny each call by the :class:`Authorizer`'s current policy (fail closed)."""

    def __init__(
        self,
        authorizer: Authorizer,
        *,
        on_decision: Callable[[Decision], None] | None = None,
    ) -> None:
        self.authorizer = authorizer
        self._on_decision = on_decision

    def check(self, call: CallInfo) -> CallInfo | None:
        """Raise :class:`AuthorizationError` unless the policy allows ``call``."""
        decision = self.authorizer.evaluate(call)
        if self._on_decision is not None:
            self._on_decision(decision)
        if not decision.allowed:
            raise AuthorizationError(
                f"{call.method} from {call.peer.display}: {explain(decision)}",
                reason="policy_denied",
            )
        return None
