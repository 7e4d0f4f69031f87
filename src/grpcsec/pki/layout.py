"""Where certificates and keys go on disk: the CA directory, leaf file pairs, and the starter
set that ``grpcsec init`` writes.

A CA directory holds ``ca.crt`` (the CA first, then its parents) and ``ca.key`` (mode 0400),
and the records :mod:`~grpcsec.pki.registry` keeps (``issued.jsonl``, ``revoked.json``);
a leaf is ``PREFIX.crt`` (the chain, 0644) with ``PREFIX.key`` (0600). These functions decide
the paths, the modes and what each file holds, and return :class:`~grpcsec.pki.files.PendingFile`
lists for :func:`~grpcsec.pki.files.write_files` (all or nothing); they write nothing
themselves. Not decided here: where the password of an encrypted key comes from (the caller
passes a key loader that may ask for one).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from grpcsec.errors import ConfigurationError
from grpcsec.pki.authority import CertificateAuthority
from grpcsec.pki.files import (
    CA_KEY_MODE,
    CERT_MODE,
    KEY_MODE,
    PendingFile,
    load_certificates,
    read_file,
)
from grpcsec.pki.keys import KeyType, PrivateKey, private_key_pem
from grpcsec.pki.names import SubjectAltNames
from grpcsec.pki.profiles import Profile
from grpcsec.pki.signing import IssuedCertificate
from grpcsec.pki.validity import Validity

__all__ = [
    "CA_CERT",
    "CA_KEY",
    "DEFAULT_CLIENT",
    "DEFAULT_HOSTS",
    "CertificateFiles",
    "StarterPki",
    "ca_files",
    "client_file_stems",
    "create_starter_pki",
    "distinct_ca_name",
    "leaf_files",
    "load_ca_dir",
    "prefix_paths",
]

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
DEFAULT_CLIENT = "client"
_LEAF_SUFFIXES = frozenset({".crt", ".key", ".pem"})


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """One certificate and the files it is written to (``key_file`` is ``None`` for a signed
    CSR, whose key stays with the requester); ``role`` names it for people ("CA", "server")."""

    role: str
    certificate: x509.Certificate
    certificate_file: Path
    key_file: Path | None


def distinct_ca_name() -> str:
    """A default CA name with a short random id, so that two CAs made by grpcsec on different
    days are told apart in error messages ("unknown authority ... grpcsec root CA 3f9a2c")."""
    return f"grpcsec root CA {secrets.token_hex(3)}"


def ca_files(
    ca: CertificateAuthority, directory: Path, *, password: bytes | None = None
) -> list[PendingFile]:
    """``ca.crt`` (0644; the CA, then its parents) and ``ca.key`` (0400; encrypted with
    ``password`` when given) in ``directory``."""
    return [
        PendingFile(directory / CA_CERT, ca.certificate_pem(), CERT_MODE),
        PendingFile(directory / CA_KEY, private_key_pem(ca.key, password), CA_KEY_MODE),
    ]


def leaf_files(issued: IssuedCertificate, cert_file: Path, key_file: Path) -> list[PendingFile]:
    """The chain (0644) and the new private key (0600) of an issued leaf."""
    return [
        PendingFile(cert_file, issued.chain_pem(), CERT_MODE),
        PendingFile(key_file, issued.key_pem(), KEY_MODE),
    ]


def load_ca_dir(ca_dir: Path, load_key: Callable[[Path], PrivateKey]) -> CertificateAuthority:
    """The CA in ``ca_dir``, checked to be a CA matching its key. ``ca.crt`` is read and parsed
    first, so a bad certificate fails before ``load_key`` (which may ask for a password) runs."""
    cert_path = ca_dir / CA_CERT
    certificate_pem = read_file(cert_path)
    load_certificates(certificate_pem, source=cert_path)
    return CertificateAuthority.from_pem(
        certificate_pem,
        load_key(ca_dir / CA_KEY),
        source=str(cert_path),
        key_source=str(ca_dir / CA_KEY),
    )


def prefix_paths(prefix: Path) -> tuple[Path, Path]:
    """``PREFIX.crt`` and ``PREFIX.key``. A prefix that already ends in ``.crt``, ``.key`` or
    ``.pem`` is refused (``ConfigurationError``, message starting "is a prefix"): it would
    write ``x.crt.crt``, which is never what was meant."""
    if prefix.suffix in _LEAF_SUFFIXES:
        stem = prefix.with_suffix("")
        raise ConfigurationError(
            f"is a prefix: pass {str(stem)!r} to write {stem.name}.crt and {stem.name}.key"
        )
    return prefix.with_name(prefix.name + ".crt"), prefix.with_name(prefix.name + ".key")


def client_file_stems(names: Sequence[str]) -> list[str]:
    """File stems for the starter set's clients: ``client`` for the first, ``client-NAME``
    after it (NAME without its scheme, every run of other characters than ``A-Za-z0-9._@-``
    turned into ``-``). A name given twice, or two names that give the same stem, are refused
    (``ConfigurationError``, message starting with the name quoted)."""
    stems: list[str] = []
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigurationError(f"{name!r} is given twice")
        slug = re.sub(r"[^A-Za-z0-9._@-]+", "-", name.split("://", 1)[-1]).strip("-.")
        stem = DEFAULT_CLIENT if index == 0 else f"{DEFAULT_CLIENT}-{slug}"
        if not slug or stem in stems:
            raise ConfigurationError(
                f"{name!r} does not give a file name of its own ({stem}.crt); "
                "use distinct client names"
            )
        stems.append(stem)
    return stems


@dataclass(frozen=True, slots=True)
class StarterPki:
    """A new CA with a server certificate and client certificates, and the files that hold
    them (CA first, then the server, then each client). Keys are in ``files`` only, whose
    ``repr`` never shows them."""

    ca: CertificateAuthority
    certificates: tuple[CertificateFiles, ...]
    files: tuple[PendingFile, ...]


def create_starter_pki(
    directory: Path,
    *,
    hosts: Iterable[str] = DEFAULT_HOSTS,
    clients: Sequence[str] = (DEFAULT_CLIENT,),
    key_type: KeyType = KeyType.ECDSA_P256,
    lifetime: dt.timedelta,
    now: dt.datetime,
    allow_unsupported_key: bool = False,
) -> StarterPki:
    """Create everything ``grpcsec init`` writes into ``directory``: a root CA with a distinct
    name, a server certificate for ``hosts`` and one client certificate per identity in
    ``clients`` (``client.crt``, then ``client-NAME.crt``), all leaves lasting ``lifetime``.
    Names and file stems are checked before any key is generated."""
    server_names = SubjectAltNames.from_identities(hosts)
    stems = client_file_stems(clients)
    client_names = [SubjectAltNames.from_identities([name]) for name in clients]
    ca = CertificateAuthority.create(distinct_ca_name(), key_type=key_type, now=now)
    window = Validity.lasting(lifetime, now=now)
    requests = [("server", "server", Profile.SERVER, server_names)]
    requests += [
        ("client", stem, Profile.CLIENT, names)
        for stem, names in zip(stems, client_names, strict=True)
    ]
    files = ca_files(ca, directory)
    certificates = [CertificateFiles("CA", ca.certificate, directory / CA_CERT, directory / CA_KEY)]
    for role, stem, profile, names in requests:
        leaf = ca.issue(
            profile,
            names,
            key_type=key_type,
            validity=window,
            now=now,
            allow_unsupported_key=allow_unsupported_key,
        )
        cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
        files += leaf_files(leaf, cert_file, key_file)
        certificates.append(CertificateFiles(role, leaf.certificate, cert_file, key_file))
    return StarterPki(ca=ca, certificates=tuple(certificates), files=tuple(files))
