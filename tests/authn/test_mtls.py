"""Client-certificate allow-lists: each kind of entry with its negative control, fail-closed
defaults, per-method lists, and method patterns. Peers are built from auth contexts exactly
as grpcio reports them (grpcio-security.md §2.1), from certificates issued by grpcsec.pki; one
test runs per-method lists on real servers."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import hashes

from grpcsec.authn import CallInfo, ClientCertAllowList, RequireClientCert
from grpcsec.authn.methods import MethodRules, MethodSet, MethodTable, parse_method_pattern
from grpcsec.authn.mtls import normalize_fingerprint
from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.errors import AuthenticationError, AuthorizationError, ConfigurationError
from grpcsec.identity import Peer
from grpcsec.interceptors import Guard
from grpcsec.pki import IssuedCertificate
from tests.authn.conftest import BIDI, SERVICE, UNARY, invoke, invoke_error, serve_guarded
from tests.conftest import CLIENT_SPIFFE_ID, Pki


def peer_of(issued: IssuedCertificate, transport: bytes = b"ssl") -> Peer:
    pem = issued.chain_pem().split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
    return Peer.from_auth_context(
        {"transport_security_type": [transport], "x509_pem_cert": [pem]}, address="ipv4:1.2.3.4:5"
    )


def fingerprint(issued: IssuedCertificate) -> str:
    return issued.certificate.fingerprint(hashes.SHA256()).hex()


# (allow-list entry, value matching the session client, a non-matching value)
ENTRIES: list[tuple[str, str, str]] = [
    ("spiffe_ids", CLIENT_SPIFFE_ID, "spiffe://example.org/ns/default/sa/other"),
    ("trust_domains", "example.org", "other.org"),
    ("dns_names", "CLIENT.internal", "server.internal"),
    ("uris", CLIENT_SPIFFE_ID, "https://example.org/client"),
    ("common_names", "client-1", "client-2"),
    ("subjects", "CN=client-1,O=Acme", "CN=client-1,O=Evil"),
]


@pytest.mark.parametrize(("entry", "good", "bad"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_each_entry_kind_allows_its_match_only(pki: Pki, entry: str, good: str, bad: str) -> None:
    client = peer_of(pki.client)
    assert ClientCertAllowList(**{entry: [good]}).match(client) is not None
    assert ClientCertAllowList(**{entry: [bad]}).match(client) is None


def test_fingerprint_entry_in_any_common_form(pki: Pki) -> None:
    client = peer_of(pki.client)
    hexed = fingerprint(pki.client)
    colons = ":".join(hexed[i : i + 2] for i in range(0, 64, 2)).upper()
    for form in (hexed, colons, f"sha256:{hexed}"):
        assert ClientCertAllowList(fingerprints=[form]).match(client) == (
            f"fingerprint={client.fingerprint_sha256}"
        )
    assert ClientCertAllowList(fingerprints=[fingerprint(pki.server)]).match(client) is None


def test_empty_list_allows_nobody_and_any_verified_is_explicit(pki: Pki) -> None:
    client = peer_of(pki.client)
    assert ClientCertAllowList().empty
    assert ClientCertAllowList().match(client) is None
    assert ClientCertAllowList.nobody().match(client) is None
    assert ClientCertAllowList.any_verified_client().match(client) == "any_verified_client"


def test_no_certificate_or_no_tls_never_matches(pki: Pki) -> None:
    anything = ClientCertAllowList.any_verified_client()
    assert anything.match(peer_of(pki.client, transport=b"insecure")) is None
    tls_only = Peer.from_auth_context({"transport_security_type": [b"ssl"]})
    assert anything.match(tls_only) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spiffe_ids": ["spiffe://Bad Domain/x"]}, "SPIFFE"),
        ({"trust_domains": ["bad domain"]}, "trust domain"),
        ({"dns_names": ["-bad-.example"]}, "DNS"),
        ({"uris": ["no-scheme"]}, "URI"),
        ({"common_names": [" padded"]}, "common name"),
        ({"subjects": ["not a dn"]}, "subject DN"),
        ({"fingerprints": ["abcd"]}, "fingerprint"),
    ],
)
def test_bad_entries_fail_when_the_list_is_built(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ClientCertAllowList(**kwargs)


def call(method: str, client: Peer) -> CallInfo:
    return CallInfo(method=method, metadata=(), peer=client)


def test_check_codes_for_each_failure(pki: Pki, intruder_client: Any) -> None:
    check = RequireClientCert(ClientCertAllowList(spiffe_ids=[CLIENT_SPIFFE_ID]))
    check.check(call("/a.B/C", peer_of(pki.client)))
    with pytest.raises(AuthorizationError) as denied:
        check.check(call("/a.B/C", peer_of(intruder_client)))
    assert getattr(denied.value, "reason", None) == "certificate_not_allowed"
    with pytest.raises(AuthenticationError) as plaintext:
        check.check(call("/a.B/C", peer_of(pki.client, transport=b"insecure")))
    assert plaintext.value.reason == "no_transport_security"
    with pytest.raises(AuthenticationError) as no_cert:
        check.check(call("/a.B/C", Peer.from_auth_context({"transport_security_type": [b"ssl"]})))
    assert no_cert.value.reason == "no_client_certificate"


def test_empty_allow_list_warns_at_construction(caplog: pytest.LogCaptureFixture) -> None:
    RequireClientCert(ClientCertAllowList())
    assert "every call is denied" in caplog.text


def test_fingerprint_normalization() -> None:
    assert normalize_fingerprint("ab" * 32) == "AB" * 32
    with pytest.raises(ConfigurationError):
        normalize_fingerprint("zz" * 32)


# -- method patterns -------------------------------------------------------------------------------
def test_method_rules_most_specific_wins() -> None:
    rules = MethodRules("default", {"/pkg.Svc/*": "service", "/pkg.Svc/Get": "method"})
    assert rules.for_method("/pkg.Svc/Get") == "method"
    assert rules.for_method("/pkg.Svc/List") == "service"
    assert rules.for_method("/pkg.Other/Get") == "default"
    assert rules.for_method("garbage") == "default"
    assert "/pkg.Svc/Get" in MethodSet(["/pkg.Svc/Get"])
    assert "/pkg.Svc/List" not in MethodSet(["/pkg.Svc/Get"])


def test_method_table_remembers_within_its_bound_and_answers_the_same() -> None:
    """The per-call table gives what the rules and the exempt set give, from memory the second
    time; a flood of new method strings (the caller chooses them) only makes it start over."""
    table = MethodTable(
        "default", {"/pkg.Svc/*": "service", "/pkg.Svc/Get": "method"}, ["/pkg.Health/*"]
    )
    for _ in range(2):
        assert table.for_method("/pkg.Svc/Get") == "method"
        assert table.for_method("/pkg.Svc/List") == "service"
        assert table.for_method("/pkg.Other/Get") == "default"
        assert table.for_method("/pkg.Health/Check") is None
    for i in range(3 * MethodTable.SIZE):
        assert table.for_method(f"/flood.S{i}/M") == "default"
        assert len(table._memo) <= MethodTable.SIZE
    assert table.for_method("/pkg.Health/Check") is None
    assert table.for_method("/pkg.Svc/Get") == "method"


@pytest.mark.parametrize(
    "pattern", ["pkg.Svc/Get", "/pkg.Svc", "/pkg.Svc/Get/x", "*", "/pkg Svc/*"]
)
def test_bad_method_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ConfigurationError, match="method pattern"):
        parse_method_pattern(pattern)


def test_duplicate_patterns_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="twice"):
        MethodRules(0, [("/a.B/*", 1), ("/a.B/*", 2)])


# -- on real servers -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_per_method_allow_lists_on_a_real_server(kind: str, pki: Pki, intruder_client: Any) -> None:
    """Unary is open to any verified client; Bidi only to the session client; the intruder's
    verified certificate reaches Unary and is denied on Bidi."""
    check = RequireClientCert(
        ClientCertAllowList(spiffe_ids=[CLIENT_SPIFFE_ID]),
        methods={f"/{SERVICE}/Unary": ClientCertAllowList.any_verified_client()},
    )
    credentials = server_credentials(pki.server, client_ca=pki.ca)
    with (
        serve_guarded(kind, credentials, Guard(check)) as server,
        grpc.secure_channel(
            server.target, channel_credentials(ca=pki.ca, identity=intruder_client)
        ) as intruder,
        grpc.secure_channel(
            server.target, channel_credentials(ca=pki.ca, identity=pki.client)
        ) as client,
    ):
        assert invoke(intruder, UNARY)[0]["principal"].endswith("/intruder")
        assert invoke(client, BIDI)[0]["principal"] == CLIENT_SPIFFE_ID
        error = invoke_error(intruder, BIDI)
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
