"""When an ACME certificate is renewed: the CA's renewal window (ARI, RFC 9773) when it offers
one, else 2/3 of the lifetime, jittered. Pure decisions, tested on recorded ``renewalInfo``
documents (tests/acme/data: Debian's pebble 2.4 serves no ``renewalInfo``), plus the renewer
asking a real HTTP server for them and honouring ``Retry-After``."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from acme.client import _renewal_info_path_component
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from grpcsec.acme import AcmeConfig, AcmeRenewer
from grpcsec.acme.schedule import (
    acme_renewal_time,
    certificate_id,
    next_poll,
    parse_renewal_info,
)
from grpcsec.errors import AcmeError
from grpcsec.pki import (
    CERT_MODE,
    KEY_MODE,
    CertificateAuthority,
    PendingFile,
    Profile,
    SubjectAltNames,
    Validity,
    write_files,
)
from grpcsec.rotation.renew_plan import renewal_time

DATA = Path(__file__).parent / "data"
NOW = dt.datetime(2025, 1, 1, 12, tzinfo=dt.timezone.utc)
START = dt.datetime(2025, 1, 2, 4, tzinfo=dt.timezone.utc)
END = dt.datetime(2025, 1, 3, 4, tzinfo=dt.timezone.utc)


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


@pytest.fixture(scope="module")
def leaf() -> x509.Certificate:
    ca = CertificateAuthority.create("ari test CA")
    validity = Validity(
        not_before=NOW - dt.timedelta(days=30), not_after=NOW + dt.timedelta(days=60)
    )
    issued = ca.issue(Profile.SERVER, SubjectAltNames.build(dns=["a.test"]), validity=validity)
    return issued.certificate


def test_the_window_of_a_recorded_response_is_read() -> None:
    window = parse_renewal_info(recorded("ari-rfc9773.json"), now=NOW)
    assert (window.start, window.end) == (START, END)
    assert window.explanation_url == "https://acme.example.com/docs/ari"
    assert window.poll_at == NOW + dt.timedelta(hours=6)  # no Retry-After: 6 hours


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.999])
def test_the_renewal_time_is_a_point_inside_the_window(leaf: x509.Certificate, draw: float) -> None:
    window = parse_renewal_info(recorded("ari-rfc9773.json"), now=NOW)
    when = acme_renewal_time(leaf, window, draw=draw)
    assert START <= when <= END
    assert when == START + (END - START) * draw
    # and not the 2/3 point, which lies elsewhere for this certificate
    assert when != renewal_time(leaf.not_valid_before_utc, leaf.not_valid_after_utc, draw=draw)


def test_without_a_window_the_renewal_time_is_two_thirds_of_the_lifetime(
    leaf: x509.Certificate,
) -> None:
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    when = acme_renewal_time(leaf, None, draw=0.5)
    assert when == leaf.not_valid_before_utc + lifetime * 2 / 3
    early, late = (acme_renewal_time(leaf, None, draw=d) for d in (0.0, 0.999))
    assert early < when < late  # jittered either way
    assert late - early < lifetime / 10


def test_a_window_moved_into_the_past_means_renew_now(leaf: x509.Certificate) -> None:
    window = parse_renewal_info(recorded("ari-revoke-soon.json"), now=NOW)
    assert acme_renewal_time(leaf, window, draw=0.999) < NOW


@pytest.mark.parametrize(
    ("name", "reason"),
    [("ari-inverted.json", "ends before it starts"), ("ari-no-window.json", "malformed")],
)
def test_a_response_without_a_usable_window_is_refused(name: str, reason: str) -> None:
    with pytest.raises(AcmeError, match=reason) as caught:
        parse_renewal_info(recorded(name), now=NOW)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("header", "delay"),
    [
        ("3600", dt.timedelta(hours=1)),
        ("5", dt.timedelta(minutes=1)),  # never more often than once a minute
        ("999999999", dt.timedelta(days=1)),  # never less often than once a day
        ("Wed, 01 Jan 2025 14:00:00 GMT", dt.timedelta(hours=2)),
        (None, dt.timedelta(hours=6)),
        ("soon", dt.timedelta(hours=6)),
    ],
)
def test_retry_after_sets_the_next_poll_within_bounds(
    header: str | None, delay: dt.timedelta
) -> None:
    assert next_poll(header, NOW) == NOW + delay


def test_the_certificate_id_is_rfc_9773s() -> None:
    """The RFC's example: AKI 69:88:5B:..., serial 0x87654321 -> aYhba4dGQEHhs3uEe6CuLN4ByNQ
    .AIdlQyE (the serial's DER needs a leading zero byte); the acme library agrees."""
    key = ec.generate_private_key(ec.SECP256R1())
    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ari")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x87654321)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
        .sign(key, hashes.SHA256())
    )
    assert certificate_id(cert) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    assert certificate_id(cert) == _renewal_info_path_component(cert)


# -- the renewer asks a real HTTP server ------------------------------------------------------
class _Ari(BaseHTTPRequestHandler):
    document: ClassVar[dict[str, Any]] = {}
    retry_after = "7200"
    with_ari = True
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        host = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path == "/dir":
            body: dict[str, Any] = {"newNonce": f"{host}/nonce", "newAccount": f"{host}/acct"}
            if self.with_ari:
                body["renewalInfo"] = f"{host}/ari"
            self._json(body)
        elif self.path.startswith("/ari/"):
            self._json(self.document, retry_after=self.retry_after)
        else:
            self.send_error(404)

    def _json(self, body: dict[str, Any], retry_after: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def ari_server() -> Iterator[tuple[str, type[_Ari]]]:
    handler = type("Ari", (_Ari,), {"requests": [], "document": recorded("ari-rfc9773.json")})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dir", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _renewer(tmp_path: Path, directory: str, leaf_pem: bytes) -> AcmeRenewer:
    write_files(
        [
            PendingFile(tmp_path / "tls.crt", leaf_pem, CERT_MODE),
            PendingFile(tmp_path / "tls.key", b"unused", KEY_MODE),
        ],
        force=True,
    )
    config = AcmeConfig(
        directory=directory,
        domains=("a.test",),
        account_key=tmp_path / "account.key",
        allow_http_directory=True,
        timeout=5.0,
    )
    return AcmeRenewer(config, tmp_path / "tls.crt", tmp_path / "tls.key")


def test_the_renewer_plans_inside_the_window_and_asks_again_after_retry_after(
    tmp_path: Path, leaf: x509.Certificate, ari_server: tuple[str, type[_Ari]]
) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: PLC0415

    directory, handler = ari_server
    renewer = _renewer(tmp_path, directory, leaf.public_bytes(Encoding.PEM))
    plan = renewer.plan(NOW)
    assert START <= plan.renew_at <= END
    assert not plan.due
    ari_requests = [p for p in handler.requests if p.startswith("/ari/")]
    assert ari_requests == [f"/ari/{certificate_id(leaf)}"]
    renewer.plan(NOW + dt.timedelta(hours=1))  # Retry-After 7200: not asked again yet
    assert len([p for p in handler.requests if p.startswith("/ari/")]) == 1
    handler.document = recorded("ari-revoke-soon.json")
    plan = renewer.plan(NOW + dt.timedelta(hours=2, seconds=1))
    assert len([p for p in handler.requests if p.startswith("/ari/")]) == 2
    assert plan.due  # the CA moved the window into the past: renew now


def test_without_renewal_info_the_renewer_plans_at_two_thirds(
    tmp_path: Path, leaf: x509.Certificate, ari_server: tuple[str, type[_Ari]]
) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: PLC0415

    directory, handler = ari_server
    handler.with_ari = False
    renewer = _renewer(tmp_path, directory, leaf.public_bytes(Encoding.PEM))
    plan = renewer.plan(NOW)
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    middle = leaf.not_valid_before_utc + lifetime * 2 / 3
    assert abs(plan.renew_at - middle) <= lifetime / 20
    assert not [p for p in handler.requests if p.startswith("/ari/")]
    renewer.plan(NOW + dt.timedelta(minutes=5))
    assert handler.requests.count("/dir") == 1  # asked once per certificate


def test_an_unreachable_renewal_info_falls_back_to_two_thirds(
    tmp_path: Path, leaf: x509.Certificate
) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: PLC0415

    from tests.acme.conftest import free_port  # noqa: PLC0415

    renewer = _renewer(
        tmp_path, f"http://127.0.0.1:{free_port()}/dir", leaf.public_bytes(Encoding.PEM)
    )
    plan = renewer.plan(NOW)
    assert plan.renew_at == acme_renewal_time(leaf, None, draw=renewer.draw(plan.serial))
