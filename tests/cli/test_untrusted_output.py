"""CLI output of hostile names: text shows escapes and literal markup, JSON round-trips, and
issuing a certificate with such a name is refused in one line.

Certificates are built with ``cryptography`` (grpcsec refuses to issue them) with a CN holding an
ESC colour sequence and a newline, Rich markup with an emoji code, a bidi override, and a URI SAN
holding an OSC hyperlink; policies and tokens carry the same strings. Every command's text
output must hold no raw ESC/BEL/U+202E and no forged line, show ``[bold]`` and ``:smile:``
literally, and its ``--json`` must decode back to the exact original string.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import Result

from grpcsec.authn.tokens import mint_token, public_jwks
from grpcsec.credentials import server_credentials
from grpcsec.errors import IssuanceError
from grpcsec.material import KeyPair
from grpcsec.pki import CertificateAuthority, Profile, SubjectAltNames
from tests.cli.clirun import assert_one_error_line, make_ca, ok, plain, run
from tests.conftest import serve
from tests.hostile_names import (
    BIDI_CN,
    ESCAPE_CN,
    HOSTILE_URI,
    MARKUP_CN,
    assert_inert,
    build_client,
    cn,
)

HOSTILE = [ESCAPE_CN, MARKUP_CN, BIDI_CN]


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("inert test CA")


@pytest.fixture
def hostile_files(ca: CertificateAuthority, tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "ca.crt").write_bytes(ca.certificate_pem())
    paths = {"ca": tmp_path / "ca.crt"}
    for index, name in enumerate(HOSTILE):
        cert, _ = build_client(ca, [cn(name)], uris=[HOSTILE_URI], dns=["ok.example"])
        paths[name] = tmp_path / f"hostile{index}.crt"
        paths[name].write_bytes(cert)
    return paths


def assert_text_is_inert(result: Result) -> str:
    output = plain(result.output)
    assert_inert(output)
    assert "[bold red]x[/] :smile: [link=https://evil.example]y[/link]" in output  # literal
    assert "😄" not in output
    assert "alice\\x1b[31m\\nINJECTED" in output
    assert "\\u202eabc" in output
    return output


def test_inspect_text_and_json(hostile_files: dict[str, Path]) -> None:
    files = [hostile_files[name] for name in HOSTILE]
    output = assert_text_is_inert(ok(run("inspect", *files)))
    assert "evil.example/\\x1b]8;;x\\x07\\nforged" in output  # the URI SAN, escaped
    raw = ok(run("inspect", *files, "--json")).stdout
    assert raw.isascii()
    assert "\x1b" not in raw
    data = json.loads(raw)
    names = [entry["certificates"][0]["common_name"] for entry in data["files"]]
    assert names == HOSTILE  # JSON keeps the exact value, escaped by the encoding
    assert data["files"][0]["certificates"][0]["san"]["uri"] == [HOSTILE_URI]


def test_verify_text_and_json(hostile_files: dict[str, Path]) -> None:
    for name in HOSTILE:
        args = ("verify", hostile_files[name], "--ca", hostile_files["ca"], "--role", "client")
        result = run(*args)
        assert result.exit_code in {0, 1}, plain(result.output)
        output = plain(result.output)
        assert_inert(output)
        raw = run(*args, "--json").stdout
        assert raw.isascii()
        assert "\x1b" not in raw
        json.loads(raw)
    output = plain(run("verify", hostile_files[ESCAPE_CN], "--ca", hostile_files["ca"]).output)
    assert "alice\\x1b[31m\\nINJECTED" in output


def test_check_table_and_json(hostile_files: dict[str, Path]) -> None:
    files = [hostile_files[name] for name in HOSTILE]
    result = run("check", *files)
    assert result.exit_code in {0, 1}, plain(result.output)
    output = plain(result.output)
    assert_inert(output)
    assert "[bold red]x[/]" in output  # a Rich table cell, not styled
    assert "\\u202eabc" in output
    raw = run("check", *files, "--json").stdout
    assert raw.isascii()
    assert {c["common_name"] for c in json.loads(raw)["certificates"]} >= set(HOSTILE)


@pytest.fixture
def hostile_policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(
        json.dumps(
            {
                "name": MARKUP_CN,
                "allow_rules": [
                    {"name": ESCAPE_CN, "source": {"principals": [f"CN={BIDI_CN}"]}},
                    {"name": BIDI_CN, "request": {"paths": ["/x.Y/Z"]}},
                ],
            }
        )
    )
    return path


def test_policy_check_and_eval(hostile_policy: Path, hostile_files: dict[str, Path]) -> None:
    output = assert_text_is_inert(ok(run("policy", "check", hostile_policy)))
    assert "[bold red]x[/]" in output
    result = run("policy", "eval", hostile_policy, "--method", "/x.Y/Z",
                 "--peer-cert", hostile_files[ESCAPE_CN])  # fmt: skip
    assert result.exit_code == 0, plain(result.output)
    output = plain(result.output)
    assert_inert(output)
    assert "\\u202eabc" in output  # the matched rule's name
    raw = run(
        "policy", "eval", hostile_policy, "--method", "/x.Y/Z", "--plaintext", "--json"
    ).stdout
    assert raw.isascii()
    assert json.loads(raw)["policy_name"] == MARKUP_CN


def test_token_verify_with_hostile_claims(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(public_jwks([(key, "k1")])))
    token = mint_token(key, issuer=MARKUP_CN, audience="svc", subject=ESCAPE_CN,
                       scopes=[BIDI_CN], kid="k1")  # fmt: skip
    for audience, code in (("svc", 0), ("other", 1)):
        result = run("token", "verify", token, "--jwks", jwks, "--audience", audience)
        assert result.exit_code == code, plain(result.output)
        assert_text_is_inert(result)
    raw = run("token", "verify", token, "--jwks", jwks, "--audience", "svc", "--json").stdout
    assert raw.isascii()
    assert json.loads(raw)["claims"]["sub"] == ESCAPE_CN


@pytest.mark.slow
def test_doctor_against_a_server_with_a_hostile_certificate(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    """The served certificate's names reach the chain, validity and hostname checks and the
    diagnosis; trusted (exit 0) or not (exit 1), they are shown escaped."""
    cert, key = build_client(ca, [cn(ESCAPE_CN)], ips=["127.0.0.1"], uris=[HOSTILE_URI],
                             usage=ExtendedKeyUsageOID.SERVER_AUTH)  # fmt: skip
    (tmp_path / "ca.crt").write_bytes(ca.certificate_pem())
    (tmp_path / "other.crt").write_bytes(CertificateAuthority.create("other").certificate_pem())
    with serve("sync", server_credentials(KeyPair.from_pem(cert, key))) as server:
        for trusted, code in (("ca.crt", 0), ("other.crt", 1)):
            result = run("doctor", server.target, "--ca", tmp_path / trusted)
            assert result.exit_code == code, plain(result.output)
            output = plain(result.output)
            assert_inert(output)
            assert "alice\\x1b[31m\\nINJECTED" in output
            raw = run("doctor", server.target, "--ca", tmp_path / trusted, "--json").stdout
            assert raw.isascii()
            json.loads(raw)


# -- issuance refusals -----------------------------------------------------------------------------
UNSAFE = ["a\x1bb", "a\nb", "a\x00b", "a\x7fb", "a\x9bb", "a\u202eb", "a\u2066b"]


@pytest.mark.parametrize("bad", UNSAFE, ids=repr)
def test_library_refuses_to_issue_unsafe_names(ca: CertificateAuthority, bad: str) -> None:
    with pytest.raises(IssuanceError, match="control, line-break and bidi") as caught:
        CertificateAuthority.create(bad)
    assert "\n" not in str(caught.value)
    names = SubjectAltNames.build(dns=["ok.example"])
    for kwargs in ({"common_name": bad}, {"organization": bad}):
        with pytest.raises(IssuanceError, match="control"):
            ca.issue(Profile.CLIENT, names, **kwargs)  # type: ignore[arg-type]
    for field in ("dns", "uris", "emails"):
        value = {"dns": f"x{bad}.example", "uris": f"https://a/{bad}", "emails": f"{bad}@a.ex"}
        with pytest.raises(IssuanceError, match="control"):
            SubjectAltNames.build(**{field: [value[field]]})
    assert ca.issue(Profile.CLIENT, names, common_name="a b é [x] :y:")  # printable: fine


def hostile_csr(subject: str, *, attribute: x509.ObjectIdentifier = NameOID.COMMON_NAME) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(attribute, subject)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("ok.example")]), False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def test_cli_refuses_to_issue_unsafe_names(tmp_path: Path) -> None:
    bad = ESCAPE_CN
    line = assert_one_error_line(run("ca", "init", "--dir", tmp_path / "c1", "--name", bad))
    assert "alice\\x1b[31m\\nINJECTED" in line
    assert_one_error_line(run("ca", "init", "--dir", tmp_path / "c2", "--org", BIDI_CN), "\\u202e")
    ca_dir = make_ca(tmp_path / "ca")
    for args in (
        ("--dns", "ok.example", "--cn", bad),
        ("--dns", "ok.example", "--uri", HOSTILE_URI),
        (
            "--email",
            "a\x1b@ok.example",
        ),
    ):
        result = run("issue", "client", "--ca-dir", ca_dir, "--out", tmp_path / "x", *args)
        assert_one_error_line(result, "not allowed in a certificate name")
    assert_one_error_line(
        run("init", "--dir", tmp_path / "i", "--host", "ok.example", "--client", HOSTILE_URI),
        "not allowed",
    )
    for attribute in (NameOID.COMMON_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME):
        csr = tmp_path / "req.csr"
        csr.write_bytes(hostile_csr(bad, attribute=attribute))
        result = run("sign", csr, "--ca-dir", ca_dir, "--profile", "client",
                     "--out", tmp_path / "s.crt")  # fmt: skip
        assert_one_error_line(result, "CSR subject", "not allowed")
    assert not (tmp_path / "x.crt").exists()
    assert not (tmp_path / "s.crt").exists()
    csr.write_bytes(hostile_csr("fine [bold] :smile:"))  # control: printable names are signed
    ok(run("sign", csr, "--ca-dir", ca_dir, "--profile", "client", "--out", tmp_path / "s.crt"))
