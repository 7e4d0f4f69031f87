"""Large CA bundles: how long parsing, the trust-bundle check and grpc core's loading take.

Run from the project root::

    .venv/bin/python benchmarks/bundle_parse.py            # full run, about a minute
    .venv/bin/python benchmarks/bundle_parse.py --quick    # CI smoke run, seconds

For bundles of ``--sizes`` distinct self-signed CA certificates (default 10, 1,000 and 10,000) it
times, as the median of ``--repeats`` runs:

* ``parse_seconds``: :func:`grpcsec.fileio.read_file` plus :func:`grpcsec.pki.load_certificates`
  of the whole file (every certificate parsed);
* ``trust_bundle_seconds``: :meth:`grpcsec.material.TrustBundle.from_pem`, which accepts up to
  ``MAX_TRUST_CERTIFICATES`` and refuses larger bundles before parsing (``trust_bundle`` says
  which happened);
* ``grpc_core_seconds``: grpcio's ``add_secure_port`` with the bundle as client CAs (one run),
  which is what the cap protects: it grows with the square of the count.

``per_certificate_us_ratio`` divides each size's parse time per certificate by the smallest
size's, from the same run (about 1 when parsing is linear). ``meets_target`` says whether the
largest bundle was parsed and refused in under one second each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from _harness import print_json, rounded
from grpcsec.errors import MaterialError
from grpcsec.fileio import read_file
from grpcsec.material import MAX_TRUST_CERTIFICATES, TrustBundle
from grpcsec.pki import CertificateAuthority, Profile, SubjectAltNames, load_certificates, utcnow


def make_bundle(count: int) -> bytes:
    """``count`` distinct root CAs (own names and keys), as one PEM bundle."""
    now = utcnow()
    return b"".join(
        CertificateAuthority.create(f"bench root {i}", now=now).certificate_pem()
        for i in range(count)
    )


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def trust_bundle(pem: bytes) -> str:
    try:
        TrustBundle.from_pem(pem, source="bench")
    except MaterialError:
        return "refused"
    return "accepted"


def grpc_core_seconds(pem: bytes, server_pem: bytes, server_key: bytes) -> float:
    """One ``add_secure_port`` with ``pem`` as the client-CA bundle (grpc core parses it)."""
    credentials = grpc.ssl_server_credentials(
        [(server_key, server_pem)], root_certificates=pem, require_client_auth=True
    )
    server = grpc.server(ThreadPoolExecutor(max_workers=1))
    start = time.perf_counter()
    server.add_secure_port("127.0.0.1:0", credentials)
    seconds = time.perf_counter() - start
    server.stop(None)
    return seconds


def run(sizes: list[int], repeats: int, core_limit: int) -> dict[str, object]:
    ca = CertificateAuthority.create("bench server CA")
    leaf = ca.issue(Profile.SERVER, SubjectAltNames.build(ips=["127.0.0.1"]))
    results: dict[str, dict[str, object]] = {}
    per_cert: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as directory:
        for size in sizes:
            pem = make_bundle(size)
            path = Path(directory) / f"bundle-{size}.pem"
            path.write_bytes(pem)
            parsed = load_certificates(read_file(path), source=path)
            if len(parsed) != size:
                raise SystemExit(f"parsed {len(parsed)} certificates of {size}")
            parse = median_seconds(lambda p=path: load_certificates(read_file(p)), repeats)
            per_cert[size] = parse / size
            row: dict[str, object] = {
                "parse_seconds": rounded(parse, 4),
                "parse_us_per_certificate": rounded(parse / size * 1e6, 2),
                "trust_bundle": trust_bundle(pem),
                "trust_bundle_seconds": rounded(
                    median_seconds(lambda p=pem: trust_bundle(p), repeats), 4
                ),
            }
            if size <= core_limit:
                row["grpc_core_seconds"] = rounded(
                    grpc_core_seconds(pem, leaf.chain_pem(), leaf.key_pem()), 4
                )
            results[str(size)] = row
    smallest, largest = min(sizes), max(sizes)
    biggest = results[str(largest)]
    return {
        "sizes": results,
        "per_certificate_us_ratio": {
            str(size): rounded(per_cert[size] / per_cert[smallest], 3) for size in sizes
        },
        "max_trust_certificates": MAX_TRUST_CERTIFICATES,
        "meets_target": float(str(biggest["parse_seconds"])) < 1.0
        and float(str(biggest["trust_bundle_seconds"])) < 1.0,
        "params": {"sizes": sizes, "repeats": repeats, "grpc_core_up_to": core_limit},
        "python": sys.version.split()[0],
        "grpcio": grpc.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--grpc-core-up-to",
        type=int,
        default=10_000,
        help="time grpc core's loading for sizes up to this (10,000 takes about 9 s)",
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats, args.grpc_core_up_to = [10, 300, 1500], 1, 1500
    print_json(run(sorted(args.sizes), args.repeats, args.grpc_core_up_to))


if __name__ == "__main__":
    main()
