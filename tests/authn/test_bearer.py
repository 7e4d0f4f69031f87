"""The one ``authorization: Bearer`` entry of a call: every malformed header has its reason."""

from __future__ import annotations

import pytest

from grpcsec.authn import bearer_token
from grpcsec.errors import AuthenticationError


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ([], "missing_token"),
        ([("authorization", "Bearer a"), ("authorization", "Bearer b")], "duplicate_authorization"),
        ([("authorization", "Basic abc")], "not_bearer"),
        ([("authorization", "Bearer")], "malformed_token"),
        ([("authorization", "Bearer a b")], "malformed_token"),
        ([("authorization", "Bearer " + "x" * 9000)], "token_too_large"),
    ],
)
def test_bearer_header_problems(metadata: list[tuple[str, str]], expected: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        bearer_token(metadata)
    assert caught.value.reason == expected


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token([("x", "y"), ("authorization", "bearer abc.def.ghi")]) == "abc.def.ghi"
