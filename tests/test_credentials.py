"""grpcsec.credentials: material is checked before grpcio sees it, and the credentials it builds
do what they say over real TLS on 127.0.0.1 (sync and aio servers, sync and aio channels).

Every working handshake has negative controls next to it that must fail: a client certificate
from another CA, an expired one, none at all, a server name that does not match, a client that
trusts the wrong CA.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from grpcsec import material as material_module
from grpcsec.credentials import ChannelTLS, ServerTLS, channel_credentials, server_credentials
from grpcsec.demo.greeter import say_hello_async
from grpcsec.errors import ConfigurationError, KeyMismatchError, MaterialError, PasswordError
from grpcsec.material import KeyPair, TrustBundle, TrustOrigin, load_key_pair
from grpcsec.pki import KeyType, Profile, SubjectAltNames, Validity, private_key_pem, utcnow
from tests.conftest import (
    CLIENT_SPIFFE_ID,
    FRESH_CONNECTION,
    TIMEOUT,
    Pki,
    call_error,
    issue_client,
    issue_server,
    serve,
    whoami,
)

# -- helpers ---------------------------------------------------------------------------------


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def server_files(pki: Pki, tmp_path: Path) -> tuple[Path, Path]:
    return (
        write(tmp_path / "server.crt", pki.server.chain_pem()),
        write(tmp_path / "server.key", pki.server.key_pem()),
    )


def mtls_server(pki: Pki) -> object:
    return server_credentials(pki.server, client_ca=pki.ca)


# -- KeyPair: parsing and checks ---------------------------------------------------------------


def test_key_pair_from_files_reencodes_a_traditional_key_as_unencrypted_pkcs8(
    pki: Pki, tmp_path: Path
) -> None:
    """grpcio wants unencrypted PEM; a traditional 'EC PRIVATE KEY' file becomes PKCS#8."""
    assert pki.server.key is not None
    traditional = pki.server.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert traditional.startswith(b"-----BEGIN EC " + b"PRIVATE KEY-----")
    cert = write(tmp_path / "server.crt", pki.server.chain_pem())
    key = write(tmp_path / "server.key", traditional)
    pair = KeyPair.from_files(cert, key)
    assert pair.key_pem.startswith(b"-----BEGIN " + b"PRIVATE KEY-----")
    assert pair.chain_pem == pki.server.chain_pem()
    assert pair.leaf == pki.server.certificate
    assert pair.key_type is KeyType.ECDSA_P256
    assert pair.source == str(cert)
    assert pair.key_source == str(key)


def test_key_pair_repr_never_shows_key_material(pki: Pki) -> None:
    pair = KeyPair.from_issued(pki.server)
    body = pair.key_pem.decode().splitlines()[1]
    text = repr(pair)
    assert "PRIVATE" not in text
    assert body not in text
    assert "hidden" in text
    assert "CN=localhost" in text


@pytest.mark.parametrize("missing", ["key", "cert"])
def test_half_a_pair_is_a_configuration_error_naming_the_given_file(
    server_files: tuple[Path, Path], missing: str
) -> None:
    """grpcio aborts the process on half a pair; we refuse before grpcio is called."""
    cert, key = server_files
    given = cert if missing == "key" else key
    with pytest.raises(ConfigurationError) as info:
        if missing == "key":
            load_key_pair(cert, None)
        else:
            load_key_pair(None, key)
    assert info.value.path == str(given)
    assert "without its" in str(info.value)


def test_no_pair_at_all_is_none() -> None:
    assert load_key_pair(None, None) is None


def test_empty_key_bytes_are_a_material_error(pki: Pki) -> None:
    with pytest.raises(MaterialError, match="empty"):
        KeyPair.from_pem(pki.server.chain_pem(), b"", key_source="server.key")


def test_text_instead_of_bytes_is_a_configuration_error(pki: Pki) -> None:
    with pytest.raises(ConfigurationError, match="must be bytes"):
        KeyPair(chain_pem=pki.server.chain_pem().decode(), key_pem=pki.server.key_pem())  # type: ignore[arg-type]


@pytest.mark.slow
def test_grpcio_itself_dies_on_half_a_pair(pki: Pki, tmp_path: Path) -> None:
    """Why the check above exists: raw grpcio with a key but no chain kills the process."""
    ca = write(tmp_path / "ca.crt", pki.ca.certificate_pem())
    key = write(tmp_path / "client.key", pki.client.key_pem())
    script = textwrap.dedent(
        """
        import sys, grpc
        creds = grpc.ssl_channel_credentials(
            root_certificates=open(sys.argv[1], "rb").read(),
            private_key=open(sys.argv[2], "rb").read(),
        )
        grpc.secure_channel("127.0.0.1:9", creds)
        print("survived")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(ca), str(key)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert b"survived" not in proc.stdout


def test_key_of_another_certificate_is_a_key_mismatch_naming_both_files(
    pki: Pki, tmp_path: Path
) -> None:
    cert = write(tmp_path / "server.crt", pki.server.chain_pem())
    key = write(tmp_path / "client.key", pki.client.key_pem())
    with pytest.raises(KeyMismatchError) as info:
        KeyPair.from_files(cert, key)
    assert info.value.path == str(key)
    assert str(cert) in str(info.value)


def test_encrypted_key_without_password_is_a_password_error(pki: Pki, tmp_path: Path) -> None:
    cert = write(tmp_path / "server.crt", pki.server.chain_pem())
    key = write(tmp_path / "server.key", pki.server.key_pem(b"s3cret"))
    with pytest.raises(PasswordError) as info:
        KeyPair.from_files(cert, key)
    assert info.value.path == str(key)


def test_encrypted_key_with_wrong_password_is_a_password_error(pki: Pki, tmp_path: Path) -> None:
    cert = write(tmp_path / "server.crt", pki.server.chain_pem())
    key = write(tmp_path / "server.key", pki.server.key_pem(b"s3cret"))
    with pytest.raises(PasswordError) as info:
        KeyPair.from_files(cert, key, password="wrong")
    assert info.value.path == str(key)


def test_encrypted_key_with_its_password_is_decrypted_in_memory(pki: Pki, tmp_path: Path) -> None:
    cert = write(tmp_path / "server.crt", pki.server.chain_pem())
    key = write(tmp_path / "server.key", pki.server.key_pem(b"s3cret"))
    pair = KeyPair.from_files(cert, key, password=b"s3cret")
    assert b"ENCRYPTED" not in pair.key_pem
    assert pair.key_pem == pki.server.key_pem()
    assert b"ENCRYPTED" in key.read_bytes()  # the file is untouched


def test_der_certificate_is_refused_with_a_hint(pki: Pki, tmp_path: Path) -> None:
    der = pki.server.certificate.public_bytes(serialization.Encoding.DER)
    cert = write(tmp_path / "server.der", der)
    key = write(tmp_path / "server.key", pki.server.key_pem())
    with pytest.raises(MaterialError, match="DER") as info:
        KeyPair.from_files(cert, key)
    assert info.value.path == str(cert)


@pytest.mark.parametrize(
    "garbage",
    [b"hello, not a certificate\n", b"-----BEGIN CERTIFICATE-----\nnot base64!\n"],
    ids=["text", "truncated-pem"],
)
def test_garbage_certificate_file_is_a_material_error_naming_it(
    pki: Pki, tmp_path: Path, garbage: bytes
) -> None:
    cert = write(tmp_path / "server.crt", garbage)
    key = write(tmp_path / "server.key", pki.server.key_pem())
    with pytest.raises(MaterialError) as info:
        KeyPair.from_files(cert, key)
    assert info.value.path == str(cert)


def test_garbage_key_file_is_a_material_error_naming_it(pki: Pki, tmp_path: Path) -> None:
    cert = write(tmp_path / "server.crt", pki.server.chain_pem())
    key = write(
        tmp_path / "server.key",
        b"-----BEGIN " + b"PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    with pytest.raises(MaterialError) as info:
        KeyPair.from_files(cert, key)
    assert info.value.path == str(key)


def test_missing_file_is_a_material_error_naming_it(pki: Pki, tmp_path: Path) -> None:
    key = write(tmp_path / "server.key", pki.server.key_pem())
    with pytest.raises(MaterialError, match="no such file") as info:
        KeyPair.from_files(tmp_path / "nope.crt", key)
    assert info.value.path == str(tmp_path / "nope.crt")


def test_swapped_certificate_and_key_files_are_refused(
    server_files: tuple[Path, Path],
) -> None:
    cert, key = server_files
    with pytest.raises(MaterialError, match="private key"):
        KeyPair.from_files(key, cert)


def test_chain_not_leaf_first_is_refused(pki: Pki) -> None:
    intermediate = pki.ca.create_intermediate()
    leaf = issue_server(intermediate)
    reversed_chain = b"".join(reversed(_split(leaf.chain_pem())))
    with pytest.raises(MaterialError, match="leaf-first"):
        KeyPair.from_pem(reversed_chain, leaf.key_pem(), source="chain.crt")


def _split(pem: bytes) -> list[bytes]:
    marker = b"-----END CERTIFICATE-----\n"
    return [part + marker for part in pem.split(marker) if part.strip()]


def test_ca_certificate_as_identity_is_refused(pki: Pki) -> None:
    with pytest.raises(MaterialError, match="CA certificate"):
        KeyPair.from_pem(pki.ca.certificate_pem(), private_key_pem(pki.ca.key))


def test_issued_for_a_csr_has_no_key(pki: Pki) -> None:
    assert pki.client.key is not None
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr")]))
        .sign(pki.client.key, hashes.SHA256())
    )
    issued = pki.ca.sign_csr(csr, Profile.CLIENT, names=SubjectAltNames.build(dns=["csr.test"]))
    with pytest.raises(ConfigurationError, match="CSR"):
        KeyPair.from_issued(issued)


# -- role checks -------------------------------------------------------------------------------


def test_client_certificate_cannot_serve(pki: Pki) -> None:
    """A leaf without serverAuth would fail every handshake with 'unsupported certificate
    purpose'; refuse it up front."""
    with pytest.raises(MaterialError, match="serverAuth"):
        server_credentials(pki.client)


def test_server_certificate_cannot_be_a_client_identity(pki: Pki) -> None:
    with pytest.raises(MaterialError, match="clientAuth"):
        channel_credentials(ca=pki.ca, identity=pki.server)


def test_peer_profile_serves_and_calls(pki: Pki) -> None:
    peer_leaf = pki.ca.issue(Profile.PEER, SubjectAltNames.build(dns=["localhost"]))
    assert ServerTLS.create(peer_leaf).identity.leaf == peer_leaf.certificate
    assert ChannelTLS.create(ca=pki.ca, identity=peer_leaf).mutual


def test_uri_only_server_certificate_is_refused_unless_asked(pki: Pki) -> None:
    """grpcio clients never match URI SANs, so a SPIFFE-only server is unreachable for them."""
    spiffe_only = issue_server(
        pki.ca, names=SubjectAltNames.build(uris=["spiffe://example.org/server"])
    )
    with pytest.raises(MaterialError, match="no DNS or IP"):
        server_credentials(spiffe_only)
    assert ServerTLS.create(spiffe_only, require_host_san=False).identity


@pytest.mark.parametrize("role", ["server", "client"])
def test_ed25519_leaf_is_refused_unless_asked(pki: Pki, role: str) -> None:
    if role == "server":
        leaf = issue_server(pki.ca, key_type=KeyType.ED25519, allow_unsupported_key=True)
        with pytest.raises(MaterialError, match="ed25519"):
            server_credentials(leaf)
        assert ServerTLS.create(leaf, allow_unsupported_key=True).identity.key_type is (
            KeyType.ED25519
        )
    else:
        leaf = issue_client(pki.ca, key_type=KeyType.ED25519, allow_unsupported_key=True)
        with pytest.raises(MaterialError, match="ed25519"):
            channel_credentials(ca=pki.ca, identity=leaf)
        assert ChannelTLS.create(ca=pki.ca, identity=leaf, allow_unsupported_key=True).mutual


def test_requiring_client_certificates_needs_a_client_ca(pki: Pki) -> None:
    with pytest.raises(ConfigurationError, match="client_ca"):
        server_credentials(pki.server, require_client_cert=True)


def test_client_ca_without_requiring_the_certificate_is_refused(pki: Pki) -> None:
    """grpcio would never even request the certificate: an mTLS server that is not one."""
    with pytest.raises(ConfigurationError, match="never requests"):
        server_credentials(pki.server, client_ca=pki.ca, require_client_cert=False)


def test_server_tls_is_mutual_only_with_a_client_ca(pki: Pki) -> None:
    assert ServerTLS.create(pki.server, client_ca=pki.ca).mutual
    assert ServerTLS.create(pki.server, client_ca=pki.ca, require_client_cert=True).mutual
    assert not ServerTLS.create(pki.server).mutual


def test_channel_needs_exactly_one_source_of_trust(pki: Pki) -> None:
    with pytest.raises(ConfigurationError, match="no trust anchors"):
        channel_credentials()
    with pytest.raises(ConfigurationError, match="not both"):
        channel_credentials(ca=pki.ca, use_system_roots=True)


# -- trust bundles -------------------------------------------------------------------------------


def test_trust_sources_all_become_the_same_bundle(pki: Pki, tmp_path: Path) -> None:
    pem = pki.ca.certificate_pem()
    path = write(tmp_path / "ca.crt", pem)
    sources: list[object] = [
        pem,
        str(path),
        path,
        pki.ca.certificate,
        [pki.ca.certificate],
        pki.ca,
        TrustBundle.from_file(path),
    ]
    for source in sources:
        tls = ChannelTLS.create(ca=source)  # type: ignore[arg-type]
        assert tls.trust.pem == pem, source
        assert tls.trust.origin is TrustOrigin.EXPLICIT
        assert tls.trust.count == 1
    assert TrustBundle.from_file(path).source == str(path)


def test_empty_ca_bytes_are_refused(pki: Pki) -> None:
    """grpcio reads b"" as 'use my bundled roots'; we refuse it."""
    with pytest.raises(MaterialError, match="empty"):
        channel_credentials(ca=b"")
    with pytest.raises(MaterialError, match="empty"):
        server_credentials(pki.server, client_ca=b"  \n")


def test_pem_text_where_a_path_is_expected_is_refused(pki: Pki) -> None:
    with pytest.raises(ConfigurationError, match="as bytes"):
        channel_credentials(ca=pki.ca.certificate_pem().decode())


def test_leaf_certificate_as_ca_bundle_is_refused(pki: Pki, tmp_path: Path) -> None:
    path = write(tmp_path / "server.crt", pki.server.chain_pem())
    with pytest.raises(MaterialError, match="not a CA") as info:
        channel_credentials(ca=path)
    assert info.value.path == str(path)


def test_der_ca_bundle_is_refused(pki: Pki, tmp_path: Path) -> None:
    der = pki.ca.certificate.public_bytes(serialization.Encoding.DER)
    path = write(tmp_path / "ca.der", der)
    with pytest.raises(MaterialError, match="DER") as info:
        server_credentials(pki.server, client_ca=path)
    assert info.value.path == str(path)


def test_system_bundle_is_the_first_file_with_certificates(pki: Pki, tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.pem", b"")
    bundle = write(
        tmp_path / "bundle.pem", pki.ca.certificate_pem() + pki.other_ca.certificate_pem()
    )
    trust = TrustBundle.system(paths=[tmp_path / "absent.pem", empty, bundle], use_certifi=False)
    assert trust.source == str(bundle)
    assert trust.origin is TrustOrigin.SYSTEM
    assert trust.count == 2


def test_no_system_bundle_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no system CA bundle"):
        TrustBundle.system(paths=[tmp_path / "absent.pem"], use_certifi=False)


def test_system_roots_are_passed_explicitly_and_recorded(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """use_system_roots=True reads the OS bundle itself (here: a stand-in holding our CA) and
    says which file it used; grpcio's own default roots are not involved."""
    monkeypatch.delenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", raising=False)
    bundle = write(tmp_path / "ca-certificates.crt", pki.ca.certificate_pem())
    monkeypatch.setattr(material_module, "SYSTEM_BUNDLE_PATHS", (bundle,))
    tls = ChannelTLS.create(use_system_roots=True)
    assert tls.trust.source == str(bundle)
    assert tls.trust.origin is TrustOrigin.SYSTEM
    with serve("sync", server_credentials(pki.server)) as server:
        seen = whoami(server.target, tls.credentials())
    assert seen["transport"] == "tls"


@pytest.mark.slow
def test_explicit_ca_is_never_replaced_by_grpcio_default_roots(pki: Pki, tmp_path: Path) -> None:
    """In a fresh process whose GRPC_DEFAULT_SSL_ROOTS_FILE_PATH trusts the server, a channel
    built with the *other* CA still fails: the explicit bundle is what grpcio got. (A
    subprocess, because grpcio caches default roots for the life of the process.)"""
    ca_file = write(tmp_path / "ca.crt", pki.ca.certificate_pem())
    other = write(tmp_path / "other.crt", pki.other_ca.certificate_pem())
    script = textwrap.dedent(
        """
        import sys, grpc
        from grpcsec.credentials import channel_credentials
        creds = channel_credentials(ca=open(sys.argv[2], "rb").read())
        with grpc.secure_channel(sys.argv[1], creds) as channel:
            try:
                channel.unary_unary("/grpcsec.test.Probe/WhoAmI")(b"", timeout=5)
            except grpc.RpcError as exc:
                print(exc.code().name)
            else:
                print("OK")
        """
    )
    env = {**os.environ, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(ca_file)}
    with serve("sync", server_credentials(pki.server)) as server:
        proc = subprocess.run(
            [sys.executable, "-c", script, server.target, str(other)],
            capture_output=True,
            timeout=60,
            check=False,
            env=env,
        )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    assert proc.stdout.decode().strip() == "UNAVAILABLE"


# -- handshakes: the positive case and its negative controls --------------------------------


def test_mtls_with_a_valid_client_certificate_works(pki: Pki, server_kind: str) -> None:
    with serve(server_kind, mtls_server(pki)) as server:
        seen = whoami(server.target, channel_credentials(ca=pki.ca, identity=pki.client))
    assert seen["client_cert_presented"] is True
    assert seen["common_name"] == "client-1"


def test_mtls_refuses_a_client_certificate_from_another_ca(pki: Pki, server_kind: str) -> None:
    with serve(server_kind, mtls_server(pki)) as server:
        error = call_error(server.target, channel_credentials(ca=pki.ca, identity=pki.other_client))
    assert error.code() is grpc.StatusCode.UNAVAILABLE


def test_mtls_refuses_an_expired_client_certificate(pki: Pki, server_kind: str) -> None:
    now = utcnow()
    expired = issue_client(
        pki.ca,
        validity=Validity(
            not_before=now - dt.timedelta(days=10), not_after=now - dt.timedelta(days=1)
        ),
    )
    with serve(server_kind, mtls_server(pki)) as server:
        error = call_error(server.target, channel_credentials(ca=pki.ca, identity=expired))
        # the same server still accepts a valid certificate: the refusal is about expiry
        assert whoami(server.target, channel_credentials(ca=pki.ca, identity=pki.client))
    assert error.code() is grpc.StatusCode.UNAVAILABLE


def test_mtls_refuses_a_client_without_certificate(pki: Pki, server_kind: str) -> None:
    with serve(server_kind, mtls_server(pki)) as server:
        error = call_error(server.target, channel_credentials(ca=pki.ca))
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert "Socket closed" in (error.details() or "")


def test_client_refuses_a_server_certificate_for_another_name(pki: Pki, server_kind: str) -> None:
    wrong_name = issue_server(pki.ca, names=SubjectAltNames.build(dns=["elsewhere.example"]))
    client = channel_credentials(ca=pki.ca, identity=pki.client)
    with serve(server_kind, server_credentials(wrong_name, client_ca=pki.ca)) as server:
        error = call_error(server.target, client)
        # control: asking for the name the certificate has works
        override = (("grpc.ssl_target_name_override", "elsewhere.example"),)
        assert whoami(server.target, client, options=override)["client_cert_presented"]
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert "Hostname Verification" in (error.details() or "")


def test_client_trusting_the_wrong_ca_refuses_the_server(pki: Pki, server_kind: str) -> None:
    with serve(server_kind, mtls_server(pki)) as server:
        error = call_error(server.target, channel_credentials(ca=pki.other_ca, identity=pki.client))
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in (error.details() or "")


def test_tls_only_server_accepts_a_client_without_certificate(pki: Pki, server_kind: str) -> None:
    with serve(server_kind, server_credentials(pki.server)) as server:
        seen = whoami(server.target, channel_credentials(ca=pki.ca))
    assert seen["transport"] == "tls"
    assert seen["client_cert_presented"] is False


def test_tls_only_server_never_sees_a_client_certificate(pki: Pki) -> None:
    """grpcio's TLS-only server does not request one, so a client's certificate is not sent."""
    with serve("sync", server_credentials(pki.server)) as server:
        seen = whoami(server.target, channel_credentials(ca=pki.ca, identity=pki.client))
    assert seen["client_cert_presented"] is False


def test_intermediate_chain_is_served_and_verified(pki: Pki, server_kind: str) -> None:
    intermediate = pki.ca.create_intermediate("grpcsec test intermediate")
    server_leaf = issue_server(intermediate)
    client_leaf = issue_client(intermediate, common_name="via-intermediate")
    assert len(KeyPair.from_issued(server_leaf).chain) == 2
    with serve(server_kind, server_credentials(server_leaf, client_ca=pki.ca)) as server:
        seen = whoami(server.target, channel_credentials(ca=pki.ca, identity=client_leaf))
    assert seen["common_name"] == "via-intermediate"


def test_decrypted_key_serves(pki: Pki, tmp_path: Path) -> None:
    cert = write(tmp_path / "server.crt", pki.server.chain_pem())
    key = write(tmp_path / "server.key", pki.server.key_pem(b"pw"))
    identity = KeyPair.from_files(cert, key, password="pw")
    with serve("sync", server_credentials(identity, client_ca=pki.ca)) as server:
        assert whoami(server.target, channel_credentials(ca=pki.ca, identity=pki.client))


def test_the_same_credentials_work_on_aio_channels(pki: Pki, server_kind: str) -> None:
    client = channel_credentials(ca=pki.ca, identity=pki.client)

    async def good_and_bad(target: str) -> tuple[str, grpc.StatusCode]:
        async with grpc.aio.secure_channel(target, client, options=FRESH_CONNECTION) as ch:
            reply = await say_hello_async(ch, "aio", timeout=TIMEOUT)
        anonymous = channel_credentials(ca=pki.ca)
        async with grpc.aio.secure_channel(target, anonymous, options=FRESH_CONNECTION) as ch:
            try:
                await say_hello_async(ch, "aio", timeout=TIMEOUT)
            except grpc.aio.AioRpcError as exc:
                return reply, exc.code()
        pytest.fail("a client without certificate got through")

    with serve(server_kind, mtls_server(pki)) as server:
        reply, refused = asyncio.run(good_and_bad(server.target))
    assert reply == "Hello aio (from spiffe://example.org/ns/default/sa/client)"
    assert refused is grpc.StatusCode.UNAVAILABLE


def test_server_name_override_becomes_a_channel_option(pki: Pki) -> None:
    plain = ChannelTLS.create(ca=pki.ca)
    assert plain.channel_options() == []
    named = ChannelTLS.create(ca=pki.ca, server_name="greeter.internal")
    assert named.channel_options() == [("grpc.ssl_target_name_override", "greeter.internal")]


def test_session_resumption_is_opt_in_and_private_per_configuration(pki: Pki) -> None:
    """Off by default; when on, every configuration gets its own cache (a shared cache lets one
    identity resume another's session), and calls over it work."""
    assert all(
        name != "grpc.ssl_session_cache"
        for name, _ in ChannelTLS.create(ca=pki.ca).channel_options()
    )
    first = ChannelTLS.create(
        ca=pki.ca, identity=pki.client, server_name="localhost", session_resumption=True
    )
    second = ChannelTLS.create(
        ca=pki.ca, identity=pki.client, server_name="localhost", session_resumption=True
    )
    cache_of = dict(first.channel_options())
    other = dict(second.channel_options())
    assert cache_of["grpc.ssl_session_cache"] is not other["grpc.ssl_session_cache"]
    with serve("sync", server_credentials(pki.server, client_ca=pki.ca)) as server:
        for _ in range(3):
            seen = whoami(server.target, first.credentials(), options=first.channel_options())
            assert seen["principal"] == CLIENT_SPIFFE_ID
