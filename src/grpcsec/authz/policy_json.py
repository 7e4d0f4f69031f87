"""Strict JSON for policies: decoding, and reading objects, strings and arrays with located errors.

:func:`decode_json` decodes UTF-8 JSON text with one top-level value and refuses what Python's
decoder accepts but a policy must not hold: ``NaN``/``Infinity``, trailing data and a key that
appears twice in one object (remembered on the decoded object and refused when the object is
read, so the error has its location). The readers (:func:`json_object`, :func:`string_field`,
:func:`array_field`, ...) check one level of structure each and raise
:class:`~grpcsec.errors.PolicyError` with a JSON path such as ``allow_rules[2].name``; field
names are case-sensitive and unknown fields are errors, with a suggestion for a near miss.
Nothing here knows what a rule or a logger is: :mod:`grpcsec.authz.parse_rules` and
:mod:`grpcsec.authz.parse_audit` do.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from grpcsec.errors import PolicyError

__all__ = [
    "array_field",
    "decode_json",
    "error_reason",
    "json_object",
    "json_type",
    "located",
    "present",
    "reject_duplicate_keys",
    "string_field",
    "unknown_field",
]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def error_reason(error: PolicyError) -> str:
    """The message of ``error`` without its location prefix (``PolicyError.message`` has it)."""
    prefix = f"{error.location}: "
    if error.location and error.message.startswith(prefix):
        return error.message[len(prefix) :]
    return error.message


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


def decode_json(source: str | bytes) -> object:
    """Decode UTF-8 JSON text strictly (see the module); any problem is a :class:`PolicyError`."""
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


# -- reading the structure -----------------------------------------------------------------------
_JSON_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),
    ((int, float), "a number"),
    (str, "a string"),
    (Mapping, "an object"),
    ((list, tuple), "an array"),
)


def json_type(value: object) -> str:
    """How JSON names the type of a decoded ``value`` ("a string", "null"), for messages."""
    if value is None:
        return "null"
    for kinds, name in _JSON_TYPES:
        if isinstance(value, kinds):
            return name
    return f"a Python {type(value).__name__}"


def located(location: str, key: str) -> str:
    """The JSON path of ``key`` inside ``location`` (``a.b``, or ``a["odd key"]``)."""
    if _IDENTIFIER.match(key):
        return f"{location}.{key}" if location else key
    return f"{location}[{json.dumps(key)}]"


def unknown_field(key: str, allowed: Sequence[str]) -> str:
    """The message for an unknown field, with the closest allowed name when one is near."""
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6) or [
        name for name in allowed if name.lower() == key.lower()
    ]
    hint = f'; did you mean "{close[0]}"?' if close else ""
    return f"unknown field (expected one of: {', '.join(allowed)}){hint}"


def json_object(value: object, location: str, allowed: Sequence[str]) -> Mapping[str, Any]:
    """``value`` as an object with only ``allowed`` keys, each once; else a located error."""
    if not isinstance(value, Mapping):
        what = f"must be an object, not {json_type(value)}"
        raise PolicyError(what if location else f"the policy {what}", location=location)
    duplicates = getattr(value, "duplicates", ())
    if duplicates:
        raise PolicyError(
            "appears more than once in the object (duplicate keys are ambiguous)",
            location=located(location, duplicates[0]),
        )
    for key in value:
        if not isinstance(key, str):
            raise PolicyError(f"has a non-string key {key!r}", location=location)
        if key not in allowed:
            raise PolicyError(unknown_field(key, allowed), location=located(location, key))
    return value


def present(obj: Mapping[str, Any], key: str) -> bool:
    """Whether ``key`` is given with a value other than ``null`` (``null`` means absent)."""
    return obj.get(key) is not None


def string_field(obj: Mapping[str, Any], key: str, location: str, *, what: str = "") -> str:
    """The required, non-empty string ``obj[key]``; ``what`` explains it in the message."""
    where = located(location, key)
    if key not in obj:
        raise PolicyError(f"is required{what}", location=where)
    value = obj[key]
    if not isinstance(value, str):
        raise PolicyError(f"must be a string, not {json_type(value)}", location=where)
    if not value:
        raise PolicyError(f"must not be empty{what}", location=where)
    return value


def array_field(obj: Mapping[str, Any], key: str, location: str) -> Sequence[Any]:
    """An optional array (absent or ``null``: empty)."""
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise PolicyError(
            f"must be an array, not {json_type(value)}", location=located(location, key)
        )
    return value


def reject_duplicate_keys(value: object, location: str) -> None:
    """Free-form JSON (a logger's config) may hold anything but duplicate keys."""
    if isinstance(value, Mapping):
        duplicates = getattr(value, "duplicates", ())
        if duplicates:
            raise PolicyError(
                "appears more than once in the object (duplicate keys are ambiguous)",
                location=located(location, duplicates[0]),
            )
        for key, item in value.items():
            reject_duplicate_keys(item, located(location, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            reject_duplicate_keys(item, f"{location}[{index}]")
