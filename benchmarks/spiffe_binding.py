"""What the SPIFFE trust-domain binding costs per call: cached, and on a chain not seen before.

Run from the project root::

    .venv/bin/python benchmarks/spiffe_binding.py           # full run
    .venv/bin/python benchmarks/spiffe_binding.py --quick   # CI smoke run, a few seconds

Material: two trust domains' root CAs (ECDSA P-256, each naming its trust domain in a
``spiffe://T`` URI SAN, as SPIRE's do), an intermediate under ``a.test``'s root, and a client
SVID ``spiffe://a.test/ns/bench`` of that intermediate (its chain, leaf and intermediate, is what
the client sends). The client CAs are both roots (a federated bundle).

**Per call, in process**, on a :class:`Peer` already built (as on a connection after its first
call; building the peer is ``benchmarks/peer_cost.py``):

* ``allow_list``: the ``allow_trust_domains = ["a.test"]`` check alone (the baseline: what the
  same server did before the binding existed);
* ``binding_cached``: :class:`SpiffeBindingCheck` first, verdict from its cache (every call
  after the first on a connection, and every connection of a chain already seen);
* ``binding_first_call``: the same with the cache cleared before each call: path validation
  with ``cryptography.x509.verification`` against ``a.test``'s anchors.

Not measured: the TLS handshake and grpcio's per-call cost (``benchmarks/rpc.py``), which dwarf a
cached check. Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from _harness import per_call_us, print_json, rounded
from grpcsec.authn.mtls import ClientCertAllowList, RequireClientCert
from grpcsec.authn.spiffe_check import ClientCABundles, SpiffeBindingCheck
from grpcsec.call import CallInfo
from grpcsec.identity import Peer
from grpcsec.pki import CertificateAuthority, Profile, SubjectAltNames, Validity, utcnow
from grpcsec.pki.keys import generate_key
from grpcsec.pki.profiles import ca_extensions
from grpcsec.pki.signing import sign_certificate, subject_name


def spiffe_root(trust_domain: str) -> CertificateAuthority:
    key = generate_key()
    name = subject_name(f"{trust_domain} bench CA", None)
    san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"spiffe://{trust_domain}")])
    certificate = sign_certificate(
        subject=name,
        issuer=name,
        public_key=key.public_key(),
        window=Validity.lasting(dt.timedelta(days=3650), now=utcnow()),
        extensions=[
            *ca_extensions(key.public_key(), path_length=None, issuer_ski=None),
            (san, False),
        ],
        signing_key=key,
    )
    return CertificateAuthority(certificate, key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few calls (smoke test)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    calls = 2_000 if args.quick else 50_000

    print("issuing...", file=sys.stderr)
    a, b = spiffe_root("a.test"), spiffe_root("b.test")
    inter = a.create_intermediate("a.test bench intermediate")
    client = inter.issue(
        Profile.CLIENT, SubjectAltNames.build(uris=["spiffe://a.test/ns/bench"]), common_name="svid"
    )
    pem = serialization.Encoding.PEM
    auth = {
        "transport_security_type": [b"ssl"],
        "x509_pem_cert": [client.certificate.public_bytes(pem)],
        "x509_pem_cert_chain": [inter.certificate.public_bytes(pem)],
    }
    call = CallInfo(
        method="/bench.S/M", peer=Peer.from_auth_context(auth, address="ipv4:1.2.3.4:5")
    )
    allow = RequireClientCert(ClientCertAllowList(trust_domains=["a.test"]))
    anchors = (a.certificate, b.certificate)
    binding = SpiffeBindingCheck(ClientCABundles(lambda: anchors), require_svid=True)

    def allow_list() -> None:
        allow.check(call)

    def cached() -> None:
        binding.check(call)
        allow.check(call)

    def first_call() -> None:
        binding.clear()
        cached()

    print("per-call checks...", file=sys.stderr)
    us = {
        "allow_list": per_call_us(allow_list, calls, repeats),
        "binding_cached": per_call_us(cached, calls, repeats),
        "binding_first_call": per_call_us(first_call, max(calls // 50, 40), repeats),
    }
    print_json(
        {
            "params": {"repeats": repeats, "calls": calls, "quick": args.quick},
            "chain": "leaf + intermediate, 2 trust domains' roots as client CAs",
            "us_per_call": {k: rounded(v, 2) for k, v in us.items()},
            "ratio_cached_vs_allow_list": rounded(us["binding_cached"] / us["allow_list"], 2),
            "ratio_first_call_vs_allow_list": rounded(
                us["binding_first_call"] / us["allow_list"], 2
            ),
            "measures": "in-process check cost on a built Peer; no TLS, no grpcio call path",
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
        }
    )


if __name__ == "__main__":
    main()
