"""SecurityConfig: the TOML schema, its errors (dotted key, suggestion), paths relative to the
file, and the round trip through ``to_mapping`` that ``serve``'s flag merge relies on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grpcsec.errors import ConfigurationError, GrpcsecError
from grpcsec.server import SecurityConfig
from grpcsec.server.config import mask_url
from grpcsec.target import Target

FULL = """
listen = ["127.0.0.1:50051", ":50052"]
aio = true
reflection = true
shutdown_grace = "2s"
workers = 3
[tls]
cert = "certs/server.crt"
key = "certs/server.key"
client_ca = "/abs/ca.crt"
reload = true
reload_interval = "250ms"
max_connection_age = "0"
[authn]
allow_cns = ["alice"]
jwks = "jwks.json"
audiences = ["orders"]
issuers = ["https://idp.example"]
require_scopes = ["read"]
[authz]
policy = "policy.json"
reload_interval = 2
[metrics]
listen = "127.0.0.1:9464"
"""


def write(tmp_path: Path, text: str, name: str = "grpcsec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_full_file_is_read_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    config = SecurityConfig.load(write(tmp_path, FULL))
    assert config.listen == (Target("127.0.0.1", 50051), Target("::", 50052))
    assert config.aio is True
    assert config.reflection is True
    assert config.shutdown_grace == 2.0
    assert config.workers == 3
    assert config.tls is not None
    assert config.tls.cert == tmp_path / "certs/server.crt"
    assert config.tls.client_ca == Path("/abs/ca.crt")
    assert config.tls.reload_interval == 0.25
    assert config.tls.max_connection_age == 0.0
    assert config.mode == "mtls"
    assert config.authn.allow_common_names == ("alice",)
    assert config.authn.jwks == str(tmp_path / "jwks.json")
    assert config.authn.required_scopes == ("read",)
    assert config.authz is not None
    assert config.authz.policy == tmp_path / "policy.json"
    assert config.authz.reload_interval == 2.0
    assert config.metrics is not None
    assert config.metrics.listen == Target("127.0.0.1", 9464)


def test_to_mapping_round_trips(tmp_path: Path) -> None:
    config = SecurityConfig.load(write(tmp_path, FULL))
    again = SecurityConfig.from_mapping(config.to_mapping(), source=config.source)
    assert again == config


def test_defaults_are_safe() -> None:
    config = SecurityConfig.from_mapping({"tls": {"cert": "/c", "key": "/k"}})
    assert config.listen == (Target("127.0.0.1", 50051),)
    assert config.reflection is False  # not advertised unless asked for
    assert config.health is True
    assert config.tls is not None
    assert config.tls.reload is True
    assert config.tls.max_connection_age == 3600.0
    assert config.mode == "tls"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            '[tls]\ncert = "a"\nkey = "b"\nrelaod = true',
            "tls.relaod: unknown key; did you mean tls.reload?",
        ),
        ('lsiten = "1.2.3.4:1"\ninsecure = true', "lsiten: unknown key; did you mean listen?"),
        ('[authn]\nallow_cn = ["x"]\n[tls]\ncert="a"\nkey="b"', "did you mean authn.allow_cns?"),
        ('[tls]\ncert = "a"\nkey = "b"\nzzz = 1', "tls.zzz: unknown key"),
        ('[tlz]\ncert = "a"', "tlz: unknown key; did you mean tls?"),
        ("", "no TLS configuration"),
        ('[tls]\ncert = "a"', "tls.cert (--cert) given without its key"),
        ('insecure = true\n[tls]\ncert = "a"\nkey = "b"', "drop the tls settings"),
        ('insecure = true\n[authn]\nallow_cns = ["a"]', "need mTLS"),
        ('[tls]\ncert = "a"\nkey = "b"\n[authn]\nallow_cns = ["a"]', "need mTLS"),
        (
            '[tls]\ncert = "a"\nkey = "b"\nreload_interval = "soon"',
            "tls.reload_interval: invalid duration",
        ),
        (
            '[tls]\ncert = "a"\nkey = "b"\nreload_interval = -1',
            "tls.reload_interval: expected a positive",
        ),
        ('[tls]\ncert = "a"\nkey = "b"\nreload = "yes"', "tls.reload: expected true or false"),
        ('listen = "localhost"\ninsecure = true', "listen[0]:"),
        ("listen = 5\ninsecure = true", "listen: expected HOST:PORT or a list"),
        ("workers = 0\ninsecure = true", "workers: must be at least 1"),
        ('workers = "8"\ninsecure = true', "workers: expected a whole number"),
        ('insecure = true\n[authz]\nreload_interval = "1s"', "authz.policy: required"),
        ("insecure = true\n[metrics]", "metrics.listen: required"),
        (
            "insecure = true\n[authn]\nallow_cns = [1]",
            "authn.allow_cns[0]: expected a non-empty string",
        ),
        ("this is = not toml [", "not valid TOML"),
    ],
)
def test_bad_files_name_the_file_and_the_key(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as caught:
        SecurityConfig.load(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert needle in message
    assert "\n" not in message


def test_a_config_that_is_not_a_regular_file_is_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(GrpcsecError, match="FIFO"):
        SecurityConfig.load(fifo)


def test_a_huge_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_bytes(b"#" * (2 * 1024 * 1024))
    with pytest.raises(GrpcsecError, match="larger than"):
        SecurityConfig.load(path)


def test_effective_json_masks_jwks_url_credentials() -> None:
    config = SecurityConfig.from_mapping(
        {
            "tls": {"cert": "/c", "key": "/k"},
            "authn": {"jwks": "https://user:s3cret@idp.example/keys?token=abc", "audiences": ["a"]},
        }
    )
    shown = config.to_json()
    assert shown["authn"]["jwks"] == "https://***@idp.example/keys?***"
    assert "s3cret" not in repr(shown)
    assert "abc" not in repr(shown)
    assert mask_url("/plain/file.json") == "/plain/file.json"
    assert mask_url("https://idp.example/keys") == "https://idp.example/keys"
