"""Evaluation conformance (authz-a43.md §5, §6, §7), table-driven, plus grpc-go's end-to-end
authorization cases (``authz/grpc_authz_end2end_test.go``) replayed as pure evaluations.

Rows are (id, policy, request, expected outcome), the outcome being (decision, matched rule).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography import x509

from grpcsec.authz import Decision, peer_principals
from grpcsec.authz.request import joined_headers
from grpcsec.identity import Peer, TransportSecurity
from grpcsec.pki import CertificateAuthority, SubjectAltNames
from tests.authz.conftest import (
    METHOD,
    PLAINTEXT,
    STREAMING,
    TLS_NO_CERT,
    cert_peer,
    decide,
    grpc_go_client1_subject,
    issue_client_pem,
    outcome,
    peer_from_pem,
    policy_json,
    request,
    self_signed_pem,
)

ALLOW_ALL = {"name": "allow_all"}


def allow_if(**rule: Any) -> str:
    """A policy allowing only what ``rule`` matches (rule name "r")."""
    return policy_json([{"name": "r", **rule}])


def paths(*patterns: str) -> dict[str, Any]:
    return {"request": {"paths": list(patterns)}}


def headers(*entries: tuple[str, list[str]]) -> dict[str, Any]:
    return {"request": {"headers": [{"key": k, "values": v} for k, v in entries]}}


def principals(*patterns: str) -> dict[str, Any]:
    return {"source": {"principals": list(patterns)}}


ALLOWED = ("allow", "r")
DENIED = ("deny", None)

# -- §5.1 path -------------------------------------------------------------------------------------
PATH_ROWS = [
    ("exact", paths(METHOD), METHOD, ALLOWED),
    ("exact-other-method", paths(METHOD), STREAMING, DENIED),
    ("service-prefix", paths("/grpc.testing.TestService/*"), STREAMING, ALLOWED),
    ("other-service-prefix", paths("/grpc.testing.Other/*"), METHOD, DENIED),
    ("method-suffix", paths("*/UnaryCall"), METHOD, ALLOWED),
    ("star-matches-every-rpc", paths("*"), METHOD, ALLOWED),
    (
        "path-is-matched-with-leading-slash",
        paths("grpc.testing.TestService/UnaryCall"),
        METHOD,
        DENIED,
    ),
    ("paths-are-ored", paths("/x.Y/Z", METHOD), METHOD, ALLOWED),
    ("case-sensitive", paths(METHOD.lower()), METHOD, DENIED),
    ("empty-paths-no-constraint", paths(), METHOD, ALLOWED),
]


@pytest.mark.parametrize(
    ("rule", "method", "expected"),
    [row[1:] for row in PATH_ROWS],
    ids=[row[0] for row in PATH_ROWS],
)
def test_path(rule: dict[str, Any], method: str, expected: tuple[str, str | None]) -> None:
    assert outcome(decide(allow_if(**rule), request(method))) == expected


# -- §5.2 header keys are lowercased ---------------------------------------------------------------
def test_policy_header_key_is_lowercased_before_matching() -> None:
    policy = allow_if(**headers(("X-User-Role", ["admin"])))
    assert outcome(decide(policy, request(metadata=[("x-user-role", "admin")]))) == ALLOWED


def test_request_metadata_keys_are_lowercased_too() -> None:
    policy = allow_if(**headers(("x-user-role", ["admin"])))
    assert outcome(decide(policy, request(metadata=[("X-User-Role", "admin")]))) == ALLOWED


@pytest.mark.parametrize("key", ["content-type", "user-agent", "authorization"])
def test_ordinary_headers_can_be_matched(key: str) -> None:
    policy = allow_if(**headers((key, ["v*"])))
    assert outcome(decide(policy, request(metadata=[(key, "value")]))) == ALLOWED


# -- §5.3 header values ----------------------------------------------------------------------------
HEADER_ROWS = [
    ("exact", [("x-role", ["admin"])], [("x-role", "admin")], ALLOWED),
    ("exact-no-match", [("x-role", ["admin"])], [("x-role", "user")], DENIED),
    ("values-are-ored", [("x-role", ["admin", "ops"])], [("x-role", "ops")], ALLOWED),
    (
        "repeated-values-joined",
        [("x-role", ["admin,user"])],
        [("x-role", "admin"), ("x-role", "user")],
        ALLOWED,
    ),
    (
        "joined-no-exact-part",
        [("x-role", ["admin"])],
        [("x-role", "admin"), ("x-role", "user")],
        DENIED,
    ),
    (
        "joined-order-kept",
        [("x-role", ["user,admin"])],
        [("x-role", "admin"), ("x-role", "user")],
        DENIED,
    ),
    ("joined-prefix", [("x-role", ["admin*"])], [("x-role", "admin"), ("x-role", "user")], ALLOWED),
    ("joined-no-space", [("x-role", ["a, b"])], [("x-role", "a"), ("x-role", "b")], DENIED),
    (
        "joined-across-other-keys",
        [("x-a", ["1,2"])],
        [("x-a", "1"), ("x-b", "z"), ("x-a", "2")],
        ALLOWED,
    ),
    ("absent-no-match", [("x-role", ["admin"])], [], DENIED),
    ("absent-fails-presence", [("x-role", ["*"])], [("x-other", "v")], DENIED),
    ("absent-fails-empty-exact", [("x-role", [""])], [], DENIED),
    ("empty-fails-presence", [("x-role", ["*"])], [("x-role", "")], DENIED),
    ("empty-matches-empty-exact", [("x-role", [""])], [("x-role", "")], ALLOWED),
    ("empty-matches-empty-prefix", [("x-role", ["*", "x*"])], [("x-role", "")], DENIED),
    ("present-matches-presence", [("x-role", ["*"])], [("x-role", "anything")], ALLOWED),
    ("every-header-entry", [("x-a", ["1"]), ("x-b", ["2"])], [("x-a", "1"), ("x-b", "2")], ALLOWED),
    ("every-header-entry-one-missing", [("x-a", ["1"]), ("x-b", ["2"])], [("x-a", "1")], DENIED),
    ("same-key-twice-both-apply", [("x-a", ["1*"]), ("x-a", ["*2"])], [("x-a", "1-2")], ALLOWED),
    ("same-key-twice-one-fails", [("x-a", ["1*"]), ("x-a", ["*3"])], [("x-a", "1-2")], DENIED),
    ("suffix", [("x-a", ["*.example.com"])], [("x-a", "api.example.com")], ALLOWED),
]


@pytest.mark.parametrize(
    ("entries", "metadata", "expected"),
    [row[1:] for row in HEADER_ROWS],
    ids=[row[0] for row in HEADER_ROWS],
)
def test_header_values(
    entries: list[tuple[str, list[str]]],
    metadata: list[tuple[str, str]],
    expected: tuple[str, str | None],
) -> None:
    assert outcome(decide(allow_if(**headers(*entries)), request(metadata=metadata))) == expected


def test_bin_header_values_are_matched_base64_encoded() -> None:
    raw = b"\x00\x01\xfe\xff"
    encoded = base64.b64encode(raw).decode()
    assert encoded == "AAH+/w=="
    policy = allow_if(**headers(("x-trace-bin", [encoded])))
    assert outcome(decide(policy, request(metadata=[("x-trace-bin", raw)]))) == ALLOWED
    raw_text_policy = allow_if(**headers(("x-trace-bin", [raw.decode("latin-1")])))
    assert outcome(decide(raw_text_policy, request(metadata=[("x-trace-bin", raw)]))) == DENIED


def test_repeated_bin_values_are_each_encoded_then_joined() -> None:
    assert joined_headers([("a-bin", b"\x01"), ("a-bin", b"\x02"), ("b", "x")]) == {
        "a-bin": "AQ==,Ag==",
        "b": "x",
    }


def test_bin_value_given_as_text_is_encoded_from_its_utf8_bytes() -> None:
    assert joined_headers([("a-bin", "é")]) == {"a-bin": base64.b64encode("é".encode()).decode()}


def test_text_value_given_as_bytes_is_decoded() -> None:
    assert joined_headers([("a", b"v")]) == {"a": "v"}


# -- §5.4 principals -------------------------------------------------------------------------------
SPIFFE_ID = "spiffe://foo.bar.com/client/workload/1"
URI_AND_DNS = cert_peer(uris=[SPIFFE_ID, "https://other.example/x"], dns=["client.example.com"])
DNS_ONLY = cert_peer(dns=["a.example.com", "b.example.com"], subject="CN=dns-client,O=Acme")
SUBJECT_ONLY = cert_peer(subject="CN=test-client1,O=gRPC,L=SVL,ST=CA,C=US")
LOCAL = Peer(address="unix:/tmp/s", transport=TransportSecurity.LOCAL)

PRINCIPAL_ROWS: list[tuple[str, list[str], Peer, tuple[str, str | None]]] = [
    # not TLS: nothing matches, not even "" or "*"
    ("plaintext-exact", ["spiffe://x"], PLAINTEXT, DENIED),
    ("plaintext-star", ["*"], PLAINTEXT, DENIED),
    ("plaintext-empty", [""], PLAINTEXT, DENIED),
    ("plaintext-star-or-empty", ["*", ""], PLAINTEXT, DENIED),
    ("local-credentials-are-not-tls", ["*", ""], LOCAL, DENIED),
    # TLS without a client certificate: the identity is ""
    ("no-cert-empty", [""], TLS_NO_CERT, ALLOWED),
    ("no-cert-star", ["*"], TLS_NO_CERT, DENIED),
    ("no-cert-star-or-empty", ["*", ""], TLS_NO_CERT, ALLOWED),
    ("no-cert-prefix", ["spiffe://*"], TLS_NO_CERT, DENIED),
    # URI SANs first; any URI SAN may match
    ("uri-exact", [SPIFFE_ID], URI_AND_DNS, ALLOWED),
    ("uri-second-san", ["https://other.example/x"], URI_AND_DNS, ALLOWED),
    ("uri-prefix", ["spiffe://foo.bar.com/*"], URI_AND_DNS, ALLOWED),
    ("uri-star", ["*"], URI_AND_DNS, ALLOWED),
    ("uri-cert-not-empty", [""], URI_AND_DNS, DENIED),
    # ... and with URI SANs present, DNS SANs and subject are not consulted (A41, Go; not C++)
    ("uri-hides-dns", ["client.example.com"], URI_AND_DNS, DENIED),
    ("uri-hides-subject", ["CN=client"], URI_AND_DNS, DENIED),
    # DNS SANs when there is no URI SAN
    ("dns-exact", ["b.example.com"], DNS_ONLY, ALLOWED),
    ("dns-suffix", ["*.example.com"], DNS_ONLY, ALLOWED),
    ("dns-hides-subject", ["CN=dns-client,O=Acme"], DNS_ONLY, DENIED),
    # the subject DN, RFC 4514, when there is no URI or DNS SAN; not the bare CN
    ("subject-dn", ["CN=test-client1,O=gRPC,L=SVL,ST=CA,C=US"], SUBJECT_ONLY, ALLOWED),
    ("subject-not-bare-cn", ["test-client1"], SUBJECT_ONLY, DENIED),
    ("subject-prefix", ["CN=test-client1,*"], SUBJECT_ONLY, ALLOWED),
    # principals are ORed; empty means no constraint (plaintext included)
    ("ored", ["nope", "*.example.com"], DNS_ONLY, ALLOWED),
    ("empty-list-no-constraint", [], PLAINTEXT, ALLOWED),
]


@pytest.mark.parametrize(
    ("patterns", "peer", "expected"),
    [row[1:] for row in PRINCIPAL_ROWS],
    ids=[row[0] for row in PRINCIPAL_ROWS],
)
def test_principals(patterns: list[str], peer: Peer, expected: tuple[str, str | None]) -> None:
    assert outcome(decide(allow_if(**principals(*patterns)), request(peer=peer))) == expected


def test_principal_deny_rules_do_not_stop_plaintext_peers() -> None:
    policy = policy_json([ALLOW_ALL], deny=[{"name": "deny_any_cert", **principals("*", "")}])
    assert outcome(decide(policy, request(peer=PLAINTEXT))) == ("allow", "allow_all")
    assert outcome(decide(policy, request(peer=TLS_NO_CERT))) == ("deny", "deny_any_cert")


def test_principal_identities_from_real_certificates(authority: CertificateAuthority) -> None:
    """The identity set from certificates issued by grpcsec.pki, read by grpcsec.identity."""
    both = issue_client_pem(
        authority, SubjectAltNames.build(uris=[SPIFFE_ID], dns=["c.example.com"])
    )
    dns = issue_client_pem(authority, SubjectAltNames.build(dns=["c.example.com", "d.example.com"]))
    # email and IP SANs are never used: this certificate falls through to its subject
    other = issue_client_pem(
        authority,
        SubjectAltNames.build(emails=["c@example.com"], ips=["10.0.0.1"]),
        common_name="svc",
        organization="Acme",
    )
    assert peer_principals(peer_from_pem(both)) == (SPIFFE_ID,)
    assert peer_principals(peer_from_pem(dns)) == ("c.example.com", "d.example.com")
    assert peer_principals(peer_from_pem(other)) == ("CN=svc,O=Acme",)
    assert peer_principals(peer_from_pem(both, transport=b"tls")) == (SPIFFE_ID,)
    assert peer_principals(peer_from_pem(both, transport=b"insecure")) is None
    assert peer_principals(TLS_NO_CERT) == ("",)


def test_subject_dn_of_grpc_go_client1_is_rfc4514_reversed() -> None:
    """authz-a43.md §5.4: C=US, ST=CA, L=SVL, O=gRPC, CN=test-client1 is seen as
    ``CN=test-client1,O=gRPC,L=SVL,ST=CA,C=US`` (as Go, Java and cryptography write it)."""
    pem = self_signed_pem(grpc_go_client1_subject())
    peer = peer_from_pem(pem)
    assert peer_principals(peer) == ("CN=test-client1,O=gRPC,L=SVL,ST=CA,C=US",)
    policy = allow_if(**principals("CN=test-client1,O=gRPC,L=SVL,ST=CA,C=US"))
    assert outcome(decide(policy, request(peer=peer))) == ALLOWED
    assert outcome(decide(allow_if(**principals("test-client1")), request(peer=peer))) == DENIED


def test_email_and_ip_sans_are_never_principals() -> None:
    pem = self_signed_pem(
        grpc_go_client1_subject(),
        [x509.RFC822Name("a@example.com")],
    )
    peer = peer_from_pem(pem)
    assert outcome(decide(allow_if(**principals("a@example.com")), request(peer=peer))) == DENIED


# -- §6 rule matching ------------------------------------------------------------------------------
def test_a_rule_with_only_a_name_matches_every_rpc() -> None:
    for peer in (PLAINTEXT, TLS_NO_CERT, URI_AND_DNS):
        assert outcome(decide(allow_if(), request("/any.Thing/At", peer))) == ALLOWED
        denied = decide(policy_json([ALLOW_ALL], deny=[{"name": "deny_all"}]), request(peer=peer))
        assert outcome(denied) == ("deny", "deny_all")


def test_source_paths_and_headers_are_anded() -> None:
    rule = {
        "name": "r",
        **principals("spiffe://foo.bar.com/*"),
        "request": {"paths": [METHOD], "headers": [{"key": "x-a", "values": ["1"]}]},
    }
    policy = policy_json([rule])
    good = request(METHOD, URI_AND_DNS, [("x-a", "1")])
    assert outcome(decide(policy, good)) == ALLOWED
    assert outcome(decide(policy, request(STREAMING, URI_AND_DNS, [("x-a", "1")]))) == DENIED
    assert outcome(decide(policy, request(METHOD, DNS_ONLY, [("x-a", "1")]))) == DENIED
    assert outcome(decide(policy, request(METHOD, URI_AND_DNS, [("x-a", "2")]))) == DENIED


# -- §7 evaluation order and matched rule ----------------------------------------------------------
def test_deny_wins_over_allow() -> None:
    policy = policy_json([ALLOW_ALL], deny=[{"name": "deny_unary", **paths(METHOD)}])
    assert outcome(decide(policy, request(METHOD))) == ("deny", "deny_unary")
    assert outcome(decide(policy, request(STREAMING))) == ("allow", "allow_all")


def test_default_deny_when_no_allow_rule_matches() -> None:
    decision = decide(policy_json([{"name": "a", **paths("/x.Y/Z")}]), request(METHOD))
    assert decision == Decision(allowed=False, policy_name="authz", matched_rule=None)
    assert decision.default_deny
    assert decision.to_json() == {"decision": "deny", "matched_rule": None, "policy_name": "authz"}


def test_matched_rule_is_the_first_in_document_order_by_bare_name() -> None:
    allow = [{"name": "zeta", **paths("/grpc.testing.*")}, {"name": "alpha", **paths("*")}]
    deny = [{"name": "z_deny", **paths("*/StreamingInputCall")}, {"name": "a_deny", **paths("*")}]
    policy = policy_json(allow, deny=deny, name="pol")
    assert outcome(decide(policy, request(STREAMING))) == ("deny", "z_deny")  # not a_deny (sorted)
    allow_only = policy_json(allow, name="pol")
    decision = decide(allow_only, request(METHOD))
    assert outcome(decision) == ("allow", "zeta")  # bare name, not "pol_zeta"
    assert decision.policy_name == "pol"


def test_rule_order_does_not_change_the_decision() -> None:
    rules = [
        {"name": "a", **paths(METHOD)},
        {"name": "b", **principals("spiffe://x")},
        {"name": "c", **headers(("x-a", ["1"]))},
    ]
    for req in (request(METHOD), request(STREAMING), request(STREAMING, metadata=[("x-a", "1")])):
        forward = decide(policy_json(rules), req).allowed
        backward = decide(policy_json(list(reversed(rules))), req).allowed
        assert forward == backward


# -- grpc-go authz/grpc_authz_end2end_test.go ------------------------------------------------------
GO_POLICIES: dict[str, dict[str, Any]] = {
    "DeniesRPCMatchInDenyNoMatchInAllow": {
        "name": "authz",
        "allow_rules": [
            {
                "name": "allow_StreamingOutputCall",
                **paths("/grpc.testing.TestService/StreamingOutputCall"),
            }
        ],
        "deny_rules": [
            {
                "name": "deny_TestServiceCalls",
                "request": {
                    "paths": ["/grpc.testing.TestService/*"],
                    "headers": [{"key": "key-abc", "values": ["val-abc", "val-def"]}],
                },
            }
        ],
    },
    "DeniesRPCMatchInDenyAndAllow": {
        "name": "authz",
        "allow_rules": [{"name": "allow_all", **paths("*")}],
        "deny_rules": [{"name": "deny_all", **paths("*")}],
    },
    "AllowsRPCNoMatchInDenyMatchInAllow": {
        "name": "authz",
        "allow_rules": [{"name": "allow_all"}],
        "deny_rules": [
            {
                "name": "deny_TestServiceCalls",
                "request": {
                    "paths": [METHOD, STREAMING],
                    "headers": [{"key": "key-abc", "values": ["val-abc", "val-def"]}],
                },
            }
        ],
    },
    "DeniesRPCNoMatchInDenyAndAllow": {
        "name": "authz",
        "allow_rules": [{"name": "allow_some_user", **principals("some_user")}],
        "deny_rules": [
            {
                "name": "deny_StreamingOutputCall",
                **paths("/grpc.testing.TestService/StreamingOutputCall"),
            }
        ],
    },
    "AllowsRPCEmptyDenyMatchInAllow": {
        "name": "authz",
        "allow_rules": [
            {"name": "allow_UnaryCall", **paths(METHOD)},
            {"name": "allow_StreamingInputCall", **paths(STREAMING)},
        ],
    },
    "DeniesRPCEmptyDenyNoMatchInAllow": {
        "name": "authz",
        "allow_rules": [
            {
                "name": "allow_StreamingOutputCall",
                **paths("/grpc.testing.TestService/StreamingOutputCall"),
            }
        ],
    },
    "DeniesRPCRequestWithPrincipalsFieldOnUnauthenticatedConnection": {
        "name": "authz",
        "allow_rules": [{"name": "allow_authenticated", **principals("*", "")}],
    },
    "DeniesRPCRequestNoMatchInAllowFailsPresenceMatch": {
        "name": "authz",
        "allow_rules": [
            {
                "name": "allow_TestServiceCalls",
                "request": {
                    "paths": ["/grpc.testing.TestService/*"],
                    "headers": [{"key": "key-abc", "values": ["*"]}],
                },
            }
        ],
    },
}

# Each case is checked for the unary and the streaming method, over plaintext, as upstream.
GO_CASES: list[
    tuple[str, list[tuple[str, str]], tuple[str, str | None], tuple[str, str | None]]
] = [
    (
        "DeniesRPCMatchInDenyNoMatchInAllow",
        [("key-abc", "val-abc")],
        ("deny", "deny_TestServiceCalls"),
        ("deny", "deny_TestServiceCalls"),
    ),
    ("DeniesRPCMatchInDenyAndAllow", [], ("deny", "deny_all"), ("deny", "deny_all")),
    (
        "AllowsRPCNoMatchInDenyMatchInAllow",
        [("key-xyz", "val-xyz")],
        ("allow", "allow_all"),
        ("allow", "allow_all"),
    ),
    ("DeniesRPCNoMatchInDenyAndAllow", [], DENIED, DENIED),
    (
        "AllowsRPCEmptyDenyMatchInAllow",
        [],
        ("allow", "allow_UnaryCall"),
        ("allow", "allow_StreamingInputCall"),
    ),
    ("DeniesRPCEmptyDenyNoMatchInAllow", [], DENIED, DENIED),
    ("DeniesRPCRequestWithPrincipalsFieldOnUnauthenticatedConnection", [], DENIED, DENIED),
    ("DeniesRPCRequestNoMatchInAllowFailsPresenceMatch", [("key-abc", "")], DENIED, DENIED),
]


@pytest.mark.parametrize(
    ("name", "metadata", "unary", "streaming"), GO_CASES, ids=[case[0] for case in GO_CASES]
)
def test_grpc_go_end_to_end_case(
    name: str,
    metadata: list[tuple[str, str]],
    unary: tuple[str, str | None],
    streaming: tuple[str, str | None],
) -> None:
    policy = json.dumps(GO_POLICIES[name])
    assert outcome(decide(policy, request(METHOD, PLAINTEXT, metadata))) == unary
    assert outcome(decide(policy, request(STREAMING, PLAINTEXT, metadata))) == streaming


@pytest.mark.parametrize("peer", [TLS_NO_CERT, URI_AND_DNS], ids=["tls", "mtls"])
def test_grpc_go_allows_principals_star_or_empty_on_tls_and_mtls(peer: Peer) -> None:
    """``TestAllowsRPCRequestWithPrincipalsFieldOn{TLS,MTLS}AuthenticatedConnection``."""
    policy = json.dumps(
        GO_POLICIES["DeniesRPCRequestWithPrincipalsFieldOnUnauthenticatedConnection"]
    )
    assert outcome(decide(policy, request(METHOD, peer))) == ("allow", "allow_authenticated")
