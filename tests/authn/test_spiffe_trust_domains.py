"""SPIFFE authorization on real sync and aio servers over real mTLS (issue 15 item 4).

The attack: a federated client-CA file (a.test's CA and b.test's CA), ``allow_trust_domains =
["a.test"]``, and a client certificate saying ``spiffe://a.test/...`` signed by b.test's CA.
grpcio verifies it against the union of the client CAs and accepts the handshake; grpcsec must
refuse the call (``trust_domain_mismatch``) while the honest a.test client of the same set-up is
served. Around it: path prefixes on segment boundaries, exact IDs, trust domains, malformed
SVIDs (zero or two URI SANs, upper case, ``..``, query, fragment, ``http://``), an explicit
``trust_bundles`` mapping for CAs that name no trust domain, the single-domain set-up without
any binding, chains through intermediates, and configurations refused before anything binds.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from grpcsec.errors import ConfigurationError, GrpcsecError
from grpcsec.pki import IssuedCertificate
from grpcsec.server import SecurityConfig, secure_server
from tests.authn.spiffe_material import Federation, make_federation, spiffe_ca, svid
from tests.conftest import call_error, whoami
from tests.server.test_secure_server import run, scrape_until

OK = "ok"
MISMATCH = "unauthenticated/trust_domain_mismatch"
INVALID = "unauthenticated/spiffe_id_invalid"
NOT_ALLOWED = "permission_denied/certificate_not_allowed"


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Federation:
    return make_federation(tmp_path_factory.mktemp("federation"))


def config(
    fed: Federation, client_ca: str, authn: str, name: str = "grpcsec.toml", tls: str = ""
) -> SecurityConfig:
    path = fed.file(name)
    path.write_text(
        f"""
listen = "127.0.0.1:0"
shutdown_grace = "1s"
[tls]
cert = "server.crt"
key = "server.key"
client_ca = "{client_ca}"
{tls}
[authn]
{authn}
[metrics]
listen = "127.0.0.1:0"
"""
    )
    return SecurityConfig.load(path)


def outcome(fed: Federation, target: str, client: IssuedCertificate) -> str:
    """``ok``, or ``code/reason`` of the refusal as the server counted it (the peer only sees
    the code; the reason is read from the server's status by the caller)."""
    credentials = grpc.ssl_channel_credentials(
        fed.a.certificate_pem(), client.key_pem(), client.chain_pem()
    )
    try:
        whoami(target, credentials)
    except grpc.RpcError as error:
        return error.code().name.lower()
    return OK


def judge(fed: Federation, running: Any, clients: dict[str, IssuedCertificate]) -> dict[str, str]:
    """Each client's outcome with the reason the server recorded for it (one call at a time,
    the reason read from the status counters before and after)."""
    results = {}
    for name, client in clients.items():
        before = running.status()["calls"]["denied"]
        code = outcome(fed, running.target, client)
        if code in {OK, "unavailable"}:  # served, or refused by the TLS handshake itself
            results[name] = code
            continue
        after = running.status()["calls"]["denied"][code]
        grown = [r for r, n in after.items() if n > before.get(code, {}).get(r, 0)]
        results[name] = f"{code}/{','.join(grown)}"
    return results


def attack_clients(fed: Federation) -> dict[str, IssuedCertificate]:
    return {
        "honest a.test": svid(fed.a, ["spiffe://a.test/ns/web"]),
        "forged a.test (signed by b.test)": svid(fed.b, ["spiffe://a.test/ns/web"]),
        "honest a.test via intermediate": svid(fed.a_inter, ["spiffe://a.test/ns/api"]),
        "forged a.test via b.test intermediate": svid(fed.b_inter, ["spiffe://a.test/ns/api"]),
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_forged_trust_domain_is_refused_and_the_honest_client_served(
    fed: Federation, kind: str
) -> None:
    """The issue's attack, with its positive control, through intermediates too."""
    cfg = config(fed, "federated.pem", 'allow_trust_domains = ["a.test"]')
    with run(cfg, kind) as running:
        assert judge(fed, running, attack_clients(fed)) == {
            "honest a.test": OK,
            "forged a.test (signed by b.test)": MISMATCH,
            "honest a.test via intermediate": OK,
            "forged a.test via b.test intermediate": MISMATCH,
        }
        series = (
            'grpcsec_calls_denied_total{code="unauthenticated",reason="trust_domain_mismatch"} 2.0'
        )
        assert series in scrape_until(running.metrics_port, series)
        assert running.status()["trust"]["spiffe"] == {
            "trust_domains": {
                "a.test": ["CN=a.test CA,O=SPIFFE test"],
                "b.test": ["CN=b.test CA,O=SPIFFE test"],
            },
            "problems": [],
        }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_prefixes_ids_and_domains_and_malformed_svids(fed: Federation, kind: str) -> None:
    """Path prefixes match whole segments; exact IDs exactly; a malformed SVID is refused as
    such (not merely "not on the list"); a b.test ID signed by a.test's CA is a mismatch."""
    cfg = config(
        fed,
        "federated.pem",
        'allow_spiffe_prefixes = ["spiffe://b.test/ns/prod"]\n'
        'allow_spiffe_ids = ["spiffe://b.test/exact"]\n'
        'allow_trust_domains = ["a.test"]',
    )
    b = fed.b
    clients = {
        "prefix itself": svid(b, ["spiffe://b.test/ns/prod"]),
        "under the prefix": svid(b, ["spiffe://b.test/ns/prod/web"]),
        "same letters, other segment": svid(b, ["spiffe://b.test/ns/production"]),
        "parent of the prefix": svid(b, ["spiffe://b.test/ns"]),
        "exact id": svid(b, ["spiffe://b.test/exact"]),
        "under the exact id": svid(b, ["spiffe://b.test/exact/x"]),
        "prefix id signed by a.test": svid(fed.a, ["spiffe://b.test/ns/prod"]),
        "trust domain member": svid(fed.a, ["spiffe://a.test/any/thing"]),
        "no URI SAN": svid(fed.a, [], dns=["client.a.test"]),
        "two URI SANs": svid(fed.a, ["spiffe://a.test/x", "spiffe://a.test/y"]),
        "SPIFFE ID and https URI": svid(fed.a, ["spiffe://a.test/x", "https://a.test/x"]),
        "upper-case trust domain": svid(fed.a, ["spiffe://A.test/x"]),
        "dot-dot segment": svid(fed.a, ["spiffe://a.test/../x"]),
        "query": svid(fed.a, ["spiffe://a.test/x?y=1"]),
        "fragment": svid(fed.a, ["spiffe://a.test/x#y"]),
        "http URI": svid(fed.a, ["http://a.test/x"]),
    }
    with run(cfg, kind) as running:
        assert judge(fed, running, clients) == {
            "prefix itself": OK,
            "under the prefix": OK,
            "same letters, other segment": NOT_ALLOWED,
            "parent of the prefix": NOT_ALLOWED,
            "exact id": OK,
            "under the exact id": NOT_ALLOWED,
            "prefix id signed by a.test": MISMATCH,
            "trust domain member": OK,
            "no URI SAN": INVALID,
            "two URI SANs": INVALID,
            "SPIFFE ID and https URI": INVALID,
            "upper-case trust domain": INVALID,
            "dot-dot segment": INVALID,
            "query": INVALID,
            "fragment": INVALID,
            "http URI": INVALID,
        }


@pytest.mark.slow
def test_explicit_mapping_binds_cas_that_name_no_trust_domain(fed: Federation) -> None:
    """``trust_bundles = {"a.test" = "p.pem"}`` over a client-CA file of two plain CAs: p's
    a.test client is served; q (bound to nothing) can speak for no trust domain."""
    cfg = config(
        fed,
        "plain.pem",
        'allow_trust_domains = ["a.test", "b.test"]\ntrust_bundles = {"a.test" = "p.pem"}',
    )
    clients = {
        "a.test from p": svid(fed.p, ["spiffe://a.test/ns/web"]),
        "a.test from q": svid(fed.q, ["spiffe://a.test/ns/web"]),
        "b.test from q": svid(fed.q, ["spiffe://b.test/ns/web"]),
    }
    with run(cfg, "sync") as running:
        assert judge(fed, running, clients) == {
            "a.test from p": OK,
            "a.test from q": MISMATCH,
            "b.test from q": MISMATCH,
        }


@pytest.mark.slow
def test_mixed_bundle_unbound_ca_names_no_spiffe_id_but_its_cn_clients_are_served(
    fed: Federation, tmp_path: Path
) -> None:
    """a.test's CA plus a plain CA in one file: the plain CA's SPIFFE IDs are refused (some
    anchor is bound, so the rule is on), its clients without a SPIFFE ID go to the other
    allow-list entries as before."""
    mixed = fed.file("mixed.pem")
    mixed.write_bytes(fed.a.certificate_pem() + fed.p.certificate_pem())
    cfg = config(fed, "mixed.pem", 'allow_trust_domains = ["a.test"]\nallow_cns = ["svid"]')
    clients = {
        "a.test from a": svid(fed.a, ["spiffe://a.test/x"]),
        "a.test from plain": svid(fed.p, ["spiffe://a.test/x"]),
        "no URI from plain, CN allowed": svid(fed.p, [], dns=["plain.internal"]),
    }
    with run(cfg, "aio") as running:
        assert judge(fed, running, clients) == {
            "a.test from a": OK,
            "a.test from plain": MISMATCH,
            "no URI from plain, CN allowed": OK,
        }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_policy_and_any_client_never_see_a_forged_spiffe_id(fed: Federation, kind: str) -> None:
    """No SPIFFE allow-list at all: an A43 policy whose principal is the a.test ID, behind
    ``allow_any_client``. The forged ID is refused before the policy could match it."""
    policy = fed.file(f"policy-{kind}.json")
    policy.write_text(
        json.dumps(
            {
                "name": "spiffe",
                "allow_rules": [
                    {"name": "web", "source": {"principals": ["spiffe://a.test/ns/web"]}}
                ],
            }
        )
    )
    cfg = config(
        fed,
        "federated.pem",
        f'allow_any_client = true\n[authz]\npolicy = "{policy.name}"',
        name=f"policy-{kind}.toml",
    )
    clients = {
        "honest": svid(fed.a, ["spiffe://a.test/ns/web"]),
        "forged": svid(fed.b, ["spiffe://a.test/ns/web"]),
        "other id": svid(fed.a, ["spiffe://a.test/ns/api"]),
    }
    with run(cfg, kind) as running:
        assert judge(fed, running, clients) == {
            "honest": OK,
            "forged": MISMATCH,
            "other id": "permission_denied/policy_denied",
        }


@pytest.mark.slow
def test_single_domain_without_bindings_keeps_working(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    """No anchor names a trust domain (one private CA, as before): SPIFFE allow-lists work as
    they did, malformed SVIDs are still refused, and the start-up log says the IDs are not
    bound to trust domains."""
    caplog.set_level(logging.WARNING, logger="grpcsec")
    cfg = config(fed, "p.pem", 'allow_spiffe_ids = ["spiffe://a.test/ns/web"]')
    clients = {
        "listed": svid(fed.p, ["spiffe://a.test/ns/web"]),
        "not listed": svid(fed.p, ["spiffe://a.test/ns/other"]),
        "two URI SANs": svid(fed.p, ["spiffe://a.test/ns/web", "spiffe://a.test/ns/x"]),
    }
    with run(cfg, "sync") as running:
        assert judge(fed, running, clients) == {
            "listed": OK,
            "not listed": NOT_ALLOWED,
            "two URI SANs": INVALID,
        }
    assert "not bound to their trust domain" in caplog.text


@pytest.mark.parametrize(
    ("client_ca", "authn", "message"),
    [
        ("ambiguous.pem", 'allow_trust_domains = ["a.test"]', "names several trust domains"),
        ("pathca.pem", 'allow_trust_domains = ["a.test"]', "is not a trust domain"),
        (
            "federated.pem",
            'allow_trust_domains = ["a.test"]\ntrust_bundles = {"b.test" = "a.pem"}',
            "names trust domain a.test, not b.test",
        ),
        ("federated.pem", 'allow_spiffe_prefixes = ["spiffe://a.test/"]', "SPIFFE"),
        (
            "federated.pem",
            'trust_bundles = {"A.test" = "a.pem"}',
            "trust domain 'A.test': .*lowercase",
        ),
        ("federated.pem", 'trust_bundles = {"a.test" = "missing.pem"}', "missing.pem"),
    ],
)
def test_bad_trust_domain_configuration_fails_before_binding(
    fed: Federation, client_ca: str, authn: str, message: str
) -> None:
    fed.file("ambiguous.pem").write_bytes(spiffe_ca(["a.test", "b.test"], "both").certificate_pem())
    fed.file("pathca.pem").write_bytes(
        spiffe_ca([], "path CA", uris=["spiffe://a.test/ca"]).certificate_pem()
    )
    with pytest.raises(GrpcsecError, match=message) as caught:
        secure_server(config(fed, client_ca, authn)).stop(0)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ConfigurationError) == ("missing" not in message)


@pytest.mark.slow
def test_client_ca_rotated_in_place_rebinds_trust_domains(fed: Federation) -> None:
    """A new a.test CA added to the watched client-CA file vouches for a.test at once; b.test's
    CA still cannot, before or after."""
    rotating = fed.file("rotating.pem")
    rotating.write_bytes(fed.a.certificate_pem() + fed.b.certificate_pem())
    cfg = config(
        fed, "rotating.pem", 'allow_trust_domains = ["a.test"]', tls='reload_interval = "100ms"'
    )
    next_a = spiffe_ca(["a.test"], "a.test next CA")
    clients = {
        "from the next a.test CA": svid(next_a, ["spiffe://a.test/x"]),
        "forged by b.test": svid(fed.b, ["spiffe://a.test/x"]),
    }
    with run(cfg, "sync") as running:
        before = judge(fed, running, clients)
        staged = fed.file(".rotating.pem.tmp")
        staged.write_bytes(rotating.read_bytes() + next_a.certificate_pem())
        staged.replace(rotating)
        deadline = time.monotonic() + 10
        while outcome(fed, running.target, clients["from the next a.test CA"]) != OK:
            assert time.monotonic() < deadline, "the rotated client CA was not picked up"
            time.sleep(0.1)
        after = judge(fed, running, clients)
    assert before == {"from the next a.test CA": "unavailable", "forged by b.test": MISMATCH}
    assert after == {"from the next a.test CA": OK, "forged by b.test": MISMATCH}


def test_trust_bundles_need_a_client_ca() -> None:
    with pytest.raises(ConfigurationError, match=r"trust_bundles .* set tls\.client_ca"):
        SecurityConfig.from_mapping(
            {
                "tls": {"cert": "s.crt", "key": "s.key"},
                "authn": {"trust_bundles": {"a.test": "a.pem"}},
            }
        )


def test_attack_error_code_seen_by_the_peer_is_generic(fed: Federation) -> None:
    """The peer learns UNAUTHENTICATED and the generic text, never the reason."""
    cfg = config(fed, "federated.pem", 'allow_trust_domains = ["a.test"]')
    with run(cfg, "sync") as running:
        forged = svid(fed.b, ["spiffe://a.test/ns/web"])
        credentials = grpc.ssl_channel_credentials(
            fed.a.certificate_pem(), forged.key_pem(), forged.chain_pem()
        )
        error = call_error(running.target, credentials)
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        assert error.details() == "authentication failed"
