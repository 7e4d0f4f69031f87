"""The demo scenario and ``grpcsec demo``: one call works and names the caller, the two calls
that must be refused are, and the report and exit code say so."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grpcsec.cli import app
from grpcsec.demo.scenario import CLIENT_SPIFFE_ID, run_demo
from grpcsec.errors import MaterialError
from grpcsec.pki import utcnow


def test_run_demo_passes_every_row(tmp_path: Path) -> None:
    report = run_demo(tmp_path / "demo", utcnow())
    assert report.passed
    assert [row.code for row in report.rows] == ["OK", "UNAVAILABLE", "UNAVAILABLE"]
    good, no_cert, other_ca = report.rows
    assert good.outcome == f"Hello grpcsec (from {CLIENT_SPIFFE_ID})"
    assert "no client certificate" in no_cert.scenario
    assert "another CA" in other_ca.scenario
    assert all(row.passed for row in report.rows)
    assert report.address.startswith("127.0.0.1:")


def test_run_demo_writes_keys_private(tmp_path: Path) -> None:
    report = run_demo(tmp_path / "demo", utcnow())
    names = {path.name for path in report.files}
    assert {"ca.crt", "server.crt", "server.key", "client.crt", "client.key"} <= names
    for path in report.files:
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.suffix == ".key":
            assert mode & 0o077 == 0, path
    assert json.loads(json.dumps(report.to_json()))["passed"] is True


def test_run_demo_never_replaces_existing_files(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("mine\n")
    with pytest.raises(MaterialError, match="already exists"):
        run_demo(tmp_path, utcnow())
    assert (tmp_path / "ca.crt").read_text() == "mine\n"
    assert not (tmp_path / "server.key").exists()


def test_run_demo_reports_a_failure_when_the_good_call_fails(tmp_path: Path) -> None:
    """Negative control for the report: certificates dated a year ago have expired, so even
    the valid client is refused and the report does not pass."""
    report = run_demo(
        tmp_path, utcnow() - dt.timedelta(days=365), rotation_swaps=0, later_acts=False
    )
    assert not report.passed
    assert not report.rows[0].passed
    assert report.rows[0].code != "OK"


def test_cli_demo_json_exits_zero() -> None:
    result = CliRunner().invoke(app, ["demo", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"] is True
    assert [row["passed"] for row in data["rows"]] == [True, True, True]
    rotation = data["rotation"]
    assert rotation["failed"] == 0
    assert rotation["calls"] > 0
    assert len(set(rotation["serials_served"])) == rotation["swaps"] + 1
    access = data["access"]
    assert [row["code"] for row in access] == [
        "OK",
        "UNAUTHENTICATED",
        "UNAUTHENTICATED",
        "UNAUTHENTICATED",
        "OK",
        "PERMISSION_DENIED",
        "OK",  # after the policy file was edited
        "PERMISSION_DENIED",
    ]
    assert all(row["passed"] for row in access)
    assert data["check"]["exit_code"] == 0


def test_cli_demo_table_and_keep(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    result = CliRunner().invoke(app, ["demo", "--keep", str(keep)])
    assert result.exit_code == 0, result.output
    assert "behaved as expected" in result.stdout
    assert (keep / "client.key").is_file()
    again = CliRunner().invoke(app, ["demo", "--keep", str(keep)])
    assert again.exit_code == 2
    assert "already exists" in again.output
