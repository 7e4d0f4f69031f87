"""Server-side TLS with a sync ``grpc.server``: the server proves who it is, clients stay anonymous.

The server serves ``server.crt``/``server.key`` (SANs ``localhost`` and ``127.0.0.1``); the
client trusts exactly ``ca.crt``, never grpcio's bundled roots. A client that trusts a different
CA is refused, which shows the server certificate really is checked. The Greeter service comes
from ``grpcsec.demo`` so the example needs no generated code.
"""

import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

import grpcsec
from grpcsec.demo.greeter import add_greeter, say_hello
from grpcsec.pki import CERT_MODE, KEY_MODE, PendingFile, write_files


def write_certificates(directory: Path) -> None:
    """``ca.crt``, ``server.crt`` (chain, leaf first) and ``server.key`` (0600), plus an
    unrelated ``other-ca.crt`` to show a refusal."""
    ca = grpcsec.CertificateAuthority.create("example CA")
    names = grpcsec.SubjectAltNames.from_identities(["localhost", "127.0.0.1"])
    server = ca.issue(grpcsec.Profile.SERVER, names)
    other_ca = grpcsec.CertificateAuthority.create("some other CA")
    write_files(
        [
            PendingFile(directory / "ca.crt", ca.certificate_pem(), CERT_MODE),
            PendingFile(directory / "other-ca.crt", other_ca.certificate_pem(), CERT_MODE),
            PendingFile(directory / "server.crt", server.chain_pem(), CERT_MODE),
            PendingFile(directory / "server.key", server.key_pem(), KEY_MODE),
        ]
    )


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=4) as pool:
        d = Path(tmp)
        write_certificates(d)
        server = grpc.server(pool)
        add_greeter(server)
        # No client_ca: plain TLS. The pair is checked (key matches, serverAuth, DNS/IP SAN)
        # before grpcio sees it, so a bad key is a clear error rather than "Failed to bind".
        identity = grpcsec.KeyPair.from_files(d / "server.crt", d / "server.key")
        port = server.add_secure_port("127.0.0.1:0", grpcsec.server_credentials(identity))
        server.start()
        try:
            target = f"127.0.0.1:{port}"  # the certificate has an IP SAN for 127.0.0.1
            trusting = grpcsec.channel_credentials(ca=d / "ca.crt")
            with grpc.secure_channel(target, trusting) as channel:
                print("client trusting ca.crt:", say_hello(channel, "tls", timeout=5))
            wrong = grpcsec.channel_credentials(ca=d / "other-ca.crt")
            try:
                with grpc.secure_channel(target, wrong) as channel:
                    say_hello(channel, "tls", timeout=5)
            except grpc.RpcError as exc:
                print(f"client trusting another CA: refused ({exc.code().name})")
                return 0
            print("client trusting another CA: NOT refused", file=sys.stderr)
            return 1
        finally:
            server.stop(None).wait()


if __name__ == "__main__":
    sys.exit(main())
