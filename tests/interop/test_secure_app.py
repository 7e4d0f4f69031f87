"""A user's own service behind grpcsec, called by grpc-go and @grpc/grpc-js clients.

The service (``shop.py`` below, written into a project directory) is what a user writes: a
servicer class and a ``register(server)`` function. It is served two ways: by ``grpcsec serve
--config grpcsec.toml --app shop:register`` in its own process (sync and ``--aio``), and by
:func:`grpcsec.server.secure_server` in this process. The configuration asks for mTLS, an A43
policy that allows only alice's SPIFFE ID, and metrics. For each client: alice gets the
service's own reply; the workload certificate (same CA, not in the policy) is refused with
PERMISSION_DENIED; the rogue certificate (another CA) never gets past TLS. ``/status`` then
counts exactly those outcomes.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from grpcsec.server import SecurityConfig, secure_server
from tests.interop.conftest import (
    GreeterClient,
    GreeterServer,
    Pki,
    server_process,
)

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SHOP = '''
"""The user's service: helloworld.Greeter answered by a shop (any servicer would do)."""

import grpc

from grpcsec.demo.helloworld import HelloReply, HelloRequest  # stands in for helloworld_pb2
from grpcsec.interceptors import call_info


def _answer(request, context):
    call = call_info(context)
    who = call.peer.spiffe_id if call is not None else "nobody"
    return HelloReply(message=f"the shop greets {request.name} ({who})")


async def _answer_async(request, context):
    return _answer(request, context)


def register(server):
    answer = _answer_async if isinstance(server, grpc.aio.Server) else _answer
    handler = grpc.unary_unary_rpc_method_handler(
        answer,
        request_deserializer=HelloRequest.FromString,
        response_serializer=HelloReply.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("helloworld.Greeter", {"SayHello": handler}),)
    )
'''


def _project(pki: Pki, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "shop.py").write_text(SHOP)
    policy = {
        "name": "shop",
        "allow_rules": [
            {
                "name": "alice-may-greet",
                "source": {"principals": [pki.client_spiffe_id]},
                "request": {"paths": ["/helloworld.Greeter/SayHello"]},
            }
        ],
    }
    (directory / "policy.json").write_text(json.dumps(policy))
    config = directory / "grpcsec.toml"
    config.write_text(
        f"""listen = "127.0.0.1:0"
[tls]
cert = "{pki.server_cert}"
key = "{pki.server_key}"
client_ca = "{pki.client_ca}"
[authz]
policy = "policy.json"
[metrics]
listen = "127.0.0.1:0"
"""
    )
    return config


@dataclass(frozen=True)
class Shop:
    greeter: GreeterServer
    metrics_port: int


def _status(shop: Shop) -> dict[str, object]:
    url = f"http://127.0.0.1:{shop.metrics_port}/status"
    with urllib.request.urlopen(url, timeout=10) as response:
        document: dict[str, object] = json.load(response)
    return document


@pytest.fixture(scope="module", params=["serve", "serve --aio", "library"])
def shop(
    request: pytest.FixtureRequest, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    directory = tmp_path_factory.mktemp("project")
    config = _project(pki, directory)
    if request.param == "library":
        secure = secure_server(SecurityConfig.load(config))
        sys.path.insert(0, str(directory))
        try:
            user_module = importlib.import_module("shop")  # the user's module, written above

            user_module.register(secure.server)
        finally:
            sys.path.remove(str(directory))
            sys.modules.pop("shop", None)
        secure.start()
        try:
            assert secure.metrics_port is not None
            yield Shop(_greeter(pki, secure.port), secure.metrics_port)
        finally:
            secure.stop(0)
        return
    argv: list[str | Path] = [
        sys.executable,
        "-m",
        "grpcsec.cli",
        "serve",
        "--config",
        config,
        "--app",
        "shop:register",
    ]
    argv += ["--aio"] if "aio" in request.param else []
    env = {k: v for k, v in os.environ.items() if k != "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"}
    log = directory / "stderr.log"
    ready = r"listening on 127\.0\.0\.1:(\d+) \(mtls.*\)"
    cwd = Path.cwd()
    os.chdir(directory)  # the project directory is where --app modules are found
    try:
        with server_process(argv, ready, log, env=env) as (_, match):
            os.chdir(cwd)
            port = _metrics_port(log)
            yield Shop(_greeter(pki, int(match[1])), port)
    finally:
        os.chdir(cwd)


def _greeter(pki: Pki, port: int) -> GreeterServer:
    return GreeterServer("grpcsec", port, pki.server_name, pki.client_ca, pki.client_spiffe_id)


def _metrics_port(log: Path) -> int:
    import re  # noqa: PLC0415
    import time  # noqa: PLC0415

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", log.read_text())
        if found:
            return int(found[1])
        time.sleep(0.05)
    pytest.fail(f"no metrics line in {log.read_text()!r}")


def test_the_users_service_answers_allowed_callers_and_the_policy_refuses_the_rest(
    shop: Shop, greeter_client: GreeterClient, pki: Pki
) -> None:
    before = _status(shop)["calls"]
    assert isinstance(before, dict)
    allowed = greeter_client.call(
        shop.greeter, name="alice", cert=pki.client_cert, key=pki.client_key
    )
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert allowed.stdout.strip() == f"the shop greets alice ({pki.client_spiffe_id})"

    refused = greeter_client.call(
        shop.greeter, name="w", cert=pki.workload_cert, key=pki.workload_key
    )
    assert refused.returncode == 1
    assert refused.stdout.startswith("ERROR PERMISSION_DENIED"), refused.stdout
    assert "shop" not in refused.stdout  # the peer learns nothing about the policy

    rogue = greeter_client.call(shop.greeter, name="r", cert=pki.rogue_cert, key=pki.rogue_key)
    assert rogue.returncode == 1
    assert rogue.stdout.startswith("ERROR UNAVAILABLE"), rogue.stdout

    after = _status(shop)["calls"]
    assert isinstance(after, dict)
    assert after["allowed"] == before["allowed"] + 1
    denied_before = sum(before["denied"]["permission_denied"].values())
    assert sum(after["denied"]["permission_denied"].values()) == denied_before + 1
