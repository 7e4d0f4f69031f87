"""Where certificates come from: files, bundles, directories and endpoints. No grpc.

A target is parsed once by :func:`parse_source`: a path that exists is a file or a directory;
otherwise text of the form ``HOST:PORT`` is an endpoint; anything else is a path (which then
reports "no such file"). :func:`read_source` turns one source into the certificate sets it
holds and the errors met on the way; it never raises for a bad target, so one unreadable file
or unreachable endpoint never hides the others.

Files. PEM (any number of certificates, in file order) or one DER certificate. PEM blocks
that are not certificates (a private key in a combined ``cert+key`` file, a CSR) are skipped,
so ``check server.pem`` works on such files; a file with *no* certificate is an error.
Certificate revocation lists are recognised by their content, whatever the file is called:
``X509 CRL`` PEM blocks, or DER that parses as a CRL; they become :class:`CrlFile` entries
(``*.crl`` files are read with the CRL size cap, others with the certificate one).

Directories are searched recursively, in name order, for files named ``*.pem``, ``*.crt``,
``*.cer``, ``*.cert``, ``*.der`` or ``*.crl``. Other files (keys, notes) are ignored, and so
are PEM files that hold only keys or CSRs. Hidden entries (names starting with ``.``) are
skipped: that is where Kubernetes keeps the ``..data``/``..2024_...`` copies of a mounted
secret, whose visible names are symlinks to them. Symlinked files are followed and each real
file is read once; symlinked directories are not followed (no loops). A directory without any
certificate or CRL file is an error (a secret that is not mounted looks exactly like that).
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from grpcsec.errors import ConfigurationError, GrpcsecError, MaterialError
from grpcsec.fileio import FileKind
from grpcsec.monitor.probe import EndpointError, Prober, ProbeResult
from grpcsec.pki import BundleReport, inspect_bundle, load_certificates, read_file
from grpcsec.pki.crl import RevocationList, load_crl
from grpcsec.target import Target

__all__ = [
    "CERTIFICATE_SUFFIXES",
    "CertificateSet",
    "CrlFile",
    "EndpointSource",
    "ErrorKind",
    "PathSource",
    "Reading",
    "Source",
    "SourceError",
    "parse_source",
    "read_source",
    "read_sources",
]

CERTIFICATE_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".cert", ".der", ".crl"})
_CRL_SUFFIX = ".crl"
_CRL_BLOCK = b"X509 CRL"

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


@dataclass(frozen=True, slots=True)
class PathSource:
    """A certificate file, a bundle or a directory (decided when it is read)."""

    path: Path

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True, slots=True)
class EndpointSource:
    """A TLS endpoint whose served chain is read with a probe."""

    address: Target

    def __str__(self) -> str:
        return str(self.address)


Source = PathSource | EndpointSource


def parse_source(text: str | os.PathLike[str]) -> Source:
    """Classify one target: an existing path, else ``HOST:PORT``, else a (missing) path."""
    if not isinstance(text, str):
        return PathSource(Path(text))
    if not text.strip():
        raise ConfigurationError("an empty target: give a file, a directory or HOST:PORT")
    path = Path(text)
    if path.exists() or path.is_symlink():
        return PathSource(path)
    try:
        return EndpointSource(Target.parse(text))
    except ConfigurationError:
        return PathSource(path)


class ErrorKind(enum.Enum):
    """Why a source yielded nothing. Values are stable (``--json``, metrics)."""

    READ = "read"
    """A file or directory that cannot be read, or holds no parsable certificate."""
    ENDPOINT = "endpoint"
    """An endpoint that cannot be reached, or whose TLS handshake failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceError:
    """One problem reading a target. ``origin`` is the file (inside a directory) or endpoint;
    ``reason`` is a short code for endpoints (see :mod:`grpcsec.monitor.probe`)."""

    target: str
    origin: str
    kind: ErrorKind
    message: str
    reason: str | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "target": self.target,
            "source": self.origin,
            "kind": self.kind.value,
            "reason": self.reason,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateSet:
    """The certificates of one file, or the chain one endpoint served, in their order.

    ``served`` is true for an endpoint's chain; ``chain_complete`` is false when only the leaf
    of a served chain could be read (see :mod:`grpcsec.monitor.probe`).
    """

    target: str
    origin: str
    certificates: tuple[x509.Certificate, ...]
    report: BundleReport
    served: bool = False
    chain_complete: bool = True
    note: str | None = None

    @property
    def is_trust_bundle(self) -> bool:
        """Whether every certificate is a self-signed CA: a trust bundle (roots only)."""
        return not self.served and all(
            info.is_ca and info.self_signed for info in self.report.certificates
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CrlFile:
    """One certificate revocation list found in a file (``origin``) of ``target``."""

    target: str
    origin: str
    crl: RevocationList


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """What one target held: certificate sets and CRLs (empty when it failed) and errors."""

    target: str
    sets: tuple[CertificateSet, ...] = ()
    errors: tuple[SourceError, ...] = ()
    crls: tuple[CrlFile, ...] = ()


class _NoCertificateError(MaterialError):
    """A PEM file that holds only other blocks (keys, CSRs)."""


def _der_crl(data: bytes, path: Path) -> RevocationList | None:
    """The CRL a DER file holds, or ``None`` when it is not one (then: a certificate)."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return None
    try:
        return load_crl(data, source=path)
    except MaterialError:
        return None


def _parse_file(path: Path) -> tuple[list[x509.Certificate], list[RevocationList]]:
    named_crl = path.suffix.lower() == _CRL_SUFFIX
    data = read_file(path, kind=FileKind.CRL if named_crl else FileKind.CERTIFICATES)
    begins = _PEM_BEGIN.findall(data)
    if not begins and named_crl:  # a ``*.crl`` that is not PEM: a DER CRL, or the CRL error
        return [], [load_crl(data, source=path)]
    if not begins:
        crl = _der_crl(data, path)
        if crl is not None:
            return [], [crl]
    if not begins or all(kind == b"CERTIFICATE" for kind in begins):
        return load_certificates(data, source=path), []
    blocks = list(_PEM_BLOCK.finditer(data))
    if len(blocks) != len(begins):
        raise MaterialError("truncated PEM: a BEGIN line has no matching END line", path=path)
    kept = [m.group(0) for m in blocks if m.group(1) == b"CERTIFICATE"]
    crls = [load_crl(m.group(0), source=path) for m in blocks if m.group(1) == _CRL_BLOCK]
    if not kept and not crls:
        kinds = sorted({m.group(1).decode("ascii").lower() for m in blocks})
        raise _NoCertificateError(
            f"no certificate or CRL in the file (it holds: {', '.join(kinds)})", path=path
        )
    certificates = load_certificates(b"\n".join(kept), source=path) if kept else []
    return certificates, crls


def _walk(root: Path, errors: list[str]) -> Iterator[Path]:
    def on_error(exc: OSError) -> None:
        errors.append(f"{exc.filename}: cannot list: {exc.strerror or exc}")

    for directory, subdirs, files in os.walk(root, onerror=on_error):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix.lower() not in CERTIFICATE_SUFFIXES:
                continue
            yield Path(directory) / name


def _inspect(certificates: tuple[x509.Certificate, ...], origin: str) -> BundleReport:
    try:
        return inspect_bundle(certificates)
    except ValueError as exc:  # a malformed extension is only parsed when it is read
        raise MaterialError(f"a certificate cannot be parsed: {exc}", path=origin) from exc


def _read_file(target: str, path: Path) -> Reading:
    """The certificates and CRLs of one file (raises for an unreadable one)."""
    parsed, crls = _parse_file(path)
    certificates = tuple(parsed)
    sets = (
        (
            CertificateSet(
                target=target,
                origin=str(path),
                certificates=certificates,
                report=_inspect(certificates, str(path)),
            ),
        )
        if certificates
        else ()
    )
    found = tuple(CrlFile(target=target, origin=str(path), crl=crl) for crl in crls)
    return Reading(target=target, sets=sets, crls=found)


def _read_directory(target: str, root: Path) -> Reading:
    sets: list[CertificateSet] = []
    crls: list[CrlFile] = []
    errors: list[SourceError] = []
    listing_errors: list[str] = []
    seen: set[str] = set()
    for path in _walk(root, listing_errors):
        try:
            real = os.path.realpath(path)
        except OSError:  # pragma: no cover - realpath rarely fails
            real = str(path)
        if real in seen:
            continue
        seen.add(real)
        try:
            reading = _read_file(target, path)
            sets.extend(reading.sets)
            crls.extend(reading.crls)
        except _NoCertificateError:
            continue
        except GrpcsecError as exc:
            errors.append(_read_error(target, str(path), exc))
    errors.extend(
        SourceError(target=target, origin=target, kind=ErrorKind.READ, message=message)
        for message in listing_errors
    )
    if not sets and not crls and not errors:
        suffixes = ", ".join(f"*{s}" for s in sorted(CERTIFICATE_SUFFIXES))
        errors.append(
            SourceError(
                target=target,
                origin=target,
                kind=ErrorKind.READ,
                message=f"{target}: no certificate files found (looked for {suffixes})",
            )
        )
    return Reading(target=target, sets=tuple(sets), errors=tuple(errors), crls=tuple(crls))


def _read_error(target: str, origin: str, exc: GrpcsecError) -> SourceError:
    return SourceError(target=target, origin=origin, kind=ErrorKind.READ, message=str(exc))


def _read_endpoint(target: str, address: Target, prober: Prober) -> Reading:
    try:
        result: ProbeResult = prober.probe(address)
        report = _inspect(result.chain, str(address))
    except EndpointError as exc:
        error = SourceError(
            target=target,
            origin=str(address),
            kind=ErrorKind.ENDPOINT,
            message=exc.message,
            reason=exc.reason,
        )
        return Reading(target=target, errors=(error,))
    except MaterialError as exc:
        error = SourceError(
            target=target,
            origin=str(address),
            kind=ErrorKind.ENDPOINT,
            message=exc.message,
            reason="certificate",
        )
        return Reading(target=target, errors=(error,))
    served = CertificateSet(
        target=target,
        origin=str(address),
        certificates=result.chain,
        report=report,
        served=True,
        chain_complete=result.chain_complete,
        note=result.chain_note,
    )
    return Reading(target=target, sets=(served,))


def read_source(source: Source, *, prober: Prober | None = None) -> Reading:
    """Read one source. Never raises for a bad target: problems are in :attr:`Reading.errors`.

    ``prober`` probes endpoints (a default :class:`~grpcsec.monitor.probe.Prober` when
    ``None``).
    """
    target = str(source)
    if isinstance(source, EndpointSource):
        return _read_endpoint(target, source.address, prober or Prober())
    path = source.path
    if path.is_dir():
        return _read_directory(target, path)
    try:
        return _read_file(target, path)
    except GrpcsecError as exc:
        return Reading(target=target, errors=(_read_error(target, target, exc),))


def read_sources(
    sources: Sequence[Source], *, prober: Prober | None = None, workers: int = 8
) -> list[Reading]:
    """Read every source, in order. Endpoints are probed concurrently (up to ``workers`` at a
    time) so that one slow endpoint costs one timeout, not one per endpoint."""
    prober = prober or Prober()
    endpoints = sum(isinstance(s, EndpointSource) for s in sources)
    if endpoints <= 1 or workers <= 1:
        return [read_source(s, prober=prober) for s in sources]
    with ThreadPoolExecutor(
        max_workers=min(workers, endpoints), thread_name_prefix="probe"
    ) as pool:
        futures = [pool.submit(read_source, s, prober=prober) for s in sources]
        return [f.result() for f in futures]
