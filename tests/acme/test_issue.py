"""ACME issuance against a real ACME CA (Debian's pebble on 127.0.0.1, see conftest.py).

The issued chain is verified with cryptography's verifier against pebble's root from its
management endpoint (and refused against another root). Failure paths leave the certificate
and key on disk byte for byte as they were: a directory whose TLS is not trusted, an
unreachable directory, a name the CA refuses, a failed http-01 validation. ``badNonce``
(``PEBBLE_WFE_NONCEREJECT``) is retried cleanly; an authorization the CA reuses as already
valid (``PEBBLE_AUTHZREUSE=100``) is not answered again (no responder is even bound).
"""

from __future__ import annotations

import contextlib
import json
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from grpcsec.acme import AcmeConfig, issue_certificate
from grpcsec.acme.network import MAX_RESPONSE_BYTES
from grpcsec.acme.order import obtain
from grpcsec.acme.renewer import registered_client
from grpcsec.clock import SYSTEM_CLOCK
from grpcsec.errors import AcmeError
from grpcsec.pki import (
    CERT_MODE,
    KEY_MODE,
    CertificateAuthority,
    KeyType,
    PendingFile,
    load_certificate_file,
    load_key_file,
    write_files,
)
from tests.acme.conftest import BLOCKED, DOMAIN, Pebble, free_port

pytestmark = pytest.mark.slow

OLD_CERT = b"-----BEGIN CERTIFICATE-----\nold\n-----END CERTIFICATE-----\n"
OLD_KEY = b"old key bytes"


def verify(chain: list[x509.Certificate], root: x509.Certificate) -> None:
    """Web PKI verification of ``chain`` (leaf first) for DOMAIN under ``root``."""
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(DOMAIN))
    verifier.verify(chain[0], chain[1:])


def old_files(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    write_files([PendingFile(cert, OLD_CERT, CERT_MODE), PendingFile(key, OLD_KEY, KEY_MODE)])
    return cert, key


def assert_untouched(cert: Path, key: Path) -> None:
    assert cert.read_bytes() == OLD_CERT
    assert key.read_bytes() == OLD_KEY


def no_ca_config(tmp_path: Path, directory: str, **options: Any) -> AcmeConfig:
    """A configuration for a directory that is no ACME CA (nothing listens, or a bad one)."""
    values: dict[str, Any] = {"timeout": 5.0, **options}
    return AcmeConfig(
        directory=directory, domains=(DOMAIN,), account_key=tmp_path / "account.key", **values
    )


def one_line(error: pytest.ExceptionInfo[AcmeError]) -> str:
    text = str(error.value)
    assert "\n" not in text
    assert "Traceback" not in text
    return text


@pytest.mark.parametrize("validation", ["always_valid", "http01"])
def test_a_certificate_is_issued_and_chains_to_pebbles_root(
    start_pebble: Callable[..., Pebble], tmp_path: Path, validation: str
) -> None:
    env = {"PEBBLE_VA_ALWAYS_VALID": "1"} if validation == "always_valid" else {}
    pebble = start_pebble(**env)
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    material = issue_certificate(pebble.config(tmp_path), cert, key)
    chain = load_certificate_file(cert)
    assert chain[0] == material.leaf
    assert len(chain) >= 2  # leaf first, then the intermediate
    verify(chain, pebble.root())
    other = CertificateAuthority.create("not pebble")
    with pytest.raises(VerificationError):
        verify(chain, other.certificate)
    private = load_key_file(key)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert private.curve.name == "secp256r1"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    account = tmp_path / "account.key"
    assert stat.S_IMODE(account.stat().st_mode) == 0o600
    record = json.loads((tmp_path / "account.key.url").read_text())
    assert record["directory"] == pebble.directory
    assert record["account"].startswith("https://127.0.0.1:")


def test_a_second_order_reuses_the_account_and_makes_a_new_key(
    start_pebble: Callable[..., Pebble], tmp_path: Path
) -> None:
    pebble = start_pebble(PEBBLE_VA_ALWAYS_VALID="1")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    config = pebble.config(tmp_path, key_type=KeyType.RSA_2048)
    first = issue_certificate(config, cert, key)
    account = (tmp_path / "account.key").read_bytes()
    url = json.loads((tmp_path / "account.key.url").read_text())["account"]
    second = issue_certificate(config, cert, key)
    assert (tmp_path / "account.key").read_bytes() == account
    assert json.loads((tmp_path / "account.key.url").read_text())["account"] == url
    assert second.leaf.serial_number != first.leaf.serial_number
    assert isinstance(second.key, rsa.RSAPrivateKey)
    assert second.key.private_numbers() != first.key.private_numbers()  # type: ignore[union-attr]


def test_a_failed_http01_validation_keeps_the_old_files(pebble: Pebble, tmp_path: Path) -> None:
    """Negative control of real validation: our responder on another port than the one
    pebble validates on, so pebble's request gets no answer."""
    cert, key = old_files(tmp_path)
    config = pebble.config(tmp_path, http_port=free_port(), poll_attempts=100)
    with pytest.raises(AcmeError) as caught:
        issue_certificate(config, cert, key)
    assert "validation of localhost failed" in one_line(caught)
    assert_untouched(cert, key)


def test_a_directory_with_an_untrusted_certificate_is_refused(
    pebble: Pebble, tmp_path: Path
) -> None:
    other = CertificateAuthority.create("not pebble's https CA")
    wrong = tmp_path / "wrong-ca.crt"
    write_files([PendingFile(wrong, other.certificate_pem(), CERT_MODE)])
    cert, key = old_files(tmp_path)
    with pytest.raises(AcmeError) as caught:
        issue_certificate(pebble.config(tmp_path, directory_ca=wrong), cert, key)
    assert "not trusted (check --directory-ca)" in one_line(caught)
    assert_untouched(cert, key)


def test_an_unreachable_directory_is_one_line(tmp_path: Path) -> None:
    cert, key = old_files(tmp_path)
    config = no_ca_config(tmp_path, f"https://127.0.0.1:{free_port()}/dir")
    with pytest.raises(AcmeError) as caught:
        issue_certificate(config, cert, key)
    assert "unreachable" in one_line(caught)
    assert_untouched(cert, key)


def test_a_name_the_ca_refuses_is_a_rejected_order(
    start_pebble: Callable[..., Pebble], tmp_path: Path
) -> None:
    pebble = start_pebble(PEBBLE_VA_ALWAYS_VALID="1")
    cert, key = old_files(tmp_path)
    with pytest.raises(AcmeError) as caught:
        issue_certificate(pebble.config(tmp_path, domains=(BLOCKED,)), cert, key)
    text = one_line(caught)
    assert text.startswith(f"ordering a certificate for {BLOCKED}: rejectedIdentifier")
    assert_untouched(cert, key)


def test_bad_nonces_are_retried_with_fresh_ones(
    start_pebble: Callable[..., Pebble], tmp_path: Path
) -> None:
    pebble = start_pebble(PEBBLE_VA_ALWAYS_VALID="1", PEBBLE_WFE_NONCEREJECT="50")
    config = pebble.config(tmp_path, nonce_retries=30)
    with registered_client(config) as client:
        material = obtain(client, config, clock=SYSTEM_CLOCK, sleep=lambda _: None)
        rejected = client.net.bad_nonces  # type: ignore[attr-defined]
    assert material.leaf.serial_number
    assert rejected > 0  # about half of a dozen requests: all retried, none surfaced


def test_without_retries_a_bad_nonce_is_a_one_line_error(
    start_pebble: Callable[..., Pebble], tmp_path: Path
) -> None:
    """Negative control: every nonce rejected and no retry allowed."""
    pebble = start_pebble(PEBBLE_VA_ALWAYS_VALID="1", PEBBLE_WFE_NONCEREJECT="100")
    cert, key = old_files(tmp_path)
    with pytest.raises(AcmeError) as caught:
        issue_certificate(pebble.config(tmp_path, nonce_retries=0), cert, key)
    assert "badNonce" in one_line(caught)
    assert_untouched(cert, key)


@contextlib.contextmanager
def squatting(port: int) -> Iterator[None]:
    """Someone else listening on ``port`` (so our http-01 responder cannot bind it)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("", port))
        squatter.listen()
        yield


@pytest.mark.parametrize("reuse", ["100", "0"])
def test_an_authorization_reused_as_valid_is_not_answered_again(
    start_pebble: Callable[..., Pebble], tmp_path: Path, reuse: str
) -> None:
    """Real http-01 for the first order. With ``PEBBLE_AUTHZREUSE=100`` the repeat order's
    authorization is already valid, so nothing is validated: the order succeeds although the
    http-01 port is held by someone else. Negative control (``0``): a fresh authorization needs
    the responder, whose port is taken: a one-line error, the files of the first order kept."""
    pebble = start_pebble(PEBBLE_AUTHZREUSE=reuse)
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    config = pebble.config(tmp_path)
    first = issue_certificate(config, cert, key)
    assert first.reused == 0
    before = cert.read_bytes(), key.read_bytes()
    with squatting(pebble.http_port):
        if reuse == "100":
            second = issue_certificate(config, cert, key)
            assert second.reused == 1
            assert second.leaf.serial_number != first.leaf.serial_number
            return
        with pytest.raises(AcmeError) as caught:
            issue_certificate(config, cert, key)
    assert f"cannot listen on port {pebble.http_port}" in one_line(caught)
    assert (cert.read_bytes(), key.read_bytes()) == before


class _Huge(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"padding": "' + b"x" * (MAX_RESPONSE_BYTES + 10) + b'"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client hangs up past the limit
            self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def test_an_oversized_response_is_refused(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Huge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cert, key = old_files(tmp_path)
    url = f"http://127.0.0.1:{server.server_address[1]}/dir"
    config = no_ca_config(tmp_path, url, allow_http_directory=True)
    try:
        with pytest.raises(AcmeError) as caught:
            issue_certificate(config, cert, key)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert f"larger than {MAX_RESPONSE_BYTES} bytes" in one_line(caught)
    assert_untouched(cert, key)
    assert not (tmp_path / "account.key").exists()  # nothing created for a bad directory


def test_a_directory_that_never_answers_times_out(tmp_path: Path) -> None:
    with socket.socket() as silent:  # listens, never accepts: the TLS handshake never comes
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        cert, key = old_files(tmp_path)
        url = f"https://127.0.0.1:{silent.getsockname()[1]}/dir"
        config = no_ca_config(tmp_path, url, timeout=1.0)
        started = time.monotonic()
        with pytest.raises(AcmeError) as caught:
            issue_certificate(config, cert, key)
        assert time.monotonic() - started < 10
    assert "did not answer in time" in one_line(caught)
    assert_untouched(cert, key)
