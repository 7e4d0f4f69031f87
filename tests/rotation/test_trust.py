"""Trust-bundle change rules and the log of CAs that clients came from (fake monotonic clock)."""

from __future__ import annotations

from typing import Any

import pytest

from grpcsec.errors import RotationError
from grpcsec.pki import CertificateAuthority, utcnow
from grpcsec.rotation import CaRef, ClientIssuerLog, check_trust_change
from tests.rotation.conftest import RotPki, client_leaf


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeContext:
    def __init__(self, leaf_pem: bytes | None, chain_pem: bytes | None = None) -> None:
        self._auth: dict[str, list[bytes]] = {}
        if leaf_pem is not None:
            self._auth["x509_pem_cert"] = [leaf_pem]
        if chain_pem is not None:
            self._auth["x509_pem_cert_chain"] = [chain_pem]

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth


def change(previous: list[Any], new: list[Any], **kwargs: Any) -> None:
    check_trust_change(previous, new, what="client-CA bundle", source="ca.crt", **kwargs)


def test_an_overlapping_bundle_is_accepted_and_a_disjoint_one_refused(rot_pki: RotPki) -> None:
    a, b = rot_pki.ca.certificate, rot_pki.new_ca.certificate
    change([a], [a, b])  # rollover step 1
    change([a, b], [b])  # step 3 (no evidence of A's clients)
    with pytest.raises(RotationError, match="shares no CA with the one in service") as info:
        change([a], [b])
    assert info.value.path == "ca.crt"
    change([a], [b], allow_replacement=True)  # the explicit open door
    change([], [b])  # the first load has nothing to compare with


def test_required_issuers_must_stay(rot_pki: RotPki) -> None:
    a, b = rot_pki.ca.certificate, rot_pki.new_ca.certificate
    change([a, b], [a, b], required=[a])
    with pytest.raises(RotationError, match="lacks the required CA 'CN=rotation CA A'"):
        change([a, b], [b], required=[a])


def test_a_ca_seen_verifying_a_client_within_the_grace_may_not_be_dropped(
    rot_pki: RotPki,
) -> None:
    a, b = rot_pki.ca, rot_pki.new_ca
    clock = Clock()
    log = ClientIssuerLog(clock=clock)
    log.observe(FakeContext(client_leaf(a).chain_pem()))
    log.observe(FakeContext(None))  # a caller without a certificate leaves no evidence
    assert log.last_seen(a.certificate) == 1000.0
    assert log.last_seen(b.certificate) is None
    clock.now += 599
    with pytest.raises(RotationError, match=r"drops the CA 'CN=rotation CA A'.*599s ago"):
        change([a.certificate, b.certificate], [b.certificate], log=log, grace=600)
    clock.now += 2  # 601 s without a client of A
    change([a.certificate, b.certificate], [b.certificate], log=log, grace=600)
    # Dropping a CA nobody used is fine even right after A's clients called.
    log.observe_pem(client_leaf(a).chain_pem())
    change([a.certificate, b.certificate], [a.certificate], log=log, grace=600)


def test_clients_under_an_intermediate_count_for_the_root_in_the_bundle(rot_pki: RotPki) -> None:
    intermediate = rot_pki.ca.create_intermediate("issuing CA", now=utcnow())
    leaf = client_leaf(intermediate)
    log = ClientIssuerLog(clock=Clock())
    chain = leaf.chain_pem()
    leaf_pem, rest = chain.split(b"-----END CERTIFICATE-----\n", 1)
    log.observe(FakeContext(leaf_pem + b"-----END CERTIFICATE-----\n", rest))
    assert log.last_seen(intermediate.certificate) is not None
    assert log.last_seen(rot_pki.ca.certificate) is not None
    assert log.last_seen(rot_pki.other_ca.certificate) is None


def test_a_ca_with_the_same_name_but_a_new_key_is_a_different_ca(rot_pki: RotPki) -> None:
    """A rollover to a new key under the same name is told apart by key identifier."""
    now = utcnow()
    old = CertificateAuthority.create("Acme Root", now=now)
    new = CertificateAuthority.create("Acme Root", now=now)
    assert CaRef.of(old.certificate) != CaRef.of(new.certificate)
    log = ClientIssuerLog(clock=Clock())
    log.observe_pem(client_leaf(new).chain_pem())
    assert log.last_seen(old.certificate) is None
    assert log.last_seen(new.certificate) is not None
    change([old.certificate, new.certificate], [new.certificate], log=log)
    with pytest.raises(RotationError, match="drops the CA"):
        change([old.certificate, new.certificate], [old.certificate], log=log)


def test_the_log_cache_stays_bounded(rot_pki: RotPki) -> None:
    log = ClientIssuerLog(clock=Clock(), cache_size=3)
    for index in range(10):
        log.observe_pem(client_leaf(rot_pki.ca, f"c{index}").chain_pem())
    assert len(log._issuers) <= 3
    assert log.last_seen(rot_pki.ca.certificate) == 1000.0
