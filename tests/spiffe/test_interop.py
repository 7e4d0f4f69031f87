"""The Workload API's SVIDs across implementations: ``grpcsec spiffe fetch`` writes the client
workload's SVID to files, grpc-go and grpc-js clients call ``grpcsec serve --spiffe-socket``
with them, and the file tools (``verify``, ``check``) work on the same files. Negative controls:
no client certificate, and an SVID for the same ID from a CA outside the bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from grpcsec.pki import CertificateAuthority
from tests.interop.conftest import CLIENTS, GreeterClient, GreeterServer, server_process
from tests.spiffe.test_cli import environment
from tests.spiffe.workload_api import CLIENT_ID, SERVER_DNS, FakeAgent, issue_svid

GRPCSEC = [sys.executable, "-m", "grpcsec.cli"]


def grpcsec(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRPCSEC, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment(),
    )


@pytest.fixture(params=sorted(CLIENTS))
def greeter_client(request: pytest.FixtureRequest) -> GreeterClient:
    return CLIENTS[request.param]()


@pytest.fixture
def svid_dir(client_agent: FakeAgent, tmp_path: Path) -> Path:
    result = grpcsec(
        "spiffe",
        "fetch",
        "--socket",
        client_agent.address,
        "--out-dir",
        str(tmp_path / "svid"),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    fetched = json.loads(result.stdout)
    assert fetched["spiffe_id"] == CLIENT_ID
    assert fetched["bundle_trust_domains"] == ["example.test"]
    assert (tmp_path / "svid" / "svid.key").stat().st_mode & 0o777 == 0o600
    return tmp_path / "svid"


@pytest.fixture
def spiffe_server(agent: FakeAgent, svid_dir: Path, tmp_path: Path) -> Iterator[GreeterServer]:
    argv = [*GRPCSEC, "serve", "--listen", "127.0.0.1:0", "--spiffe-socket", agent.address]
    argv += ["--allow-trust-domain", "example.test"]
    ready = r"listening on 127\.0\.0\.1:(\d+) \(mtls\)"
    with server_process(argv, ready, tmp_path / "serve.log", env=environment()) as (_, match):
        yield GreeterServer(
            "grpcsec serve", int(match[1]), SERVER_DNS, svid_dir / "bundle.pem", CLIENT_ID
        )


def test_go_and_node_clients_call_the_spiffe_server_with_fetched_svid_files(
    greeter_client: GreeterClient, spiffe_server: GreeterServer, svid_dir: Path, tmp_path: Path
) -> None:
    cert, key = svid_dir / "svid.pem", svid_dir / "svid.key"
    result = greeter_client.call(spiffe_server, name="spiffe", cert=cert, key=key)
    assert result.returncode == 0, result
    assert result.stdout == f"Hello spiffe (from {CLIENT_ID})\n"
    # negative controls: no client certificate; the same SPIFFE ID signed by a foreign CA
    assert greeter_client.call(spiffe_server).returncode == 1
    impostor = issue_svid(CertificateAuthority.create("impostor CA"), CLIENT_ID)
    (tmp_path / "impostor.pem").write_bytes(impostor.chain_pem())
    (tmp_path / "impostor.key").write_bytes(impostor.key_pem())
    refused = greeter_client.call(
        spiffe_server, cert=tmp_path / "impostor.pem", key=tmp_path / "impostor.key"
    )
    assert refused.returncode == 1
    assert refused.stdout.startswith("ERROR UNAVAILABLE: ")


def test_file_tools_work_on_fetched_svid_files(svid_dir: Path) -> None:
    cert, key, bundle = (svid_dir / n for n in ("svid.pem", "svid.key", "bundle.pem"))
    verified = grpcsec(
        "verify", str(cert), "--ca", str(bundle), "--key", str(key), "--role", "client", "--json"
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    checked = grpcsec("check", str(cert), "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # negative control: the SVID does not verify against a bundle it was not issued under
    other = svid_dir / "other.pem"
    other.write_bytes(CertificateAuthority.create("other").certificate_pem())
    assert grpcsec("verify", str(cert), "--ca", str(other)).returncode == 1
