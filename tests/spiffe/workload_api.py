"""A real SPIFFE Workload API server for tests: gRPC on a Unix socket, the protocol SPIRE's agent
speaks (``FetchX509SVID`` and ``FetchX509Bundles`` streams), fed by a grpcsec test CA.

It refuses a call without the ``workload.spiffe.io: true`` header with ``INVALID_ARGUMENT`` (as
SPIRE does), sends the current state when a stream opens and again on every :meth:`push`, and
can be stopped and started again on the same socket path. The SVIDs are what SPIRE issues: one
URI SAN (the SPIFFE ID), both serverAuth and clientAuth, plus DNS names when asked (``-dns``).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization
from spiffe._proto import workload_pb2, workload_pb2_grpc

from grpcsec.pki import (
    CertificateAuthority,
    IssuedCertificate,
    Profile,
    SubjectAltNames,
    Validity,
    utcnow,
)

TRUST_DOMAIN = "example.test"
SERVER_ID = f"spiffe://{TRUST_DOMAIN}/greeter"
CLIENT_ID = f"spiffe://{TRUST_DOMAIN}/client"
SERVER_DNS = "greeter.example.test"
HEADER = ("workload.spiffe.io", "true")


def issue_svid(
    ca: CertificateAuthority,
    spiffe_id: str,
    *,
    dns: Sequence[str] = (),
    validity: Validity | None = None,
    now: dt.datetime | None = None,
) -> IssuedCertificate:
    """An X.509 SVID as SPIRE issues it (one URI SAN, both TLS roles, DNS names if asked)."""
    names = SubjectAltNames.build(dns=list(dns), uris=[spiffe_id])
    return ca.issue(Profile.PEER, names, validity=validity, now=now or utcnow())


def der_chain(svid: IssuedCertificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.DER) for c in svid.chain)


def der_key(svid: IssuedCertificate) -> bytes:
    assert svid.key is not None
    return svid.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def der_bundle(cas: Sequence[CertificateAuthority]) -> bytes:
    return b"".join(ca.certificate.public_bytes(serialization.Encoding.DER) for ca in cas)


@dataclass
class AgentState:
    """What the agent hands out: one SVID, the own bundle, federated bundles."""

    svid: IssuedCertificate
    spiffe_id: str
    bundle: list[CertificateAuthority]
    federated: dict[str, list[CertificateAuthority]] = field(default_factory=dict)


class _Servicer(workload_pb2_grpc.SpiffeWorkloadAPIServicer):  # type: ignore[misc]
    def __init__(self, agent: FakeAgent) -> None:
        self.agent = agent

    def _refuse_without_header(self, context: Any) -> None:
        if HEADER not in tuple(context.invocation_metadata()):
            self.agent.refused += 1
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "security header missing from request")

    def _stream(self, context: Any, build: Any) -> Iterator[Any]:
        self._refuse_without_header(context)
        seen = -1
        while context.is_active() and not self.agent.stopping.is_set():
            with self.agent.changed:
                if self.agent.generation == seen:
                    self.agent.changed.wait(0.2)
                    continue
                seen = self.agent.generation
                message = build(self.agent.state)
            yield message

    def FetchX509SVID(self, request: Any, context: Any) -> Iterator[Any]:  # noqa: N802
        def build(state: AgentState) -> Any:
            return workload_pb2.X509SVIDResponse(
                svids=[
                    workload_pb2.X509SVID(
                        spiffe_id=state.spiffe_id,
                        x509_svid=der_chain(state.svid),
                        x509_svid_key=der_key(state.svid),
                        bundle=der_bundle(state.bundle),
                    )
                ],
                federated_bundles={td: der_bundle(cas) for td, cas in state.federated.items()},
            )

        yield from self._stream(context, build)

    def FetchX509Bundles(self, request: Any, context: Any) -> Iterator[Any]:  # noqa: N802
        def build(state: AgentState) -> Any:
            bundles = {TRUST_DOMAIN: der_bundle(state.bundle)}
            bundles.update({td: der_bundle(cas) for td, cas in state.federated.items()})
            return workload_pb2.X509BundlesResponse(bundles=bundles)

        yield from self._stream(context, build)


class FakeAgent:
    """The Workload API server. ``start``/``stop`` may be repeated; ``push`` changes state."""

    def __init__(
        self, state: AgentState, socket_path: Path | None = None, *, tcp: bool = False
    ) -> None:
        self.tcp = tcp
        self.port = 0
        if socket_path is None:  # short: a Unix socket path is limited to 107 bytes
            socket_path = Path(tempfile.mkdtemp(prefix="spf", dir="/tmp")) / "agent.sock"
        self.path = socket_path
        self.state = state
        self.generation = 0
        self.refused = 0
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self._server: Any = None

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}" if self.tcp else f"unix://{self.path}"

    def start(self) -> FakeAgent:
        self.stopping.clear()
        server = grpc.server(ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-agent"))
        workload_pb2_grpc.add_SpiffeWorkloadAPIServicer_to_server(_Servicer(self), server)
        if self.tcp:
            self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        else:
            server.add_insecure_port(f"unix:{self.path}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        self.stopping.set()
        with self.changed:
            self.changed.notify_all()
        if self._server is not None:
            self._server.stop(0).wait(10)
            self._server = None
        self.path.unlink(missing_ok=True)

    def push(
        self,
        *,
        svid: IssuedCertificate | None = None,
        bundle: list[CertificateAuthority] | None = None,
        federated: dict[str, list[CertificateAuthority]] | None = None,
    ) -> None:
        with self.changed:
            if svid is not None:
                self.state.svid = svid
            if bundle is not None:
                self.state.bundle = bundle
            if federated is not None:
                self.state.federated = federated
            self.generation += 1
            self.changed.notify_all()

    def __enter__(self) -> FakeAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
