"""Weak key material is refused by credentials, ``grpcsec serve`` and rotation unless it is
allowed by name (``allow_weak_keys=True``, ``--allow-weak-keys``).

The weak material is built with ``cryptography`` directly (grpcsec's CA would not issue it):
an RSA-1024 server leaf and an ECDSA P-256 leaf whose signature is SHA-1, both under an
RSA-2048 root signed with SHA-256. Every refusal has a positive control: the same code accepts
the strong leaf from the same root, and, with the option, serves the weak one over a real
grpcio handshake.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from grpcsec.cli import app
from grpcsec.credentials import ChannelTLS, ServerTLS
from grpcsec.errors import MaterialError
from grpcsec.material import KeyPair, TrustBundle
from grpcsec.pki import private_key_pem, utcnow
from grpcsec.rotation import MemorySource, ReloadingServerTLS, ReloadOutcome
from grpcsec.rotation.checks import FailureKind

GRPCSEC = [sys.executable, "-m", "grpcsec.cli"]
LISTENING = re.compile(r"listening on (\S+):(\d+)")
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class Weak:
    """A root and leaves under it, as PEM."""

    root_pem: bytes
    strong: tuple[bytes, bytes]
    rsa1024: tuple[bytes, bytes]
    sha1: tuple[bytes, bytes]
    rsa1024_client: tuple[bytes, bytes]


def _leaf(
    root_key: rsa.RSAPrivateKey,
    key: Key,
    algorithm: hashes.HashAlgorithm,
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH,
) -> tuple[bytes, bytes]:
    now = utcnow()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(_name("weak-test root"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(root_key, algorithm)
    )
    return certificate.public_bytes(serialization.Encoding.PEM), private_key_pem(key)


def _sha1_leaf(
    directory: Path, root_pem: bytes, root_key: rsa.RSAPrivateKey
) -> tuple[bytes, bytes]:
    """cryptography refuses to sign with SHA-1; openssl still does."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    key = ec.generate_private_key(ec.SECP256R1())
    (directory / "root.crt").write_bytes(root_pem)
    (directory / "root.key").write_bytes(private_key_pem(root_key))
    (directory / "leaf.key").write_bytes(private_key_pem(key))
    (directory / "ext.cnf").write_text(
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost\n"
        "extendedKeyUsage=serverAuth\n"
    )
    steps = [
        ["req", "-new", "-key", "leaf.key", "-subj", "/CN=localhost", "-out", "leaf.csr"],
        [
            *("x509", "-req", "-in", "leaf.csr", "-CA", "root.crt", "-CAkey", "root.key"),
            *("-sha1", "-days", "1", "-set_serial", "7", "-extfile", "ext.cnf", "-out", "leaf.crt"),
        ],
    ]
    for step in steps:
        subprocess.run([openssl, *step], cwd=directory, check=True, capture_output=True, timeout=30)
    return (directory / "leaf.crt").read_bytes(), private_key_pem(key)


@pytest.fixture(scope="module")
def weak(tmp_path_factory: pytest.TempPathFactory) -> Weak:
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = utcnow()
    root = (
        x509.CertificateBuilder()
        .subject_name(_name("weak-test root"))
        .issuer_name(_name("weak-test root"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(root_key, hashes.SHA256())
    )
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (weak on purpose)
    root_pem = root.public_bytes(serialization.Encoding.PEM)
    return Weak(
        root_pem=root_pem,
        strong=_leaf(root_key, ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()),
        rsa1024=_leaf(root_key, small, hashes.SHA256()),
        sha1=_sha1_leaf(tmp_path_factory.mktemp("sha1"), root_pem, root_key),
        rsa1024_client=_leaf(root_key, small, hashes.SHA256(), ExtendedKeyUsageOID.CLIENT_AUTH),
    )


def _pair(pem: tuple[bytes, bytes]) -> KeyPair:
    return KeyPair.from_pem(pem[0], pem[1], source="leaf.crt")


# -- library ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("which", "weakness"), [("rsa1024", "1024-bit RSA key"), ("sha1", "signed with SHA1")]
)
def test_server_and_channel_tls_refuse_weak_material_unless_allowed(
    weak: Weak, which: str, weakness: str
) -> None:
    pair = _pair(getattr(weak, which))
    trust = TrustBundle.from_pem(weak.root_pem)
    with pytest.raises(MaterialError, match=rf"weak key material: .*{weakness}.*allow_weak_keys"):
        ServerTLS.create(pair)
    client_pair = _pair(weak.rsa1024_client) if which == "rsa1024" else None
    if client_pair is not None:
        with pytest.raises(MaterialError, match="allow_weak_keys"):
            ChannelTLS.create(ca=trust, identity=client_pair)
        ChannelTLS.create(ca=trust, identity=client_pair, allow_weak_keys=True)
    assert ServerTLS.create(pair, allow_weak_keys=True).identity is pair
    # Positive control: the strong leaf from the same root needs no option.
    ServerTLS.create(_pair(weak.strong))


def _echo() -> grpc.GenericRpcHandler:
    def echo(request: bytes, _context: object) -> bytes:
        return request

    handler = grpc.unary_unary_rpc_method_handler(echo)
    return grpc.method_handlers_generic_handler("weak.Echo", {"Echo": handler})


@contextmanager
def _served(tls: ServerTLS) -> Iterator[str]:
    executor = ThreadPoolExecutor(max_workers=2)
    server = grpc.server(executor)
    server.add_generic_rpc_handlers((_echo(),))
    port = server.add_secure_port("127.0.0.1:0", tls.credentials())
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait(10)
        executor.shutdown(wait=True)


def _echo_call(target: str, root_pem: bytes) -> bytes:
    credentials = grpc.ssl_channel_credentials(root_certificates=root_pem)
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(target, credentials, options=options) as channel:
        reply: bytes = channel.unary_unary("/weak.Echo/Echo")(b"hi", timeout=5)
    return reply


@pytest.mark.parametrize("which", ["rsa1024", "sha1", "strong"])
def test_allowed_weak_material_completes_a_real_handshake(weak: Weak, which: str) -> None:
    """With the option, grpcio (BoringSSL) does serve an RSA-1024 or SHA-1-signed leaf, which is
    why grpcsec must refuse it by default: nothing below us would."""
    tls = ServerTLS.create(_pair(getattr(weak, which)), allow_weak_keys=True)
    with _served(tls) as target:
        assert _echo_call(target, weak.root_pem) == b"hi"
        # Negative control: a client trusting another root is refused.
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = utcnow()
        foreign_root = (
            x509.CertificateBuilder()
            .subject_name(_name("weak-test root"))
            .issuer_name(_name("weak-test root"))
            .public_key(other.public_key())
            .serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(other, hashes.SHA256())
        )
        with pytest.raises(grpc.RpcError) as refused:
            _echo_call(target, foreign_root.public_bytes(serialization.Encoding.PEM))
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_weak_pair_rotated_in_is_refused_by_the_watcher(weak: Weak) -> None:
    source = MemorySource(*weak.strong, next_ca=weak.root_pem)
    tls = ReloadingServerTLS(source)
    source.set_raw(*weak.rsa1024, next_ca=weak.root_pem)
    assert tls.reload() is ReloadOutcome.REFUSED
    assert tls.last_failure is not None
    assert tls.last_failure.kind is FailureKind.INVALID
    assert "1024-bit RSA key" in tls.last_failure.message
    # Positive control: the same rotation with the option is taken.
    allowing = ReloadingServerTLS(MemorySource(*weak.strong), allow_weak_keys=True)
    allowing._watcher.source.set_raw(*weak.rsa1024)  # type: ignore[attr-defined]
    assert allowing.reload() is ReloadOutcome.LOADED


# -- grpcsec serve / call ------------------------------------------------------------------------
def _write(directory: Path, name: str, pem: tuple[bytes, bytes]) -> tuple[str, str]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_bytes(pem[0])
    key.write_bytes(pem[1])
    key.chmod(0o600)
    return str(cert), str(key)


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRPCSEC, "serve", "--listen", "127.0.0.1:0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("no_reload", [False, True], ids=["watching", "no-reload"])
@pytest.mark.parametrize(
    ("which", "weakness"), [("rsa1024", "1024-bit RSA key"), ("sha1", "signed with SHA1")]
)
def test_serve_refuses_weak_material_with_one_line_and_exit_2(
    weak: Weak, tmp_path: Path, which: str, weakness: str, no_reload: bool
) -> None:
    cert, key = _write(tmp_path, which, getattr(weak, which))
    result = _serve("--cert", cert, "--key", key, *(["--no-reload"] if no_reload else []))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert weakness in lines[0]
    assert "--allow-weak-keys" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_serve_with_allow_weak_keys_serves_and_call_reaches_it(weak: Weak, tmp_path: Path) -> None:
    cert, key = _write(tmp_path, "rsa1024", weak.rsa1024)
    root = tmp_path / "root.crt"
    root.write_bytes(weak.root_pem)
    process = subprocess.Popen(
        [
            *GRPCSEC,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cert",
            cert,
            "--key",
            key,
            "--allow-weak-keys",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        match = None
        for _ in range(50):
            line = process.stdout.readline()
            match = LISTENING.search(line)
            if match or not line:
                break
        assert match, process.stderr.read() if process.stderr else ""
        target = f"127.0.0.1:{match.group(2)}"
        result = CliRunner().invoke(
            app, ["call", target, "--ca", str(root), "--server-name", "localhost", "--json"]
        )
        assert result.exit_code == 0, result.stdout + result.stderr
        assert json.loads(result.stdout)["ok"] is True
        # call refuses a weak client pair the same way, and takes it with the option.
        ccert, ckey = _write(tmp_path, "client1024", weak.rsa1024_client)
        refused = CliRunner().invoke(
            app, ["call", target, "--ca", str(root), "--cert", ccert, "--key", ckey]
        )
        assert refused.exit_code == 2
        assert "--allow-weak-keys" in refused.stderr
    finally:
        process.terminate()
        process.communicate(timeout=20)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["expired", "not_yet_valid"])
def test_serve_no_reload_refuses_out_of_date_certificates_like_the_watcher(
    weak: Weak, tmp_path: Path, when: str
) -> None:
    """Same check, same one-line error, exit 2, with and without --no-reload."""
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    start, end = (
        (now - dt.timedelta(days=3), now - dt.timedelta(days=1))
        if when == "expired"
        else (now + dt.timedelta(days=1), now + dt.timedelta(days=3))
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(_name("dates root"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    cert, key_path = _write(
        tmp_path, when, (certificate.public_bytes(serialization.Encoding.PEM), private_key_pem(key))
    )
    outputs = []
    for extra in ([], ["--no-reload"]):
        result = _serve("--cert", cert, "--key", key_path, *extra)
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert "Traceback" not in result.stderr
        outputs.append(lines[0])
    assert outputs[0] == outputs[1]
    assert ("expired on" if when == "expired" else "is not valid until") in outputs[0]
