"""``AcmeConfig`` and the ``[tls.acme]`` table: bad input fails at construction with one line
naming the key; a good table round-trips through ``to_mapping``. No network."""

from __future__ import annotations

from pathlib import Path

import pytest

from grpcsec.acme import AcmeConfig
from grpcsec.errors import ConfigurationError
from grpcsec.pki import KeyType
from grpcsec.server import SecurityConfig

DIRECTORY = "https://ca.internal/acme/directory"


def mapping(tmp_path: Path, **acme: object) -> dict[str, object]:
    table: dict[str, object] = {"directory": DIRECTORY, "domains": ["a.test"], **acme}
    return {"tls": {"cert": "tls.crt", "key": "tls.key", "acme": table}}


def test_a_tls_acme_table_builds_the_value_with_defaults(tmp_path: Path) -> None:
    config = SecurityConfig.from_mapping(
        mapping(tmp_path, key_type="rsa-3072", email="ops@example.com"), base=tmp_path
    )
    assert config.tls is not None
    acme = config.tls.acme
    assert acme is not None
    assert config.tls.source == "acme"
    assert acme.domains == ("a.test",)
    assert acme.key_type is KeyType.RSA_3072
    assert acme.http_port == 80
    assert acme.account_key == tmp_path / "acme-account.key"  # beside the certificate
    again = SecurityConfig.from_mapping(config.to_mapping())
    assert again.tls is not None
    assert again.tls.acme == acme


def test_a_file_source_is_named_file(tmp_path: Path) -> None:
    config = SecurityConfig.from_mapping({"tls": {"cert": "a.crt", "key": "a.key"}}, base=tmp_path)
    assert config.tls is not None
    assert config.tls.source == "file"


@pytest.mark.parametrize(
    ("acme", "needle"),
    [
        (
            {"directroy": DIRECTORY},
            "tls.acme.directroy: unknown key; did you mean tls.acme.directory?",
        ),
        ({"directory": "http://ca.internal/dir"}, "must be https"),
        ({"domains": []}, "at least one name"),
        ({"domains": ["a.test", "A.test"]}, "given twice"),
        ({"domains": ["*.a.test"]}, "wildcard"),
        ({"http_port": 0}, "not a TCP port"),
        ({"http_port": "80"}, "tls.acme.http_port: expected a port number"),
        ({"key_type": "ed25519"}, "tls.acme.key_type: unknown or unsupported key type"),
        ({"email": 5}, "tls.acme.email: expected a non-empty string"),
    ],
)
def test_bad_tables_are_refused_with_one_line(
    tmp_path: Path, acme: dict[str, object], needle: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SecurityConfig.from_mapping(mapping(tmp_path, **acme), base=tmp_path)
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


def test_acme_needs_the_file_watcher(tmp_path: Path) -> None:
    data = mapping(tmp_path)
    data["tls"]["reload"] = False  # type: ignore[index]
    with pytest.raises(ConfigurationError, match=r"keep tls\.reload = true"):
        SecurityConfig.from_mapping(data, base=tmp_path)


def test_a_plain_http_directory_needs_its_own_option(tmp_path: Path) -> None:
    config = AcmeConfig(
        directory="http://127.0.0.1:14000/dir",
        domains=("a.test",),
        account_key=tmp_path / "k",
        allow_http_directory=True,
    )
    assert config.directory.startswith("http://")
