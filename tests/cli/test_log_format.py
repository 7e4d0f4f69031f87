"""``--log-format json`` on the long-running commands: every stderr line is one JSON object
(schema v1: v, time, level, logger, message). The text format is the control."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from grpcsec.pki import CERT_MODE, KEY_MODE, PendingFile, write_files
from tests.conftest import Pki

pytestmark = pytest.mark.slow

GRPCSEC = [sys.executable, "-m", "grpcsec.cli"]
ENV = {k: v for k, v in os.environ.items() if k != "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"}


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return out, err


def _json_lines(stderr: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert set(line) >= {"v", "time", "level", "logger", "message"}, line
        assert line["v"] == 1
    return lines


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_serve_logs_json_lines(pki: Pki, tmp_path: Path, log_format: str) -> None:
    write_files(
        [
            PendingFile(tmp_path / "server.crt", pki.server.chain_pem(), CERT_MODE),
            PendingFile(tmp_path / "server.key", pki.server.key_pem(), KEY_MODE),
        ]
    )
    argv = [*GRPCSEC, "serve", "--listen", "127.0.0.1:0", "--cert", "server.crt"]
    argv += ["--key", "server.key", "--metrics", "127.0.0.1:0", "--log-format", log_format]
    process = subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    assert process.stdout is not None
    assert "listening on" in process.stdout.readline()
    _, err = _stop(process)
    if log_format == "json":
        messages = [str(line["message"]) for line in _json_lines(err)]
        assert any(m.startswith("metrics on http://127.0.0.1:") for m in messages)
        assert any(m == "shutting down" for m in messages)
    else:
        assert re.search(r" INFO grpcsec\.server: metrics on http://", err)
        assert not err.lstrip().startswith("{")


def test_exporter_logs_a_down_target_as_json(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*GRPCSEC, "exporter", "--listen", "127.0.0.1:0", "--log-format", "json", "127.0.0.1:1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    url = re.search(r"serving (http://\S+)", first)
    assert url, first
    # one scrape probes the target (loopback http:// from the exporter's own line)
    with urllib.request.urlopen(url[1], timeout=20) as response:  # noqa: S310
        assert b"grpcsec_" in response.read()
    _, err = _stop(process)
    lines = _json_lines(err)
    assert any(
        line["level"] == "WARNING" and "127.0.0.1:1" in str(line["message"]) for line in lines
    )
