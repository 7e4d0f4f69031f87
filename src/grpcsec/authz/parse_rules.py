"""The rule families of an A43 policy: ``source`` (principals, token claims), ``request``
(paths, headers), the rule lists around them, and warnings for odd but valid patterns.

Each rule list is read in schema order (``name``, ``source``, ``request``); two rules with the
same name in one list are an error (every implementation keeps only the last one silently,
which can lose a deny rule), and ``null`` inside a pattern list is an error (Go reads it as
``""``). Header keys that gRPC never lets a policy match (pseudo-headers, ``grpc-*``, ``host``,
hop-by-hop headers) are refused. Pattern contents are not validated (A43): odd patterns give
warnings. The grpcsec extension ``source.grpcsec_claims`` is refused when ``extensions`` is off.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from grpcsec.authz.model import CLAIMS_FIELD, ClaimMatch, HeaderMatch, Rule
from grpcsec.authz.patterns import Pattern, PatternKind
from grpcsec.authz.policy_json import (
    array_field,
    json_object,
    json_type,
    located,
    present,
    string_field,
)
from grpcsec.errors import PolicyError

__all__ = [
    "HOP_BY_HOP_HEADERS",
    "parse_rules",
    "pattern_warnings",
    "unsupported_header_reason",
]

_RULE_FIELDS = ("name", "source", "request")
_SOURCE_FIELDS = ("principals", CLAIMS_FIELD)
_REQUEST_FIELDS = ("paths", "headers")
_HEADER_FIELDS = ("key", "values")
_CLAIM_FIELDS = ("claim", "values")

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


def _patterns(obj: Mapping[str, Any], key: str, location: str) -> tuple[Pattern, ...]:
    where = located(location, key)
    found: list[Pattern] = []
    for index, item in enumerate(array_field(obj, key, location)):
        if not isinstance(item, str):
            raise PolicyError(
                f"must be a string pattern, not {json_type(item)}", location=f"{where}[{index}]"
            )
        found.append(Pattern.parse(item))
    return tuple(found)


def _required_patterns(
    obj: Mapping[str, Any], key: str, location: str, *, what: str
) -> tuple[Pattern, ...]:
    if not present(obj, key):
        raise PolicyError(f"is required ({what})", location=located(location, key))
    patterns = _patterns(obj, key, location)
    if not patterns:
        raise PolicyError(f"must not be empty ({what})", location=located(location, key))
    return patterns


def _header(value: object, location: str) -> HeaderMatch:
    header = json_object(value, location, _HEADER_FIELDS)
    key = string_field(header, "key", location).lower()
    reason = unsupported_header_reason(key)
    if reason is not None:
        raise PolicyError(f'unsupported header key "{key}": {reason}', location=f"{location}.key")
    values = _required_patterns(header, "values", location, what="at least one value pattern")
    return HeaderMatch(key=key, values=values)


def _claim(value: object, location: str) -> ClaimMatch:
    entry = json_object(value, location, _CLAIM_FIELDS)
    claim = string_field(entry, "claim", location, what=" (the name of a token claim)")
    values = _required_patterns(entry, "values", location, what="at least one value pattern")
    return ClaimMatch(claim=claim, values=values)


def _source(
    rule: Mapping[str, Any], location: str, *, extensions: bool
) -> tuple[tuple[Pattern, ...], tuple[ClaimMatch, ...]]:
    if not present(rule, "source"):
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
    source = json_object(source, where, allowed)
    principals = _patterns(source, "principals", where)
    claims = tuple(
        _claim(item, f"{where}.{CLAIMS_FIELD}[{index}]")
        for index, item in enumerate(array_field(source, CLAIMS_FIELD, where))
    )
    return principals, claims


def _request(
    rule: Mapping[str, Any], location: str
) -> tuple[tuple[Pattern, ...], tuple[HeaderMatch, ...]]:
    if not present(rule, "request"):
        return (), ()
    where = f"{location}.request"
    request = json_object(rule["request"], where, _REQUEST_FIELDS)
    paths = _patterns(request, "paths", where)
    headers = tuple(
        _header(item, f"{where}.headers[{index}]")
        for index, item in enumerate(array_field(request, "headers", where))
    )
    return paths, headers


def parse_rules(obj: Mapping[str, Any], key: str, *, extensions: bool) -> tuple[Rule, ...]:
    """The rule list ``obj[key]`` (``deny_rules`` or ``allow_rules``), names unique."""
    first_use: dict[str, str] = {}
    rules: list[Rule] = []
    for index, item in enumerate(array_field(obj, key, "")):
        location = f"{key}[{index}]"
        rule = json_object(item, location, _RULE_FIELDS)
        name = string_field(rule, "name", location)
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


def pattern_warnings(rules: Sequence[Rule]) -> tuple[str, ...]:
    """Warnings for valid patterns that probably do not mean what they say."""
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
