"""The one rule for a test whose independent peer (grpc-go, Node, openssl, pebble, Prometheus,
promtool) is not installed: skip it, unless ``GRPCSEC_REQUIRE_INTEROP=1`` (``./dev test`` sets
it after installing them), where a missing peer is a failure, never a silent skip."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    """Skip (or, when peers are required, fail) because of ``reason``."""
    if os.environ.get("GRPCSEC_REQUIRE_INTEROP") == "1":
        pytest.fail(f"interop peer missing although required: {reason}")
    pytest.skip(reason)


def require_command(name: str, hint: str) -> str:
    """The path of the command ``name`` on PATH, or :func:`missing` with ``hint``."""
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed ({hint})")
    return found
