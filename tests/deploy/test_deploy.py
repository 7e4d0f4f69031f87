"""The operations kit in ``deploy/`` works as shipped (issue 17 item 6).

* Prometheus rules: ``promtool check rules`` accepts them and ``promtool test rules`` passes
  their unit tests (each alert fires on a bad series and stays silent on its control); a wrong
  expectation makes promtool fail, so the unit tests can fail. Every metric a rule or a
  dashboard panel names is one grpcsec really exposes (read from a live registry).
* The Grafana dashboard is valid JSON whose queries are valid PromQL (checked by promtool).
* The systemd unit passes ``systemd-analyze verify`` with no warning, and its server.toml passes
  ``grpcsec config check --shape-only``.
* The Kubernetes manifest: the ConfigMap's server.toml and policy are accepted by grpcsec, the
  files it names are where the Deployment mounts the cert-manager Secret (cert-manager's
  ``tls.crt``/``tls.key``/``ca.crt`` keys) and the ConfigMap, and the container ports are the
  configured ones.

Not checked here: that Grafana renders the dashboard, or that a cluster accepts the manifest
(no Grafana or Kubernetes API server runs on these machines).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from grpcsec.authz.parse import parse_policy
from grpcsec.monitor import ServiceMetrics
from grpcsec.monitor.exporter import CertificateCollector
from grpcsec.server import SecurityConfig
from tests.peers import require_command

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "grpcsec.rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "grpcsec.rules_test.yml"
DASHBOARD = DEPLOY / "grafana" / "grpcsec-dashboard.json"
UNIT = DEPLOY / "systemd" / "grpcsec.service"
MANIFEST = DEPLOY / "kubernetes" / "orders.yaml"
METRIC = re.compile(r"\bgrpcsec_[a-z0-9_]+")


def _tool(name: str) -> str:
    return require_command(name, "tools/install-prometheus.sh installs promtool")


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=cwd, check=False)


def _config_check(path: Path) -> subprocess.CompletedProcess[str]:
    return _run(sys.executable, "-m", "grpcsec", "config", "check", "--shape-only", str(path))


def _exposed_metrics() -> set[str]:
    """Every sample name grpcsec can expose: a serving process and the exporter."""
    service = CollectorRegistry()
    ServiceMetrics(service)
    exporter = CollectorRegistry()  # its own: both expose the CRL gauges
    exporter.register(CertificateCollector([]))
    names: set[str] = set()
    for family in [*service.collect(), *exporter.collect()]:
        names.add(family.name)
        if family.type == "counter":
            names.update({f"{family.name}_total", f"{family.name}_created"})
    return names


def _rule_expressions() -> list[str]:
    document = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in document["groups"] for rule in group["rules"]]


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


# -- Prometheus rules -------------------------------------------------------------------------
def test_promtool_accepts_the_rules() -> None:
    result = _run(_tool("promtool"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = _run(_tool("promtool"), "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_fails_the_rule_tests(tmp_path: Path) -> None:
    """Negative control: the unit tests can fail (a changed expected percentage)."""
    shutil.copy(RULES, tmp_path / RULES.name)
    text = RULE_TESTS.read_text()
    assert "orders denies 33.33% of its calls" in text
    (tmp_path / "t.yml").write_text(text.replace("33.33%", "50%"))
    result = _run(_tool("promtool"), "test", "rules", "t.yml", cwd=tmp_path)
    assert result.returncode != 0


def test_every_alert_has_a_unit_test_and_a_severity() -> None:
    document = yaml.safe_load(RULES.read_text())
    alerts = {rule["alert"]: rule for group in document["groups"] for rule in group["rules"]}
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    }
    assert set(alerts) == tested
    assert {rule["labels"]["severity"] for rule in alerts.values()} <= {"warning", "critical"}


@pytest.mark.parametrize("where", ["rules", "dashboard"])
def test_every_metric_named_is_one_grpcsec_exposes(where: str) -> None:
    expressions = _rule_expressions() if where == "rules" else _dashboard_expressions()
    named = {name for expression in expressions for name in METRIC.findall(expression)}
    assert named, "no grpcsec metric found: the pattern is wrong"
    assert named <= _exposed_metrics(), named - _exposed_metrics()


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Grafana's variables are replaced by what they expand to, then each query is checked as a
    recording rule by promtool; a broken query is caught (negative control)."""

    def as_rules(expressions: list[str]) -> Path:
        rules = [
            {"record": f"grpcsec:dashboard_{index}", "expr": expression}
            for index, expression in enumerate(expressions)
        ]
        path = tmp_path / f"dashboard_{len(list(tmp_path.iterdir()))}.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        return path

    expanded = [
        expression.replace("$__rate_interval", "5m").replace("$job", ".*")
        for expression in _dashboard_expressions()
    ]
    promtool = _tool("promtool")
    good = _run(promtool, "check", "rules", str(as_rules(expanded)))
    assert good.returncode == 0, good.stdout + good.stderr
    broken = _run(promtool, "check", "rules", str(as_rules([*expanded, "sum by (job) ("])))
    assert broken.returncode != 0


def test_dashboard_uses_its_variables() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {item["name"] for item in dashboard["templating"]["list"]}
    assert variables == {"datasource", "job"}
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


# -- systemd ----------------------------------------------------------------------------------
def test_systemd_unit_verifies_without_warnings(tmp_path: Path) -> None:
    """``systemd-analyze verify`` on the unit as shipped, with only the executable and user
    pointed at this machine; an unknown key is a warning, so a misspelt hardening option is
    caught (negative control)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    grpcsec = Path(sys.executable).with_name("grpcsec")
    text = (
        UNIT.read_text()
        .replace("/opt/orders/venv/bin/grpcsec", str(grpcsec))
        .replace("User=orders", "User=root")
        .replace("Group=orders", "Group=root")
        .replace("WorkingDirectory=/opt/orders", f"WorkingDirectory={tmp_path}")
    )
    unit = tmp_path / "orders.service"
    unit.write_text(text)
    result = _run(analyze, "verify", str(unit))
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    unit.write_text(text.replace("ProtectSystem=strict", "ProtectSystm=strict"))
    misspelt = _run(analyze, "verify", str(unit))
    assert "ProtectSystm" in misspelt.stderr


def test_systemd_unit_runs_grpcsec_serve_with_the_shipped_config() -> None:
    exec_start = next(
        line for line in UNIT.read_text().splitlines() if line.startswith("ExecStart=")
    )
    argv = exec_start.removeprefix("ExecStart=").split()
    assert argv[1:4] == ["serve", "--config", "/etc/grpcsec/server.toml"]
    assert "RestartPreventExitStatus=2" in UNIT.read_text()
    result = _config_check(DEPLOY / "systemd" / "server.toml")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["config"]["tls"]["client_ca"] == "/etc/grpcsec/tls/ca.crt"


# -- Kubernetes -------------------------------------------------------------------------------
def _manifest() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}


def test_kubernetes_config_is_accepted_and_matches_the_mounts(tmp_path: Path) -> None:
    docs = _manifest()
    data = docs["ConfigMap"]["data"]
    config_file = tmp_path / "server.toml"
    config_file.write_text(data["server.toml"])
    config = SecurityConfig.load(config_file)
    parse_policy(data["policy.json"])

    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: PurePosixPath(m["mountPath"]) for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    certificate = docs["Certificate"]["spec"]
    assert volumes["tls"]["secret"]["secretName"] == certificate["secretName"]
    assert volumes["config"]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert config.tls is not None and config.tls.client_ca is not None
    for path, key in (
        (config.tls.cert, "tls.crt"),
        (config.tls.key, "tls.key"),
        (config.tls.client_ca, "ca.crt"),
    ):
        assert PurePosixPath(path) == mounts["tls"] / key
    assert config.authz is not None
    assert PurePosixPath(config.authz.policy) == mounts["config"] / "policy.json"
    argv = container["args"]
    config_path = PurePosixPath(argv[argv.index("--config") + 1])
    assert config_path == mounts["config"] / "server.toml"

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["grpc"] == config.listen[0].port
    assert config.metrics is not None and ports["metrics"] == config.metrics.listen.port
    assert certificate["privateKey"] == {
        "algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always",
    }  # fmt: skip
    assert certificate["dnsNames"], "grpcio clients need a DNS SAN"


def test_a_broken_kubernetes_config_would_be_refused(tmp_path: Path) -> None:
    """Negative control for the test above: the same file with a misspelt key is refused."""
    text = _manifest()["ConfigMap"]["data"]["server.toml"].replace("client_ca", "client_cert")
    config_file = tmp_path / "server.toml"
    config_file.write_text(text)
    result = _config_check(config_file)
    assert result.returncode == 2
    assert "tls.client_cert" in result.stderr and len(result.stderr.strip().splitlines()) == 1
