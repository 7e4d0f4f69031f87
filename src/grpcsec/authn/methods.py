"""Values chosen per RPC method: an exact method, else its service, else a default. No grpc.

Patterns are parsed once, at construction:

* ``/pkg.Service/Method``: that method;
* ``/pkg.Service/*``: every method of that service.

The most specific pattern wins (method before service before the default), so order does not
matter. Lookups are two dictionary probes. :class:`MethodTable` (what the guard's checks use on
every call) also remembers its answers per method string in a bounded table: the caller
chooses that string, so a flood of new ones only makes the table start over.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Generic, TypeVar

from grpcsec.errors import ConfigurationError

__all__ = ["MethodRules", "MethodSet", "MethodTable", "parse_method_pattern"]

T = TypeVar("T")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_METHOD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_method_pattern(text: str) -> tuple[str, str]:
    """``("method", "/pkg.Svc/M")`` or ``("service", "pkg.Svc")``; raises
    :class:`ConfigurationError` naming the accepted forms."""
    cleaned = text.strip()
    bad = (
        f"invalid method pattern {text!r}: use /package.Service/Method or /package.Service/* "
        "(the full gRPC path, with the leading slash)"
    )
    if not cleaned.startswith("/") or cleaned.count("/") != 2:
        raise ConfigurationError(bad)
    service, _, method = cleaned[1:].partition("/")
    if not _NAME.match(service):
        raise ConfigurationError(bad)
    if method == "*":
        return "service", service
    if not _METHOD.match(method):
        raise ConfigurationError(bad)
    return "method", cleaned


def _service_of(method: str) -> str:
    slash = method.rfind("/")
    return method[1:slash] if slash > 0 else ""


class MethodRules(Generic[T]):
    """A value per method: exact method, else service, else ``default``."""

    __slots__ = ("_default", "_methods", "_services")

    def __init__(self, default: T, rules: Mapping[str, T] | Iterable[tuple[str, T]] = ()) -> None:
        self._default = default
        self._methods: dict[str, T] = {}
        self._services: dict[str, T] = {}
        items = rules.items() if isinstance(rules, Mapping) else rules
        for pattern, value in items:
            kind, key = parse_method_pattern(pattern)
            table = self._methods if kind == "method" else self._services
            if key in table:
                raise ConfigurationError(f"method pattern {pattern!r} is given twice")
            table[key] = value

    @property
    def default(self) -> T:
        """The value for methods no pattern matches."""
        return self._default

    def patterns(self) -> dict[str, T]:
        """Every pattern and its value (services as ``/pkg.Svc/*``), for display."""
        found = {f"/{service}/*": value for service, value in self._services.items()}
        found.update(self._methods)
        return found

    def for_method(self, method: str) -> T:
        """The value for ``method`` (``/pkg.Service/Method``)."""
        methods = self._methods
        if methods and method in methods:
            return methods[method]
        services = self._services
        if services:
            service = _service_of(method)
            if service in services:
                return services[service]
        return self._default

    def __repr__(self) -> str:
        return f"MethodRules(default={self._default!r}, rules={self.patterns()!r})"


class MethodSet:
    """A set of methods given by patterns (``/pkg.Svc/M``, ``/pkg.Svc/*``)."""

    __slots__ = ("_rules",)

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self._rules: MethodRules[bool] = MethodRules(
            default=False, rules=[(p, True) for p in patterns]
        )

    def __contains__(self, method: object) -> bool:
        return isinstance(method, str) and self._rules.for_method(method)

    def __bool__(self) -> bool:
        return bool(self._rules.patterns())

    def patterns(self) -> list[str]:
        """The patterns, for display."""
        return sorted(self._rules.patterns())

    def __repr__(self) -> str:
        return f"MethodSet({self.patterns()!r})"


class MethodTable(Generic[T]):
    """What a check applies to each method: ``None`` for an ``exempt`` method, else the most
    specific of ``rules`` or ``default`` (:class:`MethodRules`). Answers are remembered per
    method string, at most :attr:`SIZE` of them (then the table starts over)."""

    __slots__ = ("_memo", "exempt", "rules")

    SIZE = 512

    def __init__(
        self,
        default: T,
        rules: Mapping[str, T] | Iterable[tuple[str, T]] = (),
        exempt: Iterable[str] = (),
    ) -> None:
        self.rules: MethodRules[T] = MethodRules(default, rules)
        self.exempt = MethodSet(exempt)
        self._memo: dict[str, T | None] = {}

    def for_method(self, method: str) -> T | None:
        """The value for ``method``; ``None`` when it is exempt."""
        memo = self._memo
        if method in memo:
            return memo[method]
        found = None if method in self.exempt else self.rules.for_method(method)
        if len(memo) >= self.SIZE:
            memo.clear()
        memo[method] = found
        return found
