"""Mutual TLS with asyncio: ``grpc.aio.server`` and ``grpc.aio.secure_channel``.

The credentials are the same objects as for the sync API; only the server and channel classes
change. The coroutine handler reads the caller with ``grpcsec.peer(context)``, which takes the
aio context too. A client without a certificate is refused in the handshake.
"""

import asyncio
import sys
import tempfile
from pathlib import Path

import grpc

import grpcsec
from grpcsec.demo import helloworld as hw
from grpcsec.demo.greeter import say_hello_async
from grpcsec.pki import CERT_MODE, KEY_MODE, PendingFile, write_files


def write_certificates(d: Path) -> None:
    ca = grpcsec.CertificateAuthority.create("example CA")
    server = ca.issue(grpcsec.Profile.SERVER, grpcsec.SubjectAltNames.build(dns=["localhost"]))
    client_names = grpcsec.SubjectAltNames.build(uris=["spiffe://example.org/worker"])
    client = ca.issue(grpcsec.Profile.CLIENT, client_names, common_name="worker")
    files = {
        "ca.crt": ca.certificate_pem(),
        "server.crt": server.chain_pem(),
        "server.key": server.key_pem(),
        "client.crt": client.chain_pem(),
        "client.key": client.key_pem(),
    }
    modes = {".crt": CERT_MODE, ".key": KEY_MODE}  # keys 0600, certificates 0644
    write_files([PendingFile(d / n, pem, modes[Path(n).suffix]) for n, pem in files.items()])


async def say_hello(
    request: hw.HelloRequestMessage, context: grpc.aio.ServicerContext
) -> hw.HelloReplyMessage:
    caller = grpcsec.peer(context)
    return hw.new_reply(f"Hello {request.name}, {caller.principal} (CN={caller.common_name})")


async def main(d: Path) -> int:
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(
        say_hello, request_deserializer=hw.deserialize_request, response_serializer=hw.serialize
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(hw.SERVICE_NAME, {"SayHello": handler}),)
    )
    identity = grpcsec.KeyPair.from_files(d / "server.crt", d / "server.key")
    creds = grpcsec.server_credentials(identity, client_ca=d / "ca.crt")  # mTLS
    port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    try:
        client = grpcsec.KeyPair.from_files(d / "client.crt", d / "client.key")
        mtls = grpcsec.channel_credentials(ca=d / "ca.crt", identity=client)
        async with grpc.aio.secure_channel(f"localhost:{port}", mtls) as channel:
            print("with a client certificate:", await say_hello_async(channel, "aio", timeout=5))
        try:
            anonymous = grpcsec.channel_credentials(ca=d / "ca.crt")
            async with grpc.aio.secure_channel(f"localhost:{port}", anonymous) as channel:
                await say_hello_async(channel, "anonymous", timeout=5)
        except grpc.RpcError as exc:
            print(f"without a client certificate: refused ({exc.code().name})")
            return 0
        print("without a client certificate: NOT refused", file=sys.stderr)
        return 1
    finally:
        await server.stop(None)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        write_certificates(Path(tmp))
        status = asyncio.run(main(Path(tmp)))
    sys.exit(status)
