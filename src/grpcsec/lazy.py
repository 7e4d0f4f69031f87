"""Names a package gives without importing their module until first use. No grpc import.

Why: grpcio starts its core (threads, the ``GRPC_VERBOSITY`` read) when ``grpc`` is imported,
so a package whose tools do not need grpc (``grpcsec``, ``grpcsec.authn``) exposes its
grpc-using names lazily: the package's module ``__getattr__`` is :func:`lazy_names`'s result,
and its ``TYPE_CHECKING`` imports keep the names visible to type checkers. A name is imported
once, then cached in the package's namespace.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str, modules: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` giving each name in ``modules`` (name → module
    that defines it) from its module on first use; other names raise :class:`AttributeError`."""

    def __getattr__(name: str) -> object:  # noqa: N807 (it is the module's __getattr__)
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
