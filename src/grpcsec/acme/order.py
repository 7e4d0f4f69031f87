"""One ACME order, from a new key to a chain on disk.

:func:`obtain` runs RFC 8555 §7.4 with the acme library: a **new** private key
(``config.key_type``, ECDSA P-256 by default) and a CSR for the names; ``newOrder``; for each
authorization still *pending*, the http-01 challenge answered by the built-in responder
(:mod:`grpcsec.acme.responder`, bound to ``config.http_port`` only while the order's
challenges are validated) and polled at most ``poll_attempts`` times, ``poll_interval``
seconds apart; authorizations the CA reuses as already *valid* are skipped (CAs may reuse them
for a repeat order: RFC 8555 §7.1.3, pebble does so at random); then finalization, polled up to
a deadline of the same bound. The chain it returns was checked: leaf first, the leaf's key is
the new key, the leaf names every requested domain.

:func:`write_material` writes key then chain with :func:`grpcsec.pki.write_files` (each to a
temporary file renamed into place, key 0600), so a reader sees whole files and a failed order
changes nothing. Only http-01 is answered (no dns-01, no tls-alpn-01), so wildcards and names
the CA cannot reach on port 80 are out of scope.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from acme import challenges, crypto_util, messages
from acme import client as acme_client
from cryptography import x509

from grpcsec.acme.config import AcmeConfig
from grpcsec.acme.network import acme_errors
from grpcsec.acme.responder import Http01Resource, http01_responder
from grpcsec.clock import Clock
from grpcsec.errors import AcmeError, GrpcsecError
from grpcsec.pki import (
    CERT_MODE,
    KEY_MODE,
    PendingFile,
    PrivateKey,
    SubjectAltNames,
    certificates_pem,
    check_key_matches,
    generate_key,
    load_certificates,
    private_key_pem,
    write_files,
)
from grpcsec.text import get_logger

__all__ = ["AcmeMaterial", "obtain", "write_material"]

log = get_logger("grpcsec.acme")


@dataclass(frozen=True, slots=True, kw_only=True)
class AcmeMaterial:
    """An issued chain (leaf first) and its new key; ``reused`` counts authorizations the CA
    reused as already valid. The key is never shown in ``repr``."""

    chain: tuple[x509.Certificate, ...]
    key: PrivateKey = field(repr=False)
    reused: int = 0

    @property
    def leaf(self) -> x509.Certificate:
        """The issued certificate."""
        return self.chain[0]


def _http01(authzr: messages.AuthorizationResource) -> messages.ChallengeBody:
    for challb in authzr.body.challenges:
        if isinstance(challb.chall, challenges.HTTP01):
            return challb
    name = authzr.body.identifier.value
    raise AcmeError(f"the CA offers no http-01 challenge for {name} (only http-01 is answered)")


def _wait_valid(
    client: acme_client.ClientV2,
    authzr: messages.AuthorizationResource,
    config: AcmeConfig,
    sleep: Callable[[float], None],
) -> None:
    name = authzr.body.identifier.value
    for attempt in range(config.poll_attempts):
        with acme_errors(f"polling the authorization for {name}"):
            authzr, _ = client.poll(authzr)
        status = authzr.body.status
        if status == messages.STATUS_VALID:
            return
        if status == messages.STATUS_INVALID:
            problems = [
                f"{c.error.code or 'error'}: {(c.error.detail or '').strip()}"
                for c in authzr.body.challenges
                if c.error is not None
            ]
            raise AcmeError(f"validation of {name} failed: {'; '.join(problems) or 'no detail'}")
        if attempt + 1 < config.poll_attempts:
            sleep(config.poll_interval)
    raise AcmeError(
        f"the authorization for {name} was not validated after {config.poll_attempts} polls"
    )


def _authorize(
    client: acme_client.ClientV2,
    order: messages.OrderResource,
    config: AcmeConfig,
    sleep: Callable[[float], None],
) -> int:
    """Answer every pending authorization; the number the CA reused as already valid."""
    pending: list[messages.AuthorizationResource] = []
    reused = 0
    for authzr in order.authorizations:
        status = authzr.body.status
        if status == messages.STATUS_VALID:
            reused += 1
            log.info("the CA reused a valid authorization for %s", authzr.body.identifier.value)
        elif status == messages.STATUS_PENDING:
            pending.append(authzr)
        else:
            name = authzr.body.identifier.value
            raise AcmeError(f"the authorization for {name} is {status}, not pending or valid")
    if not pending:
        return reused
    resources: set[Http01Resource] = set()
    key = client.net.key
    with http01_responder(config.http_host, config.http_port, resources):
        answers = []
        for authzr in pending:
            challb = _http01(authzr)
            response, validation = challb.response_and_validation(key)
            resources.add(
                Http01Resource(chall=challb.chall, response=response, validation=validation)
            )
            answers.append((authzr, challb, response))
        for authzr, challb, response in answers:
            with acme_errors(f"answering the challenge for {authzr.body.identifier.value}"):
                client.answer_challenge(challb, response)
        for authzr, _, _ in answers:
            _wait_valid(client, authzr, config, sleep)
    return reused


def _check_chain(pem: str, key: PrivateKey, config: AcmeConfig) -> tuple[x509.Certificate, ...]:
    try:
        chain = tuple(load_certificates(pem.encode(), allow_der=False))
        check_key_matches(chain[0], key)
    except GrpcsecError as exc:
        raise AcmeError(f"the CA sent an unusable certificate chain: {exc.message}") from exc
    try:
        san = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise AcmeError("the issued certificate has no subject alternative names") from exc
    names = {n.lower() for n in SubjectAltNames.from_extension(san).dns}
    missing = [d for d in config.domains if d.lower() not in names]
    if missing:
        raise AcmeError(f"the issued certificate does not name {', '.join(missing)}")
    return chain


def obtain(
    client: acme_client.ClientV2,
    config: AcmeConfig,
    *,
    clock: Clock,
    sleep: Callable[[float], None],
) -> AcmeMaterial:
    """Order, validate and finalize a certificate for ``config.domains`` with a new key, on a
    registered ``client``; nothing is written (see the module docstring)."""
    key = generate_key(config.key_type)
    csr = crypto_util.make_csr(private_key_pem(key), list(config.domains))
    names = ", ".join(config.domains)
    with acme_errors(f"ordering a certificate for {names}"):
        order = client.new_order(csr)
    reused = _authorize(client, order, config, sleep)
    budget = dt.timedelta(seconds=config.poll_attempts * config.poll_interval + config.timeout)
    # The library polls finalization against a naive local deadline; give it ours.
    deadline = (clock.now() + budget).astimezone().replace(tzinfo=None)
    with acme_errors(f"finalizing the order for {names}"):
        order = client.finalize_order(order, deadline)
    if not order.fullchain_pem:
        raise AcmeError(f"finalizing the order for {names}: the CA sent no certificate")
    chain = _check_chain(order.fullchain_pem, key, config)
    return AcmeMaterial(chain=chain, key=key, reused=reused)


def write_material(material: AcmeMaterial, cert: Path, key: Path) -> None:
    """Write the key (0600) and then the chain, each atomically (see the module docstring)."""
    write_files(
        [
            PendingFile(key, private_key_pem(material.key), KEY_MODE),
            PendingFile(cert, certificates_pem(material.chain), CERT_MODE),
        ],
        force=True,
    )
