"""Rotation keeps its trust: a rotated pair must lead to a CA served before or a configured
next CA, on real servers and channels with real files.

The unit tests pin the rule's decisions (:mod:`grpcsec.rotation.lineage`); the end-to-end tests
write a foreign pair over the watched files of a serving grpcio server (and a reloading
channel), check that it is refused and counted while calls keep getting the old serial, and
that a good pair afterwards is picked up.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import CollectorRegistry

from grpcsec.errors import UntrustedIssuerError
from grpcsec.monitor.metrics import ServiceMetrics
from grpcsec.monitor.pump import MetricsPump
from grpcsec.pki import CertificateAuthority, private_key_pem, utcnow
from grpcsec.rotation import MemorySource, ReloadingChannel, ReloadingServerTLS, ReloadOutcome
from grpcsec.rotation.checks import FailureKind
from grpcsec.rotation.lineage import Lineage
from tests.rotation.conftest import (
    WHO,
    CertDir,
    Layout,
    Prober,
    RotPki,
    bundle,
    channel_credentials,
    client_leaf,
    serial_of,
    serve,
    server_leaf,
)


def self_signed_pair(name: str = "localhost") -> tuple[bytes, bytes, x509.Certificate]:
    """A server pair valid by itself: serverAuth, DNS/IP SANs, signed by its own key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = utcnow()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM), private_key_pem(key), certificate


# -- the rule ---------------------------------------------------------------------------------
def leaf_chain(ca: CertificateAuthority) -> list[x509.Certificate]:
    return list(x509.load_pem_x509_certificates(server_leaf(ca).chain_pem()))


def test_a_leaf_reissued_by_the_same_ca_is_admitted(rot_pki: RotPki) -> None:
    lineage = Lineage.seed(leaf_chain(rot_pki.ca), candidates=[rot_pki.ca.certificate])
    assert lineage.cas == (rot_pki.ca.certificate,)
    lineage.admit(leaf_chain(rot_pki.ca), configured=[], source="t")
    # Without any CA certificate at hand, the leaf's issuer is pinned by name + AKI.
    fallback = Lineage.seed(leaf_chain(rot_pki.ca), candidates=[])
    assert fallback.cas == ()
    fallback.admit(leaf_chain(rot_pki.ca), configured=[], source="t")


@pytest.mark.parametrize("with_certificate", [True, False])
def test_foreign_self_signed_and_same_name_pairs_are_refused(
    rot_pki: RotPki, with_certificate: bool
) -> None:
    candidates = [rot_pki.ca.certificate] if with_certificate else []
    lineage = Lineage.seed(leaf_chain(rot_pki.ca), candidates=candidates)
    impostor = CertificateAuthority.create("rotation CA A")  # same name, another key
    for foreign in (
        leaf_chain(rot_pki.other_ca),
        [self_signed_pair()[2]],
        leaf_chain(impostor),
    ):
        with pytest.raises(UntrustedIssuerError, match="not to a CA this identity was served"):
            lineage.admit(foreign, configured=[], source="t")


def test_a_configured_next_ca_is_admitted_and_then_stays_trusted(rot_pki: RotPki) -> None:
    lineage = Lineage.seed(leaf_chain(rot_pki.ca), candidates=[rot_pki.ca.certificate])
    with pytest.raises(UntrustedIssuerError):
        lineage.admit(leaf_chain(rot_pki.new_ca), configured=[], source="t")
    grown = lineage.admit(
        leaf_chain(rot_pki.new_ca), configured=[rot_pki.new_ca.certificate], source="t"
    )
    # Once served, the next CA is part of the lineage: the option may be removed.
    grown.admit(leaf_chain(rot_pki.new_ca), configured=[], source="t")
    grown.admit(leaf_chain(rot_pki.ca), configured=[], source="t")


def test_an_intermediate_change_needs_the_root_known_by_certificate() -> None:
    """A -> B under one root: B is admitted only when the root certificate is known."""
    root = CertificateAuthority.create("lineage root")
    a, b = root.create_intermediate("intermediate A"), root.create_intermediate("intermediate B")
    first, second = leaf_chain(a), leaf_chain(b)
    assert len(first) == 2  # leaf, intermediate (the root is not served)
    unknown_root = Lineage.seed(first, candidates=[])
    with pytest.raises(UntrustedIssuerError, match="leads to 'CN=lineage root'"):
        unknown_root.admit(second, configured=[], source="t")
    unknown_root.admit(second, configured=[root.certificate], source="t")
    known_root = Lineage.seed(first, candidates=[root.certificate])
    known_root.admit(second, configured=[], source="t")
    # Negative control: an intermediate of another root with the same name is refused.
    other = CertificateAuthority.create("lineage root").create_intermediate("intermediate B")
    with pytest.raises(UntrustedIssuerError):
        known_root.admit(leaf_chain(other), configured=[], source="t")


def test_a_chain_that_mixes_two_chains_is_refused(rot_pki: RotPki) -> None:
    root = CertificateAuthority.create("lineage root")
    intermediate = root.create_intermediate("intermediate A")
    lineage = Lineage.seed(leaf_chain(intermediate), candidates=[root.certificate])
    mixed = [leaf_chain(rot_pki.other_ca)[0], intermediate.certificate]
    with pytest.raises(UntrustedIssuerError, match="not signed by certificate 2"):
        lineage.admit(mixed, configured=[], source="t")


# -- a real server watching files ----------------------------------------------------------------
def test_a_foreign_pair_written_over_the_files_is_refused_and_the_old_one_keeps_serving(
    rot_pki: RotPki,
    make_dir: Callable[[Layout], CertDir],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    certs = make_dir(Layout.RENAME)
    first = server_leaf(rot_pki.ca)
    certs.write(first, ca=bundle(rot_pki.ca))
    tls = ReloadingServerTLS.from_files(certs.cert, certs.key, interval=60.0)
    prober = Prober(tmp_path / "probe", bundle(rot_pki.ca), None)
    registry = CollectorRegistry()
    pump = MetricsPump(ServiceMetrics(registry), rotation=tls)
    caplog.set_level(logging.WARNING, logger="grpcsec.rotation")
    with serve("sync", tls.credentials) as server:
        assert prober.serial(server.port) == serial_of(first)
        foreign_cas = (rot_pki.other_ca, rot_pki.new_ca)
        for refusals, foreign in enumerate(map(server_leaf, foreign_cas), start=1):
            certs.write(foreign)
            assert tls.reload() is ReloadOutcome.REFUSED
            assert tls.reload_failures == refusals
            assert tls.last_failure is not None
            assert tls.last_failure.kind is FailureKind.UNTRUSTED_ISSUER
            status = json.loads(json.dumps(tls.status().to_json()))
            assert status["last_failure"]["kind"] == "untrusted_issuer"
            assert prober.serial(server.port) == serial_of(first)
        cert_pem, key_pem, _ = self_signed_pair()
        certs.write_raw("tls.key", key_pem)
        certs.write_raw("tls.crt", cert_pem)
        assert tls.reload() is ReloadOutcome.REFUSED
        assert tls.last_failure is not None
        assert tls.last_failure.kind is FailureKind.UNTRUSTED_ISSUER
        assert prober.serial(server.port) == serial_of(first)
        pump.pump(utcnow())
        counted = registry.get_sample_value(
            "grpcsec_rotation_reload_failures_total", {"reason": "untrusted_issuer"}
        )
        assert counted == 3  # two foreign CAs and a self-signed pair
        logged = [r.getMessage() for r in caplog.records if "untrusted_issuer" in r.getMessage()]
        assert logged, "the refusal must be logged with its kind"
        assert serial_of(first) in logged[0]
        # A good pair afterwards (same CA) is picked up.
        renewed = server_leaf(rot_pki.ca)
        certs.write(renewed)
        assert tls.reload() is ReloadOutcome.LOADED
        assert prober.serial(server.port) == serial_of(renewed)
        assert tls.last_error is None


def test_a_server_moves_to_the_next_ca_only_when_it_is_configured(
    rot_pki: RotPki, make_dir: Callable[[Layout], CertDir], tmp_path: Path
) -> None:
    certs = make_dir(Layout.DATA_SYMLINK)
    first = server_leaf(rot_pki.ca)
    certs.write(first)
    next_ca = tmp_path / "next-ca.crt"
    next_ca.write_bytes(bundle(rot_pki.other_ca))  # a next CA, but not the one rotated to
    tls = ReloadingServerTLS.from_files(certs.cert, certs.key, next_ca=next_ca, interval=60.0)
    prober = Prober(tmp_path / "probe", bundle(rot_pki.ca, rot_pki.new_ca), None)
    with serve("aio", tls.credentials) as server:
        moved = server_leaf(rot_pki.new_ca)
        certs.write(moved)
        assert tls.reload() is ReloadOutcome.REFUSED
        assert prober.serial(server.port) == serial_of(first)
        next_ca.write_bytes(bundle(rot_pki.new_ca))  # the planned change, configured
        assert tls.reload() is ReloadOutcome.LOADED
        assert prober.serial(server.port) == serial_of(moved)


def who(channel: grpc.Channel) -> str:
    """The serial of the client certificate the server saw on ``channel``."""
    reply = channel.unary_unary(WHO)(b"", timeout=5.0)
    return str(json.loads(reply)["serial"])


def test_a_reloading_channel_refuses_a_foreign_client_pair(
    rot_pki: RotPki, make_dir: Callable[[Layout], CertDir]
) -> None:
    certs = make_dir(Layout.RENAME)
    first = client_leaf(rot_pki.ca, "client-lineage")
    certs.write(first, ca=bundle(rot_pki.ca))
    # The server trusts clients of A and of the other CA: only the channel's rule can refuse.
    source = MemorySource.of(server_leaf(rot_pki.ca), trust=bundle(rot_pki.ca, rot_pki.other_ca))
    tls = ReloadingServerTLS(source)
    with serve("sync", tls.credentials) as server:
        channel = ReloadingChannel.from_files(
            server.target, ca=certs.ca, cert=certs.cert, key=certs.key, interval=60.0
        )
        with channel:
            assert who(channel) == serial_of(first)
            foreign = client_leaf(rot_pki.other_ca, "client-lineage")
            certs.write(foreign)
            assert channel.reload() is ReloadOutcome.REFUSED
            assert channel.last_failure is not None
            assert channel.last_failure.kind is FailureKind.UNTRUSTED_ISSUER
            assert channel.reload_failures == 1
            assert who(channel) == serial_of(first)
            # Negative control: the server itself would have taken the foreign pair.
            credentials = channel_credentials(bundle(rot_pki.ca), foreign)
            with grpc.secure_channel(server.target, credentials) as direct:
                assert who(direct) == serial_of(foreign)
            renewed = client_leaf(rot_pki.ca, "client-lineage")
            certs.write(renewed)
            assert channel.reload() is ReloadOutcome.LOADED
            assert who(channel) == serial_of(renewed)
