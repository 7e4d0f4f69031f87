"""Cross-checks of what grpcsec issues against an independent implementation: the openssl CLI.

grpcsec builds certificates with ``cryptography`` and verifies them with ``cryptography`` too, so
its own tests cannot catch a certificate both sides agree on and the rest of the world rejects.
Here ``openssl verify`` (with ``-x509_strict``) must accept every chain grpcsec issues, reject
the negative controls for the right reason, and ``openssl x509 -text`` must show the extensions
the profiles promise. Skipped when ``openssl`` is not on PATH.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import shutil
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from grpcsec.pki import (
    CA_KEY_MODE,
    CERT_MODE,
    KEY_MODE,
    CertificateAuthority,
    IssuedCertificate,
    KeyType,
    PendingFile,
    PrivateKey,
    Profile,
    SubjectAltNames,
    Validity,
    certificates_pem,
    generate_key,
    load_csr,
    utcnow,
    write_files,
)

OPENSSL = shutil.which("openssl")

pytestmark = [
    pytest.mark.openssl,
    pytest.mark.skipif(OPENSSL is None, reason="the openssl command-line tool is not on PATH"),
]

GRPC_KEY_TYPES = [k for k in KeyType if k.grpc_leaf_supported]
SPIFFE = "spiffe://example.org/ns/default/sa/bench"
PURPOSES: dict[Profile, tuple[str, ...]] = {
    Profile.SERVER: ("sslserver",),
    Profile.CLIENT: ("sslclient",),
    Profile.PEER: ("sslserver", "sslclient"),
}
# X509_V_ERR_INVALID_PURPOSE (26): "unsuitable certificate purpose" in OpenSSL 3, "unsupported
# certificate purpose" in 1.1.
WRONG_PURPOSE = "certificate purpose"
EKU_TEXT = {
    Profile.SERVER: "TLS Web Server Authentication",
    Profile.CLIENT: "TLS Web Client Authentication",
    Profile.PEER: "TLS Web Server Authentication, TLS Web Client Authentication",
}


# -- helpers ------------------------------------------------------------------------------------
def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``openssl args...`` (never through a shell), bounded, without raising on failure."""
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def pem(certificate: x509.Certificate) -> bytes:
    return certificates_pem([certificate])


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@functools.cache
def cached_key(key_type: KeyType) -> PrivateKey:
    """One key per type for the whole module: RSA-3072/4096 generation takes seconds."""
    return generate_key(key_type)


def names_for(profile: Profile) -> SubjectAltNames:
    if profile is Profile.SERVER:
        return SubjectAltNames.build(dns=["localhost", "svc.example.org"], ips=["127.0.0.1"])
    if profile is Profile.CLIENT:
        return SubjectAltNames.build(uris=[SPIFFE], emails=["ops@example.org"])
    return SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"], uris=[SPIFFE])


@dataclass(frozen=True)
class Hierarchy:
    """A root and an intermediate under it, with their certificates written to ``directory``."""

    root: CertificateAuthority
    intermediate: CertificateAuthority
    root_pem: Path
    intermediate_pem: Path


def make_hierarchy(directory: Path, key_type: KeyType = KeyType.ECDSA_P256) -> Hierarchy:
    now = utcnow()
    # Starts well in the past so that an already-expired leaf still nests inside the CA.
    window = Validity(
        not_before=now - dt.timedelta(days=30), not_after=now + dt.timedelta(days=400)
    )
    root = CertificateAuthority.create(
        f"crosscheck root {key_type.value}", key_type=key_type, validity=window
    )
    intermediate = root.create_intermediate(
        f"crosscheck intermediate {key_type.value}",
        key_type=key_type,
        validity=Validity(not_before=window.not_before, not_after=now + dt.timedelta(days=300)),
    )
    directory.mkdir(parents=True, exist_ok=True)
    return Hierarchy(
        root,
        intermediate,
        write(directory / "root.pem", pem(root.certificate)),
        write(directory / "intermediate.pem", pem(intermediate.certificate)),
    )


@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory: pytest.TempPathFactory) -> Hierarchy:
    return make_hierarchy(tmp_path_factory.mktemp("ca"))


def verify_args(
    h: Hierarchy, leaf: Path, *, under_intermediate: bool, extra: Iterable[str] = ()
) -> list[str | Path]:
    args: list[str | Path] = ["verify", "-x509_strict", "-CAfile", h.root_pem]
    if under_intermediate:
        args += ["-untrusted", h.intermediate_pem]
    return [*args, *extra, leaf]


def assert_verifies(args: list[str | Path]) -> None:
    result = openssl(*args)
    assert result.returncode == 0, f"openssl {args} rejected it:\n{result.stdout}{result.stderr}"
    assert result.stdout.strip().endswith(": OK"), result.stdout


def assert_rejected(args: list[str | Path], reason: str) -> None:
    result = openssl(*args)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"openssl {args} accepted it:\n{output}"
    assert reason in output, f"expected {reason!r} in:\n{output}"


def x509_text(path: Path) -> str:
    result = openssl("x509", "-noout", "-text", "-in", path)
    assert result.returncode == 0, result.stderr
    return result.stdout


def extension(text: str, name: str) -> tuple[bool, str] | None:
    """``(critical, value)`` of the extension called ``name`` in ``openssl x509 -text``."""
    match = re.search(rf"^\s*X509v3 {re.escape(name)}:( critical)?\s*\n\s*(.+)$", text, re.M)
    if match is None:
        return None
    return match.group(1) is not None, match.group(2).strip()


def issue(
    ca: CertificateAuthority,
    profile: Profile,
    key_type: KeyType,
    *,
    validity: Validity | None = None,
) -> IssuedCertificate:
    """A leaf of ``profile`` with the module's cached key of ``key_type``."""
    return ca.issue(
        profile,
        names_for(profile),
        key=cached_key(key_type),
        validity=validity,
        allow_unsupported_key=not key_type.grpc_leaf_supported,
    )


# -- openssl verify accepts every chain ----------------------------------------------------------
@pytest.mark.parametrize("under_intermediate", [False, True], ids=["root", "intermediate"])
@pytest.mark.parametrize("profile", list(Profile), ids=lambda p: p.value)
@pytest.mark.parametrize("key_type", GRPC_KEY_TYPES, ids=lambda k: k.value)
def test_openssl_verifies_leaf(
    hierarchy: Hierarchy,
    tmp_path: Path,
    key_type: KeyType,
    profile: Profile,
    under_intermediate: bool,
) -> None:
    ca = hierarchy.intermediate if under_intermediate else hierarchy.root
    leaf = write(tmp_path / "leaf.pem", pem(issue(ca, profile, key_type).certificate))
    for purpose in PURPOSES[profile]:
        extra = ["-purpose", purpose]
        if purpose == "sslserver":
            extra += ["-verify_hostname", "localhost", "-verify_ip", "127.0.0.1"]
        assert_verifies(
            verify_args(hierarchy, leaf, under_intermediate=under_intermediate, extra=extra)
        )


@pytest.mark.parametrize("ca_key_type", list(KeyType), ids=lambda k: k.value)
def test_openssl_verifies_every_ca_key_type(tmp_path: Path, ca_key_type: KeyType) -> None:
    """Roots and intermediates of every key type (Ed25519 included: openssl accepts it, though
    cryptography's web PKI verifier does not) sign leaves that openssl verifies."""
    h = make_hierarchy(tmp_path, ca_key_type)
    assert_verifies(["verify", "-x509_strict", "-CAfile", h.root_pem, h.root_pem])
    assert_verifies(["verify", "-x509_strict", "-CAfile", h.root_pem, h.intermediate_pem])
    for under_intermediate in (False, True):
        ca = h.intermediate if under_intermediate else h.root
        leaf = write(
            tmp_path / "leaf.pem", pem(issue(ca, Profile.PEER, KeyType.ECDSA_P256).certificate)
        )
        for purpose in ("sslserver", "sslclient"):
            extra = ["-purpose", purpose, "-verify_hostname", "localhost"]
            assert_verifies(
                verify_args(h, leaf, under_intermediate=under_intermediate, extra=extra)
            )


def test_openssl_verifies_ed25519_leaf(hierarchy: Hierarchy, tmp_path: Path) -> None:
    """Ed25519 leaves (issued only with allow_unsupported_key) are valid X.509 for openssl."""
    leaf = write(
        tmp_path / "leaf.pem",
        pem(issue(hierarchy.root, Profile.SERVER, KeyType.ED25519).certificate),
    )
    extra = ["-purpose", "sslserver", "-verify_hostname", "localhost"]
    assert_verifies(verify_args(hierarchy, leaf, under_intermediate=False, extra=extra))


def test_openssl_verifies_served_chain_and_ca_bundle(hierarchy: Hierarchy, tmp_path: Path) -> None:
    """The files grpcsec writes: the leaf-first chain (--cert) as untrusted input, and the
    intermediate's ca.crt bundle (intermediate then root) as the trust store."""
    issued = issue(hierarchy.intermediate, Profile.SERVER, KeyType.ECDSA_P256)
    chain = write(tmp_path / "server.crt", issued.chain_pem())
    leaf = write(tmp_path / "leaf.pem", pem(issued.certificate))
    bundle = write(tmp_path / "ca.crt", hierarchy.intermediate.certificate_pem())
    assert chain.read_bytes().count(b"BEGIN CERTIFICATE") == 2
    assert bundle.read_bytes().count(b"BEGIN CERTIFICATE") == 2
    server = ["-purpose", "sslserver", "-verify_hostname", "localhost"]
    root = hierarchy.root_pem
    assert_verifies(["verify", "-x509_strict", "-CAfile", root, "-untrusted", chain, *server, leaf])
    assert_verifies(["verify", "-x509_strict", "-CAfile", bundle, *server, leaf])


def test_openssl_verifies_empty_subject_leaf(hierarchy: Hierarchy, tmp_path: Path) -> None:
    """A name longer than a CN may be leaves the subject empty; the SAN must then be critical
    (RFC 5280 4.2.1.6), which ``-x509_strict`` enforces."""
    long_id = "spiffe://example.org/" + "/".join(["segment"] * 8)
    assert len(long_id) > 64
    issued = hierarchy.intermediate.issue(
        Profile.CLIENT, SubjectAltNames.build(uris=[long_id]), key=cached_key(KeyType.ECDSA_P256)
    )
    leaf = write(tmp_path / "leaf.pem", pem(issued.certificate))
    text = x509_text(leaf)
    assert re.search(r"^\s*Subject:\s*$", text, re.M)
    assert extension(text, "Subject Alternative Name") == (True, f"URI:{long_id}")
    extra = ["-purpose", "sslclient"]
    assert_verifies(verify_args(hierarchy, leaf, under_intermediate=True, extra=extra))


# -- negative controls: openssl must reject these -------------------------------------------------
def test_openssl_rejects_leaf_from_another_ca(hierarchy: Hierarchy, tmp_path: Path) -> None:
    other = write(
        tmp_path / "other.pem", pem(CertificateAuthority.create("other root").certificate)
    )
    leaf = write(
        tmp_path / "leaf.pem",
        pem(issue(hierarchy.root, Profile.SERVER, KeyType.ECDSA_P256).certificate),
    )
    assert_rejected(
        ["verify", "-x509_strict", "-CAfile", other, "-purpose", "sslserver", leaf],
        "unable to get local issuer certificate",
    )


def test_openssl_rejects_leaf_without_its_intermediate(
    hierarchy: Hierarchy, tmp_path: Path
) -> None:
    leaf = write(
        tmp_path / "leaf.pem",
        pem(issue(hierarchy.intermediate, Profile.SERVER, KeyType.ECDSA_P256).certificate),
    )
    assert_rejected(
        verify_args(hierarchy, leaf, under_intermediate=False, extra=["-purpose", "sslserver"]),
        "unable to get local issuer certificate",
    )


def test_openssl_rejects_expired_leaf(hierarchy: Hierarchy, tmp_path: Path) -> None:
    now = utcnow()
    past = Validity(not_before=now - dt.timedelta(days=10), not_after=now - dt.timedelta(days=1))
    issued = issue(hierarchy.root, Profile.SERVER, KeyType.ECDSA_P256, validity=past)
    leaf = write(tmp_path / "leaf.pem", pem(issued.certificate))
    assert_rejected(
        verify_args(hierarchy, leaf, under_intermediate=False, extra=["-purpose", "sslserver"]),
        "certificate has expired",
    )


@pytest.mark.parametrize(
    ("profile", "wrong_purpose"),
    [(Profile.SERVER, "sslclient"), (Profile.CLIENT, "sslserver")],
    ids=["server-as-client", "client-as-server"],
)
def test_openssl_rejects_wrong_purpose(
    hierarchy: Hierarchy, tmp_path: Path, profile: Profile, wrong_purpose: str
) -> None:
    leaf = write(
        tmp_path / "leaf.pem",
        pem(issue(hierarchy.intermediate, profile, KeyType.ECDSA_P256).certificate),
    )
    assert_rejected(
        verify_args(hierarchy, leaf, under_intermediate=True, extra=["-purpose", wrong_purpose]),
        WRONG_PURPOSE,
    )


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("-verify_hostname", "other.example.org", "hostname mismatch"),
        ("-verify_hostname", "example.org", "hostname mismatch"),
        ("-verify_ip", "10.0.0.1", "IP address mismatch"),
    ],
)
def test_openssl_rejects_names_not_in_the_sans(
    hierarchy: Hierarchy, tmp_path: Path, option: str, value: str, reason: str
) -> None:
    leaf = write(
        tmp_path / "leaf.pem",
        pem(issue(hierarchy.root, Profile.SERVER, KeyType.ECDSA_P256).certificate),
    )
    extra = ["-purpose", "sslserver", option, value]
    assert_rejected(verify_args(hierarchy, leaf, under_intermediate=False, extra=extra), reason)


def test_openssl_ignores_the_common_name_for_hostnames(
    hierarchy: Hierarchy, tmp_path: Path
) -> None:
    """A CN that is not among the SANs does not make the host name match."""
    issued = hierarchy.root.issue(
        Profile.SERVER,
        SubjectAltNames.build(dns=["svc.example.org"]),
        common_name="cn-only.example.org",
        key=cached_key(KeyType.ECDSA_P256),
    )
    leaf = write(tmp_path / "leaf.pem", pem(issued.certificate))
    extra = ["-purpose", "sslserver", "-verify_hostname", "cn-only.example.org"]
    assert_rejected(
        verify_args(hierarchy, leaf, under_intermediate=False, extra=extra), "hostname mismatch"
    )


# -- openssl x509 -text shows what the profiles promise -------------------------------------------
@pytest.mark.parametrize("profile", list(Profile), ids=lambda p: p.value)
def test_openssl_text_of_leaf(hierarchy: Hierarchy, tmp_path: Path, profile: Profile) -> None:
    names = SubjectAltNames.build(
        dns=["localhost", "*.svc.example.org"],
        ips=["127.0.0.1", "::1"],
        uris=[SPIFFE],
        emails=["ops@example.org"],
    )
    issued = hierarchy.intermediate.issue(profile, names, key=cached_key(KeyType.ECDSA_P256))
    text = x509_text(write(tmp_path / "leaf.pem", pem(issued.certificate)))

    san = extension(text, "Subject Alternative Name")
    assert san is not None
    values = [v.strip() for v in san[1].split(",")]
    assert "DNS:localhost" in values
    assert "DNS:*.svc.example.org" in values
    assert "IP Address:127.0.0.1" in values
    assert {"IP Address:0:0:0:0:0:0:0:1", "IP Address:::1"} & set(values)
    assert f"URI:{SPIFFE}" in values
    assert "email:ops@example.org" in values

    assert extension(text, "Basic Constraints") == (True, "CA:FALSE")
    assert extension(text, "Key Usage") == (True, "Digital Signature")
    assert extension(text, "Extended Key Usage") == (False, EKU_TEXT[profile])
    ski = extension(text, "Subject Key Identifier")
    aki = extension(text, "Authority Key Identifier")
    assert ski is not None
    assert aki is not None
    issuer = extension(x509_text(hierarchy.intermediate_pem), "Subject Key Identifier")
    assert issuer is not None
    # OpenSSL 3.0 prints the AKI as bare hex, older versions as "keyid:HEX".
    assert aki[1].removeprefix("keyid:") == issuer[1]
    assert ski[1] != issuer[1]

    assert "Public Key Algorithm: id-ecPublicKey" in text
    assert "Public-Key: (256 bit)" in text
    assert "ASN1 OID: prime256v1" in text
    assert "NIST CURVE: P-256" in text
    assert "Signature Algorithm: ecdsa-with-SHA256" in text
    assert "Subject: CN = localhost" in text


@pytest.mark.parametrize(
    ("key_type", "bits"),
    [(KeyType.RSA_2048, 2048), (KeyType.RSA_3072, 3072), (KeyType.RSA_4096, 4096)],
    ids=lambda v: v.value if isinstance(v, KeyType) else str(v),
)
def test_openssl_text_of_rsa_leaf(
    hierarchy: Hierarchy, tmp_path: Path, key_type: KeyType, bits: int
) -> None:
    issued = issue(hierarchy.root, Profile.SERVER, key_type)
    text = x509_text(write(tmp_path / "leaf.pem", pem(issued.certificate)))
    assert "Public Key Algorithm: rsaEncryption" in text
    assert f"Public-Key: ({bits} bit)" in text
    assert "Exponent: 65537 (0x10001)" in text
    # RSA leaves also carry keyEncipherment (for TLS 1.2 RSA key exchange peers).
    assert extension(text, "Key Usage") == (True, "Digital Signature, Key Encipherment")


def test_openssl_text_of_p384_leaf(hierarchy: Hierarchy, tmp_path: Path) -> None:
    issued = issue(hierarchy.root, Profile.SERVER, KeyType.ECDSA_P384)
    text = x509_text(write(tmp_path / "leaf.pem", pem(issued.certificate)))
    assert "Public Key Algorithm: id-ecPublicKey" in text
    assert "Public-Key: (384 bit)" in text
    assert "ASN1 OID: secp384r1" in text


def test_openssl_text_of_cas(hierarchy: Hierarchy) -> None:
    root = x509_text(hierarchy.root_pem)
    intermediate = x509_text(hierarchy.intermediate_pem)

    assert extension(root, "Basic Constraints") == (True, "CA:TRUE")
    assert extension(intermediate, "Basic Constraints") == (True, "CA:TRUE, pathlen:0")
    for text in (root, intermediate):
        assert extension(text, "Key Usage") == (True, "Certificate Sign, CRL Sign")
        assert extension(text, "Extended Key Usage") is None
        assert extension(text, "Subject Key Identifier") is not None
        assert "Public Key Algorithm: id-ecPublicKey" in text
        assert "ASN1 OID: prime256v1" in text
        assert "Signature Algorithm: ecdsa-with-SHA256" in text
    # A self-signed root may omit the AKI (RFC 5280 4.2.1.1); the intermediate must have it.
    root_ski = extension(root, "Subject Key Identifier")
    inter_aki = extension(intermediate, "Authority Key Identifier")
    assert root_ski is not None
    assert inter_aki is not None
    assert inter_aki[1].removeprefix("keyid:") == root_ski[1]
    assert "Issuer: CN = crosscheck root ecdsa-p256" in intermediate
    assert "Subject: CN = crosscheck intermediate ecdsa-p256" in intermediate


def test_openssl_text_of_rsa_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority.create("rsa root", key_type=KeyType.RSA_2048)
    text = x509_text(write(tmp_path / "root.pem", pem(ca.certificate)))
    assert "Public Key Algorithm: rsaEncryption" in text
    assert "Public-Key: (2048 bit)" in text
    assert "Signature Algorithm: sha256WithRSAEncryption" in text
    # CAs never get keyEncipherment, whatever their key type.
    assert extension(text, "Key Usage") == (True, "Certificate Sign, CRL Sign")


# -- a CSR made by openssl, signed by grpcsec -----------------------------------------------------
def make_openssl_csr(directory: Path, *extra: str) -> tuple[Path, Path]:
    key, csr = directory / "csr.key", directory / "request.csr"
    result = openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=x",
        "-addext", "subjectAltName=DNS:x.example",
        "-addext", "basicConstraints=critical,CA:TRUE",
        *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return key, csr


@pytest.mark.parametrize(
    "extra",
    [
        (),
        (
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "extendedKeyUsage=serverAuth,codeSigning",
        ),
    ],
    ids=["ca-true", "ca-true-with-usages"],
)  # fmt: skip
def test_openssl_csr_signed_as_client(
    hierarchy: Hierarchy, tmp_path: Path, extra: tuple[str, ...]
) -> None:
    key, csr_path = make_openssl_csr(tmp_path, *extra)
    request_text = openssl("req", "-noout", "-text", "-in", csr_path).stdout
    assert "CA:TRUE" in request_text  # the request really asks for it

    issued = hierarchy.intermediate.sign_csr(load_csr(csr_path.read_bytes()), Profile.CLIENT)
    assert issued.key is None
    cert = write(tmp_path / "client.crt", pem(issued.certificate))
    text = x509_text(cert)
    assert extension(text, "Basic Constraints") == (True, "CA:FALSE")
    assert extension(text, "Extended Key Usage") == (False, "TLS Web Client Authentication")
    assert extension(text, "Key Usage") == (True, "Digital Signature")
    assert extension(text, "Subject Alternative Name") == (False, "DNS:x.example")
    assert "Certificate Sign" not in text
    assert "Code Signing" not in text
    assert "Subject: CN = x" in text

    assert_verifies(
        verify_args(hierarchy, cert, under_intermediate=True, extra=["-purpose", "sslclient"])
    )
    assert_rejected(
        verify_args(hierarchy, cert, under_intermediate=True, extra=["-purpose", "sslserver"]),
        WRONG_PURPOSE,
    )
    # The certificate carries the key openssl generated.
    cert_pub = openssl("x509", "-in", cert, "-noout", "-pubkey")
    key_pub = openssl("pkey", "-in", key, "-pubout")
    assert cert_pub.returncode == 0
    assert key_pub.returncode == 0
    assert cert_pub.stdout == key_pub.stdout


def test_openssl_rsa_csr_signed_as_server(hierarchy: Hierarchy, tmp_path: Path) -> None:
    key, csr = tmp_path / "rsa.key", tmp_path / "rsa.csr"
    result = openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=api.example.org",
        "-addext", "subjectAltName=DNS:api.example.org,IP:127.0.0.1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    issued = hierarchy.root.sign_csr(load_csr(csr.read_bytes()), Profile.SERVER)
    cert = write(tmp_path / "server.crt", pem(issued.certificate))
    extra = [
        "-purpose",
        "sslserver",
        "-verify_hostname",
        "api.example.org",
        "-verify_ip",
        "127.0.0.1",
    ]
    assert_verifies(verify_args(hierarchy, cert, under_intermediate=False, extra=extra))
    text = x509_text(cert)
    assert extension(text, "Extended Key Usage") == (False, "TLS Web Server Authentication")
    assert extension(text, "Key Usage") == (True, "Digital Signature, Key Encipherment")


# -- files written by write_files ----------------------------------------------------------------
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _same_public_key(cert: Path, key: Path, *passin: str) -> None:
    cert_pub = openssl("x509", "-in", cert, "-noout", "-pubkey")
    key_pub = openssl("pkey", "-in", key, "-pubout", *passin)
    assert cert_pub.returncode == 0, cert_pub.stderr
    assert key_pub.returncode == 0, key_pub.stderr
    assert cert_pub.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    assert cert_pub.stdout == key_pub.stdout


@pytest.mark.parametrize("key_type", GRPC_KEY_TYPES, ids=lambda k: k.value)
def test_written_files_modes_and_openssl_reads_keys(
    hierarchy: Hierarchy, tmp_path: Path, key_type: KeyType
) -> None:
    issued = issue(hierarchy.intermediate, Profile.PEER, key_type)
    ca_key = hierarchy.intermediate.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    out = tmp_path / "pki"
    files = {
        "ca.crt": (hierarchy.intermediate.certificate_pem(), CERT_MODE),
        "ca.key": (ca_key, CA_KEY_MODE),
        "peer.crt": (issued.chain_pem(), CERT_MODE),
        "peer.key": (issued.key_pem(), KEY_MODE),
    }
    write_files([PendingFile(out / name, data, mode) for name, (data, mode) in files.items()])

    assert _mode(out / "peer.key") == 0o600
    assert _mode(out / "ca.key") == 0o400
    assert _mode(out / "peer.crt") == 0o644
    assert _mode(out / "ca.crt") == 0o644
    assert sorted(p.name for p in out.iterdir()) == sorted(files)  # no temporary files left

    for key in ("peer.key", "ca.key"):
        result = openssl("pkey", "-in", out / key, "-noout")
        assert result.returncode == 0, result.stderr
    _same_public_key(out / "peer.crt", out / "peer.key")  # first certificate of the chain
    _same_public_key(out / "ca.crt", out / "ca.key")
    extra = ["-purpose", "sslclient"]
    assert_verifies(["verify", "-x509_strict", "-CAfile", out / "ca.crt", *extra, out / "peer.crt"])


def test_openssl_reads_encrypted_key(hierarchy: Hierarchy, tmp_path: Path) -> None:
    issued = issue(hierarchy.root, Profile.SERVER, KeyType.ECDSA_P256)
    key = tmp_path / "server.key"
    cert = tmp_path / "server.crt"
    write_files(
        [
            PendingFile(key, issued.key_pem(b"correct horse"), KEY_MODE),
            PendingFile(cert, issued.chain_pem(), CERT_MODE),
        ]
    )
    assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes()
    assert _mode(key) == 0o600
    _same_public_key(cert, key, "-passin", "pass:correct horse")
    wrong = openssl("pkey", "-in", key, "-noout", "-passin", "pass:wrong")
    assert wrong.returncode != 0
