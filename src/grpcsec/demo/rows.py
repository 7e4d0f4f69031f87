"""One row of a demo table: what a call tried, what should happen, and what did."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DemoRow", "short_reason"]

_CONNECT_NOISE = re.compile(r"^failed to connect to all addresses; last error: [A-Z_]+: \S+: ")


def short_reason(details: str | None) -> str:
    """grpcio's details without the connection boilerplate in front."""
    return _CONNECT_NOISE.sub("", details or "").strip() or "(no details)"


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoRow:
    """One call: what it tried, what should happen, what did (status code and reply/reason)."""

    scenario: str
    expected: str
    code: str
    outcome: str
    passed: bool

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "scenario": self.scenario,
            "expected": self.expected,
            "code": self.code,
            "outcome": self.outcome,
            "passed": self.passed,
        }
