"""Parse and validate an A43 policy strictly, reporting the first error with its location.

The whole document is checked in one walk, in schema order (``name``, ``deny_rules``,
``allow_rules``, ``audit_logging_options``; inside a rule ``name``, ``source``, ``request``), and
the first problem raises :class:`~grpcsec.errors.PolicyError` whose ``location`` is a JSON path
such as ``allow_rules[2].request.headers[0].key``.

Stricter than grpc-go where grpc-go is lax by accident (authz-a43.md §3, §10, §11), never laxer:

* the text is UTF-8 JSON with one top-level object: trailing data, ``NaN``/``Infinity`` and a
  key that appears twice in an object (anywhere, logger configs included) are errors (Go
  ignores trailing data and keeps the last duplicate);
* field names are case-sensitive (Go's decoder accepts ``"NAME"``), unknown fields are errors at
  every level (A43), and ``null`` for an optional field means absent while ``null`` inside a
  pattern list is an error (Go reads it as ``""``);
* two rules with the same name in one list are an error (every implementation keeps only the
  last one silently, which can lose a deny rule);
* ``audit_condition`` must be one of the four names (Go also takes ``""`` as ``NONE``).

Pattern contents are not validated (A43): odd but valid patterns produce :attr:`Policy.warnings`
instead. The grpcsec extension ``source.grpcsec_claims`` is accepted unless
``extensions=False``.
"""

from __future__ import annotations

import difflib
import json
import re
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from grpcsec.authz.audit import AuditCondition, AuditLoggerRegistry, default_registry
from grpcsec.authz.model import (
    CLAIMS_FIELD,
    AuditLoggerSpec,
    AuditOptions,
    ClaimMatch,
    HeaderMatch,
    Policy,
    Rule,
)
from grpcsec.authz.patterns import Pattern, PatternKind
from grpcsec.errors import MaterialError, PolicyError
from grpcsec.fileio import FileKind, read_file

__all__ = [
    "HOP_BY_HOP_HEADERS",
    "error_reason",
    "load_policy",
    "parse_policy",
    "read_policy_file",
    "unsupported_header_reason",
]

_TOP_FIELDS = ("name", "deny_rules", "allow_rules", "audit_logging_options")
_RULE_FIELDS = ("name", "source", "request")
_SOURCE_FIELDS = ("principals", CLAIMS_FIELD)
_REQUEST_FIELDS = ("paths", "headers")
_HEADER_FIELDS = ("key", "values")
_CLAIM_FIELDS = ("claim", "values")
_AUDIT_FIELDS = ("audit_condition", "audit_loggers")
_LOGGER_FIELDS = ("name", "config", "is_optional")

HOP_BY_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_METADATA_KEY = re.compile(r"[0-9a-z_.\-]+\Z")


def unsupported_header_reason(key: str) -> str | None:
    """Why a (lowercased) header key may not appear in a policy, or ``None`` when it may."""
    if key.startswith(":"):
        return "HTTP/2 pseudo-headers cannot be matched"
    if key.startswith("grpc-"):
        return "keys starting with 'grpc-' are reserved by gRPC"
    if key == "host":
        return "'host' cannot be matched"
    if key in HOP_BY_HOP_HEADERS:
        return "hop-by-hop headers cannot be matched"
    return None


def error_reason(error: PolicyError) -> str:
    """The message of ``error`` without its location prefix (``PolicyError.message`` has it)."""
    prefix = f"{error.location}: "
    if error.location and error.message.startswith(prefix):
        return error.message[len(prefix) :]
    return error.message


# -- strict JSON -----------------------------------------------------------------------------------
class _JsonObject(dict[str, Any]):
    """A decoded JSON object that remembers which keys appeared more than once."""

    duplicates: tuple[str, ...] = ()


def _object_pairs(pairs: list[tuple[str, Any]]) -> _JsonObject:
    result = _JsonObject()
    duplicates: list[str] = []
    for key, value in pairs:
        if key in result and key not in duplicates:
            duplicates.append(key)
        result[key] = value
    if duplicates:
        result.duplicates = tuple(duplicates)
    return result


class _ConstantError(ValueError):
    pass


def _reject_constant(name: str) -> object:
    raise _ConstantError(name)


def _decode(source: str | bytes) -> object:
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(f"not UTF-8 text (byte {exc.start})") from exc
    try:
        return json.loads(source, object_pairs_hook=_object_pairs, parse_constant=_reject_constant)
    except _ConstantError as exc:
        raise PolicyError(f"not valid JSON: {exc} is not a JSON value") from exc
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise PolicyError(f"not valid JSON: {exc.msg} ({where})") from exc
    except RecursionError as exc:
        raise PolicyError("not valid JSON: nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise PolicyError(f"not valid JSON: {exc}") from exc


# -- helpers ---------------------------------------------------------------------------------------
_JSON_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),
    ((int, float), "a number"),
    (str, "a string"),
    (Mapping, "an object"),
    ((list, tuple), "an array"),
)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    for kinds, name in _JSON_TYPES:
        if isinstance(value, kinds):
            return name
    return f"a Python {type(value).__name__}"


def _at(location: str, key: str) -> str:
    if _IDENTIFIER.match(key):
        return f"{location}.{key}" if location else key
    return f"{location}[{json.dumps(key)}]"


def _unknown_field(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6) or [
        name for name in allowed if name.lower() == key.lower()
    ]
    hint = f'; did you mean "{close[0]}"?' if close else ""
    return f"unknown field (expected one of: {', '.join(allowed)}){hint}"


def _object(value: object, location: str, allowed: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        what = f"must be an object, not {_json_type(value)}"
        raise PolicyError(what if location else f"the policy {what}", location=location)
    duplicates = getattr(value, "duplicates", ())
    if duplicates:
        raise PolicyError(
            "appears more than once in the object (duplicate keys are ambiguous)",
            location=_at(location, duplicates[0]),
        )
    for key in value:
        if not isinstance(key, str):
            raise PolicyError(f"has a non-string key {key!r}", location=location)
        if key not in allowed:
            raise PolicyError(_unknown_field(key, allowed), location=_at(location, key))
    return value


def _present(obj: Mapping[str, Any], key: str) -> bool:
    """Whether ``key`` is given with a value other than ``null`` (``null`` means absent)."""
    return obj.get(key) is not None


def _string(obj: Mapping[str, Any], key: str, location: str, *, what: str = "") -> str:
    where = _at(location, key)
    if key not in obj:
        raise PolicyError(f"is required{what}", location=where)
    value = obj[key]
    if not isinstance(value, str):
        raise PolicyError(f"must be a string, not {_json_type(value)}", location=where)
    if not value:
        raise PolicyError(f"must not be empty{what}", location=where)
    return value


def _array(obj: Mapping[str, Any], key: str, location: str) -> Sequence[Any]:
    """An optional array (absent or ``null``: empty)."""
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise PolicyError(f"must be an array, not {_json_type(value)}", location=_at(location, key))
    return value


def _patterns(obj: Mapping[str, Any], key: str, location: str) -> tuple[Pattern, ...]:
    where = _at(location, key)
    found: list[Pattern] = []
    for index, item in enumerate(_array(obj, key, location)):
        if not isinstance(item, str):
            raise PolicyError(
                f"must be a string pattern, not {_json_type(item)}", location=f"{where}[{index}]"
            )
        found.append(Pattern.parse(item))
    return tuple(found)


def _required_patterns(
    obj: Mapping[str, Any], key: str, location: str, *, what: str
) -> tuple[Pattern, ...]:
    if not _present(obj, key):
        raise PolicyError(f"is required ({what})", location=_at(location, key))
    patterns = _patterns(obj, key, location)
    if not patterns:
        raise PolicyError(f"must not be empty ({what})", location=_at(location, key))
    return patterns


def _reject_duplicate_keys(value: object, location: str) -> None:
    """Free-form JSON (a logger's config) may hold anything but duplicate keys."""
    if isinstance(value, Mapping):
        duplicates = getattr(value, "duplicates", ())
        if duplicates:
            raise PolicyError(
                "appears more than once in the object (duplicate keys are ambiguous)",
                location=_at(location, duplicates[0]),
            )
        for key, item in value.items():
            _reject_duplicate_keys(item, _at(location, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _reject_duplicate_keys(item, f"{location}[{index}]")


# -- rules -----------------------------------------------------------------------------------------
def _header(value: object, location: str) -> HeaderMatch:
    header = _object(value, location, _HEADER_FIELDS)
    key = _string(header, "key", location).lower()
    reason = unsupported_header_reason(key)
    if reason is not None:
        raise PolicyError(f'unsupported header key "{key}": {reason}', location=f"{location}.key")
    values = _required_patterns(header, "values", location, what="at least one value pattern")
    return HeaderMatch(key=key, values=values)


def _claim(value: object, location: str) -> ClaimMatch:
    entry = _object(value, location, _CLAIM_FIELDS)
    claim = _string(entry, "claim", location, what=" (the name of a token claim)")
    values = _required_patterns(entry, "values", location, what="at least one value pattern")
    return ClaimMatch(claim=claim, values=values)


def _source(
    rule: Mapping[str, Any], location: str, *, extensions: bool
) -> tuple[tuple[Pattern, ...], tuple[ClaimMatch, ...]]:
    if not _present(rule, "source"):
        return (), ()
    where = f"{location}.source"
    allowed = _SOURCE_FIELDS if extensions else _SOURCE_FIELDS[:1]
    source = rule["source"]
    if not extensions and isinstance(source, Mapping) and CLAIMS_FIELD in source:
        raise PolicyError(
            "is a grpcsec extension, not allowed when extensions are disabled "
            "(a standard A43 parser rejects it)",
            location=f"{where}.{CLAIMS_FIELD}",
        )
    source = _object(source, where, allowed)
    principals = _patterns(source, "principals", where)
    claims = tuple(
        _claim(item, f"{where}.{CLAIMS_FIELD}[{index}]")
        for index, item in enumerate(_array(source, CLAIMS_FIELD, where))
    )
    return principals, claims


def _request(
    rule: Mapping[str, Any], location: str
) -> tuple[tuple[Pattern, ...], tuple[HeaderMatch, ...]]:
    if not _present(rule, "request"):
        return (), ()
    where = f"{location}.request"
    request = _object(rule["request"], where, _REQUEST_FIELDS)
    paths = _patterns(request, "paths", where)
    headers = tuple(
        _header(item, f"{where}.headers[{index}]")
        for index, item in enumerate(_array(request, "headers", where))
    )
    return paths, headers


def _rules(obj: Mapping[str, Any], key: str, *, extensions: bool) -> tuple[Rule, ...]:
    first_use: dict[str, str] = {}
    rules: list[Rule] = []
    for index, item in enumerate(_array(obj, key, "")):
        location = f"{key}[{index}]"
        rule = _object(item, location, _RULE_FIELDS)
        name = _string(rule, "name", location)
        if name in first_use:
            raise PolicyError(
                f'duplicate rule name "{name}" (also {first_use[name]}); rule names must be '
                "unique within a list (other implementations silently keep only one of them)",
                location=f"{location}.name",
            )
        first_use[name] = location
        principals, claims = _source(rule, location, extensions=extensions)
        paths, headers = _request(rule, location)
        rules.append(
            Rule(
                name=name,
                location=location,
                principals=principals,
                paths=paths,
                headers=headers,
                claims=claims,
            )
        )
    return tuple(rules)


# -- audit -----------------------------------------------------------------------------------------
def _audit(obj: Mapping[str, Any], registry: AuditLoggerRegistry) -> AuditOptions:
    if not _present(obj, "audit_logging_options"):
        return AuditOptions()
    where = "audit_logging_options"
    options = _object(obj[where], where, _AUDIT_FIELDS)
    condition = AuditCondition.NONE
    if _present(options, "audit_condition"):
        text = options["audit_condition"]
        allowed = ", ".join(c.value for c in AuditCondition)
        if not isinstance(text, str):
            raise PolicyError(
                f"must be a string, not {_json_type(text)}", location=f"{where}.audit_condition"
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
    for index, item in enumerate(_array(options, "audit_loggers", where)):
        spec = _logger(item, f"{where}.audit_loggers[{index}]", registry)
        if isinstance(spec, str):
            skipped.append(spec)
        else:
            loggers.append(spec)
    return AuditOptions(condition=condition, loggers=tuple(loggers), skipped=tuple(skipped))


def _logger(item: object, location: str, registry: AuditLoggerRegistry) -> AuditLoggerSpec | str:
    """One ``audit_loggers`` entry: its spec, or its type name when it is skipped (optional and
    not registered)."""
    entry = _object(item, location, _LOGGER_FIELDS)
    type_name = _string(entry, "name", location, what=" (the logger type)")
    config: Mapping[str, Any] = {}
    if _present(entry, "config"):
        raw = entry["config"]
        if not isinstance(raw, Mapping):
            raise PolicyError(
                f"must be an object, not {_json_type(raw)}", location=f"{location}.config"
            )
        _reject_duplicate_keys(raw, f"{location}.config")
        config = raw
    is_optional = False
    if _present(entry, "is_optional"):
        is_optional = entry["is_optional"]
        if not isinstance(is_optional, bool):
            raise PolicyError(
                f"must be a boolean, not {_json_type(is_optional)}",
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
        inner = _at(f"{location}.config", exc.location) if exc.location else ""
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


# -- warnings --------------------------------------------------------------------------------------
def _warnings(rules: Sequence[Rule]) -> tuple[str, ...]:
    found: list[str] = []
    for rule in rules:
        for location, pattern in rule.patterns():
            if pattern.ambiguous:
                found.append(
                    f"{location}: {json.dumps(pattern.text)} is a prefix match on "
                    f"{json.dumps(pattern.value)} (as in grpc-go; C++ and Java read it as a "
                    "suffix match), not a 'contains' match"
                )
        for index, path in enumerate(rule.paths):
            literal = path.kind in {PatternKind.EXACT, PatternKind.PREFIX}
            if literal and not path.value.startswith("/"):
                found.append(
                    f"{rule.location}.request.paths[{index}]: {json.dumps(path.text)} never "
                    "matches a gRPC method, which always starts with '/' (/package.Service/Method)"
                )
        for index, header in enumerate(rule.headers):
            if not _METADATA_KEY.match(header.key):
                found.append(
                    f"{rule.location}.request.headers[{index}].key: {json.dumps(header.key)} "
                    "never matches gRPC metadata, whose keys use only a-z, 0-9, '-', '_' and '.'"
                )
    return tuple(found)


# -- entry points ----------------------------------------------------------------------------------
def parse_policy(
    source: str | bytes | Mapping[str, Any],
    *,
    registry: AuditLoggerRegistry | None = None,
    extensions: bool = True,
    path: str | Path | None = None,
) -> Policy:
    """Parse and validate a policy: JSON text (``str`` or UTF-8 ``bytes``) or an already
    decoded mapping. Raises :class:`PolicyError` (first error, located; ``path`` names the file
    in the message when given). ``registry`` resolves audit logger types (default: the
    process-wide one); ``extensions=False`` rejects grpcsec extensions (a portable A43 policy).
    """
    registry = registry if registry is not None else default_registry()
    try:
        return _policy(source, registry, extensions=extensions)
    except PolicyError as exc:
        if path is None or exc.path is not None:
            raise
        raise PolicyError(error_reason(exc), location=exc.location, path=path) from exc


def _policy(
    source: str | bytes | Mapping[str, Any], registry: AuditLoggerRegistry, *, extensions: bool
) -> Policy:
    document = source if isinstance(source, Mapping) else _decode(source)
    top = _object(document, "", _TOP_FIELDS)
    name = _string(top, "name", "", what=" (the policy name)")
    deny_rules = _rules(top, "deny_rules", extensions=extensions)
    if not _present(top, "allow_rules"):
        raise PolicyError(
            "is required (a policy needs at least one allow rule)", location="allow_rules"
        )
    allow_rules = _rules(top, "allow_rules", extensions=extensions)
    if not allow_rules:
        raise PolicyError(
            "must not be empty (a policy needs at least one allow rule)", location="allow_rules"
        )
    return Policy(
        name=name,
        deny_rules=deny_rules,
        allow_rules=allow_rules,
        audit=_audit(top, registry),
        warnings=_warnings((*deny_rules, *allow_rules)),
    )


def read_policy_file(path: str | Path) -> bytes:
    """The bytes of a policy file, read as :func:`grpcsec.fileio.read_file` reads (regular files
    only, without blocking, at most :attr:`FileKind.POLICY` bytes); any problem is a
    :class:`PolicyError` naming the file."""
    try:
        return read_file(path, kind=FileKind.POLICY)
    except MaterialError as exc:
        raise PolicyError(f"cannot read the policy: {exc.message}", path=path) from exc


def load_policy(
    path: str | Path,
    *,
    registry: AuditLoggerRegistry | None = None,
    extensions: bool = True,
) -> Policy:
    """Read and parse a policy file; an unreadable file is a :class:`PolicyError` too."""
    data = read_policy_file(path)
    return parse_policy(data, registry=registry, extensions=extensions, path=path)
