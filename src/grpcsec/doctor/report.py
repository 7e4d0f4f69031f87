"""What a doctor run returns: checks in order, the diagnosis, and what was learned. No grpc.

The diagnosis is the code of the first failed check: checks run in the order a connection is
built (TCP, protocol, TLS, certificate, client authentication, the call), so the first failure
is the root cause and later ones are consequences or independent findings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from grpcsec.doctor.codes import DIAGNOSES, OK, WARNINGS, Status

__all__ = ["Check", "DoctorReport"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One check: its stable ``name``, outcome, a code (``ok``, a diagnosis or warning code,
    ``skipped``), what was found in plain words, and for a problem, the fix."""

    name: str
    status: Status
    code: str = OK
    message: str = ""
    fix: str | None = None

    def __post_init__(self) -> None:
        known = {*DIAGNOSES, *WARNINGS, "skipped"}
        if self.code not in known:
            raise ValueError(f"unknown doctor code {self.code!r}")
        if self.status is Status.FAIL and self.code not in DIAGNOSES:
            raise ValueError(f"a failed check needs a diagnosis code, not {self.code!r}")

    @classmethod
    def passed(cls, name: str, message: str) -> Check:
        """A passing check."""
        return cls(name=name, status=Status.PASS, message=message)

    @classmethod
    def failed(cls, name: str, code: str, message: str, fix: str) -> Check:
        """A failing check whose ``code`` is a diagnosis."""
        return cls(name=name, status=Status.FAIL, code=code, message=message, fix=fix)

    @classmethod
    def warned(cls, name: str, code: str, message: str, fix: str | None = None) -> Check:
        """A check that passes with a problem worth fixing."""
        return cls(name=name, status=Status.WARN, code=code, message=message, fix=fix)

    @classmethod
    def skipped(cls, name: str, message: str = "not run: an earlier check failed") -> Check:
        """A check that was not run."""
        return cls(name=name, status=Status.SKIP, code="skipped", message=message)

    def to_json(self) -> dict[str, object]:
        """The ``{"name", "status", "code", "message", "fix"}`` object of ``--json``."""
        return {
            "name": self.name,
            "status": self.status.value,
            "code": self.code,
            "message": self.message,
            "fix": self.fix,
        }


def diagnosis_of(checks: Sequence[Check]) -> str:
    """The code of the first failed check, or ``ok``."""
    return next((c.code for c in checks if c.status is Status.FAIL), OK)


@dataclass(frozen=True, slots=True, kw_only=True)
class DoctorReport:
    """A finished run. ``target`` is ``None`` for a local file check; ``facts`` is what was
    learned (the ``server`` object of ``--json``, or ``files`` for a local check)."""

    target: str | None
    checks: tuple[Check, ...]
    facts: Mapping[str, Any] = field(default_factory=dict)
    facts_key: str = "server"

    @property
    def diagnosis(self) -> str:
        """``ok`` or the root cause: the first failed check's code."""
        return diagnosis_of(self.checks)

    @property
    def ok(self) -> bool:
        """Whether no check failed (warnings allowed)."""
        return self.diagnosis == OK

    @property
    def root_cause(self) -> Check | None:
        """The first failed check."""
        return next((c for c in self.checks if c.status is Status.FAIL), None)

    def to_json(self) -> dict[str, object]:
        """The ``--json`` document."""
        return {
            "target": self.target,
            "ok": self.ok,
            "diagnosis": self.diagnosis,
            "checks": [c.to_json() for c in self.checks],
            self.facts_key: dict(self.facts),
        }
