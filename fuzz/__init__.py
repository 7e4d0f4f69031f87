"""Fuzz targets for grpcsec's parsers of untrusted input (see docs/fuzzing.md).

One target per module, each a ``check(data: bytes) -> None`` that feeds one input to the code
under test and raises :class:`Unexpected` (or lets an unexpected exception out) when the outcome
is not one the code documents. ``fuzz/run.py`` runs a target under atheris (libFuzzer); the
hypothesis properties in ``tests/`` call the same ``check`` functions, so both use one oracle.
"""

from __future__ import annotations

__all__ = ["TARGETS", "Unexpected"]

TARGETS = ("policy", "pem", "bearer")
"""Module names under :mod:`fuzz`, in the order ``run.py`` lists them."""


class Unexpected(AssertionError):  # noqa: N818 (a crash, named for what the fuzzer reports)
    """An outcome the code under test does not document: the fuzzer reports it as a crash."""
