"""Trust anchors must be CAs: every entry point refuses a leaf, a v1 (extension-less)
certificate and a CA that may not sign certificates, with one line; real CAs keep working.

Before this rule, ``grpcsec verify server.crt --ca server.crt`` printed ``OK`` (cryptography's
verifier took the leaf as its own anchor): a false accept.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.errors import GrpcsecError, MaterialError
from grpcsec.material import KeyPair, TrustBundle
from grpcsec.pki import CertificateAuthority, anchor_problem, utcnow, verify_certificate
from tests.conftest import Pki, issue_client, serve, whoami

CLI = [sys.executable, "-m", "grpcsec.cli"]


def _self_signed(*, extensions: list[x509.ExtensionType]) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not really a CA")])
    now = utcnow()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=True)
    return builder.sign(key, hashes.SHA256())


def _no_cert_sign_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


@pytest.fixture(scope="module")
def bad_anchors(pki: Pki) -> dict[str, x509.Certificate]:
    """Certificates that must never be trust anchors, by why."""
    return {
        "leaf": pki.server.certificate,
        "no_extensions": _self_signed(extensions=[]),
        "ca_without_key_cert_sign": _self_signed(
            extensions=[x509.BasicConstraints(ca=True, path_length=None), _no_cert_sign_usage()]
        ),
    }


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("kind", ["leaf", "no_extensions", "ca_without_key_cert_sign"])
def test_the_library_refuses_a_non_ca_anchor_everywhere(
    pki: Pki, bad_anchors: dict[str, x509.Certificate], kind: str
) -> None:
    bad = bad_anchors[kind]
    assert anchor_problem(bad) is not None
    with pytest.raises(MaterialError, match=r"trust anchor 1 .* a CA bundle must hold"):
        TrustBundle.from_pem(_pem(bad))
    # A bundle with a real CA first still names the bad one (2nd).
    with pytest.raises(MaterialError, match="trust anchor 2"):
        TrustBundle.from_pem(pki.ca.certificate_pem() + _pem(bad))
    with pytest.raises(MaterialError):
        verify_certificate(pki.server.certificate, trust=[bad], now=utcnow())
    with pytest.raises(GrpcsecError):
        server_credentials(KeyPair.from_issued(pki.server), client_ca=_pem(bad))
    with pytest.raises(GrpcsecError):
        channel_credentials(ca=_pem(bad))


def test_real_roots_and_intermediates_remain_anchors(pki: Pki) -> None:
    """Positive controls: a root and an intermediate CA are anchors, and verification passes."""
    assert anchor_problem(pki.ca.certificate) is None
    intermediate = pki.ca.create_intermediate("anchors test intermediate")
    assert anchor_problem(intermediate.certificate) is None
    leaf = issue_client(intermediate)
    chain = verify_certificate(leaf.certificate, trust=[intermediate.certificate], now=utcnow())
    assert chain.chain[-1] == intermediate.certificate
    assert TrustBundle.from_pem(pki.ca.certificate_pem()).count == 1


def _cli(*args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


def _assert_one_line(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr


def _write(tmp_path: Path, pki: Pki, bad: x509.Certificate) -> dict[str, Path]:
    files = {
        "bad": tmp_path / "bad.pem",
        "ca": tmp_path / "ca.crt",
        "server_crt": tmp_path / "server.crt",
        "server_key": tmp_path / "server.key",
    }
    files["bad"].write_bytes(_pem(bad))
    files["ca"].write_bytes(pki.ca.certificate_pem())
    files["server_crt"].write_bytes(pki.server.chain_pem())
    files["server_key"].write_bytes(pki.server.key_pem())
    return files


@pytest.mark.slow
def test_verify_takes_a_leaf_as_ca_no_more(tmp_path: Path, pki: Pki) -> None:
    files = _write(tmp_path, pki, pki.server.certificate)
    # The leaf verified "against itself" used to print OK (exit 0).
    refused = _cli(
        "verify", files["server_crt"], "--ca", files["server_crt"], "--host", "localhost"
    )
    _assert_one_line(refused, "is not a CA")
    control = _cli("verify", files["server_crt"], "--ca", files["ca"], "--host", "localhost")
    assert control.returncode == 0, control.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["leaf", "no_extensions"])
def test_serve_and_call_refuse_a_non_ca_anchor(
    tmp_path: Path, pki: Pki, bad_anchors: dict[str, x509.Certificate], kind: str
) -> None:
    files = _write(tmp_path, pki, bad_anchors[kind])
    served = _cli(
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--cert",
        files["server_crt"],
        "--key",
        files["server_key"],
        "--client-ca",
        files["bad"],
        timeout=30,
    )
    _assert_one_line(served, "trust anchor 1")
    called = _cli("call", "127.0.0.1:1", "--ca", files["bad"], "--timeout", "1")
    _assert_one_line(called, "trust anchor 1")


@pytest.mark.slow
def test_doctor_refuses_a_leaf_as_ca_against_a_real_server(
    tmp_path: Path, pki: Pki, server_kind: str
) -> None:
    files = _write(tmp_path, pki, pki.server.certificate)
    credentials = server_credentials(KeyPair.from_issued(pki.server))
    with serve(server_kind, credentials) as running:
        refused = _cli("doctor", running.target, "--ca", files["server_crt"], "--timeout", "2")
        _assert_one_line(refused, "is not a CA")
        control = _cli("doctor", running.target, "--ca", files["ca"], "--timeout", "2")
        assert "is not a CA" not in control.stdout + control.stderr
        assert control.returncode in (0, 1), control.stderr
        # And a client trusting the real CA reaches it: the server itself is fine.
        assert whoami(running.target, grpc.ssl_channel_credentials(pki.ca.certificate_pem()))


def test_other_ca_is_still_just_untrusted(pki: Pki) -> None:
    """A CA that did not issue the leaf is a verdict (unknown authority), not bad input."""
    other: CertificateAuthority = pki.other_ca
    with pytest.raises(GrpcsecError) as caught:
        verify_certificate(pki.server.certificate, trust=[other.certificate], now=utcnow())
    assert not isinstance(caught.value, MaterialError)
