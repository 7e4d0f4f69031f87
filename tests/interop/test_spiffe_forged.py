"""The issue's SPIFFE attack from the grpc-go and grpc-js clients: ``grpcsec serve`` with a
federated client-CA file (a.test's and b.test's CAs) and ``--allow-trust-domain a.test``.

A client certificate saying ``spiffe://a.test/...`` signed by b.test's CA (directly or through
b.test's intermediate) passes the TLS handshake, because grpcio verifies against the union of
the client CAs, and must then be refused with UNAUTHENTICATED; the honest a.test clients of the
same set-up (directly and through a.test's intermediate) are served. Each client
implementation presents the same certificate files.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from grpcsec.pki import IssuedCertificate
from tests.authn.spiffe_material import Federation, make_federation, svid
from tests.interop.conftest import GreeterClient, GreeterServer, server_process

READY = r"listening on 127\.0\.0\.1:(\d+) \(mtls\)"
OK, REFUSED = "served", "refused"


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Federation:
    return make_federation(tmp_path_factory.mktemp("spiffe-interop"))


def write_pair(fed: Federation, stem: str, issued: IssuedCertificate) -> tuple[Path, Path]:
    cert, key = fed.file(f"{stem}.crt"), fed.file(f"{stem}.key")
    cert.write_bytes(issued.chain_pem())
    key.write_bytes(issued.key_pem())
    key.chmod(0o600)
    return cert, key


@pytest.mark.slow
def test_forged_svid_from_go_and_node_is_refused(
    fed: Federation, greeter_client: GreeterClient, tmp_path: Path
) -> None:
    clients = {
        "honest": svid(fed.a, ["spiffe://a.test/ns/web"]),
        "honest-via-intermediate": svid(fed.a_inter, ["spiffe://a.test/ns/web"]),
        "forged": svid(fed.b, ["spiffe://a.test/ns/web"]),
        "forged-via-intermediate": svid(fed.b_inter, ["spiffe://a.test/ns/web"]),
    }
    files = {name: write_pair(fed, name, issued) for name, issued in clients.items()}
    argv = [sys.executable, "-m", "grpcsec.cli", "serve", "--listen", "127.0.0.1:0",
            "--cert", str(fed.file("server.crt")), "--key", str(fed.file("server.key")),
            "--client-ca", str(fed.file("federated.pem")),
            "--allow-trust-domain", "a.test"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"}
    log = tmp_path / "serve.log"
    seen = {}
    with server_process(argv, READY, log, env=env) as (_, match):
        server = GreeterServer("grpcsec serve", int(match[1]), "localhost", fed.file("a.pem"), "")
        for name, (cert, key) in files.items():
            result = greeter_client.call(server, cert=cert, key=key)
            if result.returncode == 0:
                seen[name] = OK
            else:
                assert result.stdout.startswith("ERROR UNAUTHENTICATED:"), result
                seen[name] = REFUSED
    assert seen == {
        "honest": OK,
        "honest-via-intermediate": OK,
        "forged": REFUSED,
        "forged-via-intermediate": REFUSED,
    }
    assert log.read_text().count("reason=trust_domain_mismatch") == 2
