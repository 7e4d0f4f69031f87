"""Seed corpora for the fuzz targets, written by ``run.py`` into ``fuzz/corpus/<target>/``.

Generated rather than committed: the PEM seeds hold private keys (made here, used nowhere
else), and the token seeds are signed with the targets' fixed keys. Each seed is the mode byte
the target reads first, then the input: valid documents of every shape the parsers accept, so
the fuzzer starts from deep inside them rather than from random bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from fuzz import bearer
from fuzz.pem import LOADERS, PASSWORD
from grpcsec.pki import CertificateAuthority, KeyType, Profile, SubjectAltNames, private_key_pem

__all__ = ["write_seeds"]

_NOW = dt.datetime(2029, 6, 1, tzinfo=dt.timezone.utc)
_PEM_MODE = {loader.__name__.lstrip("_"): index for index, loader in enumerate(LOADERS)}

_POLICIES = [
    {"name": "minimal", "allow_rules": [{"name": "all"}]},
    {
        "name": "full",
        "deny_rules": [
            {
                "name": "no-admin",
                "request": {
                    "paths": ["/pkg.Service/Admin*", "*Delete"],
                    "headers": [{"key": "x-role", "values": ["guest", "*"]}],
                },
            }
        ],
        "allow_rules": [
            {
                "name": "spiffe",
                "source": {"principals": ["spiffe://example.org/ns/*", "*.example.org", "*"]},
                "request": {"paths": ["/pkg.Service/*", "*"]},
            },
            {"name": "everyone", "request": {"headers": [{"key": "x-team", "values": ["red"]}]}},
        ],
        "audit_logging_options": {
            "audit_condition": "ON_DENY_AND_ALLOW",
            "audit_loggers": [{"stdout_logger": {}, "is_optional": True}],
        },
    },
    {
        "name": "claims",
        "allow_rules": [
            {
                "name": "tenant",
                "source": {"grpcsec_claims": [{"claim": "groups", "values": ["a", "b*"]}]},
            }
        ],
    },
]


def _policy_seeds() -> Iterator[bytes]:
    for policy in _POLICIES:
        text = json.dumps(policy).encode()
        yield b"\x00" + text
        yield b"\x01" + json.dumps(policy, indent=2).encode()


def _csr_pem(key: object) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz csr")])
    )
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.DNSName("csr.example.org")]), critical=False
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = builder.sign(key, algorithm)  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.PEM)


def _pem_seeds() -> Iterator[bytes]:
    root = CertificateAuthority.create("fuzz root", organization="Fuzz", now=_NOW)
    middle = root.create_intermediate("fuzz intermediate", now=_NOW)
    names = SubjectAltNames.build(
        dns=["server.example.org", "*.example.org"],
        ips=["127.0.0.1", "::1"],
        uris=["spiffe://example.org/ns/default/sa/server"],
        emails=["ops@example.org"],
    )
    issued = [
        middle.issue(Profile.SERVER, names, common_name="server", now=_NOW),
        root.issue(Profile.CLIENT, SubjectAltNames.build(dns=["c"]), key_type=KeyType.RSA_2048),
        root.issue(
            Profile.PEER,
            SubjectAltNames.build(dns=["p"]),
            key_type=KeyType.ED25519,
            allow_unsupported_key=True,
        ),
    ]
    mode = _PEM_MODE
    ca_pem = root.certificate_pem() + middle.certificate_pem()
    for item in issued:
        chain = item.chain_pem()
        key = item.key_pem()
        yield bytes([mode["certificates"]]) + chain
        yield bytes([mode["certificates"]]) + item.certificate.public_bytes(
            serialization.Encoding.DER
        )
        yield bytes([mode["key"]]) + key
        yield bytes([mode["encrypted_key"]]) + item.key_pem(PASSWORD)
        yield bytes([mode["key_pair"]]) + chain + key
        if item.key is not None:
            yield bytes([mode["csr"]]) + _csr_pem(item.key)
    yield bytes([mode["trust_bundle"]]) + ca_pem
    yield bytes([mode["certificates"]]) + ca_pem
    if issued[0].key is not None:
        traditional = issued[0].key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        yield bytes([mode["key"]]) + traditional
        yield bytes([mode["key"]]) + issued[0].key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    yield bytes([mode["key"]]) + private_key_pem(root.key)


def _bearer_seeds() -> Iterator[bytes]:
    now = bearer.NOW
    claims = {
        "iss": bearer.ISSUER,
        "aud": [bearer.AUDIENCE, "other"],
        "sub": "alice",
        "iat": now,
        "nbf": now - 10,
        "exp": now + 600,
        "scope": "call admin",
        "tenant": "acme",
        "scp": ["x"],
    }
    payload = json.dumps(claims).encode()
    for alg, (kid, _key) in bearer.KEYS.items():
        header = json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode()
        yield b"\x01" + header + b"\x00" + payload
        yield b"\x00Bearer " + bearer.sign(header, payload).encode()
    yield b"\x01" + payload
    yield b"\x01" + b'{"alg":"ES256"}\x00' + json.dumps({**claims, "exp": 1.5}).encode()
    yield b"\x00Bearer a.b.c\x00Basic dXNlcjpwYXNz"
    yield b"\x02" + bearer.JWKS.encode()


SEEDS = {"policy": _policy_seeds, "pem": _pem_seeds, "bearer": _bearer_seeds}


def write_seeds(target: str, directory: Path) -> int:
    """Write ``target``'s seeds into ``directory`` (named by content hash); how many."""
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for seed in SEEDS[target]():
        (directory / f"seed-{hashlib.sha256(seed).hexdigest()[:16]}").write_bytes(seed)
        count += 1
    return count
