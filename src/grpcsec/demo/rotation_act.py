"""The demo's rotation act: calls keep flowing while the server certificate is rotated.

An mTLS Greeter serves files from ``workdir/rotation`` through
:class:`~grpcsec.rotation.ReloadingServerTLS`; a background client calls it continuously (one
long-lived channel, plus a fresh connection every few calls so new handshakes happen during the
swaps); the :class:`~grpcsec.rotation.Renewer` re-issues the server certificate with a new key
``swaps`` times. Each swap is confirmed by reading the serial a *new* TLS connection is served
(:class:`~grpcsec.monitor.probe.Prober`, since gRPC clients cannot see the server certificate).
The report has the calls made, the calls failed (0 expected) and the serials served.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from grpcsec.credentials import channel_credentials
from grpcsec.demo.greeter import add_greeter, say_hello
from grpcsec.material import KeyPair
from grpcsec.monitor.probe import ProbeOptions, Prober
from grpcsec.pki import CertificateAuthority, Profile, SubjectAltNames, Validity, utcnow
from grpcsec.rotation import Renewer
from grpcsec.server import SecurityConfig, secure_server
from grpcsec.target import Target

__all__ = ["RotationReport", "run_rotation_act"]

_CALL_TIMEOUT = 5.0
_MAX_CALLS = 100_000  # the client loop's hard bound
_SWAP_DEADLINE = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationReport:
    """Serials served in order (first = before any swap), calls made and failed."""

    serials: tuple[str, ...]
    calls: int
    failed: int
    first_failure: str | None

    swaps: int

    @property
    def passed(self) -> bool:
        """Every swap was served, calls flowed, and none failed."""
        distinct = len(set(self.serials)) == len(self.serials)
        return (
            self.calls > 0 and self.failed == 0 and distinct and len(self.serials) == self.swaps + 1
        )

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "passed": self.passed,
            "swaps": self.swaps,
            "serials_served": list(self.serials),
            "calls": self.calls,
            "failed": self.failed,
            "first_failure": self.first_failure,
        }


class _Caller:
    """Calls SayHello until stopped (bounded), counting successes and failures."""

    def __init__(
        self, target: str, make_credentials: Callable[[], grpc.ChannelCredentials]
    ) -> None:
        self.calls = 0
        self.failed = 0
        self.first_failure: str | None = None
        self._target = target
        self._credentials = make_credentials
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grpcsec-demo-caller", daemon=True)

    def __enter__(self) -> _Caller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=_CALL_TIMEOUT * 2)

    def _one(self, channel: grpc.Channel) -> None:
        try:
            say_hello(channel, "rotation", timeout=_CALL_TIMEOUT)
        except grpc.RpcError as exc:
            self.failed += 1
            if self.first_failure is None:
                self.first_failure = f"{exc.code().name}: {exc.details()}"
        self.calls += 1

    def _run(self) -> None:
        fresh = [("grpc.use_local_subchannel_pool", 1)]
        with grpc.secure_channel(self._target, self._credentials()) as steady:
            while not self._stop.is_set() and self.calls < _MAX_CALLS:
                self._one(steady)
                if self.calls % 5 == 0:  # a new connection: a new handshake
                    with grpc.secure_channel(
                        self._target, self._credentials(), options=fresh
                    ) as new:
                        self._one(new)
                time.sleep(0.005)


def _wait_served(prober: Prober, target: Target, serial: str) -> bool:
    deadline = time.monotonic() + _SWAP_DEADLINE
    while time.monotonic() < deadline:
        if f"{prober.probe(target).chain[0].serial_number:x}" == serial:
            return True
        time.sleep(0.05)
    return False


def run_rotation_act(
    workdir: Path, ca: CertificateAuthority, client: KeyPair, now: dt.datetime, *, swaps: int = 5
) -> RotationReport:
    """Serve from rotating files, rotate ``swaps`` times under load, and report (see module)."""
    directory = workdir / "rotation"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert, key, client_ca = directory / "server.crt", directory / "server.key", directory / "ca.crt"
    names = SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"])
    lifetime = Validity.lasting(dt.timedelta(hours=1), now=now)
    ca.issue(Profile.SERVER, names, validity=lifetime, now=now).write(cert, key)
    client_ca.write_bytes(ca.certificate_pem())
    config = SecurityConfig.from_mapping(
        {
            "listen": "127.0.0.1:0",
            "tls": {
                "cert": str(cert),
                "key": str(key),
                "client_ca": str(client_ca),
                "reload_interval": 0.2,
            },
        }
    )
    renewer = Renewer(ca, cert, key)
    prober = Prober(ProbeOptions(timeout=_CALL_TIMEOUT))
    running = secure_server(config)  # the demo serves through grpcsec.server like any user
    add_greeter(running.server)
    running.start()
    serials = [running.status()["tls"]["serial"]]
    try:
        target = running.addresses[0]
        with _Caller(str(target), lambda: channel_credentials(ca=ca, identity=client)) as caller:
            for _ in range(swaps):
                result = renewer.renew(utcnow())
                running.reload()
                if _wait_served(prober, target, result.serial):
                    serials.append(result.serial)
                time.sleep(0.1)  # let calls run on the new certificate
    finally:
        running.stop(grace=2.0)
    return RotationReport(
        swaps=swaps,
        serials=tuple(serials),
        calls=caller.calls,
        failed=caller.failed,
        first_failure=caller.first_failure,
    )
