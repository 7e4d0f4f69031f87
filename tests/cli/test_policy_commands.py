"""``grpcsec policy check`` and ``grpcsec policy eval``, run in-process.

check: exit 0 with a summary (or --json), 2 with one located error line. eval: exit 0 allow,
1 deny, 2 invalid policy or input; --json is exactly {"decision", "matched_rule",
"policy_name"}; the peer is described by exactly one of --peer-cert, --no-client-cert and
--plaintext; repeated --metadata keys are repeated values in order.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import Result

from grpcsec.pki import CertificateAuthority, Profile, SubjectAltNames
from tests.cli.clirun import assert_one_error_line, ok, plain, run

SPIFFE = "spiffe://acme.org/ns/prod/sa/billing"
UNARY = "/orders.Orders/Get"

POLICY: dict[str, Any] = {
    "name": "orders",
    "deny_rules": [
        {"name": "no_drop", "request": {"paths": ["/orders.Orders/Drop"]}},
    ],
    "allow_rules": [
        {
            "name": "billing",
            "source": {"principals": ["spiffe://acme.org/ns/prod/*"]},
            "request": {"paths": ["/orders.Orders/*"]},
        },
        {
            "name": "internal_dns",
            "source": {"principals": ["*.internal"]},
            "request": {"paths": [UNARY]},
        },
        {
            "name": "anonymous_tls_health",
            "source": {"principals": [""]},
            "request": {"paths": ["/grpc.health.v1.Health/Check"]},
        },
        {
            "name": "roles",
            "request": {
                "paths": ["/orders.Admin/*"],
                "headers": [{"key": "X-Role", "values": ["admin,ops"]}],
            },
        },
        {
            "name": "trace",
            "request": {
                "paths": ["/orders.Trace/*"],
                "headers": [{"key": "x-trace-bin", "values": ["AAH+/w=="]}],
            },
        },
        {
            "name": "token_readers",
            "source": {"grpcsec_claims": [{"claim": "scope", "values": ["orders.read"]}]},
            "request": {"paths": ["/orders.Reports/*"]},
        },
    ],
}


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "authz.json"
    path.write_text(json.dumps(POLICY))
    return path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("certs")
    ca = CertificateAuthority.create("policy CLI test CA")
    files: dict[str, Path] = {}
    for label, names in (
        ("spiffe", SubjectAltNames.build(uris=[SPIFFE], dns=["billing.internal"])),
        ("dns", SubjectAltNames.build(dns=["billing.internal"])),
        ("other", SubjectAltNames.build(uris=["spiffe://evil.org/x"])),
    ):
        issued = ca.issue(Profile.CLIENT, names)
        files[label] = directory / f"{label}.crt"
        files[label].write_bytes(issued.chain_pem())
        if label == "spiffe":
            files["key"] = directory / "spiffe.key"
            files["key"].write_bytes(issued.key_pem())
    return files


def evaluate(policy: Path, *args: object) -> tuple[int, dict[str, Any]]:
    result = run("policy", "eval", policy, *args, "--json")
    assert result.exit_code in {0, 1}, plain(result.output)
    data: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, data


def decision(policy: Path, *args: object) -> tuple[int, str, str | None]:
    code, data = evaluate(policy, *args)
    assert list(data) == [
        "schema", "decision", "matched_rule", "policy_name", "nearest_allow_rule"
    ]  # fmt: skip
    assert data["schema"] == "grpcsec.policy.eval/1"
    assert data["policy_name"] == "orders"
    if data["decision"] == "allow" or data["matched_rule"] is not None:
        assert data["nearest_allow_rule"] is None  # only a default deny has one
    return code, data["decision"], data["matched_rule"]


# -- check -----------------------------------------------------------------------------------------
def test_policy_help_lists_the_commands() -> None:
    output = plain(ok(run("policy", "--help")).output)
    assert "check" in output
    assert "eval" in output


def test_check_summarises_a_valid_policy(policy_file: Path) -> None:
    output = plain(ok(run("policy", "check", policy_file)).stdout)
    assert "valid" in output
    assert "orders" in output
    assert "deny rules   1: no_drop" in output
    assert "allow rules  6: billing, internal_dns" in output
    assert "grpcsec_claims" in output


def test_check_json(policy_file: Path) -> None:
    data = json.loads(ok(run("policy", "check", policy_file, "--json")).stdout)
    assert data["valid"] is True
    assert data["policy_name"] == "orders"
    assert data["deny_rules"] == ["no_drop"]
    assert data["allow_rules"][0] == "billing"
    assert data["audit_condition"] == "NONE"
    assert data["extensions"] == ["grpcsec_claims"]
    assert data["warnings"] == []


def test_check_reports_the_first_error_with_its_location(tmp_path: Path) -> None:
    broken = json.loads(json.dumps(POLICY))
    broken["allow_rules"][2]["request"]["headers"] = [{"key": "grpc-timeout", "values": ["1S"]}]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    line = assert_one_error_line(
        run("policy", "check", path),
        str(path),
        "allow_rules[2].request.headers[0].key",
        'unsupported header key "grpc-timeout"',
    )
    assert line.startswith("error: ")


def test_check_json_reports_the_error_too(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x", "allow_rules": [{"name": "a"}, {"name": "a"}]}')
    result = run("policy", "check", path, "--json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data == {
        "schema": "grpcsec.policy.check/1",
        "valid": False,
        "path": str(path),
        "location": "allow_rules[1].name",
        "error": data["error"],
    }
    assert data["error"].startswith('duplicate rule name "a"')
    assert "allow_rules[1].name" in plain(result.stderr)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("[]", "must be an object"),
        ('{"name": "x", "allow_rules": []}', "allow_rules: must not be empty"),
        ('{"name": "x", "allow_rules": [{"name": "a", "sorce": {}}]}', 'did you mean "source"'),
    ],
)
def test_check_invalid_inputs_exit_2(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(content)
    assert_one_error_line(run("policy", "check", path), needle)


def test_check_missing_file_exits_2(tmp_path: Path) -> None:
    assert_one_error_line(run("policy", "check", tmp_path / "nope.json"), "cannot read the policy")


def test_check_portable_refuses_extensions(policy_file: Path) -> None:
    assert_one_error_line(
        run("policy", "check", policy_file, "--portable"),
        "allow_rules[5].source.grpcsec_claims",
        "extension",
    )


def test_check_prints_warnings(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_text(
        '{"name": "x", "allow_rules": [{"name": "a", "request": {"paths": ["*Get*"]}}]}'
    )
    output = plain(ok(run("policy", "check", path)).stdout)
    assert "warning: allow_rules[0].request.paths[0]" in output
    assert "prefix match" in output


def test_check_escapes_rich_markup_in_names(tmp_path: Path) -> None:
    path = tmp_path / "markup.json"
    path.write_text('{"name": "[bold]x[/]", "allow_rules": [{"name": "[red]r"}]}')
    output = plain(ok(run("policy", "check", path)).stdout)
    assert "[bold]x[/]" in output
    assert "[red]r" in output


# -- eval: peers -----------------------------------------------------------------------------------
def test_eval_allows_a_spiffe_client(policy_file: Path, certs: dict[str, Path]) -> None:
    assert decision(policy_file, "--method", UNARY, "--peer-cert", certs["spiffe"]) == (
        0,
        "allow",
        "billing",
    )


def test_eval_uses_dns_sans_only_without_uri_sans(
    policy_file: Path, certs: dict[str, Path]
) -> None:
    assert decision(policy_file, "--method", UNARY, "--peer-cert", certs["dns"]) == (
        0,
        "allow",
        "internal_dns",
    )
    # the SPIFFE certificate also has the DNS SAN, but URI SANs take precedence
    assert decision(policy_file, "--method", "/orders.Orders/Put", "--peer-cert", certs["dns"])[
        1:
    ] == (
        "deny",
        None,
    )


def test_eval_denies_another_identity_with_exit_1(
    policy_file: Path, certs: dict[str, Path]
) -> None:
    assert decision(policy_file, "--method", UNARY, "--peer-cert", certs["other"]) == (
        1,
        "deny",
        None,
    )


def test_eval_no_client_cert_is_the_empty_principal(policy_file: Path) -> None:
    health = "/grpc.health.v1.Health/Check"
    assert decision(policy_file, "--method", health, "--no-client-cert") == (
        0,
        "allow",
        "anonymous_tls_health",
    )
    assert decision(policy_file, "--method", health, "--plaintext") == (1, "deny", None)


def test_eval_deny_rule_is_reported(policy_file: Path, certs: dict[str, Path]) -> None:
    assert decision(
        policy_file, "--method", "/orders.Orders/Drop", "--peer-cert", certs["spiffe"]
    ) == (
        1,
        "deny",
        "no_drop",
    )


@pytest.mark.parametrize(
    "peer_args",
    [
        (),
        ("--plaintext", "--no-client-cert"),
        ("--plaintext", "--peer-cert", "x.pem"),
    ],
    ids=["none", "plaintext-and-no-cert", "plaintext-and-cert"],
)
def test_eval_needs_exactly_one_peer_description(
    policy_file: Path, peer_args: tuple[str, ...]
) -> None:
    assert_one_error_line(
        run("policy", "eval", policy_file, "--method", UNARY, *peer_args), "exactly one of"
    )


def test_eval_peer_cert_errors_exit_2(
    policy_file: Path, certs: dict[str, Path], tmp_path: Path
) -> None:
    assert_one_error_line(
        run("policy", "eval", policy_file, "--method", UNARY, "--peer-cert", tmp_path / "none.pem"),
        "no such file",
    )
    assert_one_error_line(
        run("policy", "eval", policy_file, "--method", UNARY, "--peer-cert", certs["key"]),
        str(certs["key"]),
    )


# -- eval: metadata, claims, method ----------------------------------------------------------------
def test_eval_repeated_metadata_are_values_in_order(policy_file: Path) -> None:
    args = ("--method", "/orders.Admin/Reset", "--plaintext")
    assert decision(
        policy_file, *args, "--metadata", "x-role=admin", "--metadata", "X-Role=ops"
    ) == (
        0,
        "allow",
        "roles",
    )
    assert decision(
        policy_file, *args, "--metadata", "x-role=ops", "--metadata", "x-role=admin"
    ) == (
        1,
        "deny",
        None,
    )
    assert decision(policy_file, *args, "--metadata", "x-role=admin,ops")[0] == 0
    assert decision(policy_file, *args, "--metadata", "x-role=admin")[0] == 1


def test_eval_metadata_value_may_contain_equals(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps(
            {
                "name": "orders",
                "allow_rules": [
                    {"name": "r", "request": {"headers": [{"key": "x-q", "values": ["a=b"]}]}}
                ],
            }
        )
    )
    assert decision(path, "--method", UNARY, "--plaintext", "--metadata", "x-q=a=b")[0] == 0


def test_eval_bin_metadata_is_base64(policy_file: Path) -> None:
    args = ("--method", "/orders.Trace/Get", "--plaintext")
    value = base64.b64encode(b"\x00\x01\xfe\xff").decode()
    assert decision(policy_file, *args, "--metadata", f"x-trace-bin={value}")[0] == 0
    assert decision(policy_file, *args, "--metadata", "x-trace-bin=AAH+/w")[0] == 0  # unpadded
    assert decision(policy_file, *args, "--metadata", "x-trace-bin=AAE=")[0] == 1
    for bad in ("***", "AAH-_w"):  # standard alphabet only
        assert_one_error_line(
            run("policy", "eval", policy_file, *args, "--metadata", f"x-trace-bin={bad}"), "base64"
        )


@pytest.mark.parametrize("item", ["novalue", "=v", " =v"])
def test_eval_bad_metadata_exits_2(policy_file: Path, item: str) -> None:
    assert_one_error_line(
        run("policy", "eval", policy_file, "--method", UNARY, "--plaintext", "--metadata", item),
        "KEY=VALUE",
    )


def test_eval_claims(policy_file: Path) -> None:
    args = ("--method", "/orders.Reports/Daily", "--plaintext")
    assert decision(policy_file, *args, "--claims", '{"scope": "orders.read orders.list"}') == (
        0,
        "allow",
        "token_readers",
    )
    assert decision(policy_file, *args, "--claims", '{"scope": "orders.list"}')[0] == 1
    assert decision(policy_file, *args)[0] == 1  # no token: the claims rule never matches


@pytest.mark.parametrize(
    ("claims", "needle"), [("{", "not valid JSON"), ("[]", "JSON object"), ('"x"', "JSON object")]
)
def test_eval_bad_claims_exit_2(policy_file: Path, claims: str, needle: str) -> None:
    assert_one_error_line(
        run("policy", "eval", policy_file, "--method", UNARY, "--plaintext", "--claims", claims),
        needle,
    )


def test_eval_method_must_be_a_full_name(policy_file: Path) -> None:
    assert_one_error_line(
        run("policy", "eval", policy_file, "--method", "orders.Orders/Get", "--plaintext"),
        "/package.Service/Method",
    )


def test_eval_invalid_policy_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"name": "x"}')
    assert_one_error_line(
        run("policy", "eval", path, "--method", UNARY, "--plaintext", "--json"),
        "allow_rules: is required",
    )


def test_eval_portable_refuses_extensions(policy_file: Path) -> None:
    assert_one_error_line(
        run("policy", "eval", policy_file, "--method", UNARY, "--plaintext", "--portable"),
        "grpcsec_claims",
    )


# -- eval: human output and side effects -----------------------------------------------------------
def test_eval_explains_in_text(policy_file: Path, certs: dict[str, Path]) -> None:
    result: Result = run(
        "policy", "eval", policy_file, "--method", UNARY, "--peer-cert", certs["spiffe"]
    )
    output = plain(ok(result).stdout)
    assert output.startswith(f"ALLOW {UNARY}")
    assert "matched rule  billing (allow rule)" in output
    assert f'URI SANs: "{SPIFFE}"' in output
    denied = run(
        "policy", "eval", policy_file, "--method", "/x.Y/Z", "--plaintext", "--claims", "{}"
    )
    assert denied.exit_code == 1
    text = plain(denied.stdout)
    assert text.startswith("DENY /x.Y/Z")
    assert "denied by default" in text
    assert "plaintext peer" in text
    assert "token claims" in text


def test_eval_does_not_run_audit_loggers(tmp_path: Path) -> None:
    audit_file = tmp_path / "audit.jsonl"
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps(
            {
                "name": "orders",
                "allow_rules": [{"name": "all"}],
                "audit_logging_options": {
                    "audit_condition": "ON_DENY_AND_ALLOW",
                    "audit_loggers": [
                        {"name": "grpcsec_file_logger", "config": {"path": str(audit_file)}},
                        {"name": "stdout_logger"},
                    ],
                },
            }
        )
    )
    code, data = evaluate(path, "--method", UNARY, "--plaintext")
    assert (code, data["decision"]) == (0, "allow")
    assert not audit_file.exists()


def test_peer_cert_takes_the_leaf_of_a_chain(policy_file: Path, tmp_path: Path) -> None:
    """A chain file (leaf first, then the CA) is read as the leaf."""
    ca = CertificateAuthority.create("chain CA")
    issued = ca.issue(Profile.CLIENT, SubjectAltNames.build(uris=[SPIFFE]))
    chain = tmp_path / "chain.pem"
    chain.write_bytes(
        issued.certificate.public_bytes(serialization.Encoding.PEM) + ca.certificate_pem()
    )
    assert decision(policy_file, "--method", UNARY, "--peer-cert", chain)[2] == "billing"
