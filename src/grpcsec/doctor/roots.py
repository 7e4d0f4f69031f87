"""The roots the doctor verifies the server against: the ``--ca`` bundle, or the ones a default
grpcio client would use, found the way grpc core finds them (grpcio-security.md §1.6). No grpc.

Without ``--ca`` a grpcio client passes ``root_certificates=None``, and core takes, in order:
``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``; the operating system's bundle when
``GRPC_USE_SYSTEM_ROOTS_OVER_LANGUAGE_CALLBACK`` is set; otherwise the ``roots.pem`` bundled in
the grpcio wheel (old; it is not the OS store). The doctor reports which one it used, and the
gRPC call then uses ``None`` too, so both judge the same roots. Default bundles are parsed
leniently: a certificate that does not parse is skipped, as grpc core skips it.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from grpcsec.errors import MaterialError
from grpcsec.material import SYSTEM_BUNDLE_PATHS, StrPath, TrustBundle
from grpcsec.pki import load_certificates, read_file

__all__ = ["Roots", "default_grpc_roots", "explicit_roots", "grpcio_bundled_roots_path"]

_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_TRUE = {"1", "true", "yes"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Roots:
    """Trust anchors, where they came from (``origin``: ``explicit``, ``env``, ``system``,
    ``grpcio_bundled``, ``none``) and the PEM to hand grpcio (``None``: grpcio's default)."""

    certificates: tuple[x509.Certificate, ...]
    origin: str
    source: str
    pem: bytes | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, object]:
        """``{"origin", "source", "count"}``."""
        return {"origin": self.origin, "source": self.source, "count": len(self.certificates)}

    def describe(self) -> str:
        """``ca.crt (2 certificates)``, for messages."""
        noun = "certificate" if len(self.certificates) == 1 else "certificates"
        where = {
            "explicit": self.source,
            "env": f"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH={self.source}",
            "system": f"the system bundle {self.source}",
            "grpcio_bundled": f"grpcio's bundled roots {self.source}",
        }.get(self.origin, self.source)
        return f"{where} ({len(self.certificates)} {noun})"


def explicit_roots(path: StrPath) -> Roots:
    """The ``--ca`` bundle, parsed strictly (:class:`~grpcsec.material.TrustBundle` refuses a
    leaf passed as a CA)."""
    bundle = TrustBundle.from_file(path)
    certificates = load_certificates(bundle.pem, source=bundle.source, allow_der=False)
    return Roots(
        certificates=tuple(certificates), origin="explicit", source=bundle.source, pem=bundle.pem
    )


def _lenient(path: Path) -> tuple[x509.Certificate, ...]:
    try:
        data = read_file(path)
    except MaterialError:  # missing, not a regular file, too large: no roots, as grpc core
        return ()
    found: list[x509.Certificate] = []
    with warnings.catch_warnings():
        # OS bundles hold old roots that cryptography parses with a deprecation warning
        # (negative serials); they are someone else's, and grpc core accepts them.
        warnings.simplefilter("ignore")
        for block in _PEM_BLOCK.findall(data):
            try:
                found.append(x509.load_pem_x509_certificate(block))
            except ValueError:  # noqa: PERF203 (skip what does not parse, as grpc core does)
                continue
    return tuple(found)


def grpcio_bundled_roots_path() -> Path | None:
    """Where the grpcio wheel keeps its ``roots.pem``, without importing grpc."""
    spec = importlib.util.find_spec("grpc")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "_cython" / "_credentials" / "roots.pem"


def default_grpc_roots(environ: Mapping[str, str]) -> Roots:
    """The roots a grpcio client with ``root_certificates=None`` uses in ``environ``."""
    env_file = environ.get("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "")
    if env_file:
        return Roots(certificates=_lenient(Path(env_file)), origin="env", source=env_file)
    if environ.get("GRPC_USE_SYSTEM_ROOTS_OVER_LANGUAGE_CALLBACK", "").lower() in _TRUE:
        for candidate in SYSTEM_BUNDLE_PATHS:
            if candidate.is_file():
                return Roots(
                    certificates=_lenient(candidate), origin="system", source=str(candidate)
                )
    bundled = grpcio_bundled_roots_path()
    if bundled is not None and bundled.is_file():
        return Roots(certificates=_lenient(bundled), origin="grpcio_bundled", source=str(bundled))
    return Roots(certificates=(), origin="none", source="no default roots found")
