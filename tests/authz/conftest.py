"""Shared helpers for the authorization tests: peers of each kind, certificates, policies and a
one-call ``decide``. The certificates come from grpcsec.pki, except the SAN-less one that A41's
subject-DN fallback needs (pki refuses CN-only leaves), built directly with ``cryptography``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from grpcsec.authz import (
    AuditEvent,
    AuditLoggerRegistry,
    Decision,
    Engine,
    Request,
    StdoutLoggerFactory,
    default_registry,
    parse_policy,
)
from grpcsec.authz.audit import FileLoggerFactory
from grpcsec.authz.request import MetadataValue
from grpcsec.identity import Peer, TransportSecurity
from grpcsec.pki import CertificateAuthority, Profile, SubjectAltNames

METHOD = "/grpc.testing.TestService/UnaryCall"
STREAMING = "/grpc.testing.TestService/StreamingInputCall"
SPIFFE = "spiffe://foo.bar.com/client/workload/1"

PLAINTEXT = Peer(address="ipv4:127.0.0.1:1", transport=TransportSecurity.PLAINTEXT)
TLS_NO_CERT = Peer(address="ipv4:127.0.0.1:1", transport=TransportSecurity.TLS)


def cert_peer(
    *,
    uris: Sequence[str] = (),
    dns: Sequence[str] = (),
    subject: str = "CN=client",
    spiffe_id: str | None = None,
) -> Peer:
    """A TLS peer with a client certificate, described by its facts (no certificate needed)."""
    return Peer(
        address="ipv4:127.0.0.1:1",
        transport=TransportSecurity.TLS,
        client_cert_presented=True,
        uris=tuple(uris),
        dns_names=tuple(dns),
        subject=subject,
        spiffe_id=spiffe_id,
    )


def peer_from_pem(pem: bytes, *, transport: bytes = b"ssl") -> Peer:
    """The Peer grpcsec.identity builds for a TLS connection that presented ``pem``."""
    return Peer.from_auth_context(
        {"transport_security_type": [transport], "x509_pem_cert": [pem]}, address="test"
    )


def self_signed_pem(subject: x509.Name, san: Sequence[x509.GeneralName] = ()) -> bytes:
    """A throwaway self-signed leaf with exactly ``subject`` and ``san`` (none: no extension)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def grpc_go_client1_subject() -> x509.Name:
    """The subject of grpc-go's testdata client1 certificate (authz-a43.md §5.4)."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "SVL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gRPC"),
            x509.NameAttribute(NameOID.COMMON_NAME, "test-client1"),
        ]
    )


@pytest.fixture(scope="session")
def authority() -> CertificateAuthority:
    return CertificateAuthority.create("grpcsec authz test CA")


def issue_client_pem(ca: CertificateAuthority, names: SubjectAltNames, **kwargs: Any) -> bytes:
    issued = ca.issue(Profile.CLIENT, names, **kwargs)
    return issued.certificate.public_bytes(serialization.Encoding.PEM)


def policy_json(
    allow: Sequence[Mapping[str, Any]],
    deny: Sequence[Mapping[str, Any]] | None = None,
    *,
    name: str = "authz",
    audit: Mapping[str, Any] | None = None,
) -> str:
    document: dict[str, Any] = {"name": name, "allow_rules": list(allow)}
    if deny is not None:
        document["deny_rules"] = list(deny)
    if audit is not None:
        document["audit_logging_options"] = dict(audit)
    return json.dumps(document)


def request(
    method: str = METHOD,
    peer: Peer = PLAINTEXT,
    metadata: Sequence[tuple[str, MetadataValue]] = (),
    claims: Mapping[str, Any] | None = None,
) -> Request:
    return Request(method=method, peer=peer, metadata=tuple(metadata), claims=claims)


def decide(policy: str | Mapping[str, Any], req: Request) -> Decision:
    """Parse, compile and evaluate (pure: no audit)."""
    return Engine(parse_policy(policy)).evaluate(req)


def outcome(decision: Decision) -> tuple[str, str | None]:
    return decision.decision, decision.matched_rule


class Capture:
    """An audit logger type that records events; registered under ``name``."""

    def __init__(self, name: str = "capture") -> None:
        self.name = name
        self.events: list[AuditEvent] = []
        self.configs: list[Mapping[str, Any]] = []

    def parse_config(self, config: Mapping[str, Any]) -> Mapping[str, Any]:
        if config.get("reject"):
            raise ValueError("this capture logger refuses reject=true")
        self.configs.append(config)
        return config

    def build(self, config: Mapping[str, Any]) -> Capture:
        del config
        return self

    def log(self, event: AuditEvent) -> None:
        self.events.append(event)


@pytest.fixture
def capture() -> Capture:
    return Capture()


@pytest.fixture
def registry(capture: Capture) -> AuditLoggerRegistry:
    """Built-ins plus the ``capture`` type, isolated from the process-wide registry."""
    return AuditLoggerRegistry([StdoutLoggerFactory(), FileLoggerFactory(), capture])


@pytest.fixture
def isolated_default_registry() -> Iterator[None]:
    """Leave the process-wide registry as found, whatever a test registers."""
    before = set(default_registry().names())
    yield
    for name in set(default_registry().names()) - before:
        default_registry().unregister(name)
