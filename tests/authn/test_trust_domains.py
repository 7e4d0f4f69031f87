"""The pure SPIFFE trust-domain decision, without a server: which CA is bound to which trust
domain, whether a chain leads to its own trust domain's CAs, what makes an X.509 SVID
malformed, path-prefix matching on segment boundaries, and the check's verdict cache (a hit,
a new bundle, an expired chain). Peers are built from auth contexts as grpcio reports them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from cryptography import x509

from grpcsec.authn import CallInfo, ClientCertAllowList
from grpcsec.authn.spiffe_check import ClientCABundles, SpiffeBindingCheck
from grpcsec.authn.trust_domains import (
    TrustDomainBundles,
    bind_chain,
    parse_trust_domain,
    svid_problem,
)
from grpcsec.clock import ManualClock
from grpcsec.errors import AuthenticationError, IssuanceError
from grpcsec.identity import Peer
from grpcsec.pki import IssuedCertificate, utcnow
from tests.authn.spiffe_material import Federation, make_federation, spiffe_ca, svid


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Federation:
    return make_federation(tmp_path_factory.mktemp("federation-unit"))


def peer_of(client: IssuedCertificate, *, garbage_chain: bool = False) -> Peer:
    pem = client.chain_pem()
    leaf, _, rest = pem.partition(b"-----END CERTIFICATE-----\n")
    leaf += b"-----END CERTIFICATE-----\n"
    if garbage_chain:
        rest = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    auth = {
        "transport_security_type": [b"ssl"],
        "x509_pem_cert": [leaf],
        "x509_pem_cert_chain": [rest] if rest else [],
    }
    return Peer.from_auth_context(auth, address="ipv4:127.0.0.1:1")


def chain(client: IssuedCertificate) -> Sequence[x509.Certificate]:
    return client.chain


# -- binding CAs to trust domains ----------------------------------------------------------------
def test_cas_are_bound_by_their_own_uri_san_and_plain_cas_to_nothing(fed: Federation) -> None:
    bundles = TrustDomainBundles.from_anchors(
        [fed.a.certificate, fed.b.certificate, fed.p.certificate]
    )
    assert bundles.bound
    assert bundles.anchors_for("a.test") == (fed.a.certificate,)
    assert bundles.anchors_for("b.test") == (fed.b.certificate,)
    assert bundles.anchors_for("c.test") == ()
    assert fed.p.certificate not in [c for cs in bundles.domains.values() for c in cs]
    assert not bundles.problems


def test_no_ca_naming_a_trust_domain_is_the_unbound_single_domain_setup(fed: Federation) -> None:
    bundles = TrustDomainBundles.from_anchors([fed.p.certificate, fed.q.certificate])
    assert not bundles.bound
    assert bundles.domains == {}


def test_explicit_mapping_adds_cas_and_a_contradiction_binds_nothing(fed: Federation) -> None:
    mapped = TrustDomainBundles.from_anchors([fed.p.certificate], {"a.test": [fed.p.certificate]})
    assert mapped.anchors_for("a.test") == (fed.p.certificate,)
    contradicted = TrustDomainBundles.from_anchors([], {"b.test": [fed.a.certificate]})
    assert contradicted.anchors_for("b.test") == ()
    assert contradicted.bound  # strict, and the problem says why
    assert "names trust domain a.test, not b.test" in contradicted.problems[0]


@pytest.mark.parametrize(
    ("domains", "uris", "problem"),
    [
        (["a.test", "b.test"], [], "several trust domains"),
        ([], ["spiffe://a.test/spire/ca"], "is not a trust domain"),
        ([], ["spiffe://A.test"], "is not a trust domain"),
    ],
)
def test_cas_whose_trust_domain_is_unclear_are_bound_to_nothing(
    domains: list[str], uris: list[str], problem: str
) -> None:
    ca = spiffe_ca(domains, "unclear", uris=uris)
    bundles = TrustDomainBundles.from_anchors([ca.certificate])
    assert bundles.domains == {}
    assert bundles.bound
    assert problem in bundles.problems[0]


def test_digest_follows_content(fed: Federation) -> None:
    one = TrustDomainBundles.from_anchors([fed.a.certificate, fed.b.certificate])
    same = TrustDomainBundles.from_anchors([fed.b.certificate, fed.a.certificate])
    other = TrustDomainBundles.from_anchors([fed.a.certificate])
    assert one.digest == same.digest != other.digest


@pytest.mark.parametrize(
    ("text", "domain"),
    [("a.test", "a.test"), ("spiffe://a.test", "a.test"), ("spiffe://a.test/", "a.test")],
)
def test_trust_domain_forms(text: str, domain: str) -> None:
    assert parse_trust_domain(text) == domain


@pytest.mark.parametrize("text", ["", "A.test", "a.test/x", "spiffe://a.test/x", "a test", "a:1"])
def test_bad_trust_domains(text: str) -> None:
    with pytest.raises(IssuanceError, match="invalid SPIFFE trust domain"):
        parse_trust_domain(text)


# -- the chain decision ----------------------------------------------------------------------------
def test_chain_leads_to_its_own_trust_domain_only(fed: Federation) -> None:
    bundles = TrustDomainBundles.from_anchors([fed.a.certificate, fed.b.certificate])
    now = utcnow()
    honest = svid(fed.a, ["spiffe://a.test/x"])
    forged = svid(fed.b, ["spiffe://a.test/x"])
    via = svid(fed.a_inter, ["spiffe://a.test/x"])
    forged_via = svid(fed.b_inter, ["spiffe://a.test/x"])
    assert bind_chain(chain(honest), "spiffe://a.test/x", bundles, now).bound
    assert bind_chain(chain(via), "spiffe://a.test/x", bundles, now).bound
    verdict = bind_chain(chain(forged), "spiffe://a.test/x", bundles, now)
    assert not verdict.bound
    assert "does not lead to a CA of trust domain a.test" in verdict.message
    assert not bind_chain(chain(forged_via), "spiffe://a.test/x", bundles, now).bound
    # the intermediate is what links the leaf to its root: without it, nothing is bound
    assert not bind_chain(chain(via)[:1], "spiffe://a.test/x", bundles, now).bound


def test_fails_closed(fed: Federation) -> None:
    bundles = TrustDomainBundles.from_anchors([fed.a.certificate])
    now = utcnow()
    honest = svid(fed.a, ["spiffe://a.test/x"])
    assert not bind_chain((), "spiffe://a.test/x", bundles, now).bound
    unknown = bind_chain(chain(honest), "spiffe://c.test/x", bundles, now)
    assert not unknown.bound
    assert "no CA of trust domain c.test" in unknown.message
    assert not bind_chain(chain(honest), "spiffe://A.test/x", bundles, now).bound
    later = honest.certificate.not_valid_after_utc + dt.timedelta(seconds=1)
    assert not bind_chain(chain(honest), "spiffe://a.test/x", bundles, later).bound
    verdict = bind_chain(chain(honest), "spiffe://a.test/x", bundles, now)
    assert verdict.until == honest.certificate.not_valid_after_utc


@pytest.mark.parametrize(
    ("uris", "spiffe_id", "problem"),
    [
        ([], None, "no URI SAN"),
        (["spiffe://a.test/x", "spiffe://a.test/y"], None, "2 URI SANs"),
        (["spiffe://A.test/x"], None, "not a valid SPIFFE ID"),
        (["spiffe://a.test/x"], "spiffe://a.test/x", None),
    ],
)
def test_svid_form(uris: list[str], spiffe_id: str | None, problem: str | None) -> None:
    found = svid_problem(uris, spiffe_id)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    ("peer_id", "allowed"),
    [
        ("spiffe://a.test/ns/prod", True),
        ("spiffe://a.test/ns/prod/web", True),
        ("spiffe://a.test/ns/prod/web/v2", True),
        ("spiffe://a.test/ns/production", False),
        ("spiffe://a.test/ns/pro", False),
        ("spiffe://a.test/ns", False),
        ("spiffe://b.test/ns/prod", False),
        ("spiffe://a.testx/ns/prod", False),
    ],
)
def test_prefix_matches_whole_segments(fed: Federation, peer_id: str, allowed: bool) -> None:
    allow = ClientCertAllowList(spiffe_prefixes=["spiffe://a.test/ns/prod"])
    match = allow.match(peer_of(svid(fed.a, [peer_id])))
    assert (match == "spiffe_prefix=spiffe://a.test/ns/prod") is allowed


# -- the check and its cache ---------------------------------------------------------------------
def call(peer: Peer) -> CallInfo:
    return CallInfo(method="/a.B/C", metadata=(), peer=peer)


def reason(check: SpiffeBindingCheck, peer: Peer) -> str | None:
    try:
        check.check(call(peer))
    except AuthenticationError as error:
        return error.reason
    return None


def test_check_caches_per_chain_and_bundle_and_rejudges_after_expiry(fed: Federation) -> None:
    anchors: list[tuple[x509.Certificate, ...]] = [(fed.a.certificate, fed.b.certificate)]
    source = ClientCABundles(lambda: anchors[0])
    clock = ManualClock(utcnow())
    check = SpiffeBindingCheck(source, require_svid=True, clock=clock)
    honest = peer_of(svid(fed.a, ["spiffe://a.test/x"]))
    forged = peer_of(svid(fed.b, ["spiffe://a.test/x"]))
    assert reason(check, honest) is None
    assert reason(check, honest) is None
    assert reason(check, forged) == "trust_domain_mismatch"
    assert check.judged == 2
    anchors[0] = (fed.a.certificate, fed.b.certificate, fed.p.certificate)  # no bound change
    assert reason(check, honest) is None
    assert check.judged == 2
    next_a = spiffe_ca(["a.test"], "a.test next CA").certificate
    anchors[0] = (fed.a.certificate, next_a, fed.b.certificate)  # a.test's CAs changed
    assert reason(check, honest) is None
    assert check.judged == 3
    anchors[0] = (next_a, fed.b.certificate)  # the old a.test CA is gone: so is its client
    assert reason(check, honest) == "trust_domain_mismatch"
    anchors[0] = (fed.a.certificate, fed.b.certificate)  # back: the first verdict still holds
    assert reason(check, honest) is None
    assert check.judged == 4
    clock.set(honest.not_after + dt.timedelta(seconds=1))  # type: ignore[operator]
    assert reason(check, honest) == "trust_domain_mismatch"
    assert check.judged == 5


def test_check_leaves_non_svids_to_the_allow_lists_and_refuses_unreadable_chains(
    fed: Federation,
) -> None:
    bound = SpiffeBindingCheck(
        lambda: TrustDomainBundles.from_anchors([fed.a.certificate]), require_svid=False
    )
    assert reason(bound, peer_of(svid(fed.a, [], dns=["x.internal"]))) is None
    assert reason(bound, peer_of(svid(fed.a, ["https://a.test/x"]))) is None
    assert reason(bound, peer_of(svid(fed.a, ["spiffe://a.test/x", "spiffe://a.test/y"]))) == (
        "spiffe_id_invalid"
    )
    garbled = peer_of(svid(fed.a_inter, ["spiffe://a.test/x"]), garbage_chain=True)
    assert reason(bound, garbled) == "trust_domain_mismatch"
    unbound = TrustDomainBundles.from_anchors([fed.p.certificate])
    legacy = SpiffeBindingCheck(lambda: unbound, require_svid=False)
    assert reason(legacy, peer_of(svid(fed.p, ["spiffe://A.test/x"]))) is None  # as before
    strict_form = SpiffeBindingCheck(lambda: unbound, require_svid=True)
    assert reason(strict_form, peer_of(svid(fed.p, ["spiffe://A.test/x"]))) == "spiffe_id_invalid"
    assert reason(strict_form, peer_of(svid(fed.q, ["spiffe://a.test/x"]))) is None  # unbound


def test_check_does_not_build_the_peer_when_nothing_is_enforced(fed: Federation) -> None:
    """Unbound bundles and no SPIFFE allow-list: the check returns before asking for the peer
    (building it from grpcio's auth context is most of a guarded call's cost), so a server
    without SPIFFE rules pays nothing for it; with either, the peer is read and judged."""
    built: list[Peer] = []
    forged = peer_of(svid(fed.p, ["spiffe://A.test/x"]))

    def lazy_call() -> CallInfo:
        def source() -> Peer:
            built.append(forged)
            return forged

        return CallInfo(method="/a.B/C", metadata=(), peer_source=source)

    unbound = TrustDomainBundles.from_anchors([fed.p.certificate])
    assert SpiffeBindingCheck(lambda: unbound, require_svid=False).check(lazy_call()) is None
    assert built == []
    strict = SpiffeBindingCheck(lambda: unbound, require_svid=True)
    with pytest.raises(AuthenticationError) as refused:
        strict.check(lazy_call())
    assert refused.value.reason == "spiffe_id_invalid"
    assert built == [forged]
    bound = TrustDomainBundles.from_anchors([fed.a.certificate])
    assert bound.bound
    with pytest.raises(AuthenticationError):
        SpiffeBindingCheck(lambda: bound, require_svid=False).check(lazy_call())
    assert len(built) == 2
