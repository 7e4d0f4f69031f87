"""Where certificates and keys go on disk: CA directories, leaf file pairs and the starter set,
decided as values (nothing is written until write_files)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from grpcsec.errors import ConfigurationError, IssuanceError, KeyMismatchError, MaterialError
from grpcsec.pki import (
    CA_KEY_MODE,
    CERT_MODE,
    KEY_MODE,
    CertificateAuthority,
    PrivateKey,
    Profile,
    SubjectAltNames,
    generate_key,
    load_private_key,
    write_files,
)
from grpcsec.pki.layout import (
    CA_CERT,
    CA_KEY,
    ca_files,
    client_file_stems,
    create_starter_pki,
    distinct_ca_name,
    leaf_files,
    load_ca_dir,
    prefix_paths,
)

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


def test_prefix_paths_add_crt_and_key(tmp_path: Path) -> None:
    assert prefix_paths(tmp_path / "orders") == (tmp_path / "orders.crt", tmp_path / "orders.key")
    assert prefix_paths(Path("a.b")) == (Path("a.b.crt"), Path("a.b.key"))


@pytest.mark.parametrize("suffix", [".crt", ".key", ".pem"])
def test_a_prefix_ending_in_a_file_suffix_is_refused(suffix: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^is a prefix: pass 'out/orders' to write"):
        prefix_paths(Path("out/orders" + suffix))


def test_client_stems_name_the_first_client_and_slug_the_rest() -> None:
    assert client_file_stems(["alice"]) == ["client"]
    names = ["alice", "spiffe://acme/bob", "carol@example.com", "x y"]
    assert client_file_stems(names) == [
        "client",
        "client-acme-bob",
        "client-carol@example.com",
        "client-x-y",
    ]


@pytest.mark.parametrize(
    ("names", "fragment"),
    [
        (["a", "a"], "'a' is given twice"),
        (["a", "b/c", "b:c"], "'b:c' does not give a file name of its own (client-b-c.crt)"),
        (["a", "://"], "does not give a file name of its own"),
    ],
)
def test_clients_that_would_share_a_file_are_refused(names: list[str], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        client_file_stems(names)
    assert fragment in caught.value.message


def test_distinct_ca_names_differ() -> None:
    names = {distinct_ca_name() for _ in range(20)}
    assert len(names) > 1
    assert all(name.startswith("grpcsec root CA ") for name in names)


def test_ca_files_hold_the_chain_and_a_0400_key(tmp_path: Path) -> None:
    root = CertificateAuthority.create("layout root", now=NOW)
    inter = root.create_intermediate("layout inter", now=NOW)
    cert, key = ca_files(inter, tmp_path)
    assert (cert.path, cert.mode) == (tmp_path / CA_CERT, CERT_MODE)
    assert (key.path, key.mode) == (tmp_path / CA_KEY, CA_KEY_MODE)
    assert x509.load_pem_x509_certificates(cert.data) == [inter.certificate, root.certificate]
    assert b"ENCRYPTED" not in key.data
    _, encrypted = ca_files(inter, tmp_path, password=b"pw")
    assert b"ENCRYPTED" in encrypted.data
    assert load_private_key(encrypted.data, password=b"pw").public_key() == inter.key.public_key()


def test_leaf_files_hold_the_chain_and_a_0600_key(tmp_path: Path) -> None:
    ca = CertificateAuthority.create("layout root", now=NOW)
    issued = ca.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.example"]), now=NOW)
    cert, key = leaf_files(issued, tmp_path / "a.crt", tmp_path / "a.key")
    assert (cert.mode, key.mode) == (CERT_MODE, KEY_MODE)
    assert cert.data == issued.chain_pem()
    assert "BEGIN" not in repr(key)  # PendingFile never shows its data


def test_load_ca_dir_reads_the_certificate_before_the_key(tmp_path: Path) -> None:
    ca = CertificateAuthority.create("layout root", now=NOW)
    write_files(ca_files(ca, tmp_path))
    asked: list[Path] = []

    def load_key(path: Path) -> PrivateKey:
        asked.append(path)
        return load_private_key(path.read_bytes())

    assert load_ca_dir(tmp_path, load_key).certificate == ca.certificate
    assert asked == [tmp_path / CA_KEY]
    (tmp_path / CA_CERT).chmod(0o644)
    (tmp_path / CA_CERT).write_bytes(b"not a certificate")
    asked.clear()
    with pytest.raises(MaterialError):
        load_ca_dir(tmp_path, load_key)
    assert asked == []  # a bad ca.crt fails before anything asks for a password


def test_load_ca_dir_refuses_a_key_of_another_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority.create("layout root", now=NOW)
    write_files(ca_files(ca, tmp_path))
    other = generate_key()
    with pytest.raises(KeyMismatchError):
        load_ca_dir(tmp_path, lambda _path: other)


def test_the_starter_set_is_a_ca_a_server_and_each_client(tmp_path: Path) -> None:
    starter = create_starter_pki(
        tmp_path, hosts=["svc.example"], clients=["alice", "bob"], lifetime=DAY, now=NOW
    )
    assert [c.role for c in starter.certificates] == ["CA", "server", "client", "client"]
    assert [f.path.name for f in starter.files] == [
        "ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key",
        "client-bob.crt", "client-bob.key",
    ]  # fmt: skip
    server, alice = starter.certificates[1].certificate, starter.certificates[2].certificate
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = alice.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["alice"]
    assert server.not_valid_after_utc == NOW + DAY
    for item in starter.certificates[1:]:
        item.certificate.verify_directly_issued_by(starter.ca.certificate)
    assert list(tmp_path.iterdir()) == []  # nothing is written until write_files


def test_the_starter_set_refuses_clients_sharing_a_file_and_bad_hosts(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="given twice"):
        create_starter_pki(tmp_path, clients=["a", "a"], lifetime=DAY, now=NOW)
    with pytest.raises(IssuanceError):
        create_starter_pki(tmp_path, hosts=["bad host"], lifetime=DAY, now=NOW)
