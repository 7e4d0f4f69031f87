"""``grpcsec check`` (in-process) and ``grpcsec exporter`` (a real subprocess).

check: one exit code per outcome (0 ok, 1 warning, 2 critical/expired/not yet valid, 3
unreadable, 4 unreachable, the highest wins), the time given with ``--at``; a table sorted by
time left or ``--json``; bad usage is 64 (not 2, which means critical here) with one error line.
exporter: serves /metrics on the address given, keeps serving through bad targets, stops on
SIGTERM with exit 0; a busy port is exit 1, bad usage 64.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from grpcsec.cli import app
from grpcsec.cli.monitor_commands import check_summary, render_check_table
from grpcsec.monitor import Thresholds, check_targets
from grpcsec.pki import CertificateAuthority, Profile, utcnow
from tests.crls import write_crl
from tests.monitor.conftest import (
    DAY,
    GRPCSEC,
    HOUR,
    NOW,
    Announced,
    closed_port,
    http_get,
    issue,
    lasting,
    make_issuing_ca,
    make_root_ca,
    self_signed_root,
    spawner,
    stop_process,
    tls_server,
    write,
)

AT = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
URL = re.compile(r"http://(127\.0\.0\.1):(\d+)/metrics")


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GRPCSEC_KEY_PASSWORD", "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)


def run(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def plain(text: str) -> str:
    return _ANSI.sub("", text)


def check_json(*args: object) -> tuple[int, dict[str, object]]:
    result = run("check", "--json", "--at", AT, *args)
    data: dict[str, object] = json.loads(result.stdout)
    return result.exit_code, data


@pytest.fixture
def root_ca() -> CertificateAuthority:
    return make_root_ca()


@pytest.fixture
def issuing_ca() -> CertificateAuthority:
    return make_issuing_ca()


@pytest.fixture
def spawn() -> Iterator[Callable[..., Announced]]:
    with spawner() as start:
        yield start


@pytest.fixture
def files(tmp_path: Path, issuing_ca: CertificateAuthority) -> dict[str, Path]:
    """One certificate file per outcome at :data:`NOW`."""
    made = {
        "ok": lasting(issuing_ca, "ok.test", left=60 * DAY, lifetime=90 * DAY),
        "warning": lasting(issuing_ca, "warning.test", left=20 * DAY, lifetime=90 * DAY),
        "critical": lasting(issuing_ca, "critical.test", left=3 * DAY, lifetime=90 * DAY),
        "expired": lasting(issuing_ca, "expired.test", left=-DAY, lifetime=90 * DAY),
        "early": issue(issuing_ca, "early.test", not_before=NOW + HOUR, not_after=NOW + 90 * DAY),
    }
    return {name: write(tmp_path / f"{name}.pem", [c.certificate]) for name, c in made.items()}


# -- check: exit codes -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "code"),
    [("ok", 0), ("warning", 1), ("critical", 2), ("expired", 2), ("early", 2)],
)
def test_check_exit_code_per_outcome(files: dict[str, Path], name: str, code: int) -> None:
    result = run("check", "--at", AT, files[name])
    assert result.exit_code == code, plain(result.output)
    assert result.stderr == ""


def test_check_exit_code_is_the_highest_that_applies(
    files: dict[str, Path], tmp_path: Path
) -> None:
    assert run("check", "--at", AT, files["ok"], files["warning"]).exit_code == 1
    assert run("check", "--at", AT, files["warning"], files["expired"]).exit_code == 2
    missing = tmp_path / "missing.pem"
    assert run("check", "--at", AT, files["expired"], missing).exit_code == 3
    refused = closed_port()
    result = run("check", "--at", AT, files["expired"], missing, refused)
    assert result.exit_code == 4
    lines = plain(result.stderr).strip().splitlines()
    assert lines == [
        f"error: {missing}: no such file",
        f"error: {refused}: connection refused",
    ]


def test_thresholds_from_the_command_line(files: dict[str, Path]) -> None:
    path = files["warning"]  # 20 days left of 90
    assert run("check", "--at", AT, path).exit_code == 1
    assert run("check", "--at", AT, "--warn", "14d", path).exit_code == 0
    assert run("check", "--at", AT, "--warn", "60d", "--crit", "21d", path).exit_code == 2
    assert run("check", "--at", AT, "--warn", "80%", "--crit", "95%", path).exit_code == 0
    assert run("check", "--at", AT, "--warn", "30d", "--warn", "70%", path).exit_code == 1


def test_a_trust_bundle_expiring_whole_is_reported(tmp_path: Path) -> None:
    roots = self_signed_root("A", not_before=NOW - 3000 * DAY, not_after=NOW + 2 * DAY)
    roots += self_signed_root("B", not_before=NOW - 3000 * DAY, not_after=NOW + 4 * DAY)
    path = write(tmp_path / "trust.pem", roots)
    result = run("check", "--at", AT, path)
    assert result.exit_code == 2
    assert "critical: " in plain(result.stdout)
    assert "every root expires within the critical window" in plain(result.stdout)


# -- check: output ---------------------------------------------------------------------------------
def test_check_table_is_sorted_by_time_left_with_a_summary(files: dict[str, Path]) -> None:
    result = run("check", "--at", AT, files["ok"], files["critical"], files["warning"])
    text = plain(result.stdout)
    order = [text.index(name) for name in ("critical.test", "warning.test", "ok.test")]
    assert order == sorted(order)
    assert "warning at 30d,75%, critical at 7d,90%" in text
    assert "Certificates at 2030-06-01 12:00Z" in text
    assert text.strip().splitlines()[-1] == (
        "3 certificates (1 ok, 1 warning, 1 critical); exit 2 (critical)"
    )


def test_check_json_is_only_json_on_stdout(files: dict[str, Path], tmp_path: Path) -> None:
    code, data = check_json(files["critical"], tmp_path / "nope.pem")
    assert code == 3
    assert data["status"] == "unreadable"
    assert data["exit_code"] == 3
    certificates = data["certificates"]
    assert isinstance(certificates, list)
    assert [c["common_name"] for c in certificates] == ["critical.test"]
    assert certificates[0]["status"] == "critical"
    assert certificates[0]["seconds_left"] == 3 * 86400
    errors = data["errors"]
    assert isinstance(errors, list)
    assert errors[0]["kind"] == "read"


def test_render_check_table_for_the_demo(files: dict[str, Path]) -> None:
    report = check_targets([files["ok"], files["expired"]], Thresholds(), NOW)
    console = Console(width=200, record=True, color_system=None)
    console.print(render_check_table(report))
    text = console.export_text()
    assert text.index("expired.test") < text.index("ok.test")
    assert "-1d 0h" in text
    assert check_summary(report) == "2 certificates (1 ok, 1 expired); exit 2 (critical)"


# -- check: endpoints ------------------------------------------------------------------------------
def test_check_a_live_endpoint_at_a_chosen_time(issuing_ca: CertificateAuthority) -> None:
    start = utcnow().replace(microsecond=0)
    leaf = issue(issuing_ca, "localhost", not_before=start, not_after=start + HOUR)
    at = {
        0: start + dt.timedelta(minutes=5),
        1: start + dt.timedelta(minutes=50),
        2: start + dt.timedelta(minutes=58),
    }
    with tls_server(leaf) as address:
        for code, moment in at.items():
            result = run("check", "--at", moment.isoformat(), address)
            assert result.exit_code == code, plain(result.output)
            assert f"{address} #0" in plain(result.stdout)  # the leaf of the served chain
            assert f"{address} #1" in plain(result.stdout)  # and its intermediate


def test_check_presents_a_client_certificate_with_a_password_from_the_environment(
    tmp_path: Path,
    issuing_ca: CertificateAuthority,
    root_ca: CertificateAuthority,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = utcnow().replace(microsecond=0)
    leaf = issue(issuing_ca, "localhost", not_before=start, not_after=start + DAY)
    client = issue(
        issuing_ca, "prober", not_before=start, not_after=start + DAY, profile=Profile.CLIENT
    )
    cert = write(tmp_path / "client.crt", client.chain_pem())
    key = write(tmp_path / "client.key", client.key_pem(b"pw"))
    with tls_server(leaf, client_ca=root_ca) as address:
        without = run("check", "--json", address, "--client-cert", cert, "--client-key", key)
        assert without.exit_code == 64  # encrypted key, no password: usage
        assert "password" in plain(without.stderr).lower()
        monkeypatch.setenv("GRPCSEC_KEY_PASSWORD", "pw")
        result = run("check", "--json", address, "--client-cert", cert, "--client-key", key)
    assert result.exit_code == 0, plain(result.output)
    assert json.loads(result.stdout)["certificates"][0]["common_name"] == "localhost"


# -- check: usage errors are 64 --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--warn", "soon"], "invalid threshold 'soon'"),
        (["--crit", "40d"], "comes before the warning threshold"),
        (["--at", "yesterday"], "invalid time 'yesterday'"),
        (["--client-cert", "c.pem"], "without its key"),
        (["--timeout", "0"], "timeout must be longer than zero"),
    ],
)
def test_check_bad_usage_is_64_with_one_line(
    files: dict[str, Path], args: list[str], needle: str
) -> None:
    result = run("check", *args, files["ok"])
    assert result.exit_code == 64, plain(result.output)
    assert result.stdout == ""
    lines = plain(result.stderr).strip().splitlines()
    assert len(lines) == 1
    assert needle in lines[0]


def test_check_parser_errors_are_64_not_2(files: dict[str, Path]) -> None:
    assert run("check", "--no-such-option", files["ok"]).exit_code == 64
    assert run("check").exit_code == 64  # no target
    assert run("exporter").exit_code == 64
    assert run("check", "--timeout", "soon", files["ok"]).exit_code == 64
    assert run("check", "--help").exit_code == 0


# -- exporter --------------------------------------------------------------------------------------
def test_exporter_serves_metrics_and_stops_on_sigterm(
    tmp_path: Path, issuing_ca: CertificateAuthority, spawn: Callable[..., Announced]
) -> None:
    leaf = lasting(issuing_ca, "svc.test", left=DAY, lifetime=90 * DAY)
    path = write(tmp_path / "svc.pem", [leaf.certificate])
    garbage = write(tmp_path / "garbage.pem", b"garbage")
    started = spawn([*GRPCSEC, "exporter", "--listen", "127.0.0.1:0", path, garbage])
    match = URL.search(started.first_line)
    assert match, started.first_line
    assert started.first_line.strip().endswith("for 2 targets")
    url = match.group(0)
    first = http_get(url)
    second = http_get(url)
    assert f'source="{path}"' in first
    assert f'grpcsec_exporter_read_errors_total{{target="{garbage}"}} 1.0' in first
    assert f'grpcsec_exporter_read_errors_total{{target="{garbage}"}} 2.0' in second
    assert stop_process(started.process) == 0
    rest = []
    while not rest or rest[-1] != "grpcsec exporter: stopped":
        rest.append(started.lines.get(timeout=5).strip())
    # Why the garbage target is down is logged once, though it was scraped twice.
    down = [line for line in rest if "is down" in line]
    assert len(down) == 1, rest
    assert str(garbage) in down[0]
    assert "WARNING" in down[0]


def test_exporter_listen_defaults_to_loopback_and_a_bare_port(
    tmp_path: Path, spawn: Callable[..., Announced]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = spawn([*GRPCSEC, "exporter", "--listen", str(port), tmp_path])
    assert f"http://127.0.0.1:{port}/metrics" in started.first_line
    assert stop_process(started.process) == 0


def test_exporter_on_a_busy_port_exits_1(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        completed = subprocess.run(
            [*GRPCSEC, "exporter", "--listen", f"127.0.0.1:{port}", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert completed.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in completed.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--listen", "nowhere"], "invalid address 'nowhere'"),
        (["--interval", "often"], "--interval: invalid duration"),
    ],
)
def test_exporter_bad_usage_is_64(tmp_path: Path, args: list[str], needle: str) -> None:
    result = run("exporter", *args, tmp_path)
    assert result.exit_code == 64
    assert needle in plain(result.stderr)


# -- check: CRLs -----------------------------------------------------------------------------------
def _crl(path: Path, ca: CertificateAuthority, left: dt.timedelta) -> Path:
    """A CRL of ``ca`` with ``left`` to go before its next update at NOW, of a 7-day span."""
    return write_crl(path, ca, this_update=NOW + left - 7 * DAY, next_update=NOW + left)


@pytest.mark.parametrize(
    ("left", "code", "word"),
    [(6 * DAY, 0, "ok"), (DAY, 1, "warning"), (12 * HOUR, 2, "critical"), (-HOUR, 2, "expired")],
)
def test_check_a_crl_file_exit_code_and_table(
    tmp_path: Path, issuing_ca: CertificateAuthority, left: dt.timedelta, code: int, word: str
) -> None:
    path = _crl(tmp_path / "issuing.crl", issuing_ca, left)
    result = run("check", "--at", AT, path)
    assert result.exit_code == code, plain(result.output)
    text = plain(result.stdout)
    assert "Certificate revocation lists (judged by their next update)" in text
    assert word in text
    assert "Monitor Issuing" in text
    assert text.strip().splitlines()[-1].startswith("0 certificates; 1 CRL")


def test_check_crl_json_from_a_real_subprocess(
    tmp_path: Path, issuing_ca: CertificateAuthority, files: dict[str, Path]
) -> None:
    """The entry point, a directory holding a certificate and an expired CRL: exit 2 and the
    CRL under ``crls`` with the certificates' conventions."""
    root = tmp_path / "published"
    root.mkdir()
    (root / "ok.pem").write_bytes(files["ok"].read_bytes())
    _crl(root / "issuing.crl", issuing_ca, -HOUR)
    command = [*GRPCSEC, "check", "--json", "--at", AT, str(root)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    data = json.loads(result.stdout)
    assert [c["common_name"] for c in data["certificates"]] == ["ok.test"]
    (crl,) = data["crls"]
    assert crl["status"] == "expired"
    assert crl["seconds_left"] == -3600
    assert crl["next_update"] == "2030-06-01T11:00:00Z"
    assert crl["source"] == str(root / "issuing.crl")
