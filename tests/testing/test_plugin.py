"""``grpcsec.testing``: the pytest plugin's fixtures start real secured servers on 127.0.0.1
(sync and aio), their channels present real client certificates, and every positive call has
negative controls (a name not allowed, no certificate, a certificate from another CA, a
policy denial). The plugin is found through its ``pytest11`` entry point by a separate pytest
run, as it would be in a user's project."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc
import pytest

from grpcsec.credentials import channel_credentials
from grpcsec.demo.greeter import SAY_HELLO_PATH, add_greeter, say_hello
from grpcsec.errors import GrpcsecError
from grpcsec.pki import CertificateAuthority, Profile, SubjectAltNames
from grpcsec.testing import start_secure_test_server
from grpcsec.testing.plugin import SecureServerFactory

pytestmark = pytest.mark.slow
TIMEOUT = 5.0


def _code(channel: grpc.Channel, name: str = "x") -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as raised:
        say_hello(channel, name, timeout=TIMEOUT)
    code: grpc.StatusCode = raised.value.code()
    return code


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "aio"])
def test_allow_list_lets_the_named_client_in_and_no_one_else(
    grpcsec_secure_server: SecureServerFactory, aio: bool
) -> None:
    server = grpcsec_secure_server(add_greeter, allow_cns=["alice"], aio=aio)
    assert server.target.startswith("127.0.0.1:")
    assert "alice" in say_hello(server.channel("alice"), "alice", timeout=TIMEOUT)
    assert _code(server.channel("bob")) == grpc.StatusCode.PERMISSION_DENIED
    assert _code(server.channel(None)) == grpc.StatusCode.UNAVAILABLE


def test_a_client_of_another_ca_is_refused(grpcsec_secure_server: SecureServerFactory) -> None:
    server = grpcsec_secure_server(add_greeter)
    assert "alice" in say_hello(server.channel("alice"), "alice", timeout=TIMEOUT)
    stranger = CertificateAuthority.create("another CA").issue(
        Profile.CLIENT, SubjectAltNames.build(dns=["alice"]), common_name="alice"
    )
    credentials = channel_credentials(ca=server.ca.certificate, identity=stranger)
    options = (("grpc.ssl_target_name_override", "localhost"),)
    with grpc.secure_channel(server.target, credentials, options=options) as channel:
        assert _code(channel) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "aio"])
def test_policy_allows_one_client_and_denies_another(
    grpcsec_secure_server: SecureServerFactory, aio: bool
) -> None:
    policy = {
        "name": "greeter",
        "allow_rules": [
            {
                "name": "alice-says-hello",
                "source": {"principals": ["alice"]},
                "request": {"paths": [SAY_HELLO_PATH]},
            }
        ],
    }
    server = grpcsec_secure_server(add_greeter, policy=policy, aio=aio)
    assert "alice" in say_hello(server.channel("alice"), "alice", timeout=TIMEOUT)
    assert _code(server.channel("bob")) == grpc.StatusCode.PERMISSION_DENIED
    calls = server.server.status()["calls"]
    assert calls["allowed"] == 1
    assert calls["denied"]["permission_denied"] == {"policy_denied": 1}


def test_ca_file_is_the_ca_that_signed_the_server(
    grpcsec_secure_server: SecureServerFactory, grpcsec_ca: CertificateAuthority
) -> None:
    server = grpcsec_secure_server(add_greeter)
    assert server.ca is grpcsec_ca
    assert server.ca_file.read_bytes() == grpcsec_ca.certificate_pem()


def test_a_broken_policy_is_a_one_line_error(
    grpcsec_secure_server: SecureServerFactory,
) -> None:
    with pytest.raises(GrpcsecError) as raised:
        grpcsec_secure_server(add_greeter, policy="{not json")
    assert "\n" not in str(raised.value)


def test_close_stops_the_server_and_frees_the_port(tmp_path: Path) -> None:
    ca = CertificateAuthority.create("grpcsec test CA")
    with start_secure_test_server(add_greeter, ca=ca, directory=tmp_path) as server:
        port = server.server.port
        assert "alice" in say_hello(server.channel(), "alice", timeout=TIMEOUT)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # free again: nothing listens


def test_plugin_is_found_through_its_entry_point(tmp_path: Path) -> None:
    """A user's test file, run by a separate pytest process without any conftest: the fixtures
    exist only if the ``pytest11`` entry point loaded the plugin."""
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            from grpcsec.demo.greeter import add_greeter, say_hello

            def test_secured(grpcsec_secure_server):
                server = grpcsec_secure_server(add_greeter, allow_cns=["alice"])
                assert "alice" in say_hello(server.channel("alice"), "alice", timeout=5)
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    disabled = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:grpcsec",
         "test_user.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert disabled.returncode != 0
    assert "fixture 'grpcsec_secure_server' not found" in disabled.stdout
