"""The denial vocabulary: every reason a check in src/ can raise is a DenialReason, so logs,
counters, Prometheus labels and /status use one closed set of words."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from grpcsec.authn.verified import REASONS
from grpcsec.denial import DenialCode, DenialReason, denial_of
from grpcsec.errors import AuthenticationError, AuthorizationError

SRC = Path(__file__).resolve().parents[1] / "src" / "grpcsec"


CHECKS = [
    *sorted((SRC / "authn").rglob("*.py")),
    *sorted((SRC / "authz").rglob("*.py")),
    *sorted((SRC / "revocation").rglob("*.py")),
    SRC / "call.py",
    SRC / "interceptors.py",
]
"""Where checks that refuse calls live (doctor and monitor use ``reason=`` for other things)."""


def reason_literals() -> set[str]:
    """Every string given as ``reason=`` to a call in the checks' modules."""
    found: set[str] = set()
    for path in CHECKS:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "reason":
                        for value in ast.walk(keyword.value):
                            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                                found.add(value.value)
    return found


def test_every_reason_raised_in_src_is_in_the_enum() -> None:
    literals = reason_literals()
    assert "certificate_not_allowed" in literals  # the scan finds them at all
    known = {reason.value for reason in DenialReason}
    assert literals <= known, literals - known
    assert set(REASONS) <= known


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        (AuthenticationError("x", reason="expired"), DenialCode.UNAUTHENTICATED, "expired"),
        (AuthenticationError("x"), DenialCode.UNAUTHENTICATED, "invalid"),
        (
            AuthorizationError("x", reason="policy_denied"),
            DenialCode.PERMISSION_DENIED,
            "policy_denied",
        ),
        (AuthorizationError("x"), DenialCode.PERMISSION_DENIED, "denied"),
        # a reason nobody listed is counted under the generic one (bounded label values)
        (
            AuthorizationError("x", reason="made_up_by_a_plugin"),
            DenialCode.PERMISSION_DENIED,
            "denied",
        ),
        (
            AuthenticationError("x", reason='evil"} 1\nfake 2'),
            DenialCode.UNAUTHENTICATED,
            "invalid",
        ),
        (KeyError("secret"), DenialCode.INTERNAL, "internal_error"),
    ],
)
def test_errors_become_one_denial(error: Exception, code: DenialCode, reason: str) -> None:
    denial = denial_of(error, "/pkg.S/M")
    assert denial.code is code
    assert denial.reason.value == reason
    assert denial.method == "/pkg.S/M"


def test_an_internal_error_does_not_carry_its_text_into_the_denial() -> None:
    denial = denial_of(KeyError("token=abc123"), "/pkg.S/M")
    assert "abc123" not in denial.message
    assert denial.to_json()["message"] == "check failed with KeyError"


def test_peer_details_are_generic() -> None:
    assert {code.details for code in DenialCode} == {
        "authentication failed",
        "permission denied",
        "internal error",
    }
