"""The configured CRLs as one value: where they are read from, how they are indexed, and what a
new set must satisfy to replace the one in service. No grpc import.

``[tls] crl`` (``serve --crl``) names files and directories; every regular file in a directory
(names starting with ``.`` skipped: editors' and Kubernetes' ``..data`` entries) is one CRL.
:class:`CRLSource` is the :class:`grpcsec.watch.Source` over them: its version token covers the
directory listings and every file's stat, so an added, removed or rewritten CRL is seen at the
next poll.

:func:`build_crl_set` parses every file (a garbage file fails the whole set, naming the file)
and checks each CRL whose issuer name is one of the trusted client CAs (the anchors): that CA
must have signed it (:meth:`~grpcsec.pki.crl.RevocationList.is_signed_by`: name, key
identifier and signature), else the set is refused: a wrongly-signed CRL, or one of another
CA with the same name, never enters service. A CRL for an intermediate CA cannot be checked
here (the intermediate arrives with the client's chain); its signature is checked against that
certificate at call time. Against the set in service, a new set is refused when it drops the CRL
of an issuer the old set covered (a deleted or missing file would otherwise silently stop
revocation checks for that CA) or when it goes back to a lower CRL number.

Not checked here: the validity windows (time moves while a set is in service; an expired CRL is
judged at call time, see :mod:`grpcsec.pki.crl_verdict`).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable
from pathlib import Path

from cryptography import x509

from grpcsec.errors import ConfigurationError, MaterialError
from grpcsec.fileio import FileContents, FileKind, FileSet, file_version
from grpcsec.pki.crl import RevocationList, load_crl
from grpcsec.pki.crl_set import CRLSet, IssuerKey, issuer_key

__all__ = ["CRLSet", "CRLSource", "IssuerKey", "build_crl_set", "issuer_key"]


class CRLSource:
    """Files and directories of CRLs, as a watch source (module docstring)."""

    __slots__ = ("paths",)

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self.paths = tuple(Path(p) for p in paths)
        if not self.paths:
            raise ConfigurationError("tls.crl: give at least one CRL file or directory")

    @property
    def description(self) -> str:
        """The configured paths, comma-separated."""
        return ", ".join(str(p) for p in self.paths)

    def files(self) -> tuple[Path, ...]:
        """Every CRL file now: files as given, directories expanded (sorted names)."""
        found: list[Path] = []
        for path in self.paths:
            if not path.is_dir():
                found.append(path)
                continue
            try:
                children = sorted(path.iterdir())
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise MaterialError(f"cannot list the CRL directory ({reason})", path=path) from exc
            regular = [c for c in children if not c.name.startswith(".") and c.is_file()]
            if not regular:
                raise MaterialError("the CRL directory holds no CRL files", path=path)
            found.extend(regular)
        return tuple(found)

    def version(self) -> Hashable:
        """Stat of every file and the listing of every directory (reads nothing)."""
        try:
            return tuple((str(f), file_version(f)) for f in self.files())
        except MaterialError as exc:
            return ("error", str(exc))

    def read(self) -> FileContents:
        """Every CRL file's bytes (bounded); :class:`MaterialError` naming the file."""
        return FileSet((f, FileKind.CRL) for f in self.files()).read()


def _check_anchored(crls: CRLSet, crl: RevocationList, anchors: Iterable[x509.Certificate]) -> None:
    namesakes = [a for a in anchors if a.subject == crl.issuer]
    if namesakes and not any(crls.signed_by(crl, a) for a in namesakes):
        raise MaterialError(
            f"the CRL names trusted client CA {crl.issuer.rfc4514_string()!r} as its issuer but "
            "is not signed by that CA (wrong key, or another CA with the same name)",
            path=crl.source,
        )


def build_crl_set(
    contents: FileContents,
    anchors: Iterable[x509.Certificate],
    current: CRLSet | None = None,
) -> CRLSet:
    """The set ``contents`` holds, checked as the module docstring says; raises
    :class:`MaterialError` (one line, naming the file) otherwise."""
    trusted = tuple(anchors)
    parsed = [
        load_crl(data, source=path)
        for path, data in zip(contents.paths, contents.parts, strict=True)
    ]
    new = CRLSet.of(parsed)
    for crl in parsed:  # every file, also one a higher-numbered CRL overrides
        _check_anchored(new, crl, trusted)
    if current is not None:
        held = {issuer_key(c): c for c in new.crls}
        for old in current.crls:
            replacement = held.get(issuer_key(old))
            if replacement is None:
                raise MaterialError(
                    f"no CRL of {old.issuer.rfc4514_string()!r} any more (it was read from "
                    f"{old.source}); remove it from the configuration to stop checking that CA",
                    path=old.source,
                )
            if (replacement.number or 0) < (old.number or 0):
                raise MaterialError(
                    f"CRL number {replacement.number} is lower than {old.number} in service",
                    path=replacement.source,
                )
    return new
