"""A secured server in one call: a TOML file, ``secure_server``, your servicer.

The file asks for mTLS, a client allow-list, an A43 policy and metrics; ``secure_server``
checks every file it names before binding, and ``.server`` is the ``grpc.Server`` you register
your servicers on. Two clients call: one the policy allows, one it does not. Then the server's
status document says what it served and how many calls it refused, and why.
"""

import json
import sys
import tempfile
from pathlib import Path

import grpc

import grpcsec
from grpcsec.demo import helloworld as hw
from grpcsec.demo.greeter import say_hello
from grpcsec.interceptors import call_info
from grpcsec.pki import CERT_MODE, KEY_MODE, PendingFile, write_files
from grpcsec.server import SecurityConfig, secure_server

CONFIG = """
listen = "127.0.0.1:0"
[tls]
cert = "server.crt"
key = "server.key"
client_ca = "ca.crt"
[authn]
allow_cns = ["billing", "reports"]
[authz]
policy = "policy.json"
[metrics]
listen = "127.0.0.1:0"
"""

POLICY = {
    "name": "greeter",
    "allow_rules": [
        {
            "name": "billing-may-greet",
            "source": {"principals": ["spiffe://example.org/billing"]},
            "request": {"paths": ["/helloworld.Greeter/SayHello"]},
        }
    ],
}


def write_files_for(d: Path) -> None:
    ca = grpcsec.CertificateAuthority.create("example CA")
    server = ca.issue(grpcsec.Profile.SERVER, grpcsec.SubjectAltNames.build(dns=["localhost"]))
    pending = [
        PendingFile(d / "ca.crt", ca.certificate_pem(), CERT_MODE),
        PendingFile(d / "server.crt", server.chain_pem(), CERT_MODE),
        PendingFile(d / "server.key", server.key_pem(), KEY_MODE),
        PendingFile(d / "policy.json", json.dumps(POLICY).encode(), CERT_MODE),
        PendingFile(d / "grpcsec.toml", CONFIG.encode(), CERT_MODE),
    ]
    for name in ("billing", "reports"):
        names = grpcsec.SubjectAltNames.build(uris=[f"spiffe://example.org/{name}"])
        client = ca.issue(grpcsec.Profile.CLIENT, names, common_name=name)
        pending += [
            PendingFile(d / f"{name}.crt", client.chain_pem(), CERT_MODE),
            PendingFile(d / f"{name}.key", client.key_pem(), KEY_MODE),
        ]
    write_files(pending)


class Greeter:
    """Your servicer: it may read who is calling from the guard's result."""

    def say_hello(
        self, request: hw.HelloRequestMessage, context: grpc.ServicerContext
    ) -> hw.HelloReplyMessage:
        call = call_info(context)
        who = call.peer.spiffe_id if call is not None else "?"
        return hw.new_reply(f"Hello {request.name}, {who}")


def register(server: grpc.Server) -> None:
    handler = grpc.unary_unary_rpc_method_handler(
        Greeter().say_hello,
        request_deserializer=hw.deserialize_request,
        response_serializer=hw.serialize,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(hw.SERVICE_NAME, {"SayHello": handler}),)
    )


def main(d: Path) -> int:
    write_files_for(d)
    secure = secure_server(SecurityConfig.load(d / "grpcsec.toml"))
    register(secure.server)
    with secure:  # start() ... stop()
        target = f"localhost:{secure.port}"
        for name in ("billing", "reports"):
            credentials = grpc.ssl_channel_credentials(
                (d / "ca.crt").read_bytes(),
                (d / f"{name}.key").read_bytes(),
                (d / f"{name}.crt").read_bytes(),
            )
            with grpc.secure_channel(target, credentials) as channel:
                try:
                    print(f"{name}: {say_hello(channel, name, timeout=5)}")
                except grpc.RpcError as exc:
                    print(f"{name}: refused ({exc.code().name}: {exc.details()})")
        status = secure.status()
        calls = status["calls"]
        print(
            f"serving serial {status['tls']['serial'][:12]}..., policy {status['policy']['name']!r}"
        )
        print(f"allowed {calls['allowed']}, denied {calls['denied']['permission_denied']}")
    return 0 if calls["allowed"] == 1 else 1


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        sys.exit(main(Path(directory)))
