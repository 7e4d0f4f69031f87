"""Builders of small policy documents for the parser tests: a valid policy with one field
changed, so that the first error is the one under test."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DROP", "OK_RULE", "doc", "header", "in_request", "rule"]

OK_RULE = {"name": "r"}


def doc(**fields: Any) -> str:
    base: dict[str, Any] = {"name": "authz", "allow_rules": [OK_RULE]}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not DROP})


DROP = object()


def rule(**fields: Any) -> dict[str, Any]:
    return {"name": "r", **fields}


def header(key: Any = "x-a", values: Any = ("v",)) -> dict[str, Any]:
    return {"key": key, "values": list(values) if isinstance(values, tuple) else values}


def in_request(*headers: dict[str, Any]) -> str:
    return doc(allow_rules=[rule(request={"headers": list(headers)})])
