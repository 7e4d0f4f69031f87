"""``grpcsec renew``: one-shot runs in-process (exit codes 0, 1, 2 and their messages), and the
agent as a real process that renews on its period and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import Result

from tests.cli.clirun import assert_one_error_line, mode, ok, plain, run

GRPCSEC = [sys.executable, "-m", "grpcsec.cli"]


@pytest.fixture
def pki_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    ok(run("init", "--dir", directory, "--valid", "1d"))
    return directory


def serial(path: Path) -> str:
    return f"{x509.load_pem_x509_certificate(path.read_bytes()).serial_number:x}"


def renew(directory: Path, *extra: object, stem: str = "server") -> Result:
    return run(
        "renew",
        "--ca-dir",
        directory,
        "--cert",
        directory / f"{stem}.crt",
        "--key",
        directory / f"{stem}.key",
        *extra,
    )


def test_once_does_nothing_before_the_renewal_point(pki_dir: Path) -> None:
    before = serial(pki_dir / "server.crt")
    result = ok(renew(pki_dir, "--once"))
    assert plain(result.stdout).startswith("not due:")
    assert "renews at" in result.stdout
    assert serial(pki_dir / "server.crt") == before
    data = json.loads(ok(renew(pki_dir, "--once", "--json")).stdout)
    assert data["action"] == "not_due"
    assert data["plan"]["due"] is False
    assert data["result"] is None


def test_force_renews_with_a_new_key_and_the_same_names(pki_dir: Path) -> None:
    before = serial(pki_dir / "server.crt")
    old_key = (pki_dir / "server.key").read_bytes()
    result = ok(renew(pki_dir, "--once", "--force", "--json"))
    data = json.loads(result.stdout)
    assert data["action"] == "renewed"
    assert data["result"]["previous_serial"] == before
    assert data["result"]["serial"] == serial(pki_dir / "server.crt") != before
    assert (pki_dir / "server.key").read_bytes() != old_key
    assert mode(pki_dir / "server.key") == 0o600
    assert "PRIVATE KEY" not in result.output
    verified = json.loads(
        run(
            "verify",
            pki_dir / "server.crt",
            "--ca",
            pki_dir / "ca.crt",
            "--host",
            "localhost",
            "--key",
            pki_dir / "server.key",
            "--json",
        ).stdout
    )
    assert verified["ok"] is True


def test_an_expired_certificate_is_exit_1_and_says_so(pki_dir: Path) -> None:
    ok(
        run(
            "issue",
            "server",
            "--ca-dir",
            pki_dir,
            "--out",
            pki_dir / "old",
            "--host",
            "localhost",
            "--not-before",
            "2026-01-01",
            "--not-after",
            "2026-01-02",
        )
    )
    before = serial(pki_dir / "old.crt")
    line = assert_one_error_line(
        renew(pki_dir, "--once", stem="old"),
        "old.crt",
        "expired on 2026-01-02",
        "--allow-expired",
        code=1,
    )
    assert "Traceback" not in line
    assert serial(pki_dir / "old.crt") == before  # nothing written
    data = json.loads(renew(pki_dir, "--once", "--json", stem="old").stdout)
    assert data["action"] == "failed"
    assert "expired" in data["error"]
    ok(renew(pki_dir, "--once", "--allow-expired", stem="old"))
    assert serial(pki_dir / "old.crt") != before


def test_bad_input_is_exit_2(pki_dir: Path, tmp_path: Path) -> None:
    assert_one_error_line(
        run(
            "renew",
            "--ca-dir",
            pki_dir,
            "--cert",
            tmp_path / "nope.crt",
            "--key",
            tmp_path / "nope.key",
            "--once",
        ),
        "nope.crt",
        "no such file",
    )
    assert_one_error_line(renew(pki_dir, "--once", "--every", "soon"), "--every")
    assert_one_error_line(
        renew(pki_dir, "--once", "--exec", "'unterminated"),
        "--exec",
    )
    assert_one_error_line(
        run(
            "renew",
            "--ca-dir",
            tmp_path,
            "--cert",
            pki_dir / "server.crt",
            "--key",
            pki_dir / "server.key",
            "--once",
        ),
        "ca.crt",
    )


@pytest.mark.parametrize("flags", [("--once", "--force"), ("--once",)], ids=["force", "not-due"])
def test_a_certificate_from_another_ca_needs_new_issuer(
    pki_dir: Path, tmp_path: Path, flags: tuple[str, ...]
) -> None:
    """Refused at once as bad input (exit 2), due or not: before, a wrong --ca-dir answered
    "not due" until the day the renewal failed."""
    other = tmp_path / "other"
    ok(run("init", "--dir", other))
    assert_one_error_line(
        run(
            "renew",
            "--ca-dir",
            pki_dir,
            "--cert",
            other / "server.crt",
            "--key",
            other / "server.key",
            *flags,
        ),
        "not by this CA",
        "--new-issuer",
        code=2,
    )
    ok(
        run(
            "renew",
            "--ca-dir",
            pki_dir,
            "--cert",
            other / "server.crt",
            "--key",
            other / "server.key",
            "--once",
            "--force",
            "--new-issuer",
        )
    )
    verified = run("verify", other / "server.crt", "--ca", pki_dir / "ca.crt", "--json")
    assert json.loads(verified.stdout)["ok"] is True


def test_the_agent_refuses_a_certificate_from_another_ca_at_start(
    pki_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    ok(run("init", "--dir", other))
    result = subprocess.run(
        [*GRPCSEC, "renew", "--ca-dir", str(pki_dir), "--cert", str(other / "server.crt"),
         "--key", str(other / "server.key"), "--check-interval", "1s"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "not by this CA" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_hook_runs_after_renewal_and_its_failure_is_exit_1(
    pki_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "hook.txt"
    script = "import os,sys; open(sys.argv[1],'w').write(os.environ['GRPCSEC_SERIAL'])"
    command = f'{sys.executable} -c "{script}" {out}'
    ok(renew(pki_dir, "--once", "--force", "--exec", command))
    assert out.read_text() == serial(pki_dir / "server.crt")
    before = serial(pki_dir / "server.crt")
    result = renew(pki_dir, "--once", "--force", "--exec", f"{sys.executable} -c 'exit(4)'")
    assert result.exit_code == 1
    assert "the hook failed: the hook exited with status 4" in plain(result.stderr)
    assert serial(pki_dir / "server.crt") != before  # the renewal itself stands


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_agent_renews_on_its_period_and_stops_on_sigterm(
    pki_dir: Path, log_format: str
) -> None:
    """A real process: ``--every 1s`` renews about every second; SIGTERM ends it with 0. With
    ``--log-format json`` every stderr line is one JSON object (schema v1)."""
    cert = pki_dir / "server.crt"
    first = serial(cert)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [
            *GRPCSEC,
            "renew",
            "--ca-dir",
            str(pki_dir),
            "--cert",
            str(cert),
            "--key",
            str(pki_dir / "server.key"),
            "--every",
            "1s",
            "--check-interval",
            "1s",
            "--json",
            "--log-format",
            log_format,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as agent:
        try:
            seen = {first}
            deadline = time.monotonic() + 20
            while len(seen) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
                seen.add(serial(cert))
            assert len(seen) >= 3, "the agent did not renew twice within 20 s"
        finally:
            agent.send_signal(signal.SIGTERM)
            stdout, stderr = agent.communicate(timeout=20)
    assert agent.returncode == 0, stderr
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert events[0]["event"] == "started"
    assert sum(1 for e in events if e["event"] == "renewed") >= 2
    assert "renewed" in stderr  # the log line
    assert "PRIVATE KEY" not in stdout + stderr
    if log_format == "json":
        lines = [json.loads(line) for line in stderr.splitlines()]
        assert lines
        assert all(set(line) >= {"v", "time", "level", "logger", "message"} for line in lines)
        assert all(line["v"] == 1 for line in lines)
        assert any("renewed" in line["message"] for line in lines)
    else:
        assert not stderr.lstrip().startswith("{")


def test_a_renewal_is_recorded_so_its_serial_can_be_revoked(pki_dir: Path) -> None:
    ok(renew(pki_dir, "--once"))  # not due: nothing issued, nothing recorded (the control)
    assert len((pki_dir / "issued.jsonl").read_text().splitlines()) == 2  # init's two
    ok(renew(pki_dir, "--once", "--force"))
    renewed = serial(pki_dir / "server.crt")
    last = json.loads((pki_dir / "issued.jsonl").read_text().splitlines()[-1])
    assert (last["serial"], last["role"]) == (renewed, "renewed certificate")
    assert last["file"] == str((pki_dir / "server.crt").absolute())
    revoked = json.loads(ok(run("ca", "revoke", "--serial", renewed, "--ca-dir", pki_dir,
                                "--json")).stdout)  # fmt: skip
    assert revoked["recorded"] is True
