"""Which key types grpcio can handshake with, measured over real mTLS on 127.0.0.1.

``KeyType.grpc_leaf_supported`` is a claim about grpcio; these tests are its evidence. Each key
type is tried as the *server* leaf (client on ECDSA P-256) and as the *client* leaf (server on
ECDSA P-256). The expectation table is explicit, so a grpcio upgrade that changes the answer
fails here, and ``grpc_leaf_supported`` must agree with what was measured.
"""

from __future__ import annotations

import grpc
import pytest

from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.pki import CertificateAuthority, KeyType
from tests.conftest import Pki, issue_client, issue_server, serve, whoami

# Measured with grpcio 1.85.1 (BoringSSL): an Ed25519 leaf fails the handshake in both roles
# (NO_COMMON_SIGNATURE_ALGORITHMS); every other type works.
EXPECTED_TO_WORK = {
    KeyType.ECDSA_P256: True,
    KeyType.ECDSA_P384: True,
    KeyType.RSA_2048: True,
    KeyType.RSA_3072: True,
    KeyType.RSA_4096: True,
    KeyType.ED25519: False,
}


def handshake_works(target: str, credentials: object) -> bool:
    try:
        seen = whoami(target, credentials)
    except grpc.RpcError as exc:
        assert exc.code() in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN}, exc
        return False
    assert seen["client_cert_presented"] is True
    return True


def test_the_table_covers_every_key_type_and_matches_the_property() -> None:
    assert set(EXPECTED_TO_WORK) == set(KeyType)
    for key_type, works in EXPECTED_TO_WORK.items():
        assert key_type.grpc_leaf_supported is works, key_type


@pytest.mark.slow
@pytest.mark.parametrize("key_type", list(KeyType), ids=lambda k: k.value)
def test_server_leaf_key_type(pki: Pki, key_type: KeyType) -> None:
    server_leaf = issue_server(pki.ca, key_type=key_type, allow_unsupported_key=True)
    creds = server_credentials(server_leaf, client_ca=pki.ca, allow_unsupported_key=True)
    with serve("sync", creds) as server:
        works = handshake_works(server.target, channel_credentials(ca=pki.ca, identity=pki.client))
    assert works is EXPECTED_TO_WORK[key_type]
    assert works is key_type.grpc_leaf_supported


@pytest.mark.slow
@pytest.mark.parametrize("key_type", list(KeyType), ids=lambda k: k.value)
def test_client_leaf_key_type(pki: Pki, key_type: KeyType) -> None:
    client_leaf = issue_client(pki.ca, key_type=key_type, allow_unsupported_key=True)
    creds = channel_credentials(ca=pki.ca, identity=client_leaf, allow_unsupported_key=True)
    with serve("sync", server_credentials(pki.server, client_ca=pki.ca)) as server:
        works = handshake_works(server.target, creds)
    assert works is EXPECTED_TO_WORK[key_type]
    assert works is key_type.grpc_leaf_supported


def test_ed25519_ca_signing_ecdsa_leaves_works(server_kind: str) -> None:
    """Only Ed25519 *leaves* fail: BoringSSL verifies Ed25519 signatures on certificates."""
    ca = CertificateAuthority.create("grpcsec ed25519 CA", key_type=KeyType.ED25519)
    server_leaf = issue_server(ca)
    client_leaf = issue_client(ca)
    with serve(server_kind, server_credentials(server_leaf, client_ca=ca)) as server:
        seen = whoami(server.target, channel_credentials(ca=ca, identity=client_leaf))
    assert seen["common_name"] == "client-1"
