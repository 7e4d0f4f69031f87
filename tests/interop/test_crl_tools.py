"""The CRL that ``grpcsec ca crl`` publishes, judged by tools nobody in this project wrote:
``openssl crl -verify``, ``openssl verify -crl_check`` and Go's ``x509.ParseRevocationList`` +
``CheckSignatureFrom`` (``interop/build/bin/crlcheck``).

Everything is made by the CLI in subprocesses (``init``, ``issue``, ``ca intermediate``,
``ca revoke``, ``ca crl``). Each acceptance has its negative control: a CA with the *same name*
but another key (``namesake``) must not be accepted as the CRL's signer, its CRL must not be
taken for ours, and a certificate that was not revoked must still verify.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from tests.interop.conftest import INSTALL_HINT, INTEROP, PROCESS_TIMEOUT, OpenSsl, missing

pytestmark = pytest.mark.interop

CRLCHECK = INTEROP / "build" / "bin" / "crlcheck"


def cli(*args: object, code: int = 0) -> subprocess.CompletedProcess[str]:
    """``python -m grpcsec.cli ARGS`` in its own process; asserts the exit code."""
    result = subprocess.run(
        [sys.executable, "-m", "grpcsec.cli", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == code, (args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def serial_of(path: Path) -> str:
    return format(x509.load_pem_x509_certificate(path.read_bytes()).serial_number, "x")


@dataclass(frozen=True)
class World:
    """``pki``: a CA (from ``grpcsec init``) that issued alice (revoked, key compromise), bob
    and ``client`` (not revoked) and an intermediate (revoked) that issued carol; ``crl`` is
    its published CRL (number 2: one was published before), ``inter_crl`` the intermediate's.
    ``namesake``: another CA with the same subject name, with its own CRL and leaf mallory."""

    root: Path
    pki: Path
    alice: Path
    bob: Path
    carol: Path
    crl: Path
    inter: Path
    inter_crl: Path
    namesake: Path
    namesake_crl: Path
    mallory: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("crl-tools")
    pki, inter, namesake = root / "pki", root / "inter", root / "namesake"
    cli("init", "--dir", pki)
    name = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes()).subject
    common_name = str(name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)
    cli("ca", "init", "--dir", namesake, "--name", common_name)
    for who in ("alice", "bob"):
        cli("issue", "client", "--ca-dir", pki, "--out", root / who, "--host", who)
    cli("issue", "client", "--ca-dir", namesake, "--out", root / "mallory", "--host", "mallory")
    cli("ca", "intermediate", "--ca-dir", pki, "--out-dir", inter, "--name", "Issuing")
    cli("issue", "client", "--ca-dir", inter, "--out", root / "carol", "--host", "carol")
    crl = root / "pub" / "ca.crl"
    cli("ca", "crl", "--ca-dir", pki, "--out", crl)  # number 1, nothing revoked yet
    cli("ca", "revoke", root / "alice.crt", "--ca-dir", pki, "--reason", "key_compromise")
    cli("ca", "revoke", "--serial", serial_of(inter / "ca.crt"), "--ca-dir", pki)
    cli("ca", "crl", "--ca-dir", pki, "--out", crl)  # number 2, replacing number 1
    cli("ca", "crl", "--ca-dir", inter, "--out", root / "pub" / "inter.crl")
    cli("ca", "revoke", root / "mallory.crt", "--ca-dir", namesake)
    cli("ca", "crl", "--ca-dir", namesake, "--out", root / "pub" / "namesake.crl")
    return World(
        root=root,
        pki=pki,
        alice=root / "alice.crt",
        bob=root / "bob.crt",
        carol=root / "carol.crt",
        crl=crl,
        inter=inter,
        inter_crl=root / "pub" / "inter.crl",
        namesake=namesake,
        namesake_crl=root / "pub" / "namesake.crl",
        mallory=root / "mallory.crt",
    )


def _openssl(openssl: OpenSsl, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [openssl.path, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
        env=openssl.env,
    )


# -- openssl --------------------------------------------------------------------------------
def test_openssl_crl_verify_accepts_the_crl_and_refuses_a_namesake_ca(
    world: World, openssl: OpenSsl
) -> None:
    good = _openssl(openssl, "crl", "-in", world.crl, "-CAfile", world.pki / "ca.crt",
                    "-verify", "-noout")  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert "verify OK" in good.stdout + good.stderr
    for crl, ca in ((world.crl, world.namesake), (world.namesake_crl, world.pki)):
        bad = _openssl(openssl, "crl", "-in", crl, "-CAfile", ca / "ca.crt", "-verify", "-noout")
        assert "verify OK" not in bad.stdout + bad.stderr, (crl, ca)
        assert "verify failure" in bad.stdout + bad.stderr, (crl, ca)


def test_openssl_reads_the_crl_number_and_the_authority_key_identifier(
    world: World, openssl: OpenSsl
) -> None:
    text = _openssl(openssl, "crl", "-in", world.crl, "-noout", "-text").stdout
    assert "X509v3 CRL Number: \n                2" in text
    ski = x509.load_pem_x509_certificate((world.pki / "ca.crt").read_bytes()).extensions
    digest = ski.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert ":".join(f"{b:02X}" for b in digest) in text  # the AKI is the CA's key id


def test_openssl_verify_crl_check_says_revoked_only_for_the_revoked_leaf(
    world: World, openssl: OpenSsl
) -> None:
    def verify(leaf: Path, crl: Path) -> subprocess.CompletedProcess[str]:
        return _openssl(openssl, "verify", "-crl_check", "-CAfile", world.pki / "ca.crt",
                        "-CRLfile", crl, leaf)  # fmt: skip

    revoked = verify(world.alice, world.crl)
    assert revoked.returncode != 0
    assert "certificate revoked" in revoked.stdout + revoked.stderr
    for leaf in (world.bob, world.pki / "client.crt"):
        fine = verify(leaf, world.crl)
        assert fine.returncode == 0, fine.stdout + fine.stderr
        assert f"{leaf}: OK" in fine.stdout
    # The namesake's CRL is not taken for ours: openssl finds no valid CRL for bob.
    foreign = verify(world.bob, world.namesake_crl)
    assert foreign.returncode != 0
    assert "certificate revoked" not in foreign.stdout + foreign.stderr


def test_openssl_verify_crl_check_all_sees_the_revoked_intermediate(
    world: World, openssl: OpenSsl
) -> None:
    revoked = _openssl(openssl, "verify", "-crl_check_all", "-CAfile", world.pki / "ca.crt",
                       "-untrusted", world.inter / "ca.crt", "-CRLfile", world.crl,
                       "-CRLfile", world.inter_crl, world.carol)  # fmt: skip
    assert revoked.returncode != 0
    assert "certificate revoked" in revoked.stdout + revoked.stderr
    assert "CN = Issuing\nerror 23 at 1 depth" in revoked.stderr  # the intermediate, not carol
    leaf_only = _openssl(openssl, "verify", "-crl_check", "-CAfile", world.pki / "ca.crt",
                         "-untrusted", world.inter / "ca.crt", "-CRLfile", world.inter_crl,
                         world.carol)  # fmt: skip
    assert leaf_only.returncode == 0, leaf_only.stdout + leaf_only.stderr  # carol herself is fine


# -- Go crypto/x509 -------------------------------------------------------------------------
def _crlcheck(*args: object) -> tuple[int, str]:
    if not CRLCHECK.exists():
        missing(f"{CRLCHECK} is not built; {INSTALL_HINT}")
    result = subprocess.run(
        [str(CRLCHECK), *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout + result.stderr
    return result.returncode, lines[0]


def test_go_parses_the_crl_and_checks_its_signature(world: World) -> None:
    code, line = _crlcheck("--crl", world.crl, "--ca", world.pki / "ca.crt")
    assert (code, line.split()[:3]) == (0, ["OK", "number=2", "entries=2"]), line


def test_go_refuses_the_crl_with_a_namesake_ca(world: World) -> None:
    code, line = _crlcheck("--crl", world.crl, "--ca", world.namesake / "ca.crt")
    assert code == 1, line
    assert line.startswith("REFUSED: signature")
    code, line = _crlcheck("--crl", world.namesake_crl, "--ca", world.pki / "ca.crt")
    assert code == 1, line


def test_go_finds_the_revoked_serial_with_its_reason_and_not_the_others(world: World) -> None:
    code, line = _crlcheck("--crl", world.crl, "--ca", world.pki / "ca.crt",
                           "--serial", serial_of(world.alice))  # fmt: skip
    assert code == 3, line
    assert line.startswith(f"REVOKED serial={serial_of(world.alice)} reason=1 ")  # keyCompromise
    code, line = _crlcheck("--crl", world.crl, "--ca", world.pki / "ca.crt",
                           "--serial", serial_of(world.bob))  # fmt: skip
    assert code == 0, line
    assert line.endswith("not-revoked")


def test_go_refuses_garbage_as_a_crl(world: World) -> None:
    code, line = _crlcheck("--crl", world.bob, "--ca", world.pki / "ca.crt")
    assert code == 1, line
    assert line.startswith("REFUSED")


# -- the CLI, as a user runs it -------------------------------------------------------------
def test_crl_numbers_strictly_increase_across_runs(world: World, openssl: OpenSsl) -> None:
    numbers = []
    for _ in range(3):
        out = json.loads(cli("ca", "crl", "--ca-dir", world.pki, "--out", world.root / "again.crl",
                             "--next-update", "1d", "--json").stdout)  # fmt: skip
        text = _openssl(openssl, "crl", "-in", world.root / "again.crl", "-noout", "-crlnumber")
        assert text.stdout.strip() == f"crlNumber=0x{out['number']:02X}"  # openssl reads it too
        numbers.append(out["number"])
    assert numbers == sorted(set(numbers))
    assert numbers[0] > 2  # after the fixture's two


def test_revoke_refusals_and_the_no_op_are_one_line(world: World) -> None:
    again = cli("ca", "revoke", world.alice, "--ca-dir", world.pki)
    assert "already revoked" in again.stdout
    foreign = cli("ca", "revoke", world.mallory, "--ca-dir", world.pki, code=2)
    assert foreign.stderr.count("\n") == 1
    assert "another CA named" in foreign.stderr
    unknown = cli("ca", "revoke", "--serial", "abc123", "--ca-dir", world.pki, code=2)
    assert "unknown serial abc123" in unknown.stderr
    assert unknown.stderr.count("\n") == 1
