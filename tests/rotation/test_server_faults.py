"""Faults during server rotation: each is refused, surfaced, logged once, and fails no call.

Every test runs a real mTLS server fed by files and polled every 50 ms, with client threads
calling throughout (a new connection per call for most of them, so every call goes through the
fetcher). A fault must leave the previous certificate in service (checked with a raw TLS probe
of a new connection), show up in ``last_error`` / ``last_failure`` / ``reload_failures`` and
in exactly one warning line; the good material that follows must then load.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from grpcsec.pki import IssuedCertificate, Validity, utcnow
from grpcsec.rotation import FailureKind, ReloadingServerTLS
from tests.hostile import Hostile, replaced_by
from tests.rotation.conftest import (
    CertDir,
    Layout,
    Load,
    Prober,
    RotPki,
    Served,
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


@dataclass
class Rig:
    certs: CertDir
    tls: ReloadingServerTLS
    server: Served
    prober: Prober
    served: IssuedCertificate
    caplog: pytest.LogCaptureFixture

    def warnings(self) -> list[str]:
        return [
            r.getMessage()
            for r in self.caplog.records
            if r.name == "grpcsec.rotation" and r.levelno >= logging.WARNING
        ]

    def expect_refused(self, kind: FailureKind, *needles: str) -> str:
        """Wait for the refusal; the old certificate must still be served. Returns the text."""
        wait_until(
            lambda: self.tls.last_failure is not None and self.tls.last_failure.kind is kind,
            what=f"a {kind.value} refusal (last: {self.tls.last_failure})",
        )
        time.sleep(0.2)  # four more polls: still one log line, still the old certificate
        error = self.tls.last_error
        assert error is not None
        message = str(error)
        for needle in needles:
            assert needle in message, message
        assert f"keeping serial {serial_of(self.served)}" in message
        assert self.tls.serial == serial_of(self.served)
        assert self.prober.serial(self.server.port) == serial_of(self.served)
        assert self.warnings() == [message]
        assert self.tls.reload_failures == 1
        assert "PRIVATE KEY" not in message
        return message

    def expect_loaded(self, leaf: IssuedCertificate, *, deadline: float = 2.0) -> None:
        self.prober.wait_for(self.server.port, serial_of(leaf), deadline=deadline)
        assert self.tls.last_error is None
        assert self.tls.status().healthy


@pytest.fixture
def rig(
    rot_pki: RotPki,
    make_dir: Callable[[Layout], CertDir],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> Callable[..., Any]:
    @contextmanager
    def make(
        kind: str = "sync",
        layout: Layout = Layout.RENAME,
        *,
        with_issuers: bool = False,
        **options: Any,
    ) -> Iterator[Rig]:
        caplog.set_level(logging.INFO, logger="grpcsec.rotation")
        ca = rot_pki.ca
        certs = make_dir(layout)
        first = server_leaf(ca)
        certs.write(first, ca=bundle(ca))
        options = {"interval": 0.05, "attempts": 3, "retry_delay": 0.05, **options}
        tls = ReloadingServerTLS.from_files(
            certs.cert,
            certs.key,
            client_ca=certs.ca,
            issuers=certs.ca if with_issuers else None,
            **options,
        )
        client = client_leaf(ca)
        trust = bundle(ca, rot_pki.new_ca)
        prober = Prober(tmp_path / "probe", trust, client)
        with (
            tls,
            serve(kind, tls.credentials, observe=tls.observe_client) as server,
            Load(server.target, channel_credentials(trust, client), persistent=1, fresh=1) as load,
        ):
            yield Rig(certs, tls, server, prober, first, caplog)
            time.sleep(0.1)
            report = load.stop()
            assert report.failures == [], report.failures[:5]
            assert report.calls > 0

    return make


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_certificate_written_before_its_key_is_retried_not_served(
    kind: str, rig: Callable[..., Any], rot_pki: RotPki
) -> None:
    with rig(kind) as r:
        new = server_leaf(rot_pki.ca)
        r.certs.write_raw("tls.crt", new.chain_pem())  # the key comes later
        r.expect_refused(FailureKind.KEY_MISMATCH, "does not belong to the certificate")
        r.certs.write_raw("tls.key", new.key_pem())
        r.expect_loaded(new)
        assert r.tls.reload_successes == 1


def test_in_place_rewrites_of_both_files_never_serve_a_torn_pair(
    rig: Callable[..., Any], rot_pki: RotPki
) -> None:
    """Truncate-and-write in place, key then certificate, ten times: every read in between
    sees an empty or half-written file or a mismatched pair, and none of them is served."""
    with rig(layout=Layout.IN_PLACE, attempts=4) as r:
        for _ in range(10):
            new = server_leaf(rot_pki.ca)
            r.certs.write(new)
            r.expect_loaded(new)
        assert r.tls.serial == serial_of(new)


def test_garbage_files_are_refused_and_named(rig: Callable[..., Any], rot_pki: RotPki) -> None:
    with rig() as r:
        r.certs.write_raw("tls.crt", b"this is not a certificate\n")
        r.expect_refused(FailureKind.INVALID, str(r.certs.cert), "no PEM certificate")
        good = server_leaf(rot_pki.ca)
        r.certs.write(good)
        r.expect_loaded(good)


def test_a_mismatched_pair_is_refused_once_and_not_logged_again(
    rig: Callable[..., Any], rot_pki: RotPki
) -> None:
    with rig() as r:
        one, other = server_leaf(rot_pki.ca), server_leaf(rot_pki.ca)
        r.certs.write_raw("tls.key", other.key_pem())
        r.certs.write_raw("tls.crt", one.chain_pem())
        r.expect_refused(FailureKind.KEY_MISMATCH, str(r.certs.key))
        r.certs.write(other)
        r.expect_loaded(other)


def test_deleted_files_keep_the_last_good_certificate(
    rig: Callable[..., Any], rot_pki: RotPki
) -> None:
    with rig(layout=Layout.DATA_SYMLINK) as r:
        r.certs.delete("tls.crt", "tls.key")
        r.expect_refused(FailureKind.INVALID, "no such file")
        back = server_leaf(rot_pki.ca)
        r.certs.write(back)
        r.expect_loaded(back)


def test_an_expired_new_certificate_is_refused(rig: Callable[..., Any], rot_pki: RotPki) -> None:
    now = utcnow()
    expired = server_leaf(
        rot_pki.ca,
        validity=Validity(
            not_before=now - dt.timedelta(hours=2), not_after=now - dt.timedelta(hours=1)
        ),
    )
    with rig() as r:
        r.certs.write(expired)
        r.expect_refused(FailureKind.EXPIRED, "expired on")


def test_a_not_yet_valid_certificate_is_flagged_then_served_once_valid(
    rig: Callable[..., Any], rot_pki: RotPki
) -> None:
    """Refused while not yet valid (peers would reject it too), re-checked at every poll
    without new log lines, and in service within one poll of becoming valid."""
    start = utcnow() + dt.timedelta(seconds=1.5)
    early = server_leaf(
        rot_pki.ca, validity=Validity(not_before=start, not_after=start + dt.timedelta(hours=1))
    )
    with rig() as r:
        r.certs.write(early)
        r.expect_refused(FailureKind.NOT_YET_VALID, "is not valid until")
        r.expect_loaded(early, deadline=4.0)
        assert utcnow() >= early.certificate.not_valid_before_utc
        assert len(r.warnings()) == 1  # the one refusal; the later load is INFO


def test_a_certificate_outside_the_configured_issuers_is_refused(
    rig: Callable[..., Any], rot_pki: RotPki
) -> None:
    """With ``issuers`` (here the ca.crt file), a chain from another CA is refused before any
    client could reject it."""
    with rig(with_issuers=True) as r:
        r.certs.write(server_leaf(rot_pki.other_ca))
        r.expect_refused(FailureKind.UNTRUSTED, "does not verify against the issuers")
        good = server_leaf(rot_pki.ca)
        r.certs.write(good)
        r.expect_loaded(good)


def test_a_client_certificate_in_the_server_slot_is_refused(
    rig: Callable[..., Any], rot_pki: RotPki
) -> None:
    with rig() as r:
        r.certs.write(client_leaf(rot_pki.ca, "not-a-server"))
        r.expect_refused(FailureKind.INVALID, "serverAuth")


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_client_ca_bundle_without_the_ca_of_current_clients_is_refused(
    kind: str, rig: Callable[..., Any], rot_pki: RotPki
) -> None:
    """Both ways to lock the calling clients out are refused while they keep calling: a bundle
    sharing no CA with the one in service, and (after a proper first rollover step) a bundle
    that drops the CA those clients came from seconds ago."""
    a, b, other = rot_pki.ca, rot_pki.new_ca, rot_pki.other_ca
    trust = bundle(a, b)
    with rig(kind) as r:
        r.certs.write(ca=bundle(other))
        replaced = r.expect_refused(FailureKind.TRUST_DROPPED, "shares no CA", str(r.certs.ca))
        assert "roll over instead" in replaced

        r.certs.write(ca=bundle(a, b))  # the first rollover step is accepted...
        wait_until(lambda: r.tls.reload_successes == 1, what="the {A, B} bundle")
        client_b = client_leaf(b, "client-b")
        assert call_who(r.server.target, channel_credentials(trust, client_b))["cn"] == "client-b"

        r.caplog.clear()
        r.certs.write(ca=bundle(b))  # ...dropping A while A's clients call is not
        wait_until(
            lambda: r.tls.reload_failures == 2,
            what=f"the refusal of the {{B}} bundle (last: {r.tls.last_failure})",
        )
        time.sleep(0.3)
        assert r.tls.last_failure is not None
        assert r.tls.last_failure.kind is FailureKind.TRUST_DROPPED
        assert "drops the CA 'CN=rotation CA A'" in r.tls.last_failure.message
        assert len(r.warnings()) == 1
        # Negative controls: A's clients still get in, foreign ones still do not.
        client_a = client_leaf(a, "client-a2")
        assert call_who(r.server.target, channel_credentials(trust, client_a))["cn"] == "client-a2"
        intruder = client_leaf(other, "intruder")
        error = refused(r.server.target, channel_credentials(bundle(a, b, other), intruder))
        assert error.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("hostile", list(Hostile), ids=lambda k: k.name)
def test_a_certificate_replaced_by_a_fifo_device_or_loop_is_refused_and_the_next_good_one_loads(
    hostile: Hostile, rig: Callable[..., Any], rot_pki: RotPki
) -> None:
    """The watcher thread never blocks on the hostile file: the refusal is logged and counted,
    the old certificate keeps serving every call, and a good file renamed over it loads."""
    with rig() as r:
        with replaced_by(r.certs.cert, hostile) as words:
            r.expect_refused(FailureKind.INVALID, str(r.certs.cert), words)
            assert r.tls.status().watching
        good = server_leaf(rot_pki.ca)
        r.certs.write(good)
        r.expect_loaded(good)
        assert r.tls.reload_successes == 1
