"""verify_certificate(..., crls=...): a revoked leaf or intermediate fails with ``revoked`` (date
and reason named); a CRL of a namesake CA, an expired or not-yet-valid CRL, or no CRL of the
leaf's issuer is ``revocation_undetermined``, never OK; a CRL that lists other serials passes.
``openssl verify -crl_check`` (``-crl_check_all`` for intermediates) decides every case the same
way on the same files."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from grpcsec.errors import VerificationError, VerifyReason
from grpcsec.pki import CertificateAuthority, Profile, Role, SubjectAltNames, verify_certificate
from grpcsec.pki.crl import Revocation, RevocationReason, build_crl, crl_pem, load_crl
from grpcsec.pki.files import certificates_pem

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
OPENSSL = shutil.which("openssl")


@dataclass(frozen=True)
class World:
    root: CertificateAuthority
    inter: CertificateAuthority
    namesake: CertificateAuthority
    leaf: x509.Certificate
    other: x509.Certificate


@pytest.fixture(scope="module")
def world() -> World:
    root = CertificateAuthority.create("crl verify root", now=NOW - 30 * DAY)
    inter = root.create_intermediate("crl verify issuing", now=NOW - 30 * DAY)
    namesake = root.create_intermediate("crl verify issuing", now=NOW - 30 * DAY)
    names = SubjectAltNames.build(uris=["spiffe://example.org/client"])
    leaf = inter.issue(Profile.CLIENT, names, now=NOW - 2 * DAY).certificate
    other = inter.issue(Profile.CLIENT, names, now=NOW - 2 * DAY).certificate
    return World(root, inter, namesake, leaf, other)


def crl_bytes(
    ca: CertificateAuthority,
    *revoked: x509.Certificate,
    this_update: dt.datetime = NOW - DAY,
    next_update: dt.datetime = NOW + 6 * DAY,
) -> bytes:
    entries = [
        Revocation(
            serial=c.serial_number, revoked_at=NOW - DAY, reason=RevocationReason.KEY_COMPROMISE
        )
        for c in revoked
    ]
    return crl_pem(
        build_crl(
            ca.certificate,
            ca.key,
            entries,
            number=1,
            this_update=this_update,
            next_update=next_update,
        )
    )


def _crls(world: World, case: str) -> list[bytes]:
    w = world
    table: dict[str, list[bytes]] = {
        "clean": [crl_bytes(w.inter, w.other)],
        "leaf_revoked": [crl_bytes(w.inter, w.leaf, w.other)],
        "namesake": [crl_bytes(w.namesake, w.other)],
        "expired": [crl_bytes(w.inter, this_update=NOW - 10 * DAY, next_update=NOW - DAY)],
        "not_yet_valid": [crl_bytes(w.inter, this_update=NOW + DAY, next_update=NOW + 8 * DAY)],
        "only_root_crl": [crl_bytes(w.root)],
        "all_clean": [crl_bytes(w.inter, w.other), crl_bytes(w.root)],
        "intermediate_revoked": [crl_bytes(w.inter), crl_bytes(w.root, w.inter.certificate)],
        "root_crl_expired": [
            crl_bytes(w.inter),
            crl_bytes(w.root, this_update=NOW - 10 * DAY, next_update=NOW - DAY),
        ],
    }
    return table[case]


# case, expected reason (None: verifies), openssl flag, what openssl says when it refuses
CASES = [
    ("clean", None, "-crl_check", None),
    ("leaf_revoked", VerifyReason.REVOKED, "-crl_check", "certificate revoked"),
    ("namesake", VerifyReason.REVOCATION_UNDETERMINED, "-crl_check", None),
    ("expired", VerifyReason.REVOCATION_UNDETERMINED, "-crl_check", "CRL has expired"),
    ("not_yet_valid", VerifyReason.REVOCATION_UNDETERMINED, "-crl_check", "CRL is not yet valid"),
    ("only_root_crl", VerifyReason.REVOCATION_UNDETERMINED, "-crl_check", "unable to get"),
    ("all_clean", None, "-crl_check_all", None),
    ("intermediate_revoked", VerifyReason.REVOKED, "-crl_check_all", "certificate revoked"),
    ("root_crl_expired", VerifyReason.REVOCATION_UNDETERMINED, "-crl_check_all", "expired"),
]


def _verify(world: World, crls: list[bytes]) -> VerifyReason | None:
    try:
        verify_certificate(
            world.leaf,
            trust=[world.root.certificate],
            intermediates=[world.inter.certificate],
            role=Role.CLIENT,
            crls=[load_crl(data, source=f"crl{i}.pem") for i, data in enumerate(crls)],
            now=NOW,
        )
    except VerificationError as exc:
        assert "\n" not in str(exc)
        return exc.reason
    return None


@pytest.mark.parametrize(("case", "expected", "flag", "said"), CASES, ids=[c[0] for c in CASES])
def test_grpcsec_decides_each_crl_case(
    world: World, case: str, expected: VerifyReason | None, flag: str, said: str | None
) -> None:
    assert _verify(world, _crls(world, case)) is expected


def test_without_crls_the_same_leaf_verifies(world: World) -> None:
    """Control: the chain itself is good; only the CRLs make the difference above."""
    assert _verify(world, []) is None


def test_revoked_names_the_date_reason_and_serial(world: World) -> None:
    with pytest.raises(VerificationError) as caught:
        verify_certificate(
            world.leaf,
            trust=[world.root.certificate],
            intermediates=[world.inter.certificate],
            crls=[load_crl(crl_bytes(world.inter, world.leaf), source="issuing.crl")],
            now=NOW,
        )
    message = str(caught.value)
    assert caught.value.reason is VerifyReason.REVOKED
    assert f"serial {world.leaf.serial_number:x}" in message
    assert "on 2030-05-31 12:00:00Z for key_compromise" in message
    assert "issuing.crl" in message


def test_a_namesake_crl_does_not_hide_the_real_one(world: World) -> None:
    """A namesake's CRL next to the real CA's: the real one decides (revoked), in either order."""
    real = load_crl(crl_bytes(world.inter, world.leaf), source="real.crl")
    fake = load_crl(crl_bytes(world.namesake), source="fake.crl")
    for crls in ([fake, real], [real, fake]):
        with pytest.raises(VerificationError) as caught:
            verify_certificate(
                world.leaf,
                trust=[world.root.certificate],
                intermediates=[world.inter.certificate],
                crls=crls,
                now=NOW,
            )
        assert caught.value.reason is VerifyReason.REVOKED


def test_undetermined_says_which_crl_and_why(world: World) -> None:
    cases = {
        "namesake": "not signed by the issuer.s key",
        "expired": "expired at its next update",
        "only_root_crl": "no CRL of its issuer",
    }
    for case, words in cases.items():
        with pytest.raises(VerificationError, match=words):
            verify_certificate(
                world.leaf,
                trust=[world.root.certificate],
                intermediates=[world.inter.certificate],
                crls=[load_crl(data, source="x.crl") for data in _crls(world, case)],
                now=NOW,
            )


@pytest.mark.openssl
@pytest.mark.skipif(OPENSSL is None, reason="the openssl command-line tool is not on PATH")
@pytest.mark.parametrize(("case", "expected", "flag", "said"), CASES, ids=[c[0] for c in CASES])
def test_openssl_agrees(  # noqa: PLR0917 (fixtures and parameters)
    world: World,
    tmp_path: Path,
    case: str,
    expected: VerifyReason | None,
    flag: str,
    said: str | None,
) -> None:
    assert OPENSSL is not None
    root = tmp_path / "root.pem"
    root.write_bytes(certificates_pem([world.root.certificate]))
    inter = tmp_path / "inter.pem"
    inter.write_bytes(certificates_pem([world.inter.certificate]))
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(certificates_pem([world.leaf]))
    crl = tmp_path / "crls.pem"
    crl.write_bytes(b"".join(_crls(world, case)))
    args = [OPENSSL, "verify", "-attime", str(int(NOW.timestamp())), "-CAfile", str(root)]
    args += ["-untrusted", str(inter), flag, "-CRLfile", str(crl), str(leaf)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    output = result.stdout + result.stderr
    assert (result.returncode == 0) is (expected is None), output
    if said is not None:
        assert said in output, output
