"""The CA directory's records (``issued.jsonl``, ``revoked.json``) and what is built on them:
revoking only what the CA issued, revoking twice as a no-op, CRL numbers that only go up, and
record files that are not ours refused in one line."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path

import pytest

from grpcsec.errors import ConfigurationError, MaterialError
from grpcsec.pki import CertificateAuthority, Profile, SubjectAltNames, write_files
from grpcsec.pki.crl import RevocationReason, load_crl_file
from grpcsec.pki.layout import CertificateFiles, ca_files, leaf_files
from grpcsec.pki.registry import CaRecords, ca_key_id, write_issued
from grpcsec.pki.revoke import issued_by_problem, publish_crl, revoke
from grpcsec.pki.signing import IssuedCertificate

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.timezone.utc)
WEEK = dt.timedelta(days=7)


def _ca(directory: Path, name: str = "Registry Root") -> CertificateAuthority:
    ca = CertificateAuthority.create(name, now=NOW)
    write_files(ca_files(ca, directory))
    return ca


def _issue(ca: CertificateAuthority, ca_dir: Path, out: Path, name: str) -> IssuedCertificate:
    leaf = ca.issue(Profile.CLIENT, SubjectAltNames.from_identities([name]), now=NOW)
    item = CertificateFiles("client certificate", leaf.certificate, out / f"{name}.crt", None)
    files = leaf_files(leaf, out / f"{name}.crt", out / f"{name}.key")
    write_issued(ca_dir, [item], files, force=False, now=NOW)
    return leaf


def test_issuing_through_write_issued_records_serial_subject_not_after_and_file(
    tmp_path: Path,
) -> None:
    ca = _ca(tmp_path / "ca")
    alice = _issue(ca, tmp_path / "ca", tmp_path, "alice")
    bob = _issue(ca, tmp_path / "ca", tmp_path, "bob")
    issued = CaRecords(tmp_path / "ca", ca_key_id(ca.certificate)).issued()
    assert set(issued) == {alice.certificate.serial_number, bob.certificate.serial_number}
    record = issued[alice.certificate.serial_number]
    assert record.subject == "CN=alice"
    assert record.not_after == alice.certificate.not_valid_after_utc
    assert record.file == str((tmp_path / "alice.crt").absolute())
    lines = (tmp_path / "ca" / "issued.jsonl").read_text().splitlines()
    assert len(lines) == 2  # appended, never rewritten
    assert json.loads(lines[0])["serial"] == format(alice.certificate.serial_number, "x")


def test_a_refused_write_records_nothing(tmp_path: Path) -> None:
    ca = _ca(tmp_path / "ca")
    (tmp_path / "alice.crt").write_text("keep")
    with pytest.raises(MaterialError):
        _issue(ca, tmp_path / "ca", tmp_path, "alice")
    assert not (tmp_path / "ca" / "issued.jsonl").exists()


def test_revoke_a_certificate_then_again_is_a_no_op(tmp_path: Path) -> None:
    ca = _ca(tmp_path / "ca")
    alice = _issue(ca, tmp_path / "ca", tmp_path, "alice")
    first = revoke(
        tmp_path / "ca",
        ca.certificate,
        certificate=alice.certificate,
        reason=RevocationReason.KEY_COMPROMISE,
        now=NOW,
    )
    assert not first.already_revoked
    assert first.recorded
    assert first.revocation.reason is RevocationReason.KEY_COMPROMISE
    later = NOW + dt.timedelta(hours=1)
    again = revoke(
        tmp_path / "ca", ca.certificate, serial=alice.certificate.serial_number, now=later
    )
    assert again.already_revoked
    assert again.revocation == first.revocation  # date and reason unchanged
    assert again.subject == "CN=alice"


def test_an_unknown_serial_is_refused(tmp_path: Path) -> None:
    ca = _ca(tmp_path / "ca")
    _issue(ca, tmp_path / "ca", tmp_path, "alice")
    with pytest.raises(MaterialError, match="unknown serial 1234"):
        revoke(tmp_path / "ca", ca.certificate, serial=0x1234, now=NOW)
    assert not (tmp_path / "ca" / "revoked.json").exists()


def test_a_certificate_of_a_namesake_ca_is_refused(tmp_path: Path) -> None:
    """Same issuer name, another key: the key identifier and the signature tell them apart."""
    ca = _ca(tmp_path / "ca", "Same Name")
    other = _ca(tmp_path / "other", "Same Name")
    foreign = _issue(other, tmp_path / "other", tmp_path, "mallory")
    own = _issue(ca, tmp_path / "ca", tmp_path, "alice")
    assert issued_by_problem(own.certificate, ca.certificate) is None  # the control
    problem = issued_by_problem(foreign.certificate, ca.certificate)
    assert problem is not None
    assert "another CA named CN=Same Name" in problem
    with pytest.raises(MaterialError, match="cannot revoke"):
        revoke(tmp_path / "ca", ca.certificate, certificate=foreign.certificate, now=NOW)
    unrelated = _ca(tmp_path / "third", "Third")
    assert "not by this CA" in (issued_by_problem(own.certificate, unrelated.certificate) or "")
    assert "own certificate" in (issued_by_problem(ca.certificate, ca.certificate) or "")


def test_a_verified_certificate_issued_before_records_were_kept_is_revoked(tmp_path: Path) -> None:
    ca = _ca(tmp_path / "ca")
    unrecorded = ca.issue(Profile.CLIENT, SubjectAltNames.from_identities(["old"]), now=NOW)
    result = revoke(tmp_path / "ca", ca.certificate, certificate=unrecorded.certificate, now=NOW)
    assert not result.recorded
    assert not result.already_revoked


def test_revoke_needs_exactly_one_of_certificate_and_serial(tmp_path: Path) -> None:
    ca = _ca(tmp_path / "ca")
    with pytest.raises(ConfigurationError):
        revoke(tmp_path / "ca", ca.certificate, now=NOW)


def test_crl_numbers_increase_and_the_crl_lists_every_revocation(tmp_path: Path) -> None:
    ca = _ca(tmp_path / "ca")
    leaves = [_issue(ca, tmp_path / "ca", tmp_path, name) for name in ("a", "b", "c")]
    out = tmp_path / "pub" / "ca.crl"
    first = publish_crl(tmp_path / "ca", ca, out, lifetime=WEEK, now=NOW)
    assert first.number == 1
    assert first.entries == {}
    revoke(tmp_path / "ca", ca.certificate, certificate=leaves[1].certificate, now=NOW)
    second = publish_crl(tmp_path / "ca", ca, out, lifetime=WEEK, now=NOW)
    assert second.number == 2
    read_back = load_crl_file(out)
    assert read_back.number == 2
    assert read_back.is_signed_by(ca.certificate)
    assert read_back.lookup(leaves[1].certificate.serial_number) is not None
    assert read_back.lookup(leaves[0].certificate.serial_number) is None  # the control
    assert read_back.next_update == NOW + WEEK


def test_crl_numbers_never_repeat_under_concurrent_publishers(tmp_path: Path) -> None:
    ca = _ca(tmp_path / "ca")
    numbers: list[int | None] = []
    lock = threading.Lock()

    def publish(index: int) -> None:
        crl = publish_crl(tmp_path / "ca", ca, tmp_path / f"{index}.crl", lifetime=WEEK, now=NOW)
        with lock:
            numbers.append(crl.number)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(n for n in numbers if n is not None) == [1, 2, 3, 4, 5, 6]


def test_a_new_ca_in_the_directory_starts_its_own_records(tmp_path: Path) -> None:
    """``init --force`` puts a new CA in the directory: the old CA's serials are not the new
    one's, and its CRL numbers start again."""
    old = _ca(tmp_path / "ca")
    old_leaf = _issue(old, tmp_path / "ca", tmp_path, "old")
    revoke(tmp_path / "ca", old.certificate, certificate=old_leaf.certificate, now=NOW)
    publish_crl(tmp_path / "ca", old, tmp_path / "old.crl", lifetime=WEEK, now=NOW)
    new = CertificateAuthority.create("Registry Root", now=NOW)
    write_files(ca_files(new, tmp_path / "ca"), force=True)
    with pytest.raises(MaterialError, match="unknown serial"):
        revoke(tmp_path / "ca", new.certificate, serial=old_leaf.certificate.serial_number, now=NOW)
    crl = publish_crl(tmp_path / "ca", new, tmp_path / "new.crl", lifetime=WEEK, now=NOW)
    assert crl.number == 1
    assert crl.entries == {}


def test_publishing_refuses_to_overwrite_the_ca_files(tmp_path: Path) -> None:
    ca = _ca(tmp_path / "ca")
    for name in ("ca.crt", "ca.key", "issued.jsonl", "revoked.json"):
        with pytest.raises(ConfigurationError, match=name):
            publish_crl(tmp_path / "ca", ca, tmp_path / "ca" / name, lifetime=WEEK, now=NOW)
    assert (tmp_path / "ca" / "ca.crt").read_bytes() == ca.certificate_pem()


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("issued.jsonl", b'{"serial": "zz"}\n', "line 1"),
        ("issued.jsonl", b"\n[1, 2]\n", "line 2"),
        ("issued.jsonl", b"\xff\xfe\n", "line 1"),
        ("issued.jsonl", b"[" * 100_000 + b"\n", "line 1"),
        ("revoked.json", b"not json", "revocation record"),
        ("revoked.json", b'{"format": 2}', "revocation record"),
        ("revoked.json", b'{"format": 1, "ca_key_id": "", "crl_number": -1, "revoked": []}', "crl"),
        (
            "revoked.json",
            b'{"format": 1, "ca_key_id": "", "crl_number": 1, "revoked": [{"serial": "1"}]}',
            "revoked[0]",
        ),
    ],
)
def test_a_corrupt_record_file_is_one_line(
    tmp_path: Path, name: str, content: bytes, needle: str
) -> None:
    ca = _ca(tmp_path / "ca")
    (tmp_path / "ca" / name).write_bytes(content)
    records = CaRecords(tmp_path / "ca", ca_key_id(ca.certificate))
    with pytest.raises(MaterialError) as caught:
        records.issued() if name == "issued.jsonl" else records.state()
    message = str(caught.value)
    assert "\n" not in message
    assert name in message
    assert needle in message


def test_a_record_file_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    ca = _ca(tmp_path / "ca")
    os.mkfifo(tmp_path / "ca" / "issued.jsonl")
    with pytest.raises(MaterialError, match="FIFO"):
        CaRecords(tmp_path / "ca", ca_key_id(ca.certificate)).issued()
    with pytest.raises(MaterialError, match="not a regular file"):
        _issue(ca, tmp_path / "ca", tmp_path, "alice")
    assert not (tmp_path / "alice.crt").exists()  # refused before anything was written
