"""revocation: a client's chain judged against the configured CRLs (no server here; the same
cases on real servers are in tests/server/test_crl_server.py).

Each positive verdict has its controls: a client of the same CA that is not listed, an issuer
without a CRL, a namesake CA's CRL, and CRLs that cannot decide (expired, not yet valid, forged).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from grpcsec.call import CallInfo
from grpcsec.clock import ManualClock
from grpcsec.errors import AuthenticationError, MaterialError
from grpcsec.fileio import FileContents
from grpcsec.identity import Peer
from grpcsec.pki import IssuedCertificate, Profile, SubjectAltNames
from grpcsec.revocation import (
    CRLSet,
    CRLStore,
    Outcome,
    RevocationCheck,
    build_crl_set,
    judge_chain,
)
from tests.revocation.material import (
    DAY,
    HOUR,
    Material,
    crl_bytes,
    forged_crl_bytes,
    make_material,
    write,
)


@pytest.fixture(scope="module")
def m(tmp_path_factory: pytest.TempPathFactory) -> Material:
    return make_material(tmp_path_factory.mktemp("revocation"))


def crlset(m: Material, *parts: bytes, current: CRLSet | None = None) -> CRLSet:
    paths = tuple(Path(f"crl{i}.pem") for i in range(len(parts)))
    return build_crl_set(FileContents(paths, parts), (m.root.certificate,), current)


def standard(m: Material) -> CRLSet:
    """The root revokes ``revoked`` and the second intermediate; the intermediate revokes
    ``inter_revoked``."""
    return crlset(
        m,
        crl_bytes(m.root, m.revoked.certificate, m.inter2.certificate),
        crl_bytes(m.inter, m.inter_revoked.certificate),
    )


def judge(m: Material, client: IssuedCertificate, crls: CRLSet, now: dt.datetime | None = None):  # type: ignore[no-untyped-def]
    return judge_chain(client.chain, crls, (m.root.certificate,), now or m.now)


def test_listed_clients_are_revoked_and_the_others_are_not(m: Material) -> None:
    crls = standard(m)
    revoked = judge(m, m.revoked, crls)
    assert revoked.outcome is Outcome.REVOKED
    serial = format(m.revoked.certificate.serial_number, "x")
    assert f"client certificate serial {serial}" in revoked.message
    assert "key_compromise" in revoked.message
    assert "crl0.pem" in revoked.message
    # controls: a client of the same CA, and clients of the intermediate whose CRL lists another
    assert judge(m, m.good, crls).outcome is Outcome.GOOD
    inter_good = judge(m, m.inter_good, crls)
    assert (inter_good.outcome, inter_good.checked) == (Outcome.GOOD, 2)  # leaf and intermediate
    assert judge(m, m.inter_revoked, crls).outcome is Outcome.REVOKED


def test_a_revoked_intermediate_revokes_every_certificate_under_it(m: Material) -> None:
    verdict = judge(m, m.under_inter2, standard(m))
    assert verdict.outcome is Outcome.REVOKED
    assert "intermediate CA certificate serial" in verdict.message
    assert "revocation second intermediate" in verdict.message


def test_an_issuer_without_a_crl_is_not_checked(m: Material) -> None:
    only_root = crlset(m, crl_bytes(m.root, m.revoked.certificate))
    verdict = judge(m, m.inter_revoked, only_root)  # the intermediate has no CRL configured
    assert (verdict.outcome, verdict.checked) == (Outcome.GOOD, 1)


@pytest.mark.parametrize(
    ("window", "words"),
    [
        ({"this_update_hours": -50, "next_update_hours": -2}, "expired at its next update"),
        ({"this_update_hours": 2, "next_update_hours": 30}, "not valid until"),
    ],
)
def test_a_crl_outside_its_window_is_undetermined(
    m: Material, window: dict[str, int], words: str
) -> None:
    data = crl_bytes(
        m.root,
        number=3,
        this_update=m.now + window["this_update_hours"] * HOUR,
        next_update=m.now + window["next_update_hours"] * HOUR,
    )
    verdict = judge(m, m.good, crlset(m, data))
    assert verdict.outcome is Outcome.UNDETERMINED
    assert words in verdict.message
    assert "crl0.pem" in verdict.message
    # control: within the window the same CRL decides
    inside = m.now + (window["this_update_hours"] + 1) * HOUR
    assert judge(m, m.good, crlset(m, data), now=inside).outcome is Outcome.GOOD


def test_not_yet_valid_is_judged_again_when_it_starts(m: Material) -> None:
    start = (m.now + HOUR).replace(microsecond=0)
    data = crl_bytes(m.root, this_update=start, next_update=start + DAY)
    verdict = judge(m, m.good, crlset(m, data))
    assert verdict.recheck_at == start
    assert verdict.current(m.now) and not verdict.current(start)


def test_a_forged_intermediate_crl_is_undetermined(m: Material) -> None:
    forged = forged_crl_bytes(m.inter, m.namesake)  # the intermediate's name and key id
    verdict = judge(m, m.inter_good, crlset(m, forged))
    assert verdict.outcome is Outcome.UNDETERMINED
    assert "not signed by the issuer's key" in verdict.message


def test_a_revocation_wins_over_an_undetermined_certificate(m: Material) -> None:
    crls = crlset(
        m, crl_bytes(m.root, m.inter2.certificate), forged_crl_bytes(m.inter2, m.namesake)
    )
    assert judge(m, m.under_inter2, crls).outcome is Outcome.REVOKED


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda m: forged_crl_bytes(m.root, m.namesake), "not signed by that CA"),
        (lambda m: crl_bytes(m.namesake, m.good.certificate), "not signed by that CA"),
        (lambda _m: b"-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n", "not a valid"),
        (lambda _m: b"", "not a valid CRL"),
    ],
    ids=["forged-root", "namesake-ca", "garbage-pem", "empty"],
)
def test_a_set_with_a_bad_crl_is_refused_naming_the_file(m: Material, make, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MaterialError, match=words) as caught:
        crlset(m, crl_bytes(m.root), make(m))
    assert "crl1.pem" in str(caught.value)
    assert "\n" not in str(caught.value)
    crlset(m, crl_bytes(m.root))  # control: the good one alone is accepted


def test_a_replacement_may_not_drop_an_issuer_or_go_back(m: Material) -> None:
    current = crlset(m, crl_bytes(m.root, number=5), crl_bytes(m.inter, number=2))
    with pytest.raises(MaterialError, match="no CRL of"):
        crlset(m, crl_bytes(m.root, number=6), current=current)
    with pytest.raises(MaterialError, match="lower than 5"):
        crlset(m, crl_bytes(m.root, number=4), crl_bytes(m.inter, number=2), current=current)
    newer = crlset(m, crl_bytes(m.root, number=6), crl_bytes(m.inter, number=2), current=current)
    assert {c.number for c in newer.crls} == {6, 2}


def test_the_highest_number_speaks_for_an_issuer(m: Material) -> None:
    crls = crlset(
        m, crl_bytes(m.root, m.revoked.certificate, number=9), crl_bytes(m.root, number=3)
    )
    assert judge(m, m.revoked, crls).outcome is Outcome.REVOKED


# -- the cached check, with the watcher ---------------------------------------------------------


def call_of(client: IssuedCertificate) -> CallInfo:
    leaf = client.certificate.public_bytes(serialization.Encoding.PEM)
    rest = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in client.chain[1:])
    auth = {
        "transport_security_type": [b"ssl"],
        "x509_pem_cert": [leaf],
        "x509_pem_cert_chain": [rest] if rest else [],
    }
    return CallInfo(method="/pkg.S/M", peer=Peer.from_auth_context(auth, address="ipv4:x:1"))


def test_the_check_caches_per_chain_and_generation(m: Material, tmp_path: Path) -> None:
    clock = ManualClock(m.now)
    crl = write(tmp_path / "root.crl", crl_bytes(m.root, number=1))
    store = CRLStore([crl], anchors=lambda: (m.root.certificate,), clock=clock)
    check = RevocationCheck(store, clock=clock)
    for _ in range(3):
        check.check(call_of(m.good))
        check.check(call_of(m.revoked))
    assert check.judged == 2  # one verdict per chain
    write(crl, crl_bytes(m.root, m.revoked.certificate, number=2))
    assert store.reload() == "loaded"
    check.check(call_of(m.good))
    with pytest.raises(AuthenticationError, match="was revoked on") as caught:
        check.check(call_of(m.revoked))
    assert caught.value.reason == "revoked"
    assert check.judged == 4
    # time alone: past the next update, the cached verdict is judged again
    clock.advance(2 * DAY.total_seconds())
    with pytest.raises(AuthenticationError) as undetermined:
        check.check(call_of(m.good))
    assert undetermined.value.reason == "revocation_undetermined"
    allowing = RevocationCheck(store, clock=clock, allow_undetermined=True)
    allowing.check(call_of(m.good))  # logged and allowed
    with pytest.raises(AuthenticationError):  # a revocation still refuses... if decidable
        check.check(call_of(m.revoked))


def test_a_garbage_replacement_keeps_the_last_good_set(m: Material, tmp_path: Path) -> None:
    crl = write(tmp_path / "root.crl", crl_bytes(m.root, m.revoked.certificate, number=1))
    store = CRLStore([crl], anchors=lambda: (m.root.certificate,))
    write(crl, b"garbage")
    assert store.reload() == "refused"
    write(crl, forged_crl_bytes(m.root, m.namesake))
    assert store.reload() == "refused"
    status = store.status()
    assert status.reload_failures == 2
    assert store.generation == 1
    assert store.to_json()["crls"][0]["revoked"] == 1
    check = RevocationCheck(store)
    with pytest.raises(AuthenticationError, match="was revoked"):
        check.check(call_of(m.revoked))


def test_a_directory_is_every_file_in_it(m: Material, tmp_path: Path) -> None:
    folder = tmp_path / "crls"
    folder.mkdir()
    write(folder / "root.crl", crl_bytes(m.root, m.revoked.certificate))
    (folder / ".hidden").write_bytes(b"not read")
    store = CRLStore([folder], anchors=lambda: (m.root.certificate,))
    check = RevocationCheck(store)
    check.check(call_of(m.inter_revoked))  # no CRL of the intermediate yet
    write(folder / "inter.crl", crl_bytes(m.inter, m.inter_revoked.certificate))
    assert store.reload() == "loaded"
    with pytest.raises(AuthenticationError, match="revoked"):
        check.check(call_of(m.inter_revoked))
    (folder / "inter.crl").unlink()  # dropping an issuer's CRL is refused
    assert store.reload() == "refused"
    with pytest.raises(AuthenticationError, match="revoked"):
        check.check(call_of(m.inter_revoked))


def test_an_empty_directory_or_missing_file_fails_at_start(m: Material, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(MaterialError, match="holds no CRL files"):
        CRLStore([tmp_path / "empty"], anchors=lambda: (m.root.certificate,))
    with pytest.raises(MaterialError, match=r"missing\.crl"):
        CRLStore([tmp_path / "missing.crl"], anchors=lambda: (m.root.certificate,))


def test_an_unreadable_chain_fails_closed(m: Material) -> None:
    leaf = m.inter_good.certificate.public_bytes(serialization.Encoding.PEM)
    auth = {
        "transport_security_type": [b"ssl"],
        "x509_pem_cert": [leaf],
        "x509_pem_cert_chain": [b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
    }
    peer = Peer.from_auth_context(auth, address="ipv4:y:1")
    assert peer.chain_unreadable
    assert peer.principal is not None  # the leaf itself still reads
    store = CRLStore(
        [write(m.dir / "root-only.crl", crl_bytes(m.root))], anchors=lambda: (m.root.certificate,)
    )
    with pytest.raises(AuthenticationError) as caught:
        RevocationCheck(store).check(CallInfo(method="/p.S/M", peer=peer))
    assert caught.value.reason == "revocation_undetermined"


def test_certificates_sent_off_the_path_are_ignored(m: Material) -> None:
    crls = standard(m)
    extra = (*m.inter_good.chain, m.revoked.certificate)  # a revoked stranger tagged along
    assert judge_chain(extra, crls, (m.root.certificate,), m.now).outcome is Outcome.GOOD
    # control: the same stranger as the leaf is refused
    assert judge(m, m.revoked, crls).outcome is Outcome.REVOKED


def test_a_crl_of_another_ca_with_the_issuers_name_is_undetermined(m: Material) -> None:
    namesake = crl_bytes(m.inter_namesake, m.inter_good.certificate)  # its own key and key id
    verdict = judge(m, m.inter_revoked, crlset(m, crl_bytes(m.root), namesake))
    assert verdict.outcome is Outcome.UNDETERMINED
    assert "another CA with the same name" in verdict.message
    # control: the intermediate's own CRL decides, with the namesake's CRL beside it
    own = crl_bytes(m.inter, m.inter_revoked.certificate)
    both = crlset(m, crl_bytes(m.root), namesake, own)
    assert judge(m, m.inter_revoked, both).outcome is Outcome.REVOKED
    assert judge(m, m.inter_good, both).outcome is Outcome.GOOD


@pytest.mark.parametrize(
    ("profile", "role"),
    [
        (Profile.SERVER, "server certificate"),
        (Profile.CLIENT, "client certificate"),
        (Profile.PEER, "certificate"),
    ],
)
def test_the_message_names_the_leaf_by_its_usage(m: Material, profile: Profile, role: str) -> None:
    """The same walk judges clients on a server and servers in ``doctor --crl``: a revoked
    server certificate is not called a client certificate."""
    leaf = m.root.issue(profile, SubjectAltNames.build(dns=["orders.test"]), now=m.now)
    verdict = judge(m, leaf, crlset(m, crl_bytes(m.root, leaf.certificate)))
    assert verdict.outcome is Outcome.REVOKED
    assert f"{role} serial {leaf.certificate.serial_number:x}" in verdict.message
    assert "client" not in verdict.message or profile is Profile.CLIENT
