"""The ACME account: its key (created once, 0600) and its registration (created or reused).

The account key is the identity the CA knows this client by; it signs every request
(JWS, done by josepy and the acme library). :func:`account_key` reads it, or creates an ECDSA
P-256 key (signed with ES256) and writes it with :func:`grpcsec.pki.write_files` (atomic, mode
0600, never over an existing file). ECDSA P-384 (ES384) and RSA (RS256) keys made elsewhere
are accepted too.

:func:`register` sends ``newAccount`` every time: a CA that knows the key answers with the
existing account's URL (RFC 8555 §7.3.1), so the same call creates or reuses an account and
survives a CA that forgot it. The URL is kept beside the key (``<key>.url``, JSON with the
directory) for people and ``status``. Registering agrees to the CA's terms of service (an
unattended client cannot click through them; docs/acme.md says so). External account binding
(EAB) is not supported.
"""

from __future__ import annotations

import json
from pathlib import Path

from acme import client as acme_client
from acme import errors as acme_lib_errors
from acme import messages
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.jwa import ES256, ES384, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA

from grpcsec.acme.config import AcmeConfig
from grpcsec.acme.network import acme_errors
from grpcsec.errors import AcmeError, MaterialError
from grpcsec.pki import (
    CERT_MODE,
    KEY_MODE,
    PendingFile,
    generate_key,
    load_key_file,
    write_files,
)
from grpcsec.pki import private_key_pem as pem_of
from grpcsec.text import get_logger

__all__ = ["AccountKey", "account_key", "register"]

log = get_logger("grpcsec.acme")

AccountKey = tuple[JWK, JWASignature]


def account_key(path: Path) -> AccountKey:
    """The account key at ``path`` with its JWS algorithm, created (P-256, 0600) if missing."""
    if not path.exists():
        write_files([PendingFile(path, pem_of(generate_key()), KEY_MODE)])
        log.info("created the ACME account key %s", path)
    key = load_key_file(path)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algs = {"secp256r1": ES256, "secp384r1": ES384}
        if key.curve.name in algs:
            return JWKEC(key=key), algs[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return JWKRSA(key=key), RS256
    raise MaterialError(
        "an ACME account key must be ECDSA P-256/P-384 or RSA of 2048 bits or more", path=path
    )


def register(client: acme_client.ClientV2, config: AcmeConfig) -> str:
    """Create or reuse the account of this key; its URL (also written beside the key)."""
    new = messages.NewRegistration.from_data(email=config.email, terms_of_service_agreed=True)
    with acme_errors("registering the ACME account"):
        try:
            regr = client.new_account(new)
            url = regr.uri
        except acme_lib_errors.ConflictError as existing:
            url = existing.location
            client.net.account = messages.RegistrationResource(
                body=messages.Registration(), uri=url
            )
    if not url:
        raise AcmeError("registering the ACME account: the CA sent no account URL")
    _remember(config, url)
    return url


def _remember(config: AcmeConfig, url: str) -> None:
    record = {"directory": config.directory, "account": url}
    file = config.account_url_file
    try:
        if file.exists() and json.loads(file.read_text(encoding="utf-8")) == record:
            return
    except (OSError, ValueError):
        pass  # unreadable or stale: written again below
    data = (json.dumps(record, indent=2) + "\n").encode()
    write_files([PendingFile(file, data, CERT_MODE)], force=True)
