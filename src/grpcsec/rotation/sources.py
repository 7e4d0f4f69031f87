"""Certificate sources: where rotating material comes from (files, memory), behind one protocol.

A source only *reads*: it hands back the raw bytes of a certificate chain, its key and the
optional bundles, plus a cheap ``version()`` token that changes when the material may have
changed. Parsing and checking happen in :mod:`grpcsec.rotation.checks`, and deciding when to
read happens in :mod:`grpcsec.rotation.watcher`, so a new source (an ACME client, the SPIFFE
Workload API) is one small class with two methods.

:class:`FileSource` copes with the three ways files get replaced on disk:

* an in-place rewrite (``open("w")``): a read can see an empty or half-written file, which fails
  to parse and is retried by the watcher;
* an atomic rename of a temporary file (``pki.write_files``, most agents): each file is always
  whole, but the certificate and the key are renamed one after the other;
* a Kubernetes-style ``..data`` symlink swap (Secret and ConfigMap volumes, cert-manager's
  csi-driver, Vault agent and spiffe-helper with a symlinked directory): every path is
  resolved to its real file first and the real files are read, so one read sees one directory.

None of these makes the *pair* consistent by itself: a read between two renames sees a new
certificate with the old key. The watcher checks that the key matches and retries; a source
never decides that. Files are read as a :class:`grpcsec.fileio.FileSet` (through
:func:`grpcsec.fileio.read_file`): a path that turns into a FIFO, a device or a symlink loop
is refused without blocking (the watcher keeps the last good material and retries at the next
poll), and each file is capped by its kind. Not handled here: encrypted keys (use a decrypted
key file; passwords do not belong in a watched layout).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from grpcsec.errors import ConfigurationError
from grpcsec.fileio import FileKind, FileSet
from grpcsec.material import KeyPair, StrPath, TrustBundle
from grpcsec.pki import IssuedCertificate, certificates_pem
from grpcsec.pki.authority import CertificateAuthority

__all__ = ["CertificateSource", "FileSource", "MemorySource", "RawMaterial"]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, repr=False)
class RawMaterial:
    """Unchecked bytes as a source read them, with the names to put in error messages.

        ``chain`` and ``key`` are this side's certificate chain (leaf first) and private key (both
        ``None`` for a TLS client without a certificate). ``trust`` is the CA bundle this side
        verifies its *peer* with: the client-CA bundle on a server, the server CA bundle on a
        client. ``issuers`` is an optional bundle that this side's own chain must verify against;
    ``next_ca`` an optional bundle of CAs a rotated chain may move to (see
    :mod:`grpcsec.rotation.lineage`).
        ``digest`` is a SHA-256 over all parts, used to tell new material from material already
        seen; the key never appears in ``repr``.
    """

    chain: bytes | None
    key: bytes | None = field(repr=False)
    trust: bytes | None = None
    issuers: bytes | None = None
    next_ca: bytes | None = None
    chain_name: str = "<certificate>"
    key_name: str = "<key>"
    trust_name: str = "<trust bundle>"
    issuers_name: str = "<issuers>"
    next_ca_name: str = "<next CA>"
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        hasher = hashlib.sha256()
        for part in (self.chain, self.key, self.trust, self.issuers, self.next_ca):
            if part is None:
                hasher.update(b"\x00")
            else:
                hasher.update(b"\x01" + len(part).to_bytes(8, "big") + part)
        object.__setattr__(self, "digest", hasher.hexdigest())

    def __repr__(self) -> str:
        present = [
            name
            for name, part in (
                ("chain", self.chain),
                ("key", self.key),
                ("trust", self.trust),
                ("issuers", self.issuers),
                ("next_ca", self.next_ca),
            )
            if part is not None
        ]
        return f"RawMaterial(parts={present}, digest={self.digest[:12]}, chain={self.chain_name!r})"


@runtime_checkable
class CertificateSource(Protocol):
    """Anything the watcher can poll for certificate material.

    ``version()`` must be cheap (it runs every poll interval) and return a token that changes
    whenever the material may have changed; equal tokens let the watcher skip the read. It may
    return a token that changes without a content change (the watcher compares digests too).
    ``read()`` returns the current bytes or raises a :class:`~grpcsec.errors.GrpcsecError`
    (usually :class:`~grpcsec.errors.MaterialError`) naming what could not be read.
    ``description`` names the source in log lines and status output.
    """

    @property
    def description(self) -> str:
        """A short human name: file paths, ``memory``..."""
        ...

    def version(self) -> Hashable:
        """A cheap change token."""
        ...

    def read(self) -> RawMaterial:
        """The material as it is now."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FileSource:
    """Material in files: a chain (leaf first), its key, and optional trust and issuer bundles.

    ``trust`` is the client-CA bundle for a server (it turns on mTLS) or the server CA bundle
    for a client. ``issuers`` is a bundle the chain must verify against (often the same file as
    ``trust`` when one CA issues both sides, as in cert-manager's ``ca.crt``). ``next_ca`` is a
    bundle of CAs the chain may rotate to besides those it was served from (a planned CA change;
    :mod:`grpcsec.rotation.lineage`); it is watched too, so it can be added without a restart.
    Paths may be symlinks; they are resolved at every read. ``cert`` and ``key``
    must both be given or both be omitted (a client with no certificate watches
    only its ``trust`` bundle).
    """

    cert: Path | None
    key: Path | None
    trust: Path | None = None
    issuers: Path | None = None
    next_ca: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ConfigurationError(
                "a certificate source needs both the certificate and the key file, or neither"
            )
        if self.cert is None and self.trust is None:
            raise ConfigurationError("a certificate source needs a certificate and key, or a CA")

    @classmethod
    def of(
        cls,
        cert: StrPath | None,
        key: StrPath | None,
        *,
        trust: StrPath | None = None,
        issuers: StrPath | None = None,
        next_ca: StrPath | None = None,
    ) -> FileSource:
        """Build from strings or paths."""

        def path(value: StrPath | None) -> Path | None:
            return None if value is None else Path(value)

        return cls(
            cert=path(cert),
            key=path(key),
            trust=path(trust),
            issuers=path(issuers),
            next_ca=path(next_ca),
        )

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every watched file, in the order they are read."""
        parts = (self.cert, self.key, self.trust, self.issuers, self.next_ca)
        return tuple(p for p in parts if p is not None)

    @property
    def description(self) -> str:
        """The watched paths, comma-separated."""
        return ", ".join(str(p) for p in self.paths)

    def _files(self) -> FileSet:
        kinds = (
            (self.cert, FileKind.CERTIFICATES),
            (self.key, FileKind.KEY),
            (self.trust, FileKind.CERTIFICATES),
            (self.issuers, FileKind.CERTIFICATES),
            (self.next_ca, FileKind.CERTIFICATES),
        )
        return FileSet((path, kind) for path, kind in kinds if path is not None)

    def version(self) -> Hashable:
        """Resolved path and stat of every file (no content is read)."""
        return self._files().version()

    def read(self) -> RawMaterial:
        """Resolve every path first, then read the real files (one ``..data`` generation):
        :meth:`grpcsec.fileio.FileSet.read`."""
        parts = iter(self._files().read().parts)

        def part(path: Path | None) -> bytes | None:
            return None if path is None else next(parts)

        return RawMaterial(
            chain=part(self.cert),
            key=part(self.key),
            trust=part(self.trust),
            issuers=part(self.issuers),
            next_ca=part(self.next_ca),
            chain_name=str(self.cert),
            key_name=str(self.key),
            trust_name=str(self.trust),
            issuers_name=str(self.issuers),
            next_ca_name=str(self.next_ca),
        )


class MemorySource:
    """Material held in memory and replaced with :meth:`set`: tests, the demo, and adapters
    for sources that push (an ACME client, the SPIFFE Workload API stream).

    Every :meth:`set` bumps :meth:`version`; the watcher then reads and checks the new material
    like any other. Thread-safe: ``set`` may be called from any thread.
    """

    def __init__(
        self,
        chain: bytes | None = None,
        key: bytes | None = None,
        *,
        trust: bytes | None = None,
        issuers: bytes | None = None,
        next_ca: bytes | None = None,
        description: str = "memory",
    ) -> None:
        self._lock = threading.Lock()
        self._description = description
        self._generation = 0
        self._raw = self._make(chain, key, trust, issuers, next_ca)

    def _make(
        self,
        chain: bytes | None,
        key: bytes | None,
        trust: bytes | None,
        issuers: bytes | None,
        next_ca: bytes | None = None,
    ) -> RawMaterial:
        return RawMaterial(
            chain=chain,
            key=key,
            trust=trust,
            issuers=issuers,
            next_ca=next_ca,
            chain_name=f"{self._description} certificate",
            key_name=f"{self._description} key",
            trust_name=f"{self._description} trust bundle",
            issuers_name=f"{self._description} issuers",
            next_ca_name=f"{self._description} next CA",
        )

    @classmethod
    def of(
        cls,
        identity: KeyPair | IssuedCertificate | None,
        *,
        trust: TrustBundle | CertificateAuthority | bytes | None = None,
        issuers: TrustBundle | CertificateAuthority | bytes | None = None,
        next_ca: TrustBundle | CertificateAuthority | bytes | None = None,
        description: str = "memory",
    ) -> MemorySource:
        """Build from grpcsec values (a pair or a just-issued certificate, CAs or bundles)."""
        chain, key = _pair_bytes(identity)
        return cls(
            chain,
            key,
            trust=_bundle_bytes(trust),
            issuers=_bundle_bytes(issuers),
            next_ca=_bundle_bytes(next_ca),
            description=description,
        )

    @property
    def description(self) -> str:
        """The name given at construction."""
        return self._description

    def version(self) -> Hashable:
        """A counter bumped by every :meth:`set`."""
        return self._generation

    def read(self) -> RawMaterial:
        """The material last set."""
        with self._lock:
            return self._raw

    def set(
        self,
        identity: KeyPair | IssuedCertificate | None = None,
        *,
        trust: TrustBundle | CertificateAuthority | bytes | None = None,
        issuers: TrustBundle | CertificateAuthority | bytes | None = None,
        next_ca: TrustBundle | CertificateAuthority | bytes | None = None,
        keep_identity: bool = False,
        keep_trust: bool = False,
        keep_issuers: bool = False,
    ) -> None:
        """Replace the material. ``keep_*=True`` keeps that part as it is (for example, roll
        only the client-CA bundle with ``set(keep_identity=True, trust=...)``); ``keep_issuers``
        keeps the next CA too."""
        with self._lock:
            old = self._raw
            chain, key = (old.chain, old.key) if keep_identity else _pair_bytes(identity)
            self._raw = self._make(
                chain,
                key,
                old.trust if keep_trust else _bundle_bytes(trust),
                old.issuers if keep_issuers else _bundle_bytes(issuers),
                old.next_ca if keep_issuers else _bundle_bytes(next_ca),
            )
            self._generation += 1

    def set_raw(
        self,
        chain: bytes | None,
        key: bytes | None,
        *,
        trust: bytes | None = None,
        issuers: bytes | None = None,
        next_ca: bytes | None = None,
    ) -> None:
        """Replace the material with raw bytes, unchecked (tests feed bad material this way)."""
        with self._lock:
            self._raw = self._make(chain, key, trust, issuers, next_ca)
            self._generation += 1

    def __repr__(self) -> str:
        return f"MemorySource({self._description!r}, generation={self._generation})"


def _pair_bytes(identity: KeyPair | IssuedCertificate | None) -> tuple[bytes | None, bytes | None]:
    if identity is None:
        return None, None
    if isinstance(identity, KeyPair):
        return identity.chain_pem, identity.key_pem
    return identity.chain_pem(), identity.key_pem()


def _bundle_bytes(value: TrustBundle | CertificateAuthority | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, TrustBundle):
        return value.pem
    return certificates_pem([value.root])
