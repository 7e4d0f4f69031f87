"""What CRL enforcement costs: loading a large CRL, and the per-call check, first and cached.

Run from the project root::

    .venv/bin/python benchmarks/crl.py            # full run: 100,000 entries (building the CRL
                                                  # with cryptography's builder takes ~20 s)
    .venv/bin/python benchmarks/crl.py --quick    # CI smoke run, 2,000 entries, a few seconds

Material: an ECDSA P-256 root CA, an intermediate, and a client leaf of the intermediate (its
chain, leaf and intermediate, is what a client sends). The root's CRL lists ``--entries``
serials (not the client's); the intermediate's CRL lists one.

**Load.** :class:`grpcsec.revocation.CRLStore` over the two CRL files, as ``serve --crl`` does
at start and at each reload (read, parse every entry, index, check the root CRL's signature
against the client CA), median of repeats; baseline: the same with an empty root CRL, same run.
Also :meth:`RevocationList.lookup` with the big and the small CRL (O(1): the ratio stays near 1).

**Per call, in process.** The checks a guard runs for one call, on a :class:`Peer` already built
(as on a connection after its first call; building the peer is ``benchmarks/peer_cost.py``):

* ``no_crl``: the client-certificate check of ``allow_any_client`` alone (the baseline);
* ``crl_cached``: :class:`RevocationCheck` first, verdict from its cache (every call after the
  first on a connection, and every connection of a client already seen): one lookup;
* ``crl_first_call``: the same with the verdict cache cleared before each call (a client not
  seen since the CRLs last changed): find each issuer and verify it issued the certificate,
  verify each CRL signature, check windows, look both serials up.

Not measured here: the TLS handshake and grpcio's own per-call cost (``benchmarks/rpc.py``),
which dwarf a cached check. Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from cryptography.hazmat.primitives import serialization

from _harness import per_call_us, print_json, rounded
from grpcsec.authn.options import AuthnOptions
from grpcsec.call import CallInfo
from grpcsec.identity import Peer
from grpcsec.pki import CertificateAuthority, Profile, SubjectAltNames, utcnow
from grpcsec.pki.crl import Revocation, RevocationReason, build_crl, crl_pem, load_crl_file
from grpcsec.revocation import CRLStore, RevocationCheck

LOAD_TARGET_SECONDS = 1.0


def write_crl(path: Path, ca: CertificateAuthority, serials: range, now: dt.datetime) -> Path:
    entries = [
        Revocation(serial=s, revoked_at=now, reason=RevocationReason.SUPERSEDED) for s in serials
    ]
    crl = build_crl(
        ca.certificate,
        ca.key,
        entries,
        number=1,
        this_update=now - dt.timedelta(hours=1),
        next_update=now + dt.timedelta(days=7),
    )
    path.write_bytes(crl_pem(crl))
    return path


def median_seconds(operation: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        operation()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--entries", type=int, default=None, help="entries in the big CRL")
    args = parser.parse_args()
    entries = args.entries or (2_000 if args.quick else 100_000)
    repeats = 3 if args.quick else 5
    calls = 2_000 if args.quick else 20_000
    now = utcnow()

    root = CertificateAuthority.create("bench CRL root")
    inter = root.create_intermediate("bench CRL intermediate")
    client = inter.issue(
        Profile.CLIENT, SubjectAltNames.build(dns=["client.bench"]), common_name="bench-client"
    )
    with tempfile.TemporaryDirectory(prefix="grpcsec-crl-bench-") as tmp:
        folder = Path(tmp)
        print(f"building a {entries}-entry CRL...", file=sys.stderr)
        started = time.perf_counter()
        big = write_crl(folder / "root-big.crl", root, range(1_000, 1_000 + entries), now)
        build_seconds = time.perf_counter() - started
        empty = write_crl(folder / "root-empty.crl", root, range(0), now)
        inter_crl = write_crl(folder / "inter.crl", inter, range(7, 8), now)
        anchors = (root.certificate,)

        def store(root_crl: Path) -> CRLStore:
            return CRLStore([root_crl, inter_crl], anchors=lambda: anchors)

        print("loading...", file=sys.stderr)
        load_big = median_seconds(lambda: store(big), repeats)
        load_empty = median_seconds(lambda: store(empty), repeats)
        big_list, small_list = load_crl_file(big), load_crl_file(inter_crl)
        lookup_big = per_call_us(
            lambda: big_list.lookup(client.certificate.serial_number), calls, repeats
        )
        lookup_small = per_call_us(
            lambda: small_list.lookup(client.certificate.serial_number), calls, repeats
        )

        print("per-call checks...", file=sys.stderr)
        pem = serialization.Encoding.PEM
        auth = {
            "transport_security_type": [b"ssl"],
            "x509_pem_cert": [client.certificate.public_bytes(pem)],
            "x509_pem_cert_chain": [inter.certificate.public_bytes(pem)],
        }
        peer = Peer.from_auth_context(auth, address="ipv4:127.0.0.1:1")
        call = CallInfo(method="/bench.S/M", peer=peer)
        cert_checks = AuthnOptions(allow_any_client=True).checks(mutual=True)
        revocation = RevocationCheck(store(big))

        def no_crl() -> None:
            for check in cert_checks:
                check.check(call)

        def cached() -> None:
            revocation.check(call)
            no_crl()

        def first_call() -> None:
            revocation.clear()
            cached()

        us = {
            "no_crl": per_call_us(no_crl, calls, repeats),
            "crl_cached": per_call_us(cached, calls, repeats),
            "crl_first_call": per_call_us(first_call, max(calls // 20, 50), repeats),
        }
    print_json(
        {
            "params": {
                "entries": entries,
                "repeats": repeats,
                "calls": calls,
                "quick": args.quick,
                "chain": "leaf + intermediate (two CRLs checked)",
            },
            "build_seconds": rounded(build_seconds),
            "load_seconds": {"big": rounded(load_big, 4), "empty": rounded(load_empty, 4)},
            "load_ratio_big_vs_empty": rounded(load_big / load_empty, 2),
            "meets_load_target": load_big < LOAD_TARGET_SECONDS,
            "lookup_us": {"big": rounded(lookup_big, 4), "small": rounded(lookup_small, 4)},
            "lookup_ratio_big_vs_small": rounded(lookup_big / lookup_small, 2),
            "us_per_call": {k: rounded(v, 2) for k, v in us.items()},
            "ratio_cached_vs_no_crl": rounded(us["crl_cached"] / us["no_crl"], 2),
            "ratio_first_call_vs_no_crl": rounded(us["crl_first_call"] / us["no_crl"], 2),
            "measures": "in-process check cost on a built Peer; no TLS, no grpcio call path",
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
        }
    )


if __name__ == "__main__":
    main()
