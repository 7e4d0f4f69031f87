"""The throwaway PKI, tokens and policies of ``soak.py`` (not a benchmark itself).

One CA signs the server leaves (each rotation issues a new one from the same CA, published as
one atomic ``..data`` swap) and one client leaf per caller, ``spiffe://soak.example/caller/N``.
One ECDSA signing key (its JWKS in ``jwks.json``) mints one token per caller, once. Two policies
alternate; both allow every caller (by principal and by the token's ``scope`` claim), the
second also names another principal and has a deny rule, so each edit really changes the policy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from _harness import publish_atomically
from grpcsec.authn import mint_token, public_jwks
from grpcsec.demo.helloworld import SAY_HELLO_PATH
from grpcsec.pki import CertificateAuthority, Profile, SubjectAltNames

TRUST_DOMAIN = "soak.example"
ISSUER = "https://issuer.soak.example"
AUDIENCE = "soak"
SCOPE = "soak.call"


def _policy(name: str, *, extra: bool) -> bytes:
    callers = {
        "name": "soak-callers",
        "source": {
            "principals": [f"spiffe://{TRUST_DOMAIN}/caller/*"],
            "grpcsec_claims": [{"claim": "scope", "values": [SCOPE]}],
        },
        "request": {"paths": [SAY_HELLO_PATH]},
    }
    policy: dict[str, Any] = {"name": name, "allow_rules": [callers]}
    if extra:
        other = f"spiffe://{TRUST_DOMAIN}/other"
        policy["allow_rules"].append({"name": "other", "source": {"principals": [other]}})
        revoked = f"spiffe://{TRUST_DOMAIN}/revoked"
        policy["deny_rules"] = [{"name": "revoked", "source": {"principals": [revoked]}}]
    return json.dumps(policy, indent=2).encode()


POLICIES = (("soak-a", _policy("soak-a", extra=False)), ("soak-b", _policy("soak-b", extra=True)))


@dataclass
class SoakMaterial:
    """Files in ``directory``: ``ca.crt``, ``jwks.json``, ``policy.json``, ``served/`` (the
    server's ``tls.crt``/``tls.key`` through ``..data``), ``probe.crt``/``probe.key``."""

    TRUST_DOMAIN = TRUST_DOMAIN
    ISSUER = ISSUER
    AUDIENCE = AUDIENCE
    SCOPE = SCOPE

    directory: Path
    ca: CertificateAuthority
    tokens: list[str]
    caller_pems: list[tuple[bytes, bytes]]
    generation: int = 0
    policy_index: int = 0
    specs: int = field(default=0)

    @classmethod
    def create(cls, directory: Path, callers: int, token_ttl: float = 6 * 3600) -> SoakMaterial:
        ca = CertificateAuthority.create("soak CA")
        signing = ec.generate_private_key(ec.SECP256R1())
        (directory / "ca.crt").write_bytes(ca.certificate_pem())
        (directory / "jwks.json").write_text(json.dumps(public_jwks([(signing, "soak-1")])))
        (directory / "policy.json").write_bytes(POLICIES[0][1])
        probe = ca.issue(Profile.CLIENT, SubjectAltNames.build(uris=[cls.principal("probe")]))
        (directory / "probe.crt").write_bytes(probe.chain_pem())
        (directory / "probe.key").write_bytes(probe.key_pem())
        tokens, pems = [], []
        for index in range(callers):
            principal = cls.principal(f"caller/{index}")
            leaf = ca.issue(Profile.CLIENT, SubjectAltNames.build(uris=[principal]))
            pems.append((leaf.chain_pem(), leaf.key_pem()))
            tokens.append(
                mint_token(
                    signing,
                    issuer=cls.ISSUER,
                    audience=cls.AUDIENCE,
                    subject=principal,
                    scopes=[cls.SCOPE],
                    kid="soak-1",
                    ttl=dt.timedelta(seconds=token_ttl),
                )
            )
        material = cls(directory, ca, tokens, pems)
        (directory / "served").mkdir()
        material.rotate_server()
        return material

    @classmethod
    def principal(cls, path: str) -> str:
        return f"spiffe://{cls.TRUST_DOMAIN}/{path}"

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def served(self) -> Path:
        return self.directory / "served"

    @property
    def policy_path(self) -> Path:
        return self.directory / "policy.json"

    def rotate_server(self) -> int:
        """Publish a new server leaf from the same CA; return its serial."""
        names = SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"])
        leaf = self.ca.issue(Profile.SERVER, names)
        self.generation += 1
        files = {"tls.crt": leaf.chain_pem(), "tls.key": leaf.key_pem()}
        publish_atomically(self.served, files, self.generation)
        return leaf.certificate.serial_number

    def edit_policy(self) -> str:
        """Replace the policy file (write + rename) with the other policy; return its name."""
        self.policy_index = 1 - self.policy_index
        name, data = POLICIES[self.policy_index]
        temp = self.directory / "policy.json.tmp"
        temp.write_bytes(data)
        temp.replace(self.policy_path)
        return name

    def probe_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the CA and presents the probe's certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=self.ca.certificate_pem().decode())
        context.load_cert_chain(self.path("probe.crt"), self.path("probe.key"))
        context.set_alpn_protocols(["h2"])
        return context

    def client_spec(self, group: Sequence[int], port: int, args: argparse.Namespace) -> Path:
        """Write what one client process needs (its callers' keys and tokens) to a file."""
        self.specs += 1
        spec = {
            "target": f"127.0.0.1:{port}",
            "ca": self.ca.certificate_pem().decode(),
            "deadline": args.deadline,
            "window": args.window,
            "callers": [
                {
                    "principal": self.principal(f"caller/{index}"),
                    "cert": self.caller_pems[index][0].decode(),
                    "key": self.caller_pems[index][1].decode(),
                    "token": self.tokens[index],
                }
                for index in group
            ],
        }
        path = self.directory / f"client-{self.specs}.json"
        path.write_text(json.dumps(spec))
        return path
