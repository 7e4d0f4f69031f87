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

This module holds the entry points and the top level; the strict JSON reading is
:mod:`~grpcsec.authz.policy_json`'s, the rules :mod:`~grpcsec.authz.parse_rules`' and the audit
options :mod:`~grpcsec.authz.parse_audit`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from grpcsec.authz.audit import AuditLoggerRegistry, default_registry
from grpcsec.authz.model import Policy
from grpcsec.authz.parse_audit import parse_audit
from grpcsec.authz.parse_rules import parse_rules, pattern_warnings
from grpcsec.authz.policy_json import decode_json, error_reason, json_object, present, string_field
from grpcsec.errors import MaterialError, PolicyError
from grpcsec.fileio import FileKind, read_file

__all__ = ["load_policy", "parse_policy", "read_policy_file"]

_TOP_FIELDS = ("name", "deny_rules", "allow_rules", "audit_logging_options")


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
    document = source if isinstance(source, Mapping) else decode_json(source)
    top = json_object(document, "", _TOP_FIELDS)
    name = string_field(top, "name", "", what=" (the policy name)")
    deny_rules = parse_rules(top, "deny_rules", extensions=extensions)
    if not present(top, "allow_rules"):
        raise PolicyError(
            "is required (a policy needs at least one allow rule)", location="allow_rules"
        )
    allow_rules = parse_rules(top, "allow_rules", extensions=extensions)
    if not allow_rules:
        raise PolicyError(
            "must not be empty (a policy needs at least one allow rule)", location="allow_rules"
        )
    return Policy(
        name=name,
        deny_rules=deny_rules,
        allow_rules=allow_rules,
        audit=parse_audit(top, registry),
        warnings=pattern_warnings((*deny_rules, *allow_rules)),
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
