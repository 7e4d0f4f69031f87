"""``module:function`` application references, as ``grpcsec serve --app`` takes them.

Like ``uvicorn module:app``: the module is imported with the project directory (the current
directory, or ``app_dir``) first on ``sys.path``, and ``function`` is looked up in it (dotted
attributes allowed: ``pkg.mod:factory.register``). The function is then called with the
``grpc.Server`` (or ``grpc.aio.Server``) to register servicers on; it may be a coroutine
function on ``grpc.aio``. Every failure is a :class:`~grpcsec.errors.ConfigurationError` with
one line naming the reference; an exception raised while importing the user's module keeps
its type and message in that line (the traceback stays available as ``__cause__``).

Not checked: what the function registers. Importing runs the user's code, as any import does.
No grpc import.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grpcsec.errors import ConfigurationError

__all__ = ["load_app"]

_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def load_app(reference: str, *, app_dir: Path | None = None) -> Callable[[Any], Any]:
    """The callable ``reference`` (``module:function``) names."""
    if not _REFERENCE.match(reference):
        raise ConfigurationError(
            f"--app {reference!r}: use module:function (e.g. myservice.server:register)"
        )
    module_name, _, attribute = reference.partition(":")
    directory = str((app_dir or Path.cwd()).resolve())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ConfigurationError(
                f"--app {reference!r}: no module named {exc.name!r} (looked in {directory} "
                "and the installed packages)"
            ) from exc
        raise ConfigurationError(
            f"--app {reference!r}: importing {module_name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    except Exception as exc:  # the user's module raised while importing
        raise ConfigurationError(
            f"--app {reference!r}: importing {module_name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    found: Any = module
    missing = object()
    for part in attribute.split("."):
        found = getattr(found, part, missing)
        if found is missing:
            raise ConfigurationError(
                f"--app {reference!r}: {module_name} has no attribute {attribute!r}"
            )
    if not callable(found):
        raise ConfigurationError(
            f"--app {reference!r}: {attribute} is a {type(found).__name__}, not a function "
            "taking the server"
        )
    result: Callable[[Any], Any] = found
    return result
