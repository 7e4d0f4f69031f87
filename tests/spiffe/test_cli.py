"""``grpcsec serve --spiffe-socket`` in a real subprocess and ``grpcsec call --spiffe-socket``
against it, each workload with its own test Workload API. Bad input and an absent agent give
exit 2 with one line and no traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grpcsec.cli import app
from grpcsec.pki import CertificateAuthority
from tests.spiffe.workload_api import (
    CLIENT_ID,
    SERVER_DNS,
    SERVER_ID,
    FakeAgent,
    issue_svid,
)

GRPCSEC = [sys.executable, "-m", "grpcsec.cli"]
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+) \((\S+?)[,)]")


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SPIFFE_ENDPOINT_SOCKET"}
    env.update(extra)
    return env


class Serve:
    """One ``grpcsec serve`` subprocess; ``port`` once it said ``listening on``."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [*GRPCSEC, "serve", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or environment(),
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        line = self.process.stdout.readline()
        while line and not LISTENING.search(line) and time.monotonic() < deadline:
            line = self.process.stdout.readline()
        match = LISTENING.search(line)
        if match is None:
            self.stop()
            pytest.fail(
                f"serve did not start: {self.process.stderr.read() if self.process.stderr else ''}"
            )
        self.port = int(match.group(1))
        self.mode = match.group(2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=10)


@pytest.fixture
def serve() -> Iterator[type[Serve]]:
    started: list[Serve] = []

    class Tracked(Serve):
        def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
            super().__init__(*args, env=env)
            started.append(self)

    yield Tracked
    for server in started:
        server.stop()


def call(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["call", *args])
    return result.exit_code, result.stdout, result.stderr


def run_serve(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRPCSEC, "serve", "--listen", "127.0.0.1:0", *args],
        capture_output=True,
        text=True,
        env=env or environment(),
        timeout=timeout,
        check=False,
    )


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("aio", [False, True])
def test_serve_and_call_with_svids_from_two_workload_apis(
    aio: bool, serve: type[Serve], agent: FakeAgent, client_agent: FakeAgent
) -> None:
    server = serve(
        "--spiffe-socket",
        agent.address,
        "--allow-trust-domain",
        "example.test",
        *(["--aio"] if aio else []),
    )
    assert server.mode == "mtls"
    target = f"127.0.0.1:{server.port}"
    common = ["--spiffe-socket", client_agent.address, "--server-name", SERVER_DNS]
    code, out, err = call(target, *common, "--server-spiffe-id", SERVER_ID, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["ok"] is True and result["mode"] == "mtls"
    assert result["spiffe_id"] == CLIENT_ID and result["server_spiffe_id"] == SERVER_ID
    assert result["roots"] == {"origin": "spiffe", "source": client_agent.address}
    # negative control: the same server is not the workload the caller expects
    code, _, err = call(target, *common, "--server-spiffe-id", "spiffe://example.test/billing")
    assert code == 1
    assert "presented spiffe://example.test/greeter, not spiffe://example.test/billing" in err
    # the client refuses an SVID its own agent's bundle does not vouch for (exit 2, one line)
    rogue = CertificateAuthority.create("rogue CA")
    client_agent.push(svid=issue_svid(rogue, CLIENT_ID))
    time.sleep(0.2)
    code, _, err = call(target, *common)
    assert code == 2
    assert "does not verify against the issuers" in one_error_line(err)
    # negative control: the client's agent vouches for the rogue CA, the server's does not
    client_agent.push(bundle=[*agent.state.bundle, rogue])
    time.sleep(0.2)
    code, _, err = call(target, *common)
    assert code == 1, err
    assert "UNAVAILABLE" in err


def test_serve_uses_spiffe_endpoint_socket_only_without_another_source(
    serve: type[Serve], agent: FakeAgent, tmp_path: Path
) -> None:
    server = serve("--allow-any-client", env=environment(SPIFFE_ENDPOINT_SOCKET=agent.address))
    assert server.mode == "mtls"
    # a certificate given explicitly wins over the variable (a pod with it set for other tools)
    refused = run_serve(
        "--cert",
        str(tmp_path / "none.crt"),
        "--key",
        str(tmp_path / "none.key"),
        env=environment(SPIFFE_ENDPOINT_SOCKET=agent.address),
    )
    assert refused.returncode == 2
    assert "none.crt" in one_error_line(refused.stderr)


def test_an_absent_agent_is_one_line_and_exit_2() -> None:
    started = time.monotonic()
    result = run_serve("--spiffe-socket", "unix:///tmp/grpcsec-no-agent.sock")
    assert result.returncode == 2
    assert "no SPIFFE Workload API socket at /tmp/grpcsec-no-agent.sock" in one_error_line(
        result.stderr
    )
    assert time.monotonic() - started < 30


def test_a_silent_agent_socket_fails_within_the_bound(agent: FakeAgent) -> None:
    agent.stop()
    agent.path.touch()
    started = time.monotonic()
    result = run_serve("--spiffe-socket", agent.address, timeout=60)
    assert result.returncode == 2
    assert "no X.509 SVID from the SPIFFE Workload API" in one_error_line(result.stderr)
    assert time.monotonic() - started < 40


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--cert", "a.crt", "--key", "a.key"], "drop tls.cert/key"),
        (["--client-ca", "ca.crt"], "drop tls.client_ca"),
        (["--insecure"], "insecure"),
    ],
)
def test_spiffe_socket_conflicts_are_one_line_errors(
    agent: FakeAgent, args: list[str], needle: str
) -> None:
    result = run_serve("--spiffe-socket", agent.address, *args)
    assert result.returncode == 2
    assert needle in one_error_line(result.stderr)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--spiffe-socket", "unix:///x.sock", "--ca", "ca.crt"], "drop --ca"),
        (["--server-spiffe-id", SERVER_ID, "--ca", "ca.crt"], "needs --spiffe-socket"),
        (["--spiffe-socket", "tcp://localhost:1"], "needs an IP address"),
        (["--spiffe-socket", "unix:///tmp/grpcsec-no-agent.sock"], "no SPIFFE Workload API socket"),
    ],
)
def test_call_spiffe_input_errors(args: list[str], needle: str) -> None:
    code, _, err = call("127.0.0.1:1", *args)
    assert code == 2
    assert needle in one_error_line(err)


def test_config_file_spiffe_socket(agent: FakeAgent, tmp_path: Path, serve: type[Serve]) -> None:
    config = tmp_path / "grpcsec.toml"
    config.write_text(
        f'[tls]\nspiffe_socket = "{agent.address}"\n[authn]\nallow_spiffe_ids = ["{CLIENT_ID}"]\n'
    )
    server = serve("--config", str(config))
    assert server.mode == "mtls"


def test_config_check_connects_to_the_agent_and_says_when_it_cannot(
    agent: FakeAgent, tmp_path: Path
) -> None:
    config = tmp_path / "grpcsec.toml"
    config.write_text(f'[tls]\nspiffe_socket = "{agent.address}"\n')
    result = CliRunner().invoke(app, ["config", "check", str(config)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["config"]["tls"]["spiffe_socket"] == agent.address
    agent.stop()
    result = CliRunner().invoke(app, ["config", "check", str(config)])
    assert result.exit_code == 2
    assert "no SPIFFE Workload API socket" in one_error_line(result.stderr)
    shape = CliRunner().invoke(app, ["config", "check", "--shape-only", str(config)])
    assert shape.exit_code == 0, shape.stderr
