"""A 10,000-certificate bundle is parsed, or refused, fast on every path that takes one.

Parsing (``load_certificates``) is linear and accepts any count within the file cap; trust
bundles, which grpcio loads in quadratic time, are refused above ``MAX_TRUST_CERTIFICATES``
before anything is parsed: ``TrustBundle``, server and channel credentials, and a rotating
server whose new client-CA bundle is too large (the last good bundle keeps serving). A bundle at
the cap serves a real mTLS call. Bounds are generous sanity checks against a quadratic blow-up
(the measured figures are in ``benchmarks/bundle_parse.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from grpcsec.credentials import ChannelTLS, ServerTLS, channel_credentials
from grpcsec.errors import MaterialError
from grpcsec.material import MAX_TRUST_CERTIFICATES, KeyPair, TrustBundle
from grpcsec.pki import load_certificate_file, load_certificates
from grpcsec.rotation import MemorySource, ReloadingServerTLS, ReloadOutcome
from tests.bulk import ca_bundle_pem
from tests.conftest import Pki, call_error, serve, whoami

BOUND_SECONDS = 5.0
BIG = 10_000
T = TypeVar("T")


def timed(call: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


@pytest.fixture(scope="module")
def big(pki: Pki) -> bytes:
    """The session CA followed by 10,000 other CAs."""
    return pki.ca.certificate_pem() + ca_bundle_pem(BIG)


@pytest.fixture(scope="module")
def at_cap(pki: Pki) -> bytes:
    return pki.ca.certificate_pem() + ca_bundle_pem(MAX_TRUST_CERTIFICATES - 1)


def test_ten_thousand_certificates_are_parsed_in_order(big: bytes, tmp_path: Path) -> None:
    certificates, seconds = timed(lambda: load_certificates(big))
    assert len(certificates) == BIG + 1
    assert certificates[-1].subject.rfc4514_string() == f"CN=bulk root {BIG - 1}"
    assert seconds < BOUND_SECONDS
    path = tmp_path / "big.pem"
    path.write_bytes(big)
    from_file, seconds = timed(lambda: load_certificate_file(path))
    assert len(from_file) == BIG + 1
    assert seconds < BOUND_SECONDS


@pytest.fixture
def big_file(big: bytes, tmp_path: Path) -> Path:
    path = tmp_path / "big.pem"
    path.write_bytes(big)
    return path


REFUSALS: dict[str, Callable[[Path, bytes, KeyPair], Any]] = {
    "TrustBundle.from_pem": lambda _path, pem, _pair: TrustBundle.from_pem(pem),
    "TrustBundle.from_file": lambda path, _pem, _pair: TrustBundle.from_file(path),
    "ServerTLS.create": lambda path, _pem, pair: ServerTLS.create(pair, client_ca=path),
    "ChannelTLS.create": lambda _path, pem, _pair: ChannelTLS.create(ca=pem),
    "channel_credentials": lambda path, _pem, _pair: channel_credentials(ca=path),
}


@pytest.mark.parametrize("entry", list(REFUSALS))
def test_a_trust_bundle_over_the_cap_is_refused_at_once(
    pki: Pki, big: bytes, big_file: Path, entry: str
) -> None:
    pair = KeyPair.from_issued(pki.server)
    start = time.perf_counter()
    with pytest.raises(MaterialError) as caught:
        REFUSALS[entry](big_file, big, pair)
    assert time.perf_counter() - start < BOUND_SECONDS
    message = str(caught.value)
    assert f"holds {BIG + 1} certificates, more than the {MAX_TRUST_CERTIFICATES}" in message
    assert "\n" not in message


def test_a_bundle_at_the_cap_serves_mtls(pki: Pki, at_cap: bytes) -> None:
    tls, seconds = timed(
        lambda: ServerTLS.create(KeyPair.from_issued(pki.server), client_ca=at_cap)
    )
    assert tls.client_ca is not None
    assert tls.client_ca.count == MAX_TRUST_CERTIFICATES
    assert seconds < BOUND_SECONDS
    client = channel_credentials(ca=pki.ca.certificate_pem(), identity=pki.client)
    with serve("sync", tls.credentials()) as server:
        assert "client-1" in json.dumps(whoami(server.target, client))
        intruder = channel_credentials(ca=pki.ca.certificate_pem(), identity=pki.other_client)
        call_error(server.target, intruder)  # none of the 1,000 CAs issued it


def test_a_rotating_server_refuses_an_oversized_client_ca_and_keeps_serving(
    pki: Pki, big: bytes
) -> None:
    source = MemorySource.of(pki.server, trust=pki.ca.certificate_pem())
    tls = ReloadingServerTLS(source, interval=60)
    client = channel_credentials(ca=pki.ca.certificate_pem(), identity=pki.client)
    with serve("sync", tls.credentials()) as server:
        whoami(server.target, client)
        source.set(keep_identity=True, trust=big)
        outcome, seconds = timed(tls.reload)
        assert outcome is ReloadOutcome.REFUSED
        assert seconds < BOUND_SECONDS
        assert f"holds {BIG + 1} certificates" in str(tls.last_error)
        assert tls.reload_failures == 1
        whoami(server.target, client)  # the last good client-CA bundle still verifies clients
        intruder = channel_credentials(ca=pki.ca.certificate_pem(), identity=pki.other_client)
        call_error(server.target, intruder)
