"""``grpcsec doctor --cert --key`` without a target: local files, judged at a given moment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from grpcsec.doctor import DoctorReport, LintRequest, Status, lint
from grpcsec.errors import PasswordError
from grpcsec.pki import (
    CERT_MODE,
    KEY_MODE,
    CertificateAuthority,
    PendingFile,
    PrivateKey,
    Profile,
    Role,
    SubjectAltNames,
    certificates_pem,
    private_key_pem,
    utcnow,
    write_files,
)
from tests.doctor.conftest import Files, forge

NOW = utcnow()  # issuance time of this module's own certificates; judge at utcnow()


def check(report: DoctorReport, name: str) -> tuple[str, str]:
    found = {c.name: c for c in report.checks}[name]
    return found.status.value, found.code


def run(files: Files, cert: str, key: str, **options: object) -> DoctorReport:
    return lint(LintRequest(cert=files(cert), key=files(key), **options), now=utcnow())


def write_pair(
    directory: Path, stem: str, certificate: object, key: PrivateKey, mode: int = KEY_MODE
) -> tuple[str, str]:
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    write_files(
        [
            PendingFile(cert_path, certificates_pem([certificate]), CERT_MODE),
            PendingFile(key_path, private_key_pem(key), mode),
        ]
    )
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("lint root", now=NOW)


def test_good_server_files_pass_every_check(files: Files) -> None:
    report = run(files, "server.crt", "server.key", ca=files("ca.crt"), host="localhost")
    assert report.diagnosis == "ok"
    assert all(c.status is Status.PASS for c in report.checks)
    assert report.to_json()["files"]["role"] == "server"


def test_good_client_files_for_the_client_role(files: Files) -> None:
    report = run(files, "client.crt", "client.key", ca=files("ca.crt"), role=Role.CLIENT)
    assert report.diagnosis == "ok"


@pytest.mark.parametrize(
    ("role", "code"), [(Role.SERVER, "server_key_mismatch"), (Role.CLIENT, "client_key_mismatch")]
)
def test_key_of_another_certificate(files: Files, role: Role, code: str) -> None:
    report = run(files, "client.crt", "wrong.key", role=role)
    assert report.diagnosis == code


def test_group_readable_key_file(files: Files, tmp_path: Path, ca: CertificateAuthority) -> None:
    issued = ca.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.test"]), now=NOW)
    assert issued.key is not None
    cert, key = write_pair(tmp_path, "open", issued.certificate, issued.key, mode=0o644)
    report = lint(LintRequest(cert=cert, key=key), now=utcnow())
    assert report.diagnosis == "key_file_permissions"
    assert report.root_cause is not None
    assert f"chmod 600 {key}" in (report.root_cause.fix or "")


def test_cn_only_certificate(tmp_path: Path, ca: CertificateAuthority) -> None:
    certificate, key = forge(ca, common_name="legacy.test")
    cert_path, key_path = write_pair(tmp_path, "cn-only", certificate, key)
    server = lint(LintRequest(cert=cert_path, key=key_path), now=utcnow())
    assert server.diagnosis == "cn_only_cert"
    client = lint(LintRequest(cert=cert_path, key=key_path, role=Role.CLIENT), now=utcnow())
    assert check(client, "names") == ("warn", "cn_only_cert")


def test_uri_only_server_certificate(files: Files) -> None:
    report = run(files, "server-uri-only.crt", "server-uri-only.key")
    assert report.diagnosis == "uri_only_server_cert"


def test_host_not_among_the_names(files: Files) -> None:
    report = run(files, "server.crt", "server.key", host="api.example")
    assert report.diagnosis == "hostname_mismatch"
    assert report.root_cause is not None
    assert "--host api.example" in (report.root_cause.fix or "")


def test_expired_client_certificate_uses_the_client_code(files: Files) -> None:
    report = run(files, "client-expired.crt", "client-expired.key", role=Role.CLIENT)
    assert report.diagnosis == "client_cert_expired"


def test_not_yet_valid_server_certificate(files: Files) -> None:
    report = run(files, "server-future.crt", "server-future.key")
    assert report.diagnosis == "server_cert_not_yet_valid"


def test_expiry_follows_the_given_moment(files: Files) -> None:
    later = NOW + dt.timedelta(days=400)
    report = lint(LintRequest(cert=files("server.crt"), key=files("server.key")), now=later)
    assert report.diagnosis == "server_cert_expired"


def test_client_certificate_used_as_a_server(files: Files) -> None:
    report = run(files, "client.crt", "client.key")
    assert report.diagnosis == "server_cert_wrong_eku"
    assert report.root_cause is not None
    assert "--role client" in (report.root_cause.fix or "")


def test_chain_file_without_its_intermediate(files: Files) -> None:
    with_bundle = run(
        files, "server-leaf-only.crt", "server-full-chain.key", ca=files("ca-and-intermediate.crt")
    )
    assert with_bundle.diagnosis == "incomplete_chain"
    root_only = run(files, "server-leaf-only.crt", "server-full-chain.key", ca=files("ca.crt"))
    assert root_only.diagnosis == "unknown_authority"
    complete = run(files, "server-full-chain.crt", "server-full-chain.key", ca=files("ca.crt"))
    assert complete.diagnosis == "ok"


def test_certificate_from_another_ca(files: Files) -> None:
    report = run(files, "server.crt", "server.key", ca=files("other-ca.crt"))
    assert report.diagnosis == "unknown_authority"


def test_ca_certificate_first(tmp_path: Path, ca: CertificateAuthority) -> None:
    cert, key = write_pair(tmp_path, "ca", ca.certificate, ca.key)
    assert lint(LintRequest(cert=cert, key=key), now=utcnow()).diagnosis == "ca_as_leaf"


def test_weak_rsa_key_warns(tmp_path: Path, ca: CertificateAuthority) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (on purpose)
    certificate, key = forge(
        ca, common_name="small.test", key=small, names=SubjectAltNames.build(dns=["small.test"])
    )
    cert, key_path = write_pair(tmp_path, "small", certificate, key)
    report = lint(LintRequest(cert=cert, key=key_path), now=utcnow())
    assert report.diagnosis == "ok"
    assert check(report, "key_strength") == ("warn", "weak_key")


def test_encrypted_key_needs_its_password(tmp_path: Path, ca: CertificateAuthority) -> None:
    issued = ca.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.test"]), now=NOW)
    cert = tmp_path / "locked.crt"
    key = tmp_path / "locked.key"
    write_files(
        [
            PendingFile(cert, issued.chain_pem(), CERT_MODE),
            PendingFile(key, issued.key_pem(b"s3cret-pass"), KEY_MODE),
        ]
    )
    with pytest.raises(PasswordError):
        lint(LintRequest(cert=cert, key=key), now=utcnow())
    assert (
        lint(LintRequest(cert=cert, key=key, key_password=b"s3cret-pass"), now=utcnow()).diagnosis
        == "ok"
    )
    assert "s3cret-pass" not in repr(LintRequest(cert=cert, key=key, key_password=b"s3cret-pass"))
