"""Token numbers: a strict JSON reader for claims, and the NumericDate rule for time claims.

No grpc. Python's :func:`json.loads` accepts ``NaN``, ``Infinity`` and ``-Infinity`` (which
RFC 8259 JSON does not have) and turns ``1e400`` into ``inf``; ``True`` is an ``int`` in Python.
A time check written as ``now >= exp + leeway`` is silently false for ``NaN``, so a token with
``"exp": NaN`` would never expire. Every token payload is therefore read by
:func:`load_claims`, which keeps such numbers as :class:`NonFinite` markers (so the time check
can name them), and every time claim goes through :func:`numeric_date`.

The NumericDate rule is deliberately narrower than RFC 7519 (which allows fractions): an
integer number of seconds in ``[MIN_NUMERIC_DATE, MAX_NUMERIC_DATE]``, i.e. from
1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z, the last second :mod:`datetime` can show. A JSON
float with no fraction (``1900000000.0``) is accepted as that integer; ``1.5``, booleans,
strings, lists, objects, non-finite and out-of-range values are refused (an absent claim or
``null`` is the caller's business). What is not checked here: whether the date is plausible for
the issuer (that is the verifier's leeway and expiry checks).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = [
    "MAX_NUMERIC_DATE",
    "MIN_NUMERIC_DATE",
    "NonFinite",
    "is_finite_json",
    "load_claims",
    "numeric_date",
]

MIN_NUMERIC_DATE = 0
MAX_NUMERIC_DATE = 253_402_300_799
"""9999-12-31T23:59:59Z: later values cannot be shown as a date and are not sane expiries."""


class NonFinite:
    """A number JSON cannot carry (``NaN``, ``Infinity``, ``-Infinity``, or a float literal that
    overflows to infinity), kept as its text so messages can name it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _parse_float(text: str) -> float | NonFinite:
    value = float(text)
    return value if math.isfinite(value) else NonFinite(text if len(text) <= 24 else "1e...")


def load_claims(payload: bytes | str) -> Any:  # noqa: ANN401 (JSON values)
    """Parse a token payload; non-finite numbers become :class:`NonFinite` markers.

    Raises :class:`ValueError` (or :class:`RecursionError`) for text that is not JSON at all,
    including integers longer than Python's digit limit.
    """
    return json.loads(payload, parse_constant=NonFinite, parse_float=_parse_float)


def is_finite_json(value: object) -> bool:
    """Whether a parsed JSON scalar is one standard JSON can carry (no marker, no ``nan``)."""
    if isinstance(value, NonFinite):
        return False
    return not isinstance(value, float) or math.isfinite(value)


def numeric_date(value: object) -> int:
    """``value`` as a whole number of POSIX seconds, or :class:`ValueError` saying why not
    (a wrong JSON type too: the caller maps every refusal to one reason)."""
    if isinstance(value, bool) or not isinstance(value, int | float | NonFinite):
        raise ValueError(  # noqa: TRY004 (one exception type for every refusal)
            f"is a {_json_type(value)}, not a number of seconds"
        )
    if isinstance(value, NonFinite) or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError(f"is {value!r}, not a finite number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("has a fraction of a second; whole seconds are required")
        value = int(value)
    if not MIN_NUMERIC_DATE <= value <= MAX_NUMERIC_DATE:
        shown = str(value) if abs(value) < 10**24 else f"a {value.bit_length()}-bit number"
        raise ValueError(
            f"is {shown}, outside {MIN_NUMERIC_DATE}..{MAX_NUMERIC_DATE} (1970-01-01 to 9999-12-31)"
        )
    return value


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else type(value).__name__
