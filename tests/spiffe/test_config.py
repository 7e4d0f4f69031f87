"""``[tls] spiffe_socket`` in the configuration value, the TOML file and the serve flags,
including when ``SPIFFE_ENDPOINT_SOCKET`` is (and is not) used. No agent needed: the value is
checked before anything connects."""

from __future__ import annotations

from pathlib import Path

import pytest

from grpcsec.cli._serve_options import ServeFlags, config_from
from grpcsec.errors import ConfigurationError
from grpcsec.server import SecurityConfig

SOCKET = "unix:///run/spire/agent.sock"


def test_the_file_key_builds_mutual_tls_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "grpcsec.toml"
    path.write_text(f'[tls]\nspiffe_socket = "{SOCKET}"\ncrl = ["x.crl"]\n')
    config = SecurityConfig.load(path)
    assert config.mode == "mtls"
    assert config.tls is not None and str(config.tls.spiffe_socket) == SOCKET
    assert config.tls.cert is None and config.tls.key is None
    assert SecurityConfig.from_mapping(config.to_mapping(), source=path) == config
    assert config.to_json()["tls"]["spiffe_socket"] == SOCKET


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"spiffe_socket": SOCKET, "cert": "a.crt", "key": "a.key"}, "drop tls.cert/key"),
        ({"spiffe_socket": SOCKET, "client_ca": "ca.crt"}, "drop tls.client_ca"),
        ({"spiffe_socket": "tcp://agent:8081"}, "tls.spiffe_socket: .* needs an IP address"),
        ({"spiffe_socket": ""}, "tls.spiffe_socket: expected a non-empty string"),
        ({"reload": True}, r"set tls.cert and tls.key \(--cert/--key\), or tls.spiffe_socket"),
    ],
)
def test_bad_tls_tables_are_one_line_errors(tls: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SecurityConfig.from_mapping({"tls": tls})


def test_the_environment_variable_is_used_only_without_another_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPIFFE_ENDPOINT_SOCKET", SOCKET)
    implied = config_from(None, ServeFlags())
    assert implied.tls is not None and str(implied.tls.spiffe_socket) == SOCKET
    files = config_from(None, ServeFlags(cert=tmp_path / "a.crt", key=tmp_path / "a.key"))
    assert files.tls is not None and files.tls.spiffe_socket is None
    assert config_from(None, ServeFlags(insecure=True)).tls is None
    flag = config_from(None, ServeFlags(spiffe_socket="unix:///other.sock"))
    assert flag.tls is not None and str(flag.tls.spiffe_socket) == "unix:///other.sock"
    path = tmp_path / "grpcsec.toml"
    path.write_text('[tls]\ncert = "s.crt"\nkey = "s.key"\n')
    from_file = config_from(path, ServeFlags())
    assert from_file.tls is not None and from_file.tls.spiffe_socket is None
    monkeypatch.delenv("SPIFFE_ENDPOINT_SOCKET")
    with pytest.raises(ConfigurationError, match="no TLS configuration"):
        config_from(None, ServeFlags())
