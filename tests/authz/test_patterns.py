"""Pattern syntax (authz-a43.md §4): presence, prefix, suffix, exact, in grpc-go's order.

Each row is (pattern, candidate, matches). The same answers must come from one
:class:`Pattern` and from a compiled :class:`PatternSet` holding it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grpcsec.authz.patterns import Pattern, PatternKind, PatternSet, is_present

ROWS = [
    # "*" alone: presence, any non-empty string
    ("*", "x", True),
    ("*", "/pkg.Service/Method", True),
    ("*", "", False),
    ("*", "a\nb", False),  # grpc-go's full match of ".+": Go's "." does not match a newline
    ("*", "\n", False),
    ("*", "a\rb", True),
    # trailing star: prefix
    ("abc*", "abc", True),
    ("abc*", "abcd", True),
    ("abc*", "xabc", False),
    ("abc*", "ab", False),
    ("/pkg.Service/*", "/pkg.Service/Method", True),
    ("/pkg.Service/*", "/pkg.Service2/Method", False),
    # leading star: suffix
    ("*abc", "abc", True),
    ("*abc", "xabc", True),
    ("*abc", "abcx", False),
    ("*/Echo", "/pkg.Service/Echo", True),
    # anything else: exact, a star elsewhere is literal
    ("spiffe://abc.*.com", "spiffe://abc.*.com", True),
    ("spiffe://abc.*.com", "spiffe://abc.x.com", False),
    ("abc", "abc", True),
    ("abc", "ABC", False),  # case-sensitive, no normalization
    ("abc", "abc ", False),
    # "" is an exact match on the empty string
    ("", "", True),
    ("", "x", False),
    # a star at both ends: grpc-go checks the trailing star first, so a prefix on "*abc"
    ("*abc*", "*abcdef", True),
    ("*abc*", "xabcx", False),  # not a "contains" match
    ("*abc*", "abc*", False),  # not C++/Java's suffix reading either
    ("**", "*", True),
    ("**", "*x", True),
    ("**", "x", False),
]


@pytest.mark.parametrize(("pattern", "candidate", "expected"), ROWS)
def test_pattern_row(pattern: str, candidate: str, expected: bool) -> None:
    assert Pattern.parse(pattern).matches(candidate) is expected
    assert PatternSet([Pattern.parse(pattern)]).matches(candidate) is expected


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("*", PatternKind.PRESENCE, ""),
        ("a*", PatternKind.PREFIX, "a"),
        ("*a", PatternKind.SUFFIX, "a"),
        ("a", PatternKind.EXACT, "a"),
        ("", PatternKind.EXACT, ""),
        ("a*b", PatternKind.EXACT, "a*b"),
        ("*a*", PatternKind.PREFIX, "*a"),
        ("**", PatternKind.PREFIX, "*"),
    ],
)
def test_pattern_kinds_follow_grpc_go(text: str, kind: PatternKind, value: str) -> None:
    parsed = Pattern.parse(text)
    assert (parsed.kind, parsed.value, parsed.text) == (kind, value, text)


def test_only_patterns_starred_at_both_ends_are_ambiguous() -> None:
    assert Pattern.parse("*abc*").ambiguous
    assert Pattern.parse("**").ambiguous
    for text in ("*", "abc*", "*abc", "a*c", ""):
        assert not Pattern.parse(text).ambiguous, text


def test_pattern_set_is_the_or_of_its_patterns() -> None:
    patterns = [Pattern.parse(p) for p in ("exact", "pre*", "*suf", "other")]
    compiled = PatternSet(patterns)
    for candidate in ("exact", "other", "prefix", "pre", "a-suf", "suf", "nope", "", "xexact"):
        assert compiled.matches(candidate) is any(p.matches(candidate) for p in patterns)
    assert compiled.matches_any(["nope", "presuf"])
    assert not compiled.matches_any([])


def test_empty_pattern_set_matches_nothing() -> None:
    assert not PatternSet([]).matches("")
    assert not PatternSet([]).matches("x")


def test_presence_helper() -> None:
    assert is_present("x")
    assert not is_present("")
    assert not is_present("x\n")


def test_describe_is_readable() -> None:
    assert Pattern.parse("*").describe() == "any non-empty value"
    assert Pattern.parse("a*").describe() == 'prefix "a"'
    assert "PatternSet" in repr(PatternSet([Pattern.parse("a")]))


TEXTS = st.sampled_from(["", "a", "ab", "abc", "b", "ba", "*", "a\n", "\n", "*a", "a*"])


@settings(max_examples=200, deadline=None)
@given(
    patterns=st.lists(st.builds(Pattern.parse, TEXTS), max_size=4),
    candidates=st.lists(TEXTS, max_size=4),
)
def test_matches_any_is_any_pattern_on_any_candidate(
    patterns: list[Pattern], candidates: list[str]
) -> None:
    expected = any(p.matches(c) for p in patterns for c in candidates)
    assert PatternSet(patterns).matches_any(candidates) is expected
    assert PatternSet(patterns).matches_any(tuple(candidates)) is expected
