"""AuthorizeCheck evaluates the one call description the authentication checks produced.

There is no second request value: the :class:`~grpcsec.call.CallInfo` a token check returned
(with its verified claims) is what the policy sees, and ``grpcsec.authz.Request`` is the same
class. A peer given as a function is built only when a rule needs it.
"""

from __future__ import annotations

import pytest

from grpcsec.authz import Authorizer, Request
from grpcsec.authz.check import AuthorizeCheck
from grpcsec.call import CallInfo
from grpcsec.errors import AuthorizationError
from grpcsec.identity import Peer
from tests.authz.conftest import METHOD, TLS_NO_CERT, policy_json

CLAIMS_RULE = {
    "name": "alice",
    "source": {"grpcsec_claims": [{"claim": "sub", "values": ["alice"]}]},
}


def test_request_is_the_one_call_description() -> None:
    assert Request is CallInfo
    call = Request(method=METHOD, peer=TLS_NO_CERT)
    assert isinstance(call, CallInfo)
    assert call.metadata == ()


def test_the_check_sees_the_claims_a_token_check_attached() -> None:
    check = AuthorizeCheck(Authorizer.from_policy(policy_json(allow=[CLAIMS_RULE])))
    call = CallInfo(method=METHOD, peer=TLS_NO_CERT)
    assert check.check(call.with_claims({"sub": "alice"})) is None
    with pytest.raises(AuthorizationError):
        check.check(call)  # the control: no verified token, no claim matches
    with pytest.raises(AuthorizationError):
        check.check(call.with_claims({"sub": "mallory"}))


def test_a_peer_source_is_only_called_when_a_rule_needs_the_peer() -> None:
    built: list[Peer] = []

    def source() -> Peer:
        built.append(TLS_NO_CERT)
        return TLS_NO_CERT

    by_path = {"name": "any", "request": {"paths": [METHOD]}}
    check = AuthorizeCheck(Authorizer.from_policy(policy_json(allow=[by_path])))
    assert check.check(CallInfo(method=METHOD, peer_source=source)) is None
    by_principal = {"name": "p", "source": {"principals": [""]}}
    check = AuthorizeCheck(Authorizer.from_policy(policy_json(allow=[by_principal])))
    assert check.check(CallInfo(method=METHOD, peer_source=source)) is None
    assert len(built) == 1  # the control: the principal rule did build it
