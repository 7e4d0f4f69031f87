"""``grpcsec.text``: untrusted text shown inert, in any string and in every grpcsec log record.

Each class of dangerous character is escaped, ordinary text (any script, markup brackets, emoji
codes) is left alone, the function is idempotent, and a record logged on a grpcsec logger with a
hostile argument reaches every handler as one escaped line.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grpcsec.authz.audit import AuditEvent, FileAuditLogger
from grpcsec.text import InertLogFilter, get_logger, has_unsafe_characters, inert

CASES = [
    ("alice\x1b[31m", "alice\\x1b[31m"),
    ("a\nb\rc\td", "a\\nb\\rc\\td"),
    ("nul\x00", "nul\\x00"),
    ("del\x7f", "del\\x7f"),
    ("c1\x85\x9b", "c1\\x85\\x9b"),
    ("\u202eabc", "\\u202eabc"),
    ("\u202a\u202b\u202c\u202d", "\\u202a\\u202b\\u202c\\u202d"),
    ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),
    ("line\u2028sep\u2029", "line\\u2028sep\\u2029"),
    ("mark\u200f\u061c", "mark\\u200f\\u061c"),
]

KEPT = ["plain-name", "CN=é,O=日本", "[bold red]x[/]", ":smile:", "back\\slash", "😀", "a b"]


@pytest.mark.parametrize(("raw", "shown"), CASES, ids=[repr(c[0]) for c in CASES])
def test_dangerous_characters_become_visible_escapes(raw: str, shown: str) -> None:
    assert inert(raw) == shown
    assert has_unsafe_characters(raw)


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert inert(text) == text
    assert not has_unsafe_characters(text)


def test_non_strings_are_shown_through_str() -> None:
    assert inert(None) == "None"
    assert inert(ValueError("bad\nline")) == "bad\\nline"


@given(st.text())
def test_output_is_safe_and_escaping_twice_changes_nothing(text: str) -> None:
    once = inert(text)
    assert not has_unsafe_characters(once)
    assert inert(once) == once
    assert len(once.splitlines()) <= 1


def test_grpcsec_log_records_reach_handlers_as_one_escaped_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = get_logger("grpcsec.test-inert")
    caplog.set_level(logging.INFO, logger="grpcsec.test-inert")
    log.info("denied %s for %r", "alice\x1b[31m\nINJECTED", "\u202eabc")
    (record,) = caplog.records
    assert record.getMessage() == "denied alice\\x1b[31m\\nINJECTED for '\\u202eabc'"
    assert "\n" not in caplog.text.rstrip("\n")


def test_the_filter_is_attached_once_and_a_plain_logger_has_none() -> None:
    first = get_logger("grpcsec.test-inert-once")
    again = get_logger("grpcsec.test-inert-once")
    assert first is again
    assert sum(isinstance(f, InertLogFilter) for f in first.filters) == 1
    assert not logging.getLogger("grpcsec.test-plain").filters  # negative control


def test_every_grpcsec_module_logger_escapes() -> None:
    """Each logger grpcsec logs on carries the filter (a logger added later must use
    ``get_logger``)."""
    for module in (
        "authn.verifier",
        "authz.engine",
        "demo.greeter",
        "interceptors",
        "rotation.renew",
    ):
        importlib.import_module(f"grpcsec.{module}")
    for name in ("authn", "authz", "serve", "rotation", "renew"):
        filters = logging.getLogger(f"grpcsec.{name}").filters
        assert any(isinstance(f, InertLogFilter) for f in filters), name


def test_no_grpcsec_module_logs_on_a_logger_without_the_filter() -> None:
    """Every module-level logger in the package comes from ``get_logger``."""
    source = Path(__file__).resolve().parents[1] / "src" / "grpcsec"
    offenders = [
        str(path.relative_to(source))
        for path in source.rglob("*.py")
        if re.search(r"^\w+ = logging\.getLogger\(", path.read_text(), re.MULTILINE)
    ]
    assert offenders == []


def test_audit_lines_stay_one_ascii_line(tmp_path: Path) -> None:
    """A59 file audit logger: a hostile method, policy and rule name stay on one JSON line and
    decode back to the exact strings."""
    hostile = "x\x1b[31m\nINJECTED\u202e\x85"
    path = tmp_path / "audit.log"
    logger = FileAuditLogger(path, clock=lambda: 0)
    event = AuditEvent(rpc_method=f"/a.B/{hostile}", principal="", policy_name=hostile,
                       matched_rule=hostile, authorized=False)  # fmt: skip
    logger.log(event)
    logger.log(event)
    raw = path.read_bytes()
    assert raw.isascii()
    lines = raw.decode().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["grpc_audit_log"]["policy_name"] == hostile
