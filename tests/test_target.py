"""HOST:PORT parsing for listen, call and probe addresses."""

from __future__ import annotations

import pytest

from grpcsec.errors import ConfigurationError
from grpcsec.target import Target


@pytest.mark.parametrize(
    ("text", "host", "port", "shown"),
    [
        ("127.0.0.1:50051", "127.0.0.1", 50051, "127.0.0.1:50051"),
        ("localhost:1", "localhost", 1, "localhost:1"),
        ("[::1]:443", "::1", 443, "[::1]:443"),
        ("orders.internal:8443", "orders.internal", 8443, "orders.internal:8443"),
    ],
)
def test_valid_targets(text: str, host: str, port: int, shown: str) -> None:
    target = Target.parse(text)
    assert (target.host, target.port, str(target)) == (host, port, shown)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("localhost", "HOST:PORT"),
        (":50051", "HOST:PORT"),
        ("::1:50051", "brackets"),
        ("[::1]50051", r"\[IPv6\]:PORT"),
        ("[nothex]:1", "not an IPv6"),
        ("host:70000", "0-65535"),
        ("host:abc", "0-65535"),
        ("bad host:1", "bad host name"),
        ("host:0", "port 0"),
    ],
)
def test_invalid_targets(text: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        Target.parse(text)


def test_port_zero_for_listening_and_facts() -> None:
    target = Target.parse("127.0.0.1:0", allow_port_zero=True)
    assert target.with_port(5).port == 5
    assert target.is_ip
    assert target.is_loopback
    assert not Target.parse("example.com:1").is_loopback
    assert Target.parse("localhost:1").is_loopback


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        (":50051", "::", 50051),
        (":0", "::", 0),
        ("127.0.0.1:0", "127.0.0.1", 0),
        ("[::1]:7", "::1", 7),
    ],
)
def test_listen_takes_colon_port_for_all_interfaces(text: str, host: str, port: int) -> None:
    """``:PORT`` is every interface, as grpc-go and Go's net.Listen read it; dialling refuses it."""
    target = Target.listen(text)
    assert (target.host, target.port) == (host, port)
    with pytest.raises(ConfigurationError, match="use HOST:PORT"):
        Target.parse(":50051")
    with pytest.raises(ConfigurationError):
        Target.listen(":port")
