"""The demo scenario: one mTLS Greeter server, one call that must work and two that must not.

:func:`run_demo` issues a throwaway CA, a server certificate (``localhost``, ``127.0.0.1``), a
client certificate with a SPIFFE ID, and a client certificate from a second, unrelated CA, and
writes them all to ``workdir`` (0600 keys; existing files are never overwritten). It serves the
Greeter with mTLS on ``127.0.0.1:0`` and makes three calls, each on a fresh channel with its own
connection and a short deadline:

a. valid client certificate: succeeds, and the reply names the identity the server saw;
b. no client certificate: refused in the handshake (``UNAVAILABLE``);
c. client certificate from the other CA: refused in the handshake (``UNAVAILABLE``).

It returns a :class:`DemoReport` and never prints. The server is stopped whatever happens.
``now`` dates the certificates; grpcio checks them against the real clock, so pass the current
time unless the point is to watch a failure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc

from grpcsec.credentials import channel_credentials, server_credentials
from grpcsec.demo.access_act import AccessPeers, run_access_acts
from grpcsec.demo.greeter import add_greeter, say_hello
from grpcsec.demo.rotation_act import RotationReport, run_rotation_act
from grpcsec.demo.rows import DemoRow, short_reason
from grpcsec.errors import MaterialError
from grpcsec.material import KeyPair, TrustBundle
from grpcsec.monitor.check import CheckReport, check_targets
from grpcsec.monitor.thresholds import Thresholds
from grpcsec.pki import (
    CA_KEY_MODE,
    CERT_MODE,
    KEY_MODE,
    CertificateAuthority,
    PendingFile,
    Profile,
    SubjectAltNames,
    private_key_pem,
    write_files,
)

__all__ = ["CLIENT_SPIFFE_ID", "SECOND_SPIFFE_ID", "DemoReport", "DemoRow", "run_demo"]

CLIENT_SPIFFE_ID = "spiffe://demo.grpcsec.internal/greeter-client"
SECOND_SPIFFE_ID = "spiffe://demo.grpcsec.internal/second-client"
_NAME = "grpcsec"
_EXPECTED_REPLY = f"Hello {_NAME} (from {CLIENT_SPIFFE_ID})"
_REFUSED = grpc.StatusCode.UNAVAILABLE


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoReport:
    """The rows, the address the server listened on, and the files written to ``workdir``."""

    rows: tuple[DemoRow, ...]
    address: str
    workdir: Path
    files: tuple[Path, ...]
    rotation: RotationReport | None = None
    access: tuple[DemoRow, ...] = ()
    check: CheckReport | None = None

    @property
    def passed(self) -> bool:
        """Whether every row behaved as expected (and the later acts, when they ran)."""
        rows_ok = bool(self.rows) and all(row.passed for row in (*self.rows, *self.access))
        check_ok = self.check is None or self.check.exit_code == 0
        return rows_ok and check_ok and (self.rotation is None or self.rotation.passed)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "passed": self.passed,
            "address": self.address,
            "workdir": str(self.workdir),
            "files": [str(f) for f in self.files],
            "rows": [row.to_json() for row in self.rows],
            "rotation": self.rotation.to_json() if self.rotation else None,
            "access": [row.to_json() for row in self.access],
            "check": self.check.to_json() if self.check else None,
        }


@dataclass(frozen=True, slots=True)
class _Material:
    ca: CertificateAuthority
    ca_file: Path
    server: KeyPair
    client: KeyPair
    second_client: KeyPair
    other_client: KeyPair
    files: tuple[Path, ...]


def _issue(workdir: Path, now: dt.datetime) -> _Material:
    """Issue the certificates, write them, and load them back the way a user's files would be."""
    ca = CertificateAuthority.create("grpcsec demo CA", now=now)
    other_ca = CertificateAuthority.create("grpcsec demo other CA", now=now)
    server = ca.issue(
        Profile.SERVER, SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"]), now=now
    )
    client = ca.issue(
        Profile.CLIENT,
        SubjectAltNames.build(uris=[CLIENT_SPIFFE_ID]),
        common_name="demo-client",
        now=now,
    )
    second_client = ca.issue(
        Profile.CLIENT,
        SubjectAltNames.build(uris=[SECOND_SPIFFE_ID]),
        common_name="demo-second-client",
        now=now,
    )
    other_client = other_ca.issue(
        Profile.CLIENT,
        SubjectAltNames.build(uris=["spiffe://elsewhere.example/intruder"]),
        common_name="intruder",
        now=now,
    )
    names = {
        "ca.crt": (ca.certificate_pem(), CERT_MODE),
        "ca.key": (private_key_pem(ca.key), CA_KEY_MODE),
        "server.crt": (server.chain_pem(), CERT_MODE),
        "server.key": (server.key_pem(), KEY_MODE),
        "client.crt": (client.chain_pem(), CERT_MODE),
        "client.key": (client.key_pem(), KEY_MODE),
        "second-client.crt": (second_client.chain_pem(), CERT_MODE),
        "second-client.key": (second_client.key_pem(), KEY_MODE),
        "other-ca.crt": (other_ca.certificate_pem(), CERT_MODE),
        "other-client.crt": (other_client.chain_pem(), CERT_MODE),
        "other-client.key": (other_client.key_pem(), KEY_MODE),
    }
    pending = [PendingFile(workdir / name, data, mode) for name, (data, mode) in names.items()]
    existing = [p.path for p in pending if p.path.exists() or p.path.is_symlink()]
    if existing:
        raise MaterialError(
            "already exists; the demo writes a fresh CA and never replaces files "
            "(use an empty directory)",
            path=existing[0],
        )
    write_files(pending)

    def pair(stem: str) -> KeyPair:
        return KeyPair.from_files(workdir / f"{stem}.crt", workdir / f"{stem}.key")

    return _Material(
        ca=ca,
        ca_file=workdir / "ca.crt",
        server=pair("server"),
        client=pair("client"),
        second_client=pair("second-client"),
        other_client=pair("other-client"),
        files=tuple(p.path for p in pending),
    )


def _call(target: str, credentials: grpc.ChannelCredentials, timeout: float) -> tuple[str, str]:
    """One SayHello on a fresh channel with its own connection: (status code name, text)."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    with grpc.secure_channel(target, credentials, options=options) as channel:
        try:
            reply = say_hello(channel, _NAME, timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            details = exc.details() if hasattr(exc, "details") else str(exc)
            return str(code.name), short_reason(details)
    return grpc.StatusCode.OK.name, reply


def run_demo(
    workdir: Path,
    now: dt.datetime,
    *,
    timeout: float = 5.0,
    rotation_swaps: int = 5,
    later_acts: bool = True,
) -> DemoReport:
    """Run the three calls against a fresh mTLS Greeter and report each (see the module doc),
    then the rotation act (``rotation_swaps`` certificate swaps under load; 0 skips it), the
    token and policy acts, and a ``grpcsec check`` of every certificate written
    (``later_acts=False`` skips those three)."""
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    material = _issue(workdir, now)
    trust = TrustBundle.from_file(material.ca_file)
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="grpcsec-demo")
    server = grpc.server(executor)
    try:
        add_greeter(server)
        port = server.add_secure_port(
            "127.0.0.1:0", server_credentials(material.server, client_ca=trust)
        )
        server.start()
        target = f"127.0.0.1:{port}"
        cases: list[tuple[str, str, Callable[[], grpc.ChannelCredentials], bool]] = [
            (
                "valid client certificate (same CA)",
                f"OK, reply names {CLIENT_SPIFFE_ID}",
                lambda: channel_credentials(ca=trust, identity=material.client),
                True,
            ),
            (
                "no client certificate",
                f"refused ({_REFUSED.name})",
                lambda: channel_credentials(ca=trust),
                False,
            ),
            (
                "client certificate from another CA",
                f"refused ({_REFUSED.name})",
                lambda: channel_credentials(ca=trust, identity=material.other_client),
                False,
            ),
        ]
        rows = []
        for scenario, expected, make_credentials, should_work in cases:
            code, text = _call(target, make_credentials(), timeout)
            if should_work:
                passed = code == grpc.StatusCode.OK.name and text == _EXPECTED_REPLY
            else:
                passed = code == _REFUSED.name
            rows.append(
                DemoRow(
                    scenario=scenario, expected=expected, code=code, outcome=text, passed=passed
                )
            )
    finally:
        server.stop(grace=None).wait(timeout=10)
        executor.shutdown(wait=True, cancel_futures=True)
    rotation = None
    if rotation_swaps:
        rotation = run_rotation_act(
            workdir, material.ca, material.client, now, swaps=rotation_swaps
        )
    access: tuple[DemoRow, ...] = ()
    check = None
    if later_acts:
        peers = AccessPeers(
            server=material.server,
            client=material.client,
            client_id=CLIENT_SPIFFE_ID,
            second=material.second_client,
            second_id=SECOND_SPIFFE_ID,
        )
        access = run_access_acts(workdir, material.ca, peers)
        check = check_targets([workdir], Thresholds(), now)
    return DemoReport(
        rows=tuple(rows),
        address=target,
        workdir=workdir,
        files=material.files,
        rotation=rotation,
        access=access,
        check=check,
    )
