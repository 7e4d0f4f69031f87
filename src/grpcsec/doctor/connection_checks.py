"""Checks of reaching the server and of its TLS parameters: TCP, TLS or plaintext, versions,
ALPN and cipher. Pure functions of the probe results.

Two kinds of silence end as ``timeout``: a TCP connect that gets no answer (a firewall that
drops packets, or a listener whose accept queue is full) fails the ``tcp`` check; a connection
that is accepted but never answers the TLS ClientHello (or, with ``--insecure``, the HTTP/2
preface) fails the ``protocol`` check. Either way the run ends within ``--timeout``.
"""

from __future__ import annotations

from grpcsec.doctor.observations import Inputs, Observations
from grpcsec.doctor.probe import HandshakeOutcome, TlsProbe
from grpcsec.doctor.report import Check
from grpcsec.doctor.tcp import SniffOutcome, TcpOutcome

__all__ = [
    "check_alpn",
    "check_cipher",
    "check_protocol",
    "check_tcp",
    "check_tls_versions",
    "version_status",
    "version_table",
]

_MODERN = ("TLSv1.3", "TLSv1.2")
_LEGACY = ("TLSv1.1", "TLSv1.0")


def check_tcp(inputs: Inputs, obs: Observations) -> Check:
    """Can a TCP connection be opened (``tcp``)?"""
    tcp = obs.tcp
    if tcp is None:
        return Check.skipped("tcp", "not run")
    if tcp.outcome is TcpOutcome.CONNECTED:
        return Check.passed("tcp", f"connected to {tcp.endpoint} in {tcp.seconds * 1000:.0f} ms")
    target = str(inputs.target)
    if tcp.outcome is TcpOutcome.REFUSED:
        return Check.failed(
            "tcp",
            "connection_refused",
            f"nothing listens on {target} ({tcp.error})",
            "check the host and port and that the server is running; a firewall that rejects "
            "connections looks the same",
        )
    if tcp.outcome is TcpOutcome.TIMEOUT:
        return Check.failed(
            "tcp",
            "timeout",
            f"no answer from {target} within {inputs.timeout:g} s ({tcp.error}): the address "
            "is black-holed (a firewall that drops packets, a wrong address, or a server whose "
            "accept queue is full)",
            "check the address, firewalls and security groups, and that the server accepts "
            "connections; raise --timeout for a slow link",
        )
    if tcp.outcome is TcpOutcome.DNS_FAILED:
        return Check.failed(
            "tcp",
            "dns_failure",
            f"the host name does not resolve ({tcp.error})",
            "check the spelling of the host, or dial its IP address and pass --server-name NAME "
            "with the name in its certificate",
        )
    return Check.failed(
        "tcp",
        "connection_failed",
        f"cannot connect to {target} ({tcp.error})",
        "check the network route to the server (VPN, routing, IPv6 availability)",
    )


def _speaks_tls(probe: TlsProbe | None) -> bool:
    return probe is not None and (
        probe.server_hello_seen or probe.outcome is HandshakeOutcome.ALERT
    )


def _no_answer(inputs: Inputs, what: str) -> Check:
    return Check.failed(
        "protocol",
        "timeout",
        f"TCP connects, but the server did not answer {what} within {inputs.timeout:g} s: it "
        "accepts connections and never speaks (hung or overloaded, or an HTTP/1 endpoint "
        "waiting for a request)",
        "check the server process, its logs and its load; raise --timeout for a slow link",
    )


def check_protocol(inputs: Inputs, obs: Observations) -> Check:
    """Does the server speak what the client will (TLS, or plaintext HTTP/2 with
    ``--insecure``)? (``protocol``)"""
    return _plaintext_protocol(inputs, obs) if inputs.insecure else _tls_protocol(inputs, obs)


def _plaintext_server() -> Check:
    return Check.failed(
        "protocol",
        "plaintext_server",
        "the server speaks plaintext HTTP/2 (h2c): it has no TLS on this port",
        "if plaintext is intended, check it with --insecure (grpcio clients: "
        "grpc.insecure_channel); otherwise enable TLS on the server (grpcsec serve --cert FILE "
        "--key FILE)",
    )


def _other_protocol(detail: str | None) -> Check:
    return Check.failed(
        "protocol",
        "unknown_protocol",
        f"the server answers with {detail!r}, which is neither TLS nor HTTP/2",
        "check the port: this looks like another kind of server (HTTP/1, a database, SSH)",
    )


def _tls_protocol(inputs: Inputs, obs: Observations) -> Check:
    tls = obs.tls
    if tls is None:
        return Check.skipped("protocol")
    if _speaks_tls(tls):
        return Check.passed("protocol", "the server speaks TLS")
    if tls.outcome is HandshakeOutcome.TIMEOUT:
        return _no_answer(inputs, "the TLS ClientHello")
    sniff = obs.sniff
    if sniff is not None and sniff.outcome is SniffOutcome.HTTP2:
        return _plaintext_server()
    if (
        tls.outcome is HandshakeOutcome.NOT_TLS
        and sniff is not None
        and sniff.outcome is SniffOutcome.OTHER
    ):
        return _other_protocol(sniff.detail)
    reason = (
        "closes the connection as soon as it receives a TLS ClientHello, without a reason"
        if tls.outcome is HandshakeOutcome.CLOSED
        else f"fails the TLS handshake ({tls.error})"
    )
    return Check.failed(
        "protocol",
        "tls_handshake_failed",
        f"the server {reason}",
        "check the server's TLS configuration and its log (SNI-based routing: try --server-name "
        "with the name it serves; a TLS version or cipher restriction)",
    )


def _plaintext_protocol(inputs: Inputs, obs: Observations) -> Check:
    sniff = obs.sniff
    if sniff is None:
        return Check.skipped("protocol")
    if sniff.outcome is SniffOutcome.HTTP2:
        return Check.passed("protocol", "the server speaks plaintext HTTP/2 (h2c)")
    if sniff.outcome is SniffOutcome.TIMEOUT:
        return _no_answer(inputs, "the HTTP/2 preface")
    if _speaks_tls(obs.tls):
        return Check.failed(
            "protocol",
            "server_requires_tls",
            "the server speaks TLS, but --insecure asks for plaintext",
            "drop --insecure and pass --ca FILE (the CA that issued the server certificate), "
            "plus --cert/--key if it requires client certificates",
        )
    if sniff.outcome is SniffOutcome.OTHER:
        return _other_protocol(sniff.detail)
    return Check.failed(
        "protocol",
        "unknown_protocol",
        "the server closes the connection on the HTTP/2 preface and does not speak TLS either",
        "check the port and the server's log",
    )


def version_status(probe: TlsProbe) -> str:
    """``accepted``, ``refused`` or ``unknown`` for a single-version probe: accepted when the
    server answered with a ServerHello for that version (the handshake may still fail later,
    for a client certificate); refused when it chose another or never answered."""
    if probe.outcome is HandshakeOutcome.COMPLETED or probe.server.version == probe.offered:
        return "accepted"
    if probe.alert == "no_application_protocol":  # refused for ALPN, after the version
        return "accepted"
    if probe.server.version is not None:
        return "refused"
    if probe.outcome is HandshakeOutcome.TIMEOUT:
        return "unknown"
    if probe.messages_recorded or probe.alert == "protocol_version":
        return "refused"
    return "unknown"


def version_table(obs: Observations) -> dict[str, str]:
    """``{"TLSv1.3": "accepted", ...}`` for every version probed."""
    status = {p.offered: version_status(p) for p in obs.versions}
    seen = _completed_version(obs)
    if seen is not None and status.get(seen) == "unknown":
        status[seen] = "accepted"  # the main handshake proves what its own probe did not
    return status


def _completed_version(obs: Observations) -> str | None:
    tls = obs.tls
    if tls is None or tls.outcome is not HandshakeOutcome.COMPLETED:
        return None
    return tls.version


def _short(version: str) -> str:
    return version.replace("TLSv", "TLS ")


def check_tls_versions(inputs: Inputs, obs: Observations) -> Check | None:
    """Which TLS versions the server accepts (``tls_versions``)."""
    if inputs.insecure:
        return None
    if not obs.versions:
        return Check.skipped("tls_versions")
    status = version_table(obs)
    accepted = [v for v in (*_MODERN, *_LEGACY) if status.get(v) == "accepted"]
    refused = [v for v in (*_MODERN, *_LEGACY) if status.get(v) == "refused"]
    message = f"accepts {', '.join(map(_short, accepted)) or 'no version'}"
    if refused:
        message += f"; refuses {', '.join(map(_short, refused))}"
    modern = [v for v in accepted if v in _MODERN]
    legacy = [v for v in accepted if v in _LEGACY]
    if not modern and legacy:
        return Check.failed(
            "tls_versions",
            "tls_version_unsupported",
            f"the server {message}: gRPC needs TLS 1.2 or 1.3 (grpcio refuses older versions "
            "with TLSV1_ALERT_PROTOCOL_VERSION)",
            "enable TLS 1.2 and 1.3 on the server, or on the proxy or load balancer in front of "
            "it; grpcio's minimum cannot be lowered, and should not be",
        )
    if not accepted:
        tls = obs.tls
        detail = f" ({tls.error})" if tls is not None and tls.error else ""
        return Check.failed(
            "tls_versions",
            "tls_handshake_failed",
            f"no TLS version from 1.0 to 1.3 gets a ServerHello{detail}",
            "the server may insist on cipher suites or signature algorithms gRPC clients do "
            "not offer; check its TLS configuration",
        )
    if legacy:
        return Check.warned(
            "tls_versions",
            "weak_tls_version",
            message,
            "disable TLS 1.0 and 1.1 on the server (gRPC clients never use them)",
        )
    return Check.passed("tls_versions", message)


def check_alpn(inputs: Inputs, obs: Observations) -> Check | None:
    """Does the server choose ALPN ``h2`` (``alpn``)?"""
    if inputs.insecure:
        return None
    tls = obs.tls
    if tls is not None and tls.alert == "no_application_protocol":
        return _no_h2(
            "the server refuses the handshake with the alert 'no_application_protocol': it "
            "does not speak HTTP/2 (ALPN h2)"
        )
    if tls is None or not tls.server_hello_seen:
        return Check.skipped("alpn", "not judged: no ServerHello")
    alpn = tls.alpn or tls.server.alpn
    if tls.outcome is not HandshakeOutcome.COMPLETED and not tls.messages_recorded:
        return Check.skipped("alpn", "not judged: the handshake did not complete")
    if alpn == "h2":
        return Check.passed("alpn", "ALPN h2 (HTTP/2) negotiated")
    chose = f"it chose {alpn!r}" if alpn else "it chose no protocol"
    return _no_h2(
        f"the server completes TLS but does not negotiate ALPN h2 ({chose}): it is an HTTPS or "
        "HTTP/1.1 endpoint, or a TLS-terminating proxy that does not speak HTTP/2; grpcio "
        "refuses it ('missing selected ALPN property')"
    )


def _no_h2(message: str) -> Check:
    return Check.failed(
        "alpn",
        "no_alpn_h2",
        message,
        "enable HTTP/2 (ALPN h2) on the load balancer or proxy, or connect to the gRPC server "
        "directly",
    )


def check_cipher(inputs: Inputs, obs: Observations) -> Check | None:
    """The negotiated cipher suite (``cipher``)."""
    if inputs.insecure:
        return None
    tls = obs.tls
    if tls is None or tls.outcome is not HandshakeOutcome.COMPLETED or not tls.cipher:
        return Check.skipped("cipher", "not judged: the handshake did not complete")
    suite = f"{tls.cipher} over {_short(tls.version or '?')}"
    if tls.version == "TLSv1.3":
        return Check.passed("cipher", suite)
    forward_secret = "DHE" in tls.cipher
    aead = "GCM" in tls.cipher or "CHACHA20" in tls.cipher
    if forward_secret and aead:
        return Check.passed("cipher", suite)
    return Check.warned(
        "cipher",
        "weak_cipher",
        f"{suite}: without {'forward secrecy' if not forward_secret else 'an AEAD mode'}",
        "prefer TLS 1.3, or ECDHE suites with AES-GCM or ChaCha20-Poly1305 for TLS 1.2",
    )
