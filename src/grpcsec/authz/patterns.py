"""A43 string patterns (principals, paths, header values, token claims) and their compiled sets.

One pattern syntax serves every list in a policy (authz-a43.md §4), decided exactly as grpc-go's
``getStringMatcher`` decides it, in this order:

* ``*`` alone: **presence**, a non-empty string. grpc-go builds the regex ``.+`` and requires it
  to match the whole string; Go's ``.`` does not match a newline, so a string that contains
  ``\\n`` is not "present" either (this module does the same, so decisions agree);
* ends with ``*``: **prefix** (the trailing star is checked first, so ``*abc*`` is a prefix
  match on the literal ``*abc``, as in grpc-go; C++ and Java read it as a suffix match);
* starts with ``*``: **suffix**;
* anything else: **exact**; a star elsewhere is a literal character.

Matching is case-sensitive, with no normalization. A :class:`PatternSet` is the OR of several
patterns compiled for speed: a frozenset for the exact ones and ``str.startswith`` /
``str.endswith`` over tuples for the others (one C call each).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable
from dataclasses import dataclass

__all__ = ["Pattern", "PatternKind", "PatternSet", "is_present"]


class PatternKind(enum.Enum):
    """How a pattern matches. Values are stable (``policy check --json``)."""

    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    PRESENCE = "presence"


def is_present(text: str) -> bool:
    """Whether ``*`` matches ``text``: grpc-go's full match of ``.+`` (non-empty, no newline)."""
    return bool(text) and "\n" not in text


@dataclass(frozen=True, slots=True)
class Pattern:
    """One pattern as written (``text``), its kind and its literal part (``value``)."""

    text: str
    kind: PatternKind
    value: str

    @classmethod
    def parse(cls, text: str) -> Pattern:
        """Read a pattern the way grpc-go does (see the module docstring)."""
        if text == "*":
            return cls(text, PatternKind.PRESENCE, "")
        if text.endswith("*"):
            return cls(text, PatternKind.PREFIX, text[:-1])
        if text.startswith("*"):
            return cls(text, PatternKind.SUFFIX, text[1:])
        return cls(text, PatternKind.EXACT, text)

    @property
    def ambiguous(self) -> bool:
        """A star at both ends (``*abc*``, ``**``): implementations disagree on its meaning and
        none reads it as "contains", which is probably what was meant."""
        return len(self.text) >= 2 and self.text.startswith("*") and self.text.endswith("*")

    def matches(self, candidate: str) -> bool:
        """Whether ``candidate`` matches this pattern."""
        if self.kind is PatternKind.EXACT:
            return candidate == self.value
        if self.kind is PatternKind.PREFIX:
            return candidate.startswith(self.value)
        if self.kind is PatternKind.SUFFIX:
            return candidate.endswith(self.value)
        return is_present(candidate)

    def describe(self) -> str:
        """A short human description: ``exact "x"``, ``prefix "x"``, ``any non-empty value``."""
        if self.kind is PatternKind.PRESENCE:
            return "any non-empty value"
        return f'{self.kind.value} "{self.value}"'


class PatternSet:
    """The OR of some patterns, compiled: ``matches`` costs a set lookup and at most two C calls,
    whatever the number of patterns."""

    __slots__ = ("exact", "prefixes", "presence", "suffixes")

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        exact: set[str] = set()
        prefixes: list[str] = []
        suffixes: list[str] = []
        presence = False
        for pattern in patterns:
            if pattern.kind is PatternKind.EXACT:
                exact.add(pattern.value)
            elif pattern.kind is PatternKind.PREFIX:
                prefixes.append(pattern.value)
            elif pattern.kind is PatternKind.SUFFIX:
                suffixes.append(pattern.value)
            else:
                presence = True
        self.exact = frozenset(exact)
        self.prefixes = tuple(dict.fromkeys(prefixes))
        self.suffixes = tuple(dict.fromkeys(suffixes))
        self.presence = presence

    def matches(self, candidate: str) -> bool:
        """Whether any pattern of the set matches ``candidate``."""
        return (
            candidate in self.exact
            or (bool(self.prefixes) and candidate.startswith(self.prefixes))
            or (bool(self.suffixes) and candidate.endswith(self.suffixes))
            or (self.presence and is_present(candidate))
        )

    def matches_any(self, candidates: Collection[str]) -> bool:
        """Whether any pattern matches any of ``candidates`` (exact patterns: one set operation)."""
        if self.exact and not self.exact.isdisjoint(candidates):
            return True
        if self.prefixes or self.suffixes or self.presence:
            for candidate in candidates:
                if (
                    (self.prefixes and candidate.startswith(self.prefixes))
                    or (self.suffixes and candidate.endswith(self.suffixes))
                    or (self.presence and is_present(candidate))
                ):
                    return True
        return False

    def __repr__(self) -> str:
        return (
            f"PatternSet(exact={sorted(self.exact)!r}, prefixes={self.prefixes!r}, "
            f"suffixes={self.suffixes!r}, presence={self.presence!r})"
        )
