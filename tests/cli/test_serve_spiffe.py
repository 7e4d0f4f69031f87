"""``grpcsec serve --trust-bundle T=FILE --allow-spiffe-prefix ID`` in a real subprocess, and the
one-line errors for bad values of those flags.

Two CAs that name no trust domain share the client-CA file; ``--trust-bundle a.test=p.pem``
says p issues a.test's SVIDs. p's a.test client under the prefix is served; the same ID from q
(grpcio accepts q's chain: it is in the client-CA file) is refused, and so is p's client just
outside the prefix's last segment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from grpcsec.pki import IssuedCertificate
from tests.authn.spiffe_material import Federation, make_federation, svid
from tests.cli.clirun import assert_one_error_line, run
from tests.conftest import TIMEOUT

SAY_HELLO = "/helloworld.Greeter/SayHello"


@pytest.fixture
def fed(tmp_path: Path) -> Federation:
    return make_federation(tmp_path)


def serve_args(fed: Federation, *extra: str) -> list[str]:
    return ["serve", "--listen", "127.0.0.1:0",
            "--cert", str(fed.file("server.crt")), "--key", str(fed.file("server.key")),
            "--client-ca", str(fed.file("plain.pem")), *extra]  # fmt: skip


@pytest.fixture
def server(fed: Federation) -> Iterator[str]:
    argv = [sys.executable, "-m", "grpcsec.cli",
            *serve_args(fed, "--trust-bundle", f"a.test={fed.file('p.pem')}",
                        "--allow-spiffe-prefix", "spiffe://a.test/ns/prod")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"}
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on 127.0.0.1:" in line, process.stderr.read() if process.stderr else ""
        yield "127.0.0.1:" + line.split("127.0.0.1:")[1].split()[0]
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)


def code_of(fed: Federation, target: str, client: IssuedCertificate) -> grpc.StatusCode:
    credentials = grpc.ssl_channel_credentials(
        fed.a.certificate_pem(), client.key_pem(), client.chain_pem()
    )
    with grpc.secure_channel(target, credentials) as channel:
        try:
            channel.unary_unary(SAY_HELLO)(b"", timeout=TIMEOUT)
        except grpc.RpcError as error:
            return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@pytest.mark.slow
def test_trust_bundle_and_prefix_flags(fed: Federation, server: str) -> None:
    assert code_of(fed, server, svid(fed.p, ["spiffe://a.test/ns/prod/web"])) is grpc.StatusCode.OK
    forged = svid(fed.q, ["spiffe://a.test/ns/prod/web"])
    assert code_of(fed, server, forged) is grpc.StatusCode.UNAUTHENTICATED
    outside = svid(fed.p, ["spiffe://a.test/ns/production"])
    assert code_of(fed, server, outside) is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--trust-bundle", "a.test"], ["--trust-bundle", "TRUST_DOMAIN=FILE"]),
        (["--trust-bundle", "a.test=x.pem", "--trust-bundle", "a.test=y.pem"], ["twice"]),
        (["--trust-bundle", "A.test=p.pem"], ["trust domain 'A.test'"]),
        (["--trust-bundle", "a.test=missing.pem"], ["missing.pem"]),
        (["--allow-spiffe-prefix", "spiffe://a.test/ns/"], ["empty path segment"]),
        (["--allow-spiffe-prefix", "a.test/ns"], ["spiffe://"]),
    ],
)
def test_bad_flag_values_are_one_line_errors(
    fed: Federation, extra: list[str], needles: list[str]
) -> None:
    assert_one_error_line(run(*serve_args(fed, *extra)), "error:", *needles)


def test_config_check_shows_the_new_keys(fed: Federation) -> None:
    config = fed.file("grpcsec.toml")
    config.write_text(
        '[tls]\ncert = "server.crt"\nkey = "server.key"\nclient_ca = "plain.pem"\n'
        '[authn]\nallow_spiffe_prefixes = ["spiffe://a.test/ns"]\n'
        'trust_bundles = {"a.test" = "p.pem"}\n'
    )
    result = run("config", "check", str(config))
    assert result.exit_code == 0, result.output
    authn = json.loads(result.stdout)["config"]["authn"]
    assert authn["allow_spiffe_prefixes"] == ["spiffe://a.test/ns"]
    assert authn["trust_bundles"] == {"a.test": str(fed.file("p.pem"))}
