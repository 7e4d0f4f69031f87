"""The renewal agent as a library: when it renews, what it writes, how it fails and backs off,
and driving a rotating server through real renewals (the demo's recipe)."""

from __future__ import annotations

import datetime as dt
import random
import stat
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from grpcsec.errors import MaterialError, RotationError
from grpcsec.pki import (
    CertificateAuthority,
    Profile,
    SubjectAltNames,
    Validity,
    load_certificate_file,
    load_key_file,
    utcnow,
)
from grpcsec.rotation import (
    Backoff,
    ExecHook,
    ReloadingServerTLS,
    ReloadOutcome,
    Renewer,
)
from grpcsec.rotation.renew_plan import AgentStep
from tests.rotation.conftest import Prober, RotPki, bundle, client_leaf, serve

HOUR = dt.timedelta(hours=1)
SECOND = dt.timedelta(seconds=1)


def write_leaf(
    directory: Path, ca: CertificateAuthority, *, start: dt.datetime, lifetime: dt.timedelta
) -> tuple[Path, Path]:
    issued = ca.issue(
        Profile.PEER,
        SubjectAltNames.build(dns=["svc.internal", "localhost"], ips=["127.0.0.1"]),
        common_name="svc",
        organization="Acme",
        validity=Validity(not_before=start, not_after=start + lifetime),
        now=start,
    )
    cert, key = directory / "svc.crt", directory / "svc.key"
    cert.write_bytes(issued.chain_pem())
    key.write_bytes(issued.key_pem())
    return cert, key


def test_not_due_before_the_renewal_point_and_due_after(rot_pki: RotPki, tmp_path: Path) -> None:
    start = utcnow().replace(microsecond=0) - HOUR
    cert, key = write_leaf(tmp_path, rot_pki.ca, start=start, lifetime=HOUR * 24)
    renewer = Renewer(rot_pki.ca, cert, key, rng=random.Random(7))  # noqa: S311
    plan = renewer.plan(start)
    assert renewer.plan(start).renew_at == plan.renew_at  # the draw is fixed per serial
    assert not renewer.plan(plan.renew_at - SECOND).due
    assert renewer.plan(plan.renew_at).due
    assert renewer.renew_if_due(plan.renew_at - SECOND) is None
    assert renewer.renewals == 0


def test_a_renewal_keeps_the_identity_and_changes_the_key(rot_pki: RotPki, tmp_path: Path) -> None:
    now = utcnow().replace(microsecond=0)
    cert, key = write_leaf(tmp_path, rot_pki.ca, start=now - HOUR * 20, lifetime=HOUR * 24)
    old_leaf = load_certificate_file(cert)[0]
    old_key = load_key_file(key)
    renewer = Renewer(rot_pki.ca, cert, key)
    result = renewer.renew_if_due(now)
    assert result is not None
    new_leaf = load_certificate_file(cert)[0]
    new_key = load_key_file(key)
    assert result.serial == f"{new_leaf.serial_number:x}"
    assert result.previous_serial == f"{old_leaf.serial_number:x}"
    assert new_leaf.public_key() != old_key.public_key()
    assert new_leaf.public_key() == new_key.public_key()
    assert new_leaf.subject == old_leaf.subject
    assert new_leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme"
    san = x509.SubjectAlternativeName
    assert (
        new_leaf.extensions.get_extension_for_class(san).value
        == old_leaf.extensions.get_extension_for_class(san).value
    )
    eku = new_leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    lifetime = new_leaf.not_valid_after_utc - new_leaf.not_valid_before_utc
    assert lifetime == HOUR * 24  # the same span (backdate included)
    assert new_leaf.not_valid_before_utc <= now
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert.stat().st_mode) == 0o644
    assert not list(tmp_path.glob(".*.tmp"))
    assert "PRIVATE KEY" not in repr(result)


def test_an_expired_certificate_is_refused_unless_allowed(rot_pki: RotPki, tmp_path: Path) -> None:
    start = utcnow().replace(microsecond=0) - HOUR * 3
    cert, key = write_leaf(tmp_path, rot_pki.ca, start=start, lifetime=HOUR)
    expiry = start + HOUR
    renewer = Renewer(rot_pki.ca, cert, key)
    renewer.renew(expiry - SECOND)  # one second before expiry: renewed
    cert, key = write_leaf(tmp_path, rot_pki.ca, start=start, lifetime=HOUR)
    with pytest.raises(RotationError, match=r"expired on .* ago.*--allow-expired") as info:
        renewer.renew(expiry + SECOND)
    assert info.value.path == str(cert)
    assert Renewer(rot_pki.ca, cert, key, allow_expired=True).renew(expiry + SECOND).serial


def test_a_certificate_from_another_ca_is_only_reissued_on_request(
    rot_pki: RotPki, tmp_path: Path
) -> None:
    now = utcnow().replace(microsecond=0)
    cert, key = write_leaf(tmp_path, rot_pki.other_ca, start=now - HOUR, lifetime=HOUR * 2)
    with pytest.raises(RotationError, match="not by this CA"):
        Renewer(rot_pki.ca, cert, key).renew(now)
    result = Renewer(rot_pki.ca, cert, key, allow_other_issuer=True).renew(now)
    assert load_certificate_file(cert)[0].issuer == rot_pki.ca.certificate.subject
    assert result.serial


def test_the_hook_gets_the_new_files_and_its_failure_is_reported(
    rot_pki: RotPki, tmp_path: Path
) -> None:
    now = utcnow().replace(microsecond=0)
    cert, key = write_leaf(tmp_path, rot_pki.ca, start=now - HOUR, lifetime=HOUR * 2)
    out = tmp_path / "hook.txt"
    script = (
        "import os, sys; open(sys.argv[1], 'w').write("
        "os.environ['GRPCSEC_SERIAL'] + ' ' + os.environ['GRPCSEC_CERT'])"
    )
    hook = ExecHook((sys.executable, "-c", script, str(out)))
    result = Renewer(rot_pki.ca, cert, key, hook=hook).renew(now)
    assert result.hook_ran
    assert result.hook_error is None
    assert out.read_text() == f"{result.serial} {cert}"
    failing = ExecHook((sys.executable, "-c", "raise SystemExit(3)"))
    result = Renewer(rot_pki.ca, cert, key, hook=failing).renew(now)
    assert result.hook_error == "the hook exited with status 3"
    assert load_certificate_file(cert)[0].serial_number == int(result.serial, 16)  # it stands
    missing = ExecHook(("/nonexistent/grpcsec-hook",))
    assert "was not found" in str(
        Renewer(rot_pki.ca, cert, key, hook=missing).renew(now).hook_error
    )


def test_step_backs_off_after_failures_and_recovers(rot_pki: RotPki, tmp_path: Path) -> None:
    now = utcnow().replace(microsecond=0)
    renewer = Renewer(
        rot_pki.ca,
        tmp_path / "missing.crt",
        tmp_path / "missing.key",
        backoff=Backoff(initial=1.0, maximum=4.0, jitter=0.0),
        check_interval=60,
    )
    assert [renewer.step(now) for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    assert renewer.failures == 4
    assert isinstance(renewer.last_error, MaterialError)
    cert, key = write_leaf(tmp_path, rot_pki.ca, start=now - HOUR, lifetime=HOUR * 3)
    renewer.cert, renewer.key = cert, key
    plan = renewer.plan(now)
    assert renewer.step(now) == 60  # not due for another hour: check again in a minute
    assert renewer.failures == 0
    assert renewer.last_error is None
    assert renewer.renewals == 0
    assert renewer.step(plan.renew_at) == 60  # renewed, and the next one is hours away
    assert renewer.renewals == 1


def test_run_reports_each_step_and_forces_only_the_first(rot_pki: RotPki, tmp_path: Path) -> None:
    """What ``grpcsec renew --json`` prints as events: the renewal a step made, each new
    failure with its count and retry delay, and nothing for a quiet step."""
    now = utcnow().replace(microsecond=0)
    cert, key = write_leaf(tmp_path, rot_pki.ca, start=now - HOUR, lifetime=HOUR * 24)
    renewer = Renewer(rot_pki.ca, cert, key, check_interval=60)
    steps: list[AgentStep] = []
    stop = threading.Event()
    renewer.run(stop, clock=lambda: now, max_iterations=1, force_first=True, on_step=steps.append)
    assert steps[0].renewed is not None  # not due, but forced
    assert steps[0].error is None
    renewer.run(stop, clock=lambda: now, max_iterations=1, on_step=steps.append)
    # negative control: a quiet step reports nothing but its delay
    assert (steps[1].renewed, steps[1].error, steps[1].delay) == (None, None, 60)
    renewer.cert = tmp_path / "gone.crt"
    renewer.run(stop, clock=lambda: now, max_iterations=2, on_step=steps.append)
    assert [step.failures for step in steps[2:]] == [1, 2]
    assert all(isinstance(step.error, MaterialError) for step in steps[2:])
    assert renewer.renewals == 1


def test_the_agent_thread_drives_a_rotating_server(rot_pki: RotPki, tmp_path: Path) -> None:
    """The demo's recipe: a Renewer with a short period, a ReloadingServerTLS polling the same
    files, and new connections served each renewed certificate."""
    now = utcnow().replace(microsecond=0)
    cert, key = write_leaf(tmp_path, rot_pki.ca, start=now - SECOND, lifetime=HOUR)
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(bundle(rot_pki.ca))
    tls = ReloadingServerTLS.from_files(cert, key, client_ca=ca_file, interval=0.05)
    renewer = Renewer(rot_pki.ca, cert, key)
    prober = Prober(tmp_path / "probe", bundle(rot_pki.ca), client_leaf(rot_pki.ca))
    with tls, serve("sync", tls.credentials) as server:
        served = [prober.serial(server.port)]
        for _ in range(3):
            result = renewer.renew(utcnow())
            assert tls.reload() in {ReloadOutcome.LOADED, ReloadOutcome.UNCHANGED}
            prober.wait_for(server.port, result.serial)
            served.append(result.serial)
        # The agent thread with a 1 s period (fresh certificates are backdated by 0.1 s).
        agent = Renewer(rot_pki.ca, cert, key, every=SECOND, check_interval=0.2).start()
        try:
            for _ in range(500):
                if agent.renewals >= 2:
                    break
                time.sleep(0.01)
        finally:
            agent.stop()
        assert agent.renewals >= 2
        assert agent.last_result is not None
        prober.wait_for(server.port, agent.last_result.serial)
        served.append(agent.last_result.serial)
    assert len(set(served)) == 5
    assert renewer.renewals == 3
