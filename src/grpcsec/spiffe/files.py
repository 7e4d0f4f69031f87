"""Write what the Workload API handed out to files, so the file tools can look at it. No grpc.

``grpcsec spiffe fetch`` writes ``svid.pem`` (the chain, leaf first, 0644), ``svid.key`` (the
PKCS#8 key, 0600) and ``bundle.pem`` (the CAs of the own trust domain and of every federated
one: what a peer is verified against, 0644), all or none, atomically
(:func:`grpcsec.pki.write_files`). ``check``, ``doctor``, ``inspect`` and ``verify`` then work on
them, and non-Python clients (grpc-go, grpc-js) can be pointed at them. Nothing is checked here:
the files are what the agent sent; ``grpcsec verify`` says whether they hold together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grpcsec.errors import MaterialError
from grpcsec.pki.files import CERT_MODE, KEY_MODE, PendingFile, write_files
from grpcsec.rotation.sources import RawMaterial

__all__ = ["SvidFiles", "write_svid_files"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SvidFiles:
    """Where the SVID, its key and the bundles were written."""

    cert: Path
    key: Path
    bundle: Path

    def to_json(self) -> dict[str, str]:
        """The three paths."""
        return {"cert": str(self.cert), "key": str(self.key), "bundle": str(self.bundle)}


def write_svid_files(material: RawMaterial, directory: Path, *, force: bool = True) -> SvidFiles:
    """Write ``material`` into ``directory`` (created 0700 when new); existing files are
    replaced unless ``force`` is false."""
    if material.chain is None or material.key is None or material.trust is None:
        raise MaterialError("the Workload API sent no SVID, key or bundle to write")
    files = SvidFiles(
        cert=directory / "svid.pem", key=directory / "svid.key", bundle=directory / "bundle.pem"
    )
    write_files(
        [
            PendingFile(files.cert, material.chain, CERT_MODE),
            PendingFile(files.key, material.key, KEY_MODE),
            PendingFile(files.bundle, material.trust, CERT_MODE),
        ],
        force=force,
    )
    return files
