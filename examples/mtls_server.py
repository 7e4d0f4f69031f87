"""Mutual TLS with a sync ``grpc.server``: the client certificate is required and verified.

The handler asks ``grpcsec.peer(context)`` who is calling (CN, SPIFFE ID, SANs) and puts it in
the reply. A second client without a certificate is refused during the handshake. Certificates
are throwaway ones, laid out like ``grpcsec init`` does, in a temporary directory.
"""

import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

import grpcsec
from grpcsec.demo import helloworld as hw
from grpcsec.demo.greeter import say_hello
from grpcsec.pki import CERT_MODE, KEY_MODE, PendingFile, write_files


def write_certificates(d: Path) -> None:
    ca = grpcsec.CertificateAuthority.create("example CA")
    server = ca.issue(grpcsec.Profile.SERVER, grpcsec.SubjectAltNames.build(dns=["localhost"]))
    client_names = grpcsec.SubjectAltNames.build(
        dns=["billing.internal"], uris=["spiffe://example.org/ns/prod/sa/billing"]
    )
    client = ca.issue(grpcsec.Profile.CLIENT, client_names, common_name="billing")
    files = {
        "ca.crt": ca.certificate_pem(),
        "server.crt": server.chain_pem(),  # leaf first, then any intermediates
        "server.key": server.key_pem(),
        "client.crt": client.chain_pem(),
        "client.key": client.key_pem(),
    }
    modes = {".crt": CERT_MODE, ".key": KEY_MODE}  # keys 0600, certificates 0644
    write_files([PendingFile(d / n, pem, modes[Path(n).suffix]) for n, pem in files.items()])


def say_hello_handler(
    request: hw.HelloRequestMessage, context: grpc.ServicerContext
) -> hw.HelloReplyMessage:
    caller = grpcsec.peer(context)  # the certificate the handshake already verified
    sans = ", ".join([*caller.dns_names, *caller.uris])
    return hw.new_reply(
        f"Hello {request.name}: CN={caller.common_name} SPIFFE={caller.spiffe_id} SANs=[{sans}]"
    )


def main(d: Path, pool: ThreadPoolExecutor) -> int:
    write_certificates(d)
    server = grpc.server(pool)
    handler = grpc.unary_unary_rpc_method_handler(
        say_hello_handler,
        request_deserializer=hw.deserialize_request,
        response_serializer=hw.serialize,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(hw.SERVICE_NAME, {"SayHello": handler}),)
    )
    # client_ca turns on mTLS: the client certificate is requested, required and verified.
    identity = grpcsec.KeyPair.from_files(d / "server.crt", d / "server.key")
    port = server.add_secure_port(
        "127.0.0.1:0", grpcsec.server_credentials(identity, client_ca=d / "ca.crt")
    )
    server.start()
    try:
        client = grpcsec.KeyPair.from_files(d / "client.crt", d / "client.key")
        mtls = grpcsec.channel_credentials(ca=d / "ca.crt", identity=client)
        with grpc.secure_channel(f"localhost:{port}", mtls) as channel:
            print("with a client certificate:", say_hello(channel, "mtls", timeout=5))
        try:
            anonymous = grpcsec.channel_credentials(ca=d / "ca.crt")
            with grpc.secure_channel(f"localhost:{port}", anonymous) as channel:
                say_hello(channel, "anonymous", timeout=5)
        except grpc.RpcError as exc:
            print(f"without a client certificate: refused ({exc.code().name})")
            return 0
        print("without a client certificate: NOT refused", file=sys.stderr)
        return 1
    finally:
        server.stop(None).wait()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=4) as pool:
        status = main(Path(tmp), pool)
    sys.exit(status)
