"""A Python client: explicit trust, an optional client certificate, and a server name to verify
that differs from the address dialled (``grpc.ssl_target_name_override``).

Alone, it starts an mTLS server on 127.0.0.1 whose certificate names only ``greeter.internal``,
calls it by IP verifying ``greeter.internal``, then shows the call without ``--server-name`` is
refused. Against your own server: ``--target HOST:PORT --ca ca.crt [--cert client.crt --key
client.key] [--server-name NAME]``, or ``--system-roots`` instead of ``--ca`` for a publicly
trusted server. With neither, grpcsec refuses rather than use grpcio's bundled roots.
"""

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

import grpcsec
from grpcsec.demo.greeter import add_greeter, say_hello
from grpcsec.pki import CERT_MODE, KEY_MODE, PendingFile, write_files

parser = argparse.ArgumentParser(description="Call helloworld.Greeter/SayHello over TLS.")
parser.add_argument("--target", help="HOST:PORT; omit it to start a local server and call it")
parser.add_argument("--ca", help="PEM bundle of the CA(s) that issued the server certificate")
parser.add_argument("--system-roots", action="store_true", help="trust the OS bundle instead")
parser.add_argument("--cert", help="client certificate chain, leaf first (needs --key)")
parser.add_argument("--key", help="private key of --cert")
parser.add_argument("--server-name", help="name to verify in the server certificate (and SNI)")


def call(args: argparse.Namespace) -> str:
    if (args.cert is None) != (args.key is None):
        parser.error("--cert and --key go together")  # grpcio aborts the process on half a pair
    identity = grpcsec.KeyPair.from_files(args.cert, args.key) if args.cert else None
    tls = grpcsec.ChannelTLS.create(
        ca=args.ca, use_system_roots=args.system_roots, identity=identity
    )
    print(f"trusting {tls.trust.count} certificate(s) from {tls.trust.source}")
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    with grpc.secure_channel(args.target, tls.credentials(), options=options) as channel:
        return say_hello(channel, "python", timeout=5)


def call_own_server(d: Path, pool: ThreadPoolExecutor) -> int:
    ca = grpcsec.CertificateAuthority.create("example CA")
    server_cert = ca.issue(
        grpcsec.Profile.SERVER, grpcsec.SubjectAltNames.build(dns=["greeter.internal"])
    )
    client = ca.issue(grpcsec.Profile.CLIENT, grpcsec.SubjectAltNames.build(dns=["python-client"]))
    write_files(
        [
            PendingFile(d / "ca.crt", ca.certificate_pem(), CERT_MODE),
            PendingFile(d / "client.crt", client.chain_pem(), CERT_MODE),
            PendingFile(d / "client.key", client.key_pem(), KEY_MODE),
        ]
    )
    server = grpc.server(pool)
    add_greeter(server)
    creds = grpcsec.server_credentials(server_cert, client_ca=ca)  # in memory works too
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    try:
        base = ["--target", f"127.0.0.1:{port}", "--ca", str(d / "ca.crt")]
        base += ["--cert", str(d / "client.crt"), "--key", str(d / "client.key")]
        print(call(parser.parse_args([*base, "--server-name", "greeter.internal"])))
        try:
            call(parser.parse_args(base))
        except grpc.RpcError as exc:
            reason = (exc.details() or "").rsplit(": ", 1)[-1]
            print(f"without --server-name: refused ({exc.code().name}: {reason})")
            return 0
        print("without --server-name: NOT refused", file=sys.stderr)
        return 1
    finally:
        server.stop(None).wait()


def main() -> int:
    args = parser.parse_args()
    if args.target is None:
        with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=4) as pool:
            return call_own_server(Path(tmp), pool)
    try:
        print(call(args))
    except grpcsec.GrpcsecError as exc:  # unreadable files, a key that is not the cert's, ...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
