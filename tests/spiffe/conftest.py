"""SPIFFE fixtures: the trust domain's CA, a second CA (another trust domain or an impostor),
and a running test Workload API (tests/spiffe/workload_api.py) for the server's SVID."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from grpcsec.pki import CertificateAuthority
from tests.spiffe.workload_api import (
    CLIENT_ID,
    SERVER_DNS,
    SERVER_ID,
    AgentState,
    FakeAgent,
    issue_svid,
)


@pytest.fixture(scope="session")
def td_ca() -> CertificateAuthority:
    return CertificateAuthority.create("example.test SPIFFE CA")


@pytest.fixture(scope="session")
def other_ca() -> CertificateAuthority:
    return CertificateAuthority.create("other SPIFFE CA")


@pytest.fixture
def agent(td_ca: CertificateAuthority) -> Iterator[FakeAgent]:
    """The server workload's agent: its SVID has the DNS SAN grpcio clients check."""
    state = AgentState(
        svid=issue_svid(td_ca, SERVER_ID, dns=[SERVER_DNS]), spiffe_id=SERVER_ID, bundle=[td_ca]
    )
    with FakeAgent(state) as running:
        yield running


@pytest.fixture
def client_agent(td_ca: CertificateAuthority) -> Iterator[FakeAgent]:
    """The client workload's agent (a separate socket, as on another host)."""
    state = AgentState(svid=issue_svid(td_ca, CLIENT_ID), spiffe_id=CLIENT_ID, bundle=[td_ca])
    with FakeAgent(state) as running:
        yield running
