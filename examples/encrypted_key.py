"""An encrypted server key, decrypted in memory with a password from ``GRPCSEC_KEY_PASSWORD``.

grpcio accepts only unencrypted keys, and given an encrypted one it fails with "Failed to bind to
address". ``KeyPair.from_files(..., password=...)`` decrypts the key in memory and hands grpcio
the plain PEM; the file on disk stays encrypted and nothing is written. Without a password the
error says what is wrong. When ``GRPCSEC_KEY_PASSWORD`` is unset, this example invents a
throwaway password (in a real deployment it comes from a secret store).
"""

import os
import secrets
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

import grpcsec
from grpcsec.demo.greeter import add_greeter, say_hello
from grpcsec.pki import CERT_MODE, KEY_MODE, PendingFile, write_files

KEY_ENV_VAR = "GRPCSEC_KEY_PASSWORD"  # the variable the grpcsec CLI reads too


def write_certificates(directory: Path, password: str) -> None:
    ca = grpcsec.CertificateAuthority.create("example CA")
    server = ca.issue(grpcsec.Profile.SERVER, grpcsec.SubjectAltNames.build(dns=["localhost"]))
    write_files(
        [
            PendingFile(directory / "ca.crt", ca.certificate_pem(), CERT_MODE),
            PendingFile(directory / "server.crt", server.chain_pem(), CERT_MODE),
            # PKCS#8, encrypted with the password (what `openssl pkcs8 -topk8 -v2 aes256` makes)
            PendingFile(directory / "server.key", server.key_pem(password.encode()), KEY_MODE),
        ]
    )


def main() -> int:
    os.environ.setdefault(KEY_ENV_VAR, secrets.token_urlsafe(16))
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=4) as pool:
        d = Path(tmp)
        write_certificates(d, os.environ[KEY_ENV_VAR])
        print("server.key starts with:", (d / "server.key").read_text().splitlines()[0])
        try:
            grpcsec.KeyPair.from_files(d / "server.crt", d / "server.key")
        except grpcsec.PasswordError as exc:
            print("without a password:", exc.message)
        else:
            print("without a password: NOT refused", file=sys.stderr)
            return 1
        identity = grpcsec.KeyPair.from_files(
            d / "server.crt", d / "server.key", password=os.environ[KEY_ENV_VAR]
        )
        server = grpc.server(pool)
        add_greeter(server)
        port = server.add_secure_port("127.0.0.1:0", grpcsec.server_credentials(identity))
        server.start()
        try:
            credentials = grpcsec.channel_credentials(ca=d / "ca.crt")
            with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
                reply = say_hello(channel, "encrypted key", timeout=5)
        finally:
            server.stop(None).wait()
    print(f"with the password from ${KEY_ENV_VAR}:", reply)
    return 0 if reply == "Hello encrypted key" else 1


if __name__ == "__main__":
    sys.exit(main())
