"""A real ACME CA for the tests: Debian's ``pebble`` on 127.0.0.1, started per test.

:func:`start_pebble` writes a pebble configuration to a temporary directory (its HTTPS
certificate issued by a test CA of ours, free ports for the ACME and management listeners,
``httpPort`` pointed at the port our http-01 responder will bind, a domain block list),
starts pebble with ``PEBBLE_VA_NOSLEEP=1`` and the environment the test asks for
(``PEBBLE_VA_ALWAYS_VALID``, ``PEBBLE_WFE_NONCEREJECT``, ``PEBBLE_AUTHZREUSE``), waits (bounded)
for its directory line, and kills it at teardown. When pebble is not installed the tests are
skipped, unless ``GRPCSEC_REQUIRE_INTEROP=1`` (CI), where that is a failure.

Names: pebble validates http-01 by connecting to the name on ``httpPort``; ``localhost``
resolves to loopback without a DNS server, so the certificates name ``localhost``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography import x509

from grpcsec.acme import AcmeConfig
from grpcsec.pki import (
    CERT_MODE,
    KEY_MODE,
    CertificateAuthority,
    PendingFile,
    Profile,
    SubjectAltNames,
    write_files,
)
from tests.peers import missing

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
START_TIMEOUT = 20.0
DOMAIN = "localhost"
BLOCKED = "blocked.example"


def free_port() -> int:
    with socket.socket(socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Pebble:
    """A running pebble: its directory URL, the CA file of its HTTPS, its management URL, the
    http-01 port it validates on, and its stdout log."""

    directory: str
    https_ca: Path
    management: str
    http_port: int
    log: Path
    process: subprocess.Popen[bytes]

    def root(self) -> x509.Certificate:
        """The root that signs what this pebble issues (management endpoint ``/roots/0``)."""
        response = requests.get(f"{self.management}/roots/0", verify=str(self.https_ca), timeout=10)
        response.raise_for_status()
        return x509.load_pem_x509_certificate(response.content)

    def config(self, tmp: Path, **overrides: object) -> AcmeConfig:
        """An AcmeConfig for this pebble (account key under ``tmp``)."""
        values: dict[str, object] = {
            "directory": self.directory,
            "domains": (DOMAIN,),
            "account_key": tmp / "account.key",
            "directory_ca": self.https_ca,
            "http_port": self.http_port,
            "poll_interval": 0.2,
            "poll_attempts": 50,
            "timeout": 10.0,
        }
        values.update(overrides)
        return AcmeConfig(**values)  # type: ignore[arg-type]


def _wait_ready(process: subprocess.Popen[bytes], log: Path, url: str, ca: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"pebble exited with {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, verify=str(ca), timeout=1).ok:
                return
        time.sleep(0.1)
    pytest.fail(f"pebble did not serve {url} within {START_TIMEOUT}s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def run_pebble(
    directory: Path, env: dict[str, str] | None = None, *, validity: int | None = None
) -> Iterator[Pebble]:
    """Start pebble in ``directory`` (see the module docstring), issuing certificates valid
    for ``validity`` seconds (pebble's default: 5 years); stop it on exit."""
    if not Path(PEBBLE).is_file():
        missing("pebble (Debian package 'pebble') is not installed; interop/install.sh")
    ca = CertificateAuthority.create("pebble https test CA")
    https = ca.issue(Profile.SERVER, SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"]))
    directory.mkdir(parents=True, exist_ok=True)
    write_files(
        [
            PendingFile(directory / "https-ca.crt", ca.certificate_pem(), CERT_MODE),
            PendingFile(directory / "https.crt", https.chain_pem(), CERT_MODE),
            PendingFile(directory / "https.key", https.key_pem(), KEY_MODE),
        ],
        force=True,
    )
    acme_port, management_port, http_port = free_port(), free_port(), free_port()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{acme_port}",
            "managementListenAddress": f"127.0.0.1:{management_port}",
            "certificate": str(directory / "https.crt"),
            "privateKey": str(directory / "https.key"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "domainBlocklist": [BLOCKED],
        }
    }
    if validity is not None:
        config["pebble"]["certificateValidityPeriod"] = validity
    (directory / "pebble.json").write_text(json.dumps(config))
    log = directory / "pebble.log"
    full_env = {"PATH": os.environ.get("PATH", ""), "PEBBLE_VA_NOSLEEP": "1", **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [PEBBLE, "-config", str(directory / "pebble.json")],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    try:
        url = f"https://127.0.0.1:{acme_port}/dir"
        _wait_ready(process, log, url, directory / "https-ca.crt")
        yield Pebble(
            directory=url,
            https_ca=directory / "https-ca.crt",
            management=f"https://127.0.0.1:{management_port}",
            http_port=http_port,
            log=log,
            process=process,
        )
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def start_pebble(tmp_path: Path) -> Iterator[Callable[..., Pebble]]:
    """``start_pebble(PEBBLE_VA_ALWAYS_VALID="1", ...)``: a pebble with that environment
    (``validity=SECONDS``: its certificates' lifetime), stopped at teardown (several may run in
    one test)."""
    with contextlib.ExitStack() as stack:
        count = 0

        def start(*, validity: int | None = None, **env: str) -> Pebble:
            nonlocal count
            count += 1
            directory = tmp_path / f"pebble-{count}"
            return stack.enter_context(run_pebble(directory, env, validity=validity))

        yield start


@pytest.fixture
def pebble(start_pebble: Callable[..., Pebble]) -> Pebble:
    """A pebble that validates http-01 for real (against our responder)."""
    return start_pebble()
