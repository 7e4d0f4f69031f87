"""The ``audit_logging_options`` of an A43 policy (gRFC A59): the condition and the loggers.

``audit_condition`` must be one of the four names, exactly (Go also takes ``""`` as ``NONE``).
Each logger type is looked up in an :class:`~grpcsec.authz.audit.AuditLoggerRegistry`; an
unknown type is an error unless the entry says ``"is_optional": true``, in which case it is
skipped and its name reported. A logger's ``config`` is free-form JSON (duplicate keys are
still refused) that the logger's own factory parses; its errors are located under ``config``.
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from typing import Any

from grpcsec.authz.audit import AuditCondition, AuditLoggerRegistry
from grpcsec.authz.model import AuditLoggerSpec, AuditOptions
from grpcsec.authz.policy_json import (
    array_field,
    error_reason,
    json_object,
    json_type,
    located,
    present,
    reject_duplicate_keys,
    string_field,
)
from grpcsec.errors import PolicyError

__all__ = ["parse_audit"]

_AUDIT_FIELDS = ("audit_condition", "audit_loggers")
_LOGGER_FIELDS = ("name", "config", "is_optional")


def parse_audit(obj: Mapping[str, Any], registry: AuditLoggerRegistry) -> AuditOptions:
    """The ``audit_logging_options`` of the top-level ``obj`` (absent: no audit)."""
    if not present(obj, "audit_logging_options"):
        return AuditOptions()
    where = "audit_logging_options"
    options = json_object(obj[where], where, _AUDIT_FIELDS)
    condition = AuditCondition.NONE
    if present(options, "audit_condition"):
        text = options["audit_condition"]
        allowed = ", ".join(c.value for c in AuditCondition)
        if not isinstance(text, str):
            raise PolicyError(
                f"must be a string, not {json_type(text)}", location=f"{where}.audit_condition"
            )
        try:
            condition = AuditCondition(text)
        except ValueError:
            raise PolicyError(
                f"{json.dumps(text)} is not one of {allowed} (exact, upper case)",
                location=f"{where}.audit_condition",
            ) from None
    loggers: list[AuditLoggerSpec] = []
    skipped: list[str] = []
    for index, item in enumerate(array_field(options, "audit_loggers", where)):
        spec = _logger(item, f"{where}.audit_loggers[{index}]", registry)
        if isinstance(spec, str):
            skipped.append(spec)
        else:
            loggers.append(spec)
    return AuditOptions(condition=condition, loggers=tuple(loggers), skipped=tuple(skipped))


def _logger(item: object, location: str, registry: AuditLoggerRegistry) -> AuditLoggerSpec | str:
    """One ``audit_loggers`` entry: its spec, or its type name when it is skipped (optional and
    not registered)."""
    entry = json_object(item, location, _LOGGER_FIELDS)
    type_name = string_field(entry, "name", location, what=" (the logger type)")
    config: Mapping[str, Any] = {}
    if present(entry, "config"):
        raw = entry["config"]
        if not isinstance(raw, Mapping):
            raise PolicyError(
                f"must be an object, not {json_type(raw)}", location=f"{location}.config"
            )
        reject_duplicate_keys(raw, f"{location}.config")
        config = raw
    is_optional = False
    if present(entry, "is_optional"):
        is_optional = entry["is_optional"]
        if not isinstance(is_optional, bool):
            raise PolicyError(
                f"must be a boolean, not {json_type(is_optional)}",
                location=f"{location}.is_optional",
            )
    factory = registry.get(type_name)
    if factory is None:
        if is_optional:
            return type_name
        known = ", ".join(registry.names()) or "none"
        raise PolicyError(
            f'no audit logger type "{type_name}" is registered (registered: {known}); '
            'mark it "is_optional": true to skip it where it is unknown',
            location=f"{location}.name",
        )
    try:
        parsed = factory.parse_config(config)
    except PolicyError as exc:
        inner = located(f"{location}.config", exc.location) if exc.location else ""
        raise PolicyError(error_reason(exc), location=inner or f"{location}.config") from exc
    except ValueError as exc:
        raise PolicyError(str(exc), location=f"{location}.config") from exc
    return AuditLoggerSpec(
        type_name=type_name,
        config=types.MappingProxyType(dict(config)),
        is_optional=is_optional,
        parsed_config=parsed,
        factory=factory,
    )
