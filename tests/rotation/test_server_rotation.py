"""Server rotation under load: 50+ certificate swaps with a CA rollover, sync and aio servers.

Each swap writes new files (Kubernetes ``..data`` symlink swaps for the sync server, atomic
renames for the aio server), then either calls ``reload()`` or lets the 50 ms poll find it;
a raw TLS probe checks that a *new* connection is served the new serial within 2 s. Client
threads keep calling throughout, on long-lived channels and on a new connection per call, and
not one call may fail. The rollover goes: client-CA bundle {A} -> {A, B}; leaves from B; the
clients re-issued under B; {B}. The negative controls at the end check that the retired CA's
clients, foreign clients and clients without a certificate are refused.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from grpcsec.errors import RotationError
from grpcsec.rotation import (
    FileSource,
    MemorySource,
    ReloadingServerTLS,
    ReloadOutcome,
)
from tests.rotation.conftest import (
    CertDir,
    Layout,
    Load,
    Prober,
    RotPki,
    bundle,
    call_who,
    channel_credentials,
    client_leaf,
    refused,
    serial_of,
    serve,
    server_leaf,
    wait_until,
)

SWAPS = 50
ROLL_TRUST_AT = 15  # client-CA bundle {A} -> {A, B}
ROLL_LEAVES_AT = 20  # server leaves from B from here on
ROLL_CLIENTS_AT = 25  # clients re-issued under B
DROP_OLD_CA_AT = 35  # client-CA bundle {B}
GRACE = 0.5  # seconds a CA must be unused by clients before it may be dropped


def reload_now(tls: ReloadingServerTLS) -> None:
    """An explicit reload; the poll may have been first, which is as good."""
    outcome = tls.reload()
    assert outcome in {ReloadOutcome.LOADED, ReloadOutcome.UNCHANGED}, tls.last_error
    assert tls.last_error is None


@pytest.mark.parametrize(
    ("kind", "layout"), [("sync", Layout.DATA_SYMLINK), ("aio", Layout.RENAME)]
)
def test_fifty_swaps_with_a_ca_rollover_under_load_fail_no_call(  # noqa: PLR0917
    kind: str,
    layout: Layout,
    rot_pki: RotPki,
    make_dir: Callable[[Layout], CertDir],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every swap is seen by new connections within 2 s; zero calls fail; the rollover ends
    with only the new CA trusted."""
    a, b = rot_pki.ca, rot_pki.new_ca
    certs: CertDir = make_dir(layout)
    first = server_leaf(a)
    certs.write(first, ca=bundle(a))
    tls = ReloadingServerTLS.from_files(
        certs.cert,
        certs.key,
        client_ca=certs.ca,
        issuers=certs.ca,
        interval=0.05,
        client_ca_grace=GRACE,
    )
    client_a, client_b = client_leaf(a, "client-a"), client_leaf(b, "client-b")
    client_trust = bundle(a, b)  # the clients were given the new CA ahead of the rollover
    prober = Prober(tmp_path / "probe", client_trust, client_a)
    prober_b = Prober(tmp_path / "probe-b", client_trust, client_b)
    latencies: list[float] = []
    with (
        tls,
        serve(kind, tls.credentials, observe=tls.observe_client) as server,
        Load(server.target, channel_credentials(client_trust, client_a)) as load,
    ):
        assert prober.serial(server.port) == serial_of(first)
        issuer = a
        for swap in range(SWAPS):
            if swap == ROLL_TRUST_AT:
                certs.write(ca=bundle(a, b))
                reload_now(tls)
            if swap == ROLL_LEAVES_AT:
                issuer = b
            if swap == ROLL_CLIENTS_AT:
                load.set_credentials(channel_credentials(client_trust, client_b))
                prober = prober_b
            if swap == DROP_OLD_CA_AT:
                time.sleep(GRACE + 0.2)  # no client has used CA A for longer than the grace
                certs.write(ca=bundle(b))
                reload_now(tls)
            leaf = server_leaf(issuer)
            certs.write(leaf)
            if swap % 2 == 0:
                reload_now(tls)  # odd swaps are left to the 50 ms poll
            latencies.append(prober.wait_for(server.port, serial_of(leaf)))
            assert tls.serial == serial_of(leaf)
        time.sleep(0.2)  # calls after the last swap too
        report = load.stop()
        assert report.failures == [], report.failures[:5]
        assert report.calls >= 50, report.calls
        assert report.serials >= {serial_of(client_a), serial_of(client_b)}
        status = tls.status()
        assert status.healthy
        refusals = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert status.reload_failures == len(refusals)
        if layout is Layout.DATA_SYMLINK:
            assert refusals == []  # one atomic switch per update: never torn
        else:
            # Two renames per update: a reader may land between them for longer than the
            # retries (a busy disk); that read is refused as torn and the next poll loads.
            assert all("(key_mismatch)" in message for message in refusals), refusals
        assert status.reload_successes == SWAPS + 2  # + the two client-CA bundle changes
        assert status.handshakes > SWAPS
        assert max(latencies) < 2.0

        # Negative controls: the retired CA's clients, foreign clients, no certificate.
        trust = bundle(a, b)
        assert call_who(server.target, channel_credentials(trust, client_b))["cn"] == "client-b"
        for client in (client_a, client_leaf(rot_pki.other_ca, "intruder"), None):
            error = refused(server.target, channel_credentials(trust, client))
            assert error.code() is grpc.StatusCode.UNAVAILABLE


def test_fetcher_hands_out_each_generation_once_and_never_raises(rot_pki: RotPki) -> None:
    """None when unchanged (core keeps its TLS context), the prepared config after a swap."""
    source = MemorySource.of(server_leaf(rot_pki.ca), trust=rot_pki.ca)
    tls = ReloadingServerTLS(source)
    initial, fetch = tls.configuration_fetcher()
    assert isinstance(initial, grpc.ServerCertificateConfiguration)
    assert fetch() is None
    assert fetch() is None
    source.set(server_leaf(rot_pki.ca), trust=rot_pki.ca)
    assert tls.reload() is ReloadOutcome.LOADED
    new = fetch()
    assert isinstance(new, grpc.ServerCertificateConfiguration)
    assert new is not initial
    assert fetch() is None
    # A second fetcher (another port) starts from the generation current at its creation.
    _, other = tls.configuration_fetcher()
    assert other() is None
    assert tls.handshakes == 5
    # Broken state never escapes into grpc core: the fetcher answers "unchanged".
    tls._served = object()  # type: ignore[assignment]
    assert fetch() is None


def test_a_bad_initial_pair_fails_construction_with_the_file_named(
    rot_pki: RotPki, make_dir: Callable[[Layout], CertDir]
) -> None:
    """A server must not start on material it cannot serve (negative control of the above)."""
    certs: CertDir = make_dir(Layout.RENAME)
    certs.write(server_leaf(rot_pki.ca), ca=bundle(rot_pki.ca))
    certs.write_raw("tls.key", server_leaf(rot_pki.ca).key_pem())
    with pytest.raises(RotationError, match="cannot load the initial server certificate") as info:
        ReloadingServerTLS.from_files(certs.cert, certs.key, client_ca=certs.ca, attempts=2)
    assert "does not belong to the certificate" in str(info.value)
    assert str(certs.key) in str(info.value)


def test_mutual_follows_the_client_ca_and_tls_only_serves_anyone(
    rot_pki: RotPki, tmp_path: Path
) -> None:
    """Without a client-CA bundle the server is TLS-only (positive: a certificate-less client
    works); with one it is mTLS (negative: the same client is refused)."""
    tls_only = ReloadingServerTLS(MemorySource.of(server_leaf(rot_pki.ca)))
    mtls = ReloadingServerTLS(MemorySource.of(server_leaf(rot_pki.ca), trust=rot_pki.ca))
    assert not tls_only.mutual
    assert mtls.mutual
    anonymous = channel_credentials(bundle(rot_pki.ca), None)
    with serve("sync", tls_only.credentials) as server:
        assert call_who(server.target, anonymous)["serial"] is None
    with serve("sync", mtls.credentials) as server:
        assert refused(server.target, anonymous).code() is grpc.StatusCode.UNAVAILABLE


def test_reload_from_a_sighup_handler_swaps_and_never_deadlocks(
    rot_pki: RotPki, make_dir: Callable[[Layout], CertDir], tmp_path: Path
) -> None:
    """SIGHUP -> reload() in the main thread, including while a reload holds the lock in the
    same thread (it then defers to the watcher thread and returns BUSY)."""
    certs: CertDir = make_dir(Layout.RENAME)
    certs.write(server_leaf(rot_pki.ca), ca=bundle(rot_pki.ca))
    tls = ReloadingServerTLS.from_files(
        certs.cert, certs.key, client_ca=certs.ca, interval=30.0
    )  # the poll would not find the change during this test: only SIGHUP can
    outcomes: list[ReloadOutcome] = []
    previous = signal.signal(signal.SIGHUP, lambda *_: outcomes.append(tls.reload()))
    prober = Prober(tmp_path / "probe", bundle(rot_pki.ca), client_leaf(rot_pki.ca))
    try:
        with tls, serve("sync", tls.credentials) as server:
            leaf = server_leaf(rot_pki.ca)
            certs.write(leaf)
            signal.raise_signal(signal.SIGHUP)
            assert outcomes == [ReloadOutcome.LOADED]
            prober.wait_for(server.port, serial_of(leaf), deadline=0.5)

            # Re-entrant: the handler runs while this thread holds the reload lock.
            leaf2 = server_leaf(rot_pki.ca)
            certs.write(leaf2)
            with tls._watcher._watch._locked():
                signal.raise_signal(signal.SIGHUP)
            assert outcomes[-1] is ReloadOutcome.BUSY
            prober.wait_for(server.port, serial_of(leaf2))  # done by the watcher thread
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_request_reload_needs_no_lock_and_is_picked_up_by_the_thread(
    rot_pki: RotPki, make_dir: Callable[[Layout], CertDir]
) -> None:
    certs: CertDir = make_dir(Layout.IN_PLACE)
    certs.write(server_leaf(rot_pki.ca))
    tls = ReloadingServerTLS(FileSource.of(certs.cert, certs.key), interval=30.0)
    with tls:
        leaf = server_leaf(rot_pki.ca)
        certs.write(leaf)
        tls.request_reload()
        wait_until(lambda: tls.serial == serial_of(leaf), timeout=2.0, what="the forced reload")
    assert not tls.watching


def test_status_json_names_the_served_certificate_and_no_key(rot_pki: RotPki) -> None:
    leaf = server_leaf(rot_pki.ca)
    tls = ReloadingServerTLS(MemorySource.of(leaf, trust=rot_pki.ca))
    status = tls.status().to_json()
    assert status["serial"] == serial_of(leaf)
    assert status["generation"] == 1
    assert status["healthy"] is True
    text = json.dumps(status)
    assert "PRIVATE KEY" not in text
    assert "PRIVATE KEY" not in repr(tls)
    assert "PRIVATE KEY" not in repr(tls.material)


def test_serve_config_serves_a_reloading_server_tls_and_its_swaps(
    rot_pki: RotPki, make_dir: Callable[[Layout], CertDir], tmp_path: Path
) -> None:
    """What ``grpcsec serve`` needs: ServeConfig.tls takes the rotating object as it is (the
    Greeter names the verified caller), and a swap reaches new connections."""
    from grpcsec.demo.greeter import say_hello  # noqa: PLC0415 (tests may use the demo)
    from grpcsec.target import Target  # noqa: PLC0415
    from tests.servers import ServeConfig, start_sync  # noqa: PLC0415

    certs = make_dir(Layout.DATA_SYMLINK)
    certs.write(server_leaf(rot_pki.ca), ca=bundle(rot_pki.ca))
    tls = ReloadingServerTLS.from_files(certs.cert, certs.key, client_ca=certs.ca, interval=0.05)
    config = ServeConfig(listen=Target.parse("127.0.0.1:0", allow_port_zero=True), tls=tls)
    assert config.mode == "mtls"
    client = client_leaf(rot_pki.ca, "greeter-client")
    prober = Prober(tmp_path / "probe", bundle(rot_pki.ca), client)
    with tls:
        running = start_sync(config)
        try:
            target = str(running.address)
            credentials = channel_credentials(bundle(rot_pki.ca), client)
            with grpc.secure_channel(target, credentials) as channel:
                reply = say_hello(channel, "rotation", timeout=5)
            assert reply == "Hello rotation (from greeter-client.internal)"
            leaf = server_leaf(rot_pki.ca)
            certs.write(leaf)
            prober.wait_for(running.address.port, serial_of(leaf))
        finally:
            running.stop(grace=1.0)
