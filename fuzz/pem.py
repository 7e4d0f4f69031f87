"""Fuzz target ``pem``: bytes → certificate, key, key pair, trust bundle and CSR loading.

Documented outcomes: a value, or a :class:`~grpcsec.errors.GrpcsecError` (in practice a
:class:`~grpcsec.errors.MaterialError`); nothing else may escape. A loaded certificate is then
used the way later code uses one, and that must not raise either: :class:`CertificateInfo`
(``grpcsec inspect``, the exporter), :func:`inspect_bundle` (chain order), and
:meth:`Peer.from_auth_context` (every authenticated call), each rendered as strict JSON.

The first input byte picks the loader; the rest is the file. For a key pair the file is one
combined PEM: the chain, then the key from its ``-----BEGIN ... PRIVATE KEY-----`` line on.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence

from cryptography import x509

from fuzz import Unexpected
from grpcsec.errors import GrpcsecError
from grpcsec.identity import Peer
from grpcsec.material import KeyPair, TrustBundle
from grpcsec.pki import CertificateInfo, inspect_bundle, load_private_key
from grpcsec.pki.files import certificates_pem, load_certificates, load_csr

__all__ = ["LOADERS", "check"]

_NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
_KEY_BEGIN = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
PASSWORD = b"fuzz-password"


def _use(certificates: Sequence[x509.Certificate]) -> None:
    """What later code does with loaded certificates; every step must succeed."""
    for certificate in certificates:
        json.dumps(CertificateInfo.of(certificate).to_json(_NOW), allow_nan=False)
        pem = certificates_pem([certificate])
        auth = {"transport_security_type": [b"ssl"], "x509_pem_cert": [pem]}
        peer = Peer.from_auth_context(auth, address="ipv4:127.0.0.1:1")
        if peer.certificate_unreadable:
            raise Unexpected("a certificate grpcsec loaded is unreadable to grpcsec.identity")
        json.dumps(peer.to_json(), allow_nan=False)
    inspect_bundle(certificates)


def _certificates(data: bytes) -> None:
    _use(load_certificates(data, source="fuzz.pem"))


def _key(data: bytes) -> None:
    load_private_key(data, source="fuzz.key")


def _encrypted_key(data: bytes) -> None:
    load_private_key(data, password=PASSWORD, source="fuzz.key")


def _key_pair(data: bytes) -> None:
    found = _KEY_BEGIN.search(data)
    split = found.start() if found else len(data)
    pair = KeyPair.from_pem(data[:split], data[split:], source="fuzz.pem", key_source="fuzz.key")
    _use(pair.chain)


def _trust_bundle(data: bytes) -> None:
    _use(load_certificates(TrustBundle.from_pem(data, source="fuzz-ca.pem").pem))


def _csr(data: bytes) -> None:
    load_csr(data, source="fuzz.csr")


LOADERS: tuple[Callable[[bytes], None], ...] = (
    _certificates,
    _key,
    _encrypted_key,
    _key_pair,
    _trust_bundle,
    _csr,
)
"""Indexed by the first input byte (modulo their number); ``seeds.py`` writes one per loader."""


def check(data: bytes) -> None:
    """One input: load with the loader the first byte picks; only GrpcsecError may escape."""
    if not data:
        return
    try:
        LOADERS[data[0] % len(LOADERS)](data[1:])
    except GrpcsecError as exc:
        message = str(exc)
        if not message or "\n" in message:
            raise Unexpected(f"{type(exc).__name__} message is not one line: {message!r}") from exc
