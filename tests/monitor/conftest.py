"""Fixtures for the monitor tests: certificates issued to expire at chosen times, real TLS
servers on 127.0.0.1:0, subprocesses that print the address they serve on, and a real
Prometheus server (Debian package ``prometheus``, installed by tools/install-prometheus.sh).

Time is a parameter: certificates get explicit validity windows around :data:`NOW` (files) or
around the real clock (live servers, whose handshake does not care), and each check is given
the moment to judge at. Nothing sleeps to let a certificate age.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from cryptography import x509

from grpcsec.credentials import ServerTLS
from grpcsec.pki import (
    CertificateAuthority,
    IssuedCertificate,
    Profile,
    SubjectAltNames,
    Validity,
    certificates_pem,
)
from grpcsec.target import Target
from tests.peers import require_command
from tests.servers import ServeConfig, start_sync

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
GRPCSEC = [sys.executable, "-m", "grpcsec.cli"]
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
LOCAL_NAMES = SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"])


@functools.cache
def make_root_ca() -> CertificateAuthority:
    """A root valid from 2020 to 2040, so it can issue around :data:`NOW` and the real clock."""
    window = Validity(
        not_before=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc),
        not_after=dt.datetime(2040, 1, 1, tzinfo=dt.timezone.utc),
    )
    return CertificateAuthority.create("Monitor Root", validity=window, now=NOW)


@functools.cache
def make_issuing_ca() -> CertificateAuthority:
    """An intermediate ("Monitor Issuing") under :func:`make_root_ca`, valid until 2039."""
    window = Validity(
        not_before=dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc),
        not_after=dt.datetime(2039, 1, 1, tzinfo=dt.timezone.utc),
    )
    return make_root_ca().create_intermediate("Monitor Issuing", validity=window, now=NOW)


@pytest.fixture(scope="session")
def root_ca() -> CertificateAuthority:
    return make_root_ca()


@pytest.fixture(scope="session")
def issuing_ca() -> CertificateAuthority:
    return make_issuing_ca()


def issue(
    ca: CertificateAuthority,
    common_name: str,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    profile: Profile = Profile.SERVER,
) -> IssuedCertificate:
    """A leaf valid exactly from ``not_before`` to ``not_after``."""
    return ca.issue(
        profile,
        LOCAL_NAMES if profile is Profile.SERVER else SubjectAltNames.build(dns=["client.test"]),
        common_name=common_name,
        validity=Validity(not_before=not_before, not_after=not_after),
        now=min(not_before, ca.certificate.not_valid_after_utc - DAY),
    )


def lasting(
    ca: CertificateAuthority, common_name: str, *, left: dt.timedelta, lifetime: dt.timedelta
) -> IssuedCertificate:
    """A leaf that, at :data:`NOW`, has ``left`` to go of a ``lifetime``-long validity."""
    not_after = NOW + left
    return issue(ca, common_name, not_before=not_after - lifetime, not_after=not_after)


def self_signed_root(common_name: str, *, not_before: dt.datetime, not_after: dt.datetime) -> bytes:
    window = Validity(not_before=not_before, not_after=not_after)
    return CertificateAuthority.create(
        common_name, validity=window, now=not_before
    ).certificate_pem()


def write(path: Path, data: bytes | Sequence[x509.Certificate]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else certificates_pem(data))
    return path


# -- live TLS servers ------------------------------------------------------------------------------
@contextmanager
def tls_server(
    identity: IssuedCertificate, *, client_ca: CertificateAuthority | None = None
) -> Iterator[Target]:
    """A real grpcsec server (Greeter, health) on 127.0.0.1:0 serving ``identity``'s chain."""
    tls = ServerTLS.create(
        identity, client_ca=client_ca.certificate_pem() if client_ca is not None else None
    )
    running = start_sync(ServeConfig(listen=Target("127.0.0.1", 0), tls=tls, workers=2))
    try:
        yield running.address
    finally:
        running.stop(grace=0)


def closed_port() -> Target:
    """An address where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return Target("127.0.0.1", port)


@contextmanager
def silent_listener() -> Iterator[Target]:
    """A port that accepts TCP connections (kernel backlog) but never speaks TLS."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield Target("127.0.0.1", sock.getsockname()[1])


# -- subprocesses that announce their address ------------------------------------------------------
@dataclass
class Announced:
    process: subprocess.Popen[str]
    first_line: str
    lines: queue.Queue[str]


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


@contextmanager
def spawner() -> Iterator[Callable[..., Announced]]:
    """Start processes whose first stdout line announces them; all stopped (SIGTERM) after."""
    started: list[tuple[subprocess.Popen[str], threading.Thread]] = []

    def start(args: Sequence[object], *, stdin: bool = False) -> Announced:
        process = subprocess.Popen(
            [str(a) for a in args],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True)
        reader.start()
        started.append((process, reader))
        try:
            first = lines.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            pytest.fail(f"{args[:4]} printed nothing within {STARTUP_TIMEOUT}s")
        return Announced(process, first, lines)

    try:
        yield start
    finally:
        for process, reader in started:
            stop_process(process)
            reader.join(STOP_TIMEOUT)
            if process.stdout is not None:
                process.stdout.close()


@pytest.fixture
def spawn() -> Iterator[Callable[..., Announced]]:
    with spawner() as start:
        yield start


def stop_process(process: subprocess.Popen[str]) -> int:
    """SIGTERM, a bounded wait, then SIGKILL; closes stdin. Returns the exit code."""
    if process.stdin is not None and not process.stdin.closed:
        process.stdin.close()
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(STOP_TIMEOUT)


def http_get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (127.0.0.1 only)
        body: bytes = response.read()
    return body.decode()


# -- Prometheus ------------------------------------------------------------------------------------
def prometheus_binary() -> str:
    """The ``prometheus`` binary; skip without it, unless GRPCSEC_REQUIRE_INTEROP=1 (fail)."""
    return require_command("prometheus", "run tools/install-prometheus.sh")


@dataclass
class Prometheus:
    url: str

    def query(self, expression: str) -> list[dict[str, object]]:
        """The result vector of an instant query."""
        body = http_get(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expression})}")
        data = json.loads(body)
        assert data["status"] == "success", data
        result: list[dict[str, object]] = data["data"]["result"]
        return result

    def value(self, expression: str) -> float | None:
        """The single value of an instant query, or ``None`` when it has no result."""
        result = self.query(expression)
        if not result:
            return None
        assert len(result) == 1, result
        sample = result[0]["value"]
        assert isinstance(sample, list)
        return float(sample[1])

    def wait_for(
        self, expression: str, expected: float | None = None, timeout: float = 20.0
    ) -> float:
        """Poll until the query has a value (equal to ``expected`` when given); bounded."""
        deadline = time.monotonic() + timeout
        seen: float | None = None
        while time.monotonic() < deadline:
            seen = self.value(expression)
            if seen is not None and (expected is None or seen == expected):
                return seen
            time.sleep(0.25)
        pytest.fail(f"{expression}: {seen} after {timeout}s, expected {expected}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def run_prometheus(
    tmp_path: Path, jobs: dict[str, str], *, rules: str | None = None
) -> Iterator[Prometheus]:
    """A real Prometheus on 127.0.0.1 scraping ``jobs`` (name -> HOST:PORT) every second and
    evaluating ``rules`` (a rule file's YAML), with its config and storage under ``tmp_path``;
    terminated afterwards."""
    binary = prometheus_binary()
    tmp_path.mkdir(parents=True, exist_ok=True)
    scrape = "\n".join(
        f"  - job_name: {name}\n    static_configs:\n      - targets: ['{address}']"
        for name, address in jobs.items()
    )
    rule_files = ""
    if rules is not None:
        (tmp_path / "rules.yml").write_text(rules)
        rule_files = f"rule_files: ['{tmp_path / 'rules.yml'}']\n"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        f"{rule_files}scrape_configs:\n{scrape}\n"
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited: {(tmp_path / 'prometheus.log').read_text()}")
            try:
                if "Ready" in http_get(f"{url}/-/ready", timeout=1.0):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("prometheus was not ready in time")
            time.sleep(0.2)
        prometheus = Prometheus(url)
        for name in jobs:
            prometheus.wait_for(f'up{{job="{name}"}}', 1.0)
        yield prometheus
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait(STOP_TIMEOUT)
        log.close()
