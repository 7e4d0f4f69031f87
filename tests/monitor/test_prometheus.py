"""A real Prometheus server (127.0.0.1, config and storage in tmp_path, 1 s scrapes) scrapes
``grpcsec exporter`` and a process serving in-process ServiceMetrics; the assertions go
through Prometheus' HTTP API (``/api/v1/query``), so names, labels and values are checked as
Prometheus ingested them.

Skipped when the ``prometheus`` binary is missing (tools/install-prometheus.sh installs it),
unless GRPCSEC_REQUIRE_INTEROP=1, which makes a missing binary a failure.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from grpcsec.authn.tokens import public_jwks
from grpcsec.pki import CertificateAuthority, utcnow
from tests.crls import write_crl
from tests.monitor.conftest import (
    GRPCSEC,
    HOUR,
    Announced,
    closed_port,
    issue,
    prometheus_binary,
    run_prometheus,
    tls_server,
    write,
)

pytestmark = pytest.mark.slow

URL = re.compile(r"http://(127\.0\.0\.1:\d+)/metrics")

# A stand-in for a grpcsec service: ServiceMetrics on its own registry, served with
# serve_metrics; each stdin line is one event, so the test decides when counters move.
SERVICE = textwrap.dedent(
    """
    import sys
    import datetime as dt
    from prometheus_client import CollectorRegistry
    from grpcsec.monitor import ServiceMetrics, serve_metrics
    from grpcsec.pki import load_certificate_file
    from grpcsec.pki.crl import load_crl_file
    from grpcsec.target import Target

    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry)
    metrics.observe_serving_certificate(load_certificate_file(sys.argv[1])[0])
    server = serve_metrics(registry, Target("127.0.0.1", 0))
    print(server.url, flush=True)
    for line in sys.stdin:
        verb, *args = line.split()
        if verb == "tls":
            metrics.tls_connection()
        elif verb == "authn":
            metrics.authentication_failed(args[0])
        elif verb == "authz":
            metrics.authorization_decision(args[0], args[1], args[2])
        elif verb == "reloaded":
            metrics.reload_succeeded(dt.datetime.fromtimestamp(int(args[0]), dt.timezone.utc))
        elif verb == "reload-failed":
            metrics.reload_failed(args[0])
        elif verb == "crl":
            metrics.observe_crl(args[0], load_crl_file(args[0]))
        print("ok", verb, flush=True)
    server.stop()
    """
)


RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "grpcsec.rules.yml"


def documented_rules() -> str:
    """The shipped alert rules (deploy/prometheus/grpcsec.rules.yml, docs/monitoring.md)."""
    return RULES.read_text()


def address_of(announced: Announced) -> str:
    match = URL.search(announced.first_line)
    assert match, announced.first_line
    return match.group(1)


def test_prometheus_scrapes_the_exporter_and_service_metrics(
    tmp_path: Path,
    issuing_ca: CertificateAuthority,
    spawn: Callable[..., Announced],
) -> None:
    prometheus_binary()  # skip (or fail under GRPCSEC_REQUIRE_INTEROP=1) before starting anything
    now = utcnow().replace(microsecond=0)
    on_disk = issue(issuing_ca, "disk.test", not_before=now - HOUR, not_after=now + 2 * HOUR)
    served = issue(issuing_ca, "localhost", not_before=now - HOUR, not_after=now + 3 * HOUR)
    certs = tmp_path / "certs"
    leaf_file = write(certs / "disk.crt", [on_disk.certificate])
    gone = issue(issuing_ca, "gone.test", not_before=now - 2 * HOUR, not_after=now - HOUR)
    write(certs / "old" / "gone.crt", [gone.certificate])
    garbage = write(tmp_path / "garbage.pem", b"this is not a certificate\n")
    refused = str(closed_port())
    script = tmp_path / "service.py"
    script.write_text(SERVICE)

    with tls_server(served) as endpoint:
        exporter = spawn(
            [*GRPCSEC, "exporter", "--listen", "127.0.0.1:0", "--timeout", "0.5",
             str(certs), str(garbage), refused, str(endpoint)]
        )  # fmt: skip
        service = spawn([sys.executable, str(script), str(leaf_file)], stdin=True)
        jobs = {"exporter": address_of(exporter), "service": address_of(service)}
        with run_prometheus(tmp_path / "prometheus", jobs, rules=documented_rules()) as prometheus:
            # -- the exporter: expiry of a file and of a live endpoint's chain
            prometheus.wait_for(
                f'grpcsec_cert_not_after_timestamp_seconds{{source="{leaf_file}",'
                f'subject_cn="disk.test",issuer_cn="Monitor Issuing",'
                f'serial="{on_disk.certificate.serial_number:x}"}}',
                on_disk.certificate.not_valid_after_utc.timestamp(),
            )
            prometheus.wait_for(
                f'grpcsec_cert_not_after_timestamp_seconds{{target="{endpoint}",'
                f'subject_cn="localhost"}}',
                served.certificate.not_valid_after_utc.timestamp(),
            )
            prometheus.wait_for(
                f'grpcsec_cert_not_before_timestamp_seconds{{target="{endpoint}",'
                f'subject_cn="localhost"}}',
                served.certificate.not_valid_before_utc.timestamp(),
            )
            prometheus.wait_for(f'grpcsec_cert_expired{{source="{leaf_file}"}}', 0.0)
            elapsed = prometheus.wait_for(
                f'grpcsec_cert_lifetime_elapsed_ratio{{source="{leaf_file}"}}'
            )
            assert 0.3 < elapsed < 0.6  # one hour into three
            prometheus.wait_for(f'grpcsec_exporter_target_up{{target="{endpoint}"}}', 1.0)
            # -- errors: counted on every scrape, the exporter keeps serving
            prometheus.wait_for(f'grpcsec_exporter_target_up{{target="{garbage}"}}', 0.0)
            prometheus.wait_for(f'grpcsec_exporter_read_errors_total{{target="{garbage}"}} >= 2')
            prometheus.wait_for(f'grpcsec_exporter_probe_errors_total{{target="{refused}"}} >= 2')
            prometheus.wait_for(f'grpcsec_exporter_probe_errors_total{{target="{endpoint}"}}', 0.0)
            assert prometheus.value('up{job="exporter"}') == 1.0

            # -- the service: its certificate, then counters after some calls
            prometheus.wait_for(
                'grpcsec_tls_certificate_not_after_timestamp_seconds{role="server",'
                'subject_cn="disk.test"}',
                on_disk.certificate.not_valid_after_utc.timestamp(),
            )
            prometheus.wait_for("grpcsec_tls_connections_total", 0.0)
            assert service.process.stdin is not None
            events = [
                "tls", "tls", "tls",
                "authn missing_token", "authn missing_token", "authn expired",
                "authz orders allow-readers allow", "authz orders deny-all deny",
                f"reloaded {int(now.timestamp())}", "reload-failed key_mismatch",
            ]  # fmt: skip
            service.process.stdin.write("".join(f"{e}\n" for e in events))
            service.process.stdin.flush()
            for _ in events:
                assert service.lines.get(timeout=10).startswith("ok")
            prometheus.wait_for("grpcsec_tls_connections_total", 3.0)
            prometheus.wait_for(
                'grpcsec_authentication_failures_total{reason="missing_token"}', 2.0
            )
            prometheus.wait_for('grpcsec_authentication_failures_total{reason="expired"}', 1.0)
            prometheus.wait_for(
                'grpcsec_authorization_decisions_total{policy="orders",rule="allow-readers",'
                'decision="allow"}',
                1.0,
            )
            prometheus.wait_for('sum(grpcsec_authorization_decisions_total{decision="deny"})', 1.0)
            prometheus.wait_for("grpcsec_rotation_reload_successes_total", 1.0)
            prometheus.wait_for(
                'grpcsec_rotation_reload_failures_total{reason="key_mismatch"}', 1.0
            )
            prometheus.wait_for(
                "grpcsec_rotation_last_success_timestamp_seconds", float(int(now.timestamp()))
            )
            # an alert-style expression over the exporter's data works as documented
            left = f'grpcsec_cert_not_after_timestamp_seconds{{source="{leaf_file}"}} - time()'
            prometheus.wait_for(f"({left}) < 3 * 3600")
            # the alert rules from docs/monitoring.md load and fire on this data
            prometheus.wait_for('grpcsec_cert_expired{subject_cn="gone.test"}', 1.0)
            prometheus.wait_for(
                'ALERTS{alertname="GrpcsecCertificateExpired",alertstate="firing",subject_cn="gone.test"}',
                1.0,
            )
            prometheus.wait_for(
                f'ALERTS{{alertname="GrpcsecCertificateReadErrors",alertstate="firing",target="{garbage}"}}',
                1.0,
            )
            assert (
                prometheus.value(
                    'ALERTS{alertname="GrpcsecCertificateExpired",subject_cn="disk.test"}'
                )
                is None
            )


def _until(announced: Announced, pattern: re.Pattern[str]) -> re.Match[str]:
    """The first line (the announcing one included) matching ``pattern``, bounded in time."""
    line = announced.first_line
    for _ in range(50):
        match = pattern.search(line)
        if match:
            return match
        line = announced.lines.get(timeout=10)
    pytest.fail(f"no line matching {pattern.pattern}; first line: {announced.first_line!r}")


def test_prometheus_scrapes_grpcsec_serve_metrics(
    tmp_path: Path, issuing_ca: CertificateAuthority, spawn: Callable[..., Announced]
) -> None:
    """``grpcsec serve --metrics``: Prometheus sees the served certificate, new TLS connections
    and authentication failures after real calls (a client without a token is refused)."""
    prometheus_binary()
    now = utcnow().replace(microsecond=0)
    served = issue(issuing_ca, "localhost", not_before=now - HOUR, not_after=now + 3 * HOUR)
    cert = write(tmp_path / "server.crt", list(served.chain))
    key = tmp_path / "server.key"
    key.write_bytes(served.key_pem())
    ca = write(tmp_path / "ca.crt", [issuing_ca.root])
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(public_jwks([(ec.generate_private_key(ec.SECP256R1()), None)])))
    server = spawn(
        [*GRPCSEC, "serve", "--listen", "127.0.0.1:0", "--cert", cert, "--key", key,
         "--jwks", jwks, "--audience", "svc", "--metrics", "127.0.0.1:0"]
    )  # fmt: skip
    metrics = _until(server, URL).group(1)
    port = _until(server, re.compile(r"listening on 127\.0\.0\.1:(\d+)")).group(1)
    with run_prometheus(tmp_path / "prometheus", {"serve": metrics}) as prometheus:
        prometheus.wait_for(
            'grpcsec_tls_certificate_not_after_timestamp_seconds{role="server",'
            'subject_cn="localhost"}',
            served.certificate.not_valid_after_utc.timestamp(),
        )
        for _ in range(3):  # each on a fresh connection, each refused: no token
            result = subprocess.run(
                [*GRPCSEC, "call", f"127.0.0.1:{port}", "--ca", str(ca)],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            assert result.returncode == 1
            assert "UNAUTHENTICATED" in result.stderr
        prometheus.wait_for('grpcsec_authentication_failures_total{reason="missing_token"}', 3.0)
        prometheus.wait_for("grpcsec_tls_connections_total >= 3")
        assert prometheus.value('up{job="serve"}') == 1.0


def test_prometheus_scrapes_crl_metrics_and_the_stale_crl_alert_fires(
    tmp_path: Path,
    issuing_ca: CertificateAuthority,
    root_ca: CertificateAuthority,
    spawn: Callable[..., Announced],
) -> None:
    """CRL files among the exporter's targets and a CRL observed by ServiceMetrics reach
    Prometheus with the same names and labels; the shipped GrpcsecCrlStale alert fires for the
    CRL past its next update and not for the fresh one."""
    prometheus_binary()
    now = utcnow().replace(microsecond=0)
    victim = issue(issuing_ca, "victim.test", not_before=now - HOUR, not_after=now + 3 * HOUR)
    fresh = write_crl(tmp_path / "crls" / "issuing.crl", issuing_ca, victim.certificate,
                      this_update=now - HOUR, next_update=now + 48 * HOUR)  # fmt: skip
    stale = write_crl(tmp_path / "crls" / "root.pem", root_ca,
                      this_update=now - 3 * HOUR, next_update=now - HOUR)  # fmt: skip
    leaf_file = write(tmp_path / "svc.crt", [victim.certificate])
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    exporter = spawn([*GRPCSEC, "exporter", "--listen", "127.0.0.1:0", str(tmp_path / "crls")])
    service = spawn([sys.executable, str(script), str(leaf_file)], stdin=True)
    jobs = {"exporter": address_of(exporter), "service": address_of(service)}
    assert service.process.stdin is not None
    service.process.stdin.write(f"crl {fresh}\n")
    service.process.stdin.flush()
    assert service.lines.get(timeout=10).startswith("ok")
    with run_prometheus(tmp_path / "prometheus", jobs, rules=documented_rules()) as prometheus:
        issuing = f'source="{fresh}",issuer="CN=Monitor Issuing"'
        for job in ("exporter", "service"):
            prometheus.wait_for(
                f'grpcsec_crl_next_update_timestamp_seconds{{job="{job}",{issuing}}}',
                (now + 48 * HOUR).timestamp(),
            )
            prometheus.wait_for(f'grpcsec_crl_revoked_entries{{job="{job}",{issuing}}}', 1.0)
        root = f'source="{stale}",issuer="CN=Monitor Root"'
        prometheus.wait_for(f"grpcsec_crl_revoked_entries{{{root}}}", 0.0)
        prometheus.wait_for(
            f'ALERTS{{alertname="GrpcsecCrlStale",alertstate="firing",{root}}}', 1.0, timeout=30
        )
        assert prometheus.value(f'ALERTS{{alertname="GrpcsecCrlStale",{issuing}}}') is None
        assert (
            prometheus.value('ALERTS{alertname="GrpcsecCrlNextUpdateSoon",job="service"}') is None
        )
