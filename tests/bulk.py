"""Large CA bundles for the size and speed tests: ``count`` distinct self-signed CAs, built
once per test process (10,000 take about 2 s)."""

from __future__ import annotations

import functools

from grpcsec.pki import CertificateAuthority, utcnow


@functools.cache
def ca_bundle_pem(count: int) -> bytes:
    """PEM of ``count`` distinct root CAs (distinct names and keys), in creation order."""
    now = utcnow()
    return b"".join(
        CertificateAuthority.create(f"bulk root {index}", now=now).certificate_pem()
        for index in range(count)
    )
