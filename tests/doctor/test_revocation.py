"""``grpcsec doctor --crl``: against real grpcsec servers on 127.0.0.1 (which do not check
revocation themselves, as grpcio cannot), the doctor reports a revoked served certificate, a
revoked intermediate in the served chain, a revoked client certificate and revoked local files,
each with the fix naming the serial, date and reason; a stale or namesake CRL is the
``revocation_undetermined`` warning. Controls: the same runs without ``--crl`` or with a CRL that
lists other serials pass."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grpcsec.cli import app
from grpcsec.pki import (
    CERT_MODE,
    CertificateAuthority,
    IssuedCertificate,
    PendingFile,
    Profile,
    SubjectAltNames,
    utcnow,
    write_files,
)
from grpcsec.pki.crl import RevocationReason
from grpcsec.pki.layout import leaf_files
from tests.crls import write_crl
from tests.doctor.conftest import Files, grpcsec_server

pytestmark = pytest.mark.slow

REVOKED_AT = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)
WHEN = "on 2026-03-04 05:06:07Z for key_compromise"


@dataclass(frozen=True)
class World:
    files: Files
    root: CertificateAuthority
    issuing: CertificateAuthority
    server: IssuedCertificate
    chained: IssuedCertificate
    client: IssuedCertificate

    def __call__(self, name: str) -> str:
        return self.files(name)

    def crl(self, name: str, ca: CertificateAuthority, *revoked: IssuedCertificate) -> str:
        return str(
            write_crl(self.files.dir / name, ca, *(r.certificate for r in revoked),
                      reason=RevocationReason.KEY_COMPROMISE, revoked_at=REVOKED_AT)
        )  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    directory = tmp_path_factory.mktemp("doctor-crl")
    now = utcnow()
    root = CertificateAuthority.create("crl doctor root", now=now)
    issuing = root.create_intermediate("crl doctor issuing", now=now)
    names = SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"])
    server = root.issue(Profile.SERVER, names, now=now)
    chained = issuing.issue(Profile.SERVER, names, now=now)
    client = root.issue(Profile.CLIENT, SubjectAltNames.build(dns=["client.test"]), now=now)
    write_files(
        [
            PendingFile(directory / "ca.crt", root.certificate_pem(), CERT_MODE),
            *leaf_files(server, directory / "server.crt", directory / "server.key"),
            *leaf_files(chained, directory / "chained.crt", directory / "chained.key"),
            *leaf_files(client, directory / "client.crt", directory / "client.key"),
        ]
    )
    return World(Files(directory), root, issuing, server, chained, client)


def doctor(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["doctor", *args])
    return result.exit_code, result.stdout


def doctor_json(*args: str) -> tuple[int, dict[str, object]]:
    code, out = doctor(*args, "--json")
    document: dict[str, object] = json.loads(out)
    return code, document


def check(document: dict[str, object], name: str) -> dict[str, object]:
    checks = document["checks"]
    assert isinstance(checks, list)
    found: dict[str, object] = next(c for c in checks if c["name"] == name)
    return found


def test_a_revoked_served_certificate_is_the_diagnosis(world: World) -> None:
    revoking = world.crl("served-revoked.crl", world.root, world.server)
    clean = world.crl("clean.crl", world.root, world.client)
    with grpcsec_server(world.files) as server:
        address = str(server.address)
        code, document = doctor_json(address, "--ca", world("ca.crt"), "--crl", revoking)
        assert code == 1
        assert document["diagnosis"] == "server_cert_revoked"
        found = check(document, "server_revocation")
        assert found["status"] == "fail"
        serial = f"{world.server.certificate.serial_number:x}"
        assert f"the CA revoked serial {serial} {WHEN}" in str(found["fix"])
        assert str(found["fix"]).startswith("reissue the certificate")
        # the human report says the same
        code, out = doctor(address, "--ca", world("ca.crt"), "--crl", revoking)
        assert code == 1
        assert "FAIL server_revocation" in out
        assert "diagnosis: server_cert_revoked" in out
        assert f"revoked serial {serial}" in out
        # controls: no --crl, and a CRL that lists only another serial
        assert doctor(address, "--ca", world("ca.crt"))[0] == 0
        code, document = doctor_json(address, "--ca", world("ca.crt"), "--crl", clean)
        assert code == 0
        assert check(document, "server_revocation")["status"] == "pass"


def test_a_revoked_intermediate_in_the_served_chain_is_found(world: World) -> None:
    root_crl = world.crl("root-clean.crl", world.root)
    revoke_issuing = str(
        write_crl(world.files.dir / "root-revokes.crl", world.root, world.issuing.certificate)
    )
    issuing_crl = world.crl("issuing.crl", world.issuing)
    with grpcsec_server(world.files, "chained.crt", "chained.key") as server:
        address = str(server.address)
        ca = world("ca.crt")
        code, document = doctor_json(address, "--ca", ca, "--crl", issuing_crl, "--crl",
                                     revoke_issuing)  # fmt: skip
        assert code == 1
        assert document["diagnosis"] == "server_cert_revoked"
        found = check(document, "server_revocation")
        assert "intermediate CA certificate serial" in str(found["message"])
        assert "(CN=crl doctor issuing)" in str(found["message"])
        assert "intermediate CA and every leaf under it" in str(found["fix"])
        code, _ = doctor(address, "--ca", ca, "--crl", issuing_crl, "--crl", root_crl)
        assert code == 0


def test_a_revoked_client_certificate_is_the_diagnosis(world: World) -> None:
    revoking = world.crl("client-revoked.crl", world.root, world.client)
    clean = world.crl("server-only.crl", world.root, world.chained)
    mtls = ("--ca", world("ca.crt"), "--cert", world("client.crt"), "--key", world("client.key"))
    with grpcsec_server(world.files, client_ca="ca.crt") as server:
        address = str(server.address)
        code, document = doctor_json(address, *mtls, "--crl", revoking)
        assert code == 1
        assert document["diagnosis"] == "client_cert_revoked"
        found = check(document, "client_revocation")
        serial = f"{world.client.certificate.serial_number:x}"
        assert f"the CA revoked serial {serial} {WHEN}" in str(found["fix"])
        assert check(document, "server_revocation")["status"] == "pass"
        code, document = doctor_json(address, *mtls, "--crl", clean)
        assert code == 0, document
        assert check(document, "client_revocation")["status"] == "pass"


def test_a_stale_or_namesake_crl_is_a_warning_not_a_pass(world: World) -> None:
    now = utcnow()
    stale = str(
        write_crl(world.files.dir / "stale.crl", world.root, this_update=now - dt.timedelta(days=9),
                  next_update=now - dt.timedelta(days=1))
    )  # fmt: skip
    namesake = CertificateAuthority.create("crl doctor root")
    forged = str(write_crl(world.files.dir / "forged.crl", namesake))
    with grpcsec_server(world.files) as server:
        for crl, words in ((stale, "expired at its next update"), (forged, "not signed by")):
            code, document = doctor_json(str(server.address), "--ca", world("ca.crt"), "--crl", crl)
            assert code == 0  # a warning: the doctor cannot tell
            found = check(document, "server_revocation")
            assert found["status"] == "warn"
            assert found["code"] == "revocation_undetermined"
            assert words in str(found["message"])


@pytest.mark.parametrize(("role", "stem"), [("client", "client"), ("server", "server")])
def test_revoked_local_files(world: World, role: str, stem: str) -> None:
    issued = world.client if role == "client" else world.server
    revoking = world.crl(f"local-{role}.crl", world.root, issued)
    local = ("--cert", world(f"{stem}.crt"), "--key", world(f"{stem}.key"), "--role", role,
             "--ca", world("ca.crt"))  # fmt: skip
    code, document = doctor_json(*local, "--crl", revoking)
    assert code == 1
    assert document["diagnosis"] == f"{role}_cert_revoked"
    assert f"revoked serial {issued.certificate.serial_number:x}" in str(
        check(document, "revocation")["fix"]
    )
    assert doctor(*local)[0] == 0  # control
    # without --ca the issuer of a leaf-only file is unknown: undetermined, said so
    code, document = doctor_json(*local[:6], "--crl", revoking)
    assert check(document, "revocation")["code"] == "revocation_undetermined"


@pytest.mark.parametrize("how", ["garbage", "missing"])
def test_a_bad_crl_file_is_exit_2_with_one_line(world: World, tmp_path: Path, how: str) -> None:
    bad = tmp_path / "bad.crl"
    if how == "garbage":
        bad.write_bytes(b"no CRL here\n")
    result = CliRunner().invoke(
        app, ["doctor", "--cert", world("client.crt"), "--key", world("client.key"), "--crl",
              str(bad)],
    )  # fmt: skip
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert str(bad) in lines[0]


def test_insecure_with_crl_is_bad_usage(world: World) -> None:
    result = CliRunner().invoke(
        app, ["doctor", "127.0.0.1:1", "--insecure", "--crl", world("ca.crt")]
    )
    assert result.exit_code == 2
    assert "--crl" in result.stderr


def test_doctor_crl_in_a_real_subprocess(world: World) -> None:
    revoking = world.crl("subprocess.crl", world.root, world.server)
    with grpcsec_server(world.files) as server:
        command = [sys.executable, "-m", "grpcsec.cli", "doctor", str(server.address), "--ca",
                   world("ca.crt"), "--crl", revoking, "--json"]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["diagnosis"] == "server_cert_revoked"
