"""The documentation says what the code does: the stable code lists in docs/doctor.md, and every
grpcio text in docs/troubleshooting.md maps to the diagnosis printed next to it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grpcsec.doctor import DIAGNOSES, WARNINGS, CallContext, explain_failure
from grpcsec.doctor.checks import CHECK_NAMES

DOCS = Path(__file__).resolve().parents[2] / "docs"
CONTEXTS = {
    "any": CallContext(),
    "TLS": CallContext(tls=True),
    "TLS, no client cert": CallContext(tls=True, client_cert_sent=False),
    "TLS + client cert": CallContext(tls=True, client_cert_sent=True),
    "plaintext": CallContext(tls=False),
}


def section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def first_column_codes(markdown: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", markdown, flags=re.MULTILINE))


def test_diagnosis_codes_are_documented_exactly() -> None:
    text = (DOCS / "doctor.md").read_text()
    assert first_column_codes(section(text, "Diagnosis codes")) == set(DIAGNOSES)


def test_warning_codes_are_documented_exactly() -> None:
    text = (DOCS / "doctor.md").read_text()
    assert first_column_codes(section(text, "Warning codes")) == set(WARNINGS)


def test_every_check_is_in_the_order_table() -> None:
    text = section((DOCS / "doctor.md").read_text(), "The checks, in order")
    listed = re.findall(r"^\| \d \| `([a-z_]+)` \|", text, flags=re.MULTILINE)
    assert tuple(listed) == CHECK_NAMES


def troubleshooting_rows() -> list[tuple[str, str, str, str]]:
    text = (DOCS / "troubleshooting.md").read_text()
    rows = []
    pattern = re.compile(
        r"^\| ([A-Z_]+) \| `(.+?)` \| [^|]+ \| ([^|]+?) \| `([a-z_]+)` \|", re.MULTILINE
    )
    for status, details, client, diagnosis in pattern.findall(text):
        rows.append((status, details, client, diagnosis))
    return rows


def test_the_troubleshooting_table_has_old_and_new_texts() -> None:
    rows = troubleshooting_rows()
    assert len(rows) >= 30
    texts = " ".join(details for _, details, _, _ in rows)
    for marker in ("Tls handshake failed", "Ssl handshake failed", "Hostname Verification"):
        assert marker in texts
    assert "is not in peer certificate" in texts
    assert "empty address list" in texts


@pytest.mark.parametrize(
    ("status", "details", "client", "diagnosis"),
    troubleshooting_rows(),
    ids=lambda value: str(value)[:40],
)
def test_each_documented_text_gives_its_diagnosis(
    status: str, details: str, client: str, diagnosis: str
) -> None:
    assert diagnosis in DIAGNOSES
    prefixed = (
        f"failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.0.1:443: {details}"
    )
    assert explain_failure(status, prefixed, CONTEXTS[client]).diagnosis == diagnosis
