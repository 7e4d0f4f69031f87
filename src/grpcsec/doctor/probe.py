"""The raw TLS probe: one handshake with Python's ``ssl``, and what follows it. No grpc.

Each probe opens its own connection, is bounded by ``timeout`` seconds (the handshake as a
whole, then the read after it), never raises for a network outcome, and returns a frozen value;
deciding what the values mean is :mod:`grpcsec.doctor.checks`' job.

The TLS probe uses Python's ``ssl`` with verification **off** (the doctor verifies the chain
itself, so an untrusted or expired certificate is still read and reported), ALPN ``h2``, and
explicit minimum and maximum versions when one version is probed. OpenSSL 3 will not even offer
TLS 1.0/1.1 at its default security level, so those probes use ``@SECLEVEL=0``: a refusal is
then the server's, not ours. Python warns that those versions are deprecated; the warning is
silenced around exactly those two assignments.

How the served chain is read, by Python version (all supported from 3.10):

1. every handshake message the server sends is recorded through ``SSLContext._msg_callback``
   (private, present since 3.8) and parsed by :mod:`grpcsec.doctor.handshake`: this gives the
   whole chain, CertificateRequest and its CA names, and the version even when the handshake
   then fails (a TLS 1.2 server that wants a client certificate);
2. without it, ``SSLSocket.get_unverified_chain()`` (3.13+) after a completed handshake;
3. without either, the leaf alone (``getpeercert(binary_form=True)``); chain completeness is then
   reported as unknown.

After a completed handshake the probe sends the HTTP/2 client preface and an empty SETTINGS
frame and waits for the server's first frame. A TLS 1.3 server that rejects the client
certificate can only say so *after* the client's handshake has finished: an alert
(``certificate_required``, ``bad_certificate``, ``unknown_ca``) or, from grpcio servers, a bare
close. This read is what catches it; a SETTINGS frame means the server accepted the connection.
"""

from __future__ import annotations

import enum
import errno
import re
import ssl
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from grpcsec.doctor.handshake import ServerHandshake, read_server_handshake
from grpcsec.doctor.tcp import H2_PREFACE, H2_SETTINGS, Endpoint, open_connection

__all__ = ["AfterHandshake", "ClientFiles", "HandshakeOutcome", "TlsProbe", "tls_probe"]


#: TLS alert descriptions (RFC 8446 §6 and RFC 5246 §7.2) by number.
ALERTS = {
    10: "unexpected_message",
    20: "bad_record_mac",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    116: "certificate_required",
    120: "no_application_protocol",
}

_NOT_TLS_REASONS = {"WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL"}
#: Whether ``ssl`` lets the probe see handshake messages (CPython 3.8+); tests switch it off
#: to exercise the fallbacks.
RECORD_MESSAGES = hasattr(ssl.SSLContext, "_msg_callback")
_CONTENT_HANDSHAKE = 22
_CONTENT_ALERT = 21
_VERSIONS = {
    "TLSv1.0": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_LEGACY = {"TLSv1.0", "TLSv1.1"}


# -- TLS --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class ClientFiles:
    """A client certificate chain file and key file for the TLS probe (PEM); the password of
    an encrypted key stays out of ``repr``."""

    cert: str
    key: str
    password: bytes | None = field(default=None, repr=False)


class HandshakeOutcome(str, enum.Enum):
    """How the TLS handshake ended, seen from the client."""

    COMPLETED = "completed"
    ALERT = "alert"
    """The server sent a fatal alert."""
    CLOSED = "closed"
    """The server closed the connection without a reason."""
    NOT_TLS = "not_tls"
    """The server's answer is not TLS at all."""
    TIMEOUT = "timeout"
    FAILED = "failed"
    """Anything else (a local refusal, a reset, no connection)."""


class AfterHandshake(str, enum.Enum):
    """What the server did after the client finished its handshake and sent the preface."""

    HTTP2 = "http2"
    """An HTTP/2 SETTINGS frame: the connection was accepted."""
    DATA = "data"
    ALERT = "alert"
    CLOSED = "closed"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsProbe:
    """One TLS handshake. ``offered`` is the version range the client offered; ``server`` is
    what the server's handshake messages said (empty when they could not be recorded, then
    ``messages_recorded`` is false). ``chain_der`` is the chain read from the socket after a
    completed handshake (``chain_whole``: all of it, not only the leaf). ``alert`` is the first
    fatal alert received, in either phase; ``after`` is ``None`` when the handshake did not
    complete."""

    offered: str
    with_client_certificate: bool
    outcome: HandshakeOutcome
    error: str | None = None
    alert: str | None = None
    version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    chain_der: tuple[bytes, ...] = ()
    chain_whole: bool = False
    server: ServerHandshake = field(default_factory=ServerHandshake)
    messages_recorded: bool = False
    after: AfterHandshake | None = None

    @property
    def server_hello_seen(self) -> bool:
        """Whether the server answered the ClientHello with a ServerHello."""
        return self.server.version is not None or self.outcome is HandshakeOutcome.COMPLETED

    @property
    def negotiated_version(self) -> str | None:
        """The version of the completed handshake, else what the ServerHello chose."""
        return self.version or self.server.version

    @property
    def served_chain(self) -> tuple[bytes, ...]:
        """The certificates the server sent, leaf first as served."""
        return self.server.chain_der or self.chain_der

    @property
    def served_chain_whole(self) -> bool:
        """Whether :attr:`served_chain` is all the server sent (not just the leaf)."""
        return bool(self.server.chain_der) or self.chain_whole


class _Recorder:
    """``_msg_callback`` target: the server's handshake messages and alerts, in order."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, bytes]] = []
        self.alerts: list[int] = []

    def __call__(
        self,
        _conn: object,
        direction: str,
        _version: object,
        content_type: object,
        _msg_type: object,
        data: bytes,
    ) -> None:
        if direction != "read" or not data:
            return
        kind = int(content_type)  # type: ignore[call-overload]
        if kind == _CONTENT_HANDSHAKE:
            self.messages.append((data[0], bytes(data)))
        elif kind == _CONTENT_ALERT and len(data) >= 2 and data[1] != 0:  # 0: close_notify
            self.alerts.append(data[1])


def _context(version: str | None, client: ClientFiles | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the doctor verifies the chain itself
    context.set_alpn_protocols(["h2"])
    if version is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1, on purpose
            context.minimum_version = _VERSIONS[version]
            context.maximum_version = _VERSIONS[version]
        if version in _LEGACY:
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if client is not None:
        context.load_cert_chain(client.cert, client.key, password=client.password)
    return context


_ALERT_TEXT = re.compile(r"alert ([a-z ]+?) \(")


def _alert_from_reason(reason: str | None) -> str | None:
    """``bad_certificate`` from ``SSLV3_ALERT_BAD_CERTIFICATE``, or from OpenSSL's text
    (``tlsv1 alert no application protocol (_ssl.c:...)``) for alerts without a reason code."""
    if not reason:
        return None
    if "_ALERT_" in reason:
        return reason.split("_ALERT_", 1)[1].lower()
    found = _ALERT_TEXT.search(reason)
    return found.group(1).replace(" ", "_") if found else None


def _classify_error(exc: BaseException) -> tuple[HandshakeOutcome, str]:  # noqa: PLR0911 (a decision table: one return per case)
    if isinstance(exc, TimeoutError):
        return HandshakeOutcome.TIMEOUT, "no answer in time"
    if isinstance(exc, ssl.SSLZeroReturnError | ssl.SSLEOFError):
        return HandshakeOutcome.CLOSED, "the server closed the connection"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return HandshakeOutcome.CLOSED, "the server reset the connection"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if _alert_from_reason(reason):
            return HandshakeOutcome.ALERT, reason
        if reason in _NOT_TLS_REASONS:
            return HandshakeOutcome.NOT_TLS, reason
        if reason == "UNEXPECTED_EOF_WHILE_READING":
            return HandshakeOutcome.CLOSED, "the server closed the connection"
        return HandshakeOutcome.FAILED, reason
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return HandshakeOutcome.FAILED, "connection refused"
    return HandshakeOutcome.FAILED, str(exc) or type(exc).__name__


def _after_handshake(  # noqa: PLR0911 (a decision table: one return per case)
    tls: ssl.SSLSocket, timeout: float
) -> tuple[AfterHandshake, str | None]:
    """Send the HTTP/2 preface and read until the server's first frame header, an alert or
    the end of the connection, all within ``timeout`` seconds."""
    received = b""
    deadline = time.monotonic() + timeout
    try:
        tls.sendall(H2_PREFACE)
        while len(received) < 9:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return AfterHandshake.TIMEOUT, None
            tls.settimeout(remaining)
            chunk = tls.recv(4096)
            if not chunk:
                return AfterHandshake.CLOSED, None
            received += chunk
    except TimeoutError:
        return AfterHandshake.TIMEOUT, None
    except ssl.SSLError as exc:
        alert = _alert_from_reason(exc.reason or str(exc))
        if alert is not None:
            return AfterHandshake.ALERT, alert
        return AfterHandshake.CLOSED, None
    except OSError:
        return AfterHandshake.CLOSED, None
    if received[3] == H2_SETTINGS:
        return AfterHandshake.HTTP2, None
    return AfterHandshake.DATA, None


def _fallback_chain(tls: ssl.SSLSocket) -> tuple[tuple[bytes, ...], bool]:
    """The served chain from the socket, and whether it is the whole chain: yes from
    ``get_unverified_chain()`` (Python 3.13+), no when only the leaf could be read."""
    unverified = getattr(tls, "get_unverified_chain", None)
    if unverified is not None:
        chain = unverified()
        if chain:
            return tuple(c if isinstance(c, bytes) else c.public_bytes() for c in chain), True
    leaf = tls.getpeercert(binary_form=True)
    return ((leaf,) if leaf else ()), False


def _version_name(name: str | None) -> str | None:
    return "TLSv1.0" if name == "TLSv1" else name


def tls_probe(
    endpoint: Endpoint,
    *,
    server_name: str | None,
    timeout: float,
    version: str | None = None,
    client: ClientFiles | None = None,
    after_handshake: bool = True,
) -> TlsProbe:
    """One TLS handshake with ``endpoint``: exactly ``version`` (``TLSv1.0`` ... ``TLSv1.3``)
    or the client's default range (TLS 1.2-1.3), SNI ``server_name`` (not sent for an IP),
    ALPN ``h2``, and ``client``'s certificate when given; then, unless ``after_handshake`` is
    false, the HTTP/2 exchange that reveals a post-handshake rejection."""
    offered = version or "default"
    recorder = _Recorder()
    try:
        context = _context(version, client)
    except (ssl.SSLError, OSError) as exc:
        return TlsProbe(
            offered=offered,
            with_client_certificate=client is not None,
            outcome=HandshakeOutcome.FAILED,
            error=f"the client certificate cannot be loaded: {getattr(exc, 'reason', '')}",
        )
    recording = RECORD_MESSAGES
    if recording:
        context._msg_callback = recorder  # type: ignore[attr-defined]
    facts: dict[str, Any] = {}
    outcome, error = HandshakeOutcome.COMPLETED, None
    try:
        with open_connection(endpoint, timeout) as sock:
            tls = context.wrap_socket(
                sock,
                server_hostname=server_name or None,
                do_handshake_on_connect=False,
                suppress_ragged_eofs=False,
            )
            with tls:
                tls.do_handshake()
                cipher = tls.cipher()
                chain, whole = _fallback_chain(tls)
                facts.update(
                    version=_version_name(tls.version()),
                    cipher=cipher[0] if cipher else None,
                    alpn=tls.selected_alpn_protocol(),
                    chain_der=chain,
                    chain_whole=whole,
                )
                if after_handshake:
                    facts["after"], alert = _after_handshake(tls, timeout)
                    if alert is not None:
                        facts["alert"] = alert
    except (OSError, ValueError) as exc:
        outcome, error = _classify_error(exc)
    try:
        server = read_server_handshake(recorder.messages)
    except ValueError:
        server, recording = ServerHandshake(), False
    received_alert = next((ALERTS.get(a, str(a)) for a in recorder.alerts), None)
    if error is not None:
        facts["alert"] = received_alert or _alert_from_reason(error)
        if facts["alert"] is not None and outcome is not HandshakeOutcome.TIMEOUT:
            outcome = HandshakeOutcome.ALERT
        if outcome is HandshakeOutcome.NOT_TLS and server.version is not None:
            outcome = HandshakeOutcome.FAILED
    elif received_alert is not None and facts.get("after") is AfterHandshake.ALERT:
        facts["alert"] = received_alert
    return TlsProbe(
        offered=offered,
        with_client_certificate=client is not None,
        outcome=outcome,
        error=error,
        server=server,
        messages_recorded=recording,
        **facts,
    )
