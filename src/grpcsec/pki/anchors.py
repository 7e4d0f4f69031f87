"""Trust anchors must be CA certificates.

A trust bundle decides whom a server or client believes, so a mix-up there is a false accept,
not an error message: with a server *leaf* passed as ``--ca``, ``cryptography``'s verifier takes
the leaf as its own anchor and reports it trusted, and grpcio trusts whatever it is given.
:func:`check_anchors` is the one rule every entry point that takes anchors applies
(:class:`~grpcsec.material.TrustBundle`, :func:`~grpcsec.pki.verify_certificate`, rotation
issuer and next-CA bundles):

* basicConstraints must be present with ``cA=TRUE``: a leaf (``cA=FALSE``) and an X.509 v1 or
  extension-less certificate (which RFC 5280 says must not be treated as a CA) are refused;
* when keyUsage is present it must include keyCertSign.

Not checked here: expiry, path length, name constraints and signatures (verification's job),
and OS bundles, which are reported by path and read by grpc core itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography import x509

from grpcsec.errors import MaterialError
from grpcsec.text import inert

__all__ = ["anchor_problem", "check_anchors"]


def anchor_problem(certificate: x509.Certificate) -> str | None:
    """Why ``certificate`` cannot be a trust anchor, or ``None`` when it can."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return "has no basicConstraints extension, so it is not a CA (a v1 or leaf certificate)"
    if not constraints.ca:
        return "is not a CA (basicConstraints CA:FALSE): a server or client certificate"
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if not usage.key_cert_sign:
        return "is a CA whose keyUsage lacks keyCertSign, so it cannot sign certificates"
    return None


def check_anchors(
    certificates: Sequence[x509.Certificate], *, source: str | Path | None = None
) -> None:
    """Raise :class:`MaterialError` naming the first certificate that is not a usable CA."""
    for index, certificate in enumerate(certificates, start=1):
        problem = anchor_problem(certificate)
        if problem is not None:
            subject = inert(certificate.subject.rfc4514_string()) or "empty subject"
            raise MaterialError(
                f"trust anchor {index} ({subject}) {problem}; a CA bundle must hold the CA "
                "certificates that issued your peers' certificates",
                path=source,
            )
