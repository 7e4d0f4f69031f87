"""Explain a failed gRPC call in plain words, from its status code and details text. No grpc.

grpcio reports most TLS problems as ``UNAVAILABLE`` with a details string from deep inside its
TLS stack, and the texts changed in grpcio 1.78 (``Tls``/``Ssl``, hostname messages, bad keys).
This table maps the stable substrings (grpcio-security.md §5.2) to a diagnosis code, the likely
cause and the fix. The same codes are the ``doctor``'s diagnoses.

Some texts are ambiguous from the client side alone: ``Socket closed`` after a TLS handshake is
a missing client certificate, a rejected one, or a TLS server reached without TLS; ``context``
(what the client sent) narrows it, and ``grpcsec doctor`` probes to be sure. Not covered: errors
raised by the application itself beyond the status-code meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CallContext", "Explanation", "explain_failure"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallContext:
    """What the client did, which disambiguates some texts."""

    tls: bool = True
    client_cert_sent: bool = False
    server_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """A diagnosis code (stable), what it most likely means, and what to do."""

    diagnosis: str
    meaning: str
    fix: str


def _tls_verify_reason(details: str) -> Explanation | None:
    if "CERTIFICATE_VERIFY_FAILED" not in details:
        return None
    if "certificate has expired" in details:
        return Explanation(
            diagnosis="server_cert_expired",
            meaning="the server's certificate has expired",
            fix="renew the server certificate (grpcsec issue server ...), or check the clock",
        )
    if "not yet valid" in details:
        return Explanation(
            diagnosis="server_cert_not_yet_valid",
            meaning="the server's certificate is not valid yet",
            fix="check the clocks of client and server; reissue with a backdated not-before",
        )
    if "unsupported certificate purpose" in details:
        return Explanation(
            diagnosis="server_cert_wrong_eku",
            meaning="the server's certificate is not for TLS servers (no serverAuth usage)",
            fix="reissue it with the server or peer profile (grpcsec issue server ...)",
        )
    return Explanation(
        diagnosis="unknown_authority",
        meaning="the server's certificate is not signed by a CA this client trusts "
        "(wrong --ca bundle, or the server does not send its intermediate)",
        fix="pass the CA that issued the server certificate with --ca; if it was issued by an "
        "intermediate, the server's --cert file must contain leaf + intermediate",
    )


def _handshake_alert(details: str, ctx: CallContext) -> Explanation | None:
    """Alerts a server sends about the *client's* side of the handshake (§5.2 rows 12, 16).

    ``SSLV3_ALERT_HANDSHAKE_FAILURE`` is both "no client certificate" (TLS 1.2) and "no shared
    cipher": grpcio >= 1.78 follows the reason with ``Invalid certificate verification
    context`` when the alert came before it verified the server, which is the cipher case.
    """
    if "NO_SHARED_CIPHER" in details or (
        "SSLV3_ALERT_HANDSHAKE_FAILURE" in details
        and "Invalid certificate verification context" in details
    ):
        return Explanation(
            diagnosis="tls_handshake_failed",
            meaning="client and server share no TLS cipher suite (a legacy peer, or "
            "GRPC_SSL_CIPHER_SUITES set on one side)",
            fix="align the cipher suites, or use TLS 1.3 on both sides; grpcsec doctor TARGET "
            "shows what the server accepts",
        )
    if "SSLV3_ALERT_HANDSHAKE_FAILURE" in details:
        return _closed_in_handshake(CallContext(tls=True, client_cert_sent=ctx.client_cert_sent))
    if "SSLV3_ALERT_CERTIFICATE_EXPIRED" in details:
        return Explanation(
            diagnosis="client_cert_expired",
            meaning="the server says the client certificate has expired",
            fix="renew the client certificate (grpcsec issue client ...), or check the "
            "server's clock",
        )
    rejected = (
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
    )
    if any(alert in details for alert in rejected):
        return Explanation(
            diagnosis="client_cert_rejected",
            meaning="the server refused the client certificate (missing, expired, revoked, "
            "from a CA it does not trust, or without clientAuth usage)",
            fix="check the client certificate with grpcsec verify CERT --ca SERVER_CLIENT_CA "
            "--role client; grpcsec doctor TARGET --cert CERT --key KEY says which",
        )
    return None


_PLAIN_RULES: tuple[tuple[tuple[str, ...], Explanation], ...] = (
    (
        ("Connection refused",),
        Explanation(
            diagnosis="connection_refused",
            meaning="nothing is listening at that address (or a proxy in between is down)",
            fix="check the host and port, that the server is running, and the proxy variables "
            "(grpc_proxy, https_proxy, http_proxy, no_proxy)",
        ),
    ),
    (
        ("Domain name not found", "hostname lookup error", "DNS resolution failed"),
        Explanation(
            diagnosis="dns_failure",
            meaning="the host name does not resolve",
            fix="check the spelling of the host, or use its IP address with --server-name",
        ),
    ),
    (
        ("WRONG_VERSION_NUMBER",),
        Explanation(
            diagnosis="plaintext_server",
            meaning="the server does not speak TLS on this port (it is a plaintext server)",
            fix="enable TLS on the server (--cert/--key), or call it with --insecure if "
            "plaintext is intended",
        ),
    ),
    (
        ("missing selected ALPN property",),
        Explanation(
            diagnosis="no_alpn_h2",
            meaning="the peer speaks TLS but not HTTP/2 (no ALPN h2): an HTTPS endpoint or a "
            "load balancer that does not pass gRPC through",
            fix="enable HTTP/2 (h2) on the load balancer or proxy, or connect to the server "
            "directly",
        ),
    ),
    (
        ("Hostname Verification Check failed", "is not in peer certificate"),
        Explanation(
            diagnosis="hostname_mismatch",
            meaning="the server's certificate does not name the host you dialled",
            fix="dial a name the certificate has, pass --server-name NAME, or reissue the "
            "certificate with --host for this name (grpcsec inspect shows its SANs)",
        ),
    ),
    (
        ("TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL"),
        Explanation(
            diagnosis="tls_version_unsupported",
            meaning="the two sides share no TLS version (gRPC needs TLS 1.2 or 1.3)",
            fix="upgrade the peer to TLS 1.2+; grpcio cannot lower its minimum",
        ),
    ),
    (
        ("Failed to create security handshaker", "empty address list"),
        Explanation(
            diagnosis="client_key_mismatch",
            meaning="the client's key or CA bundle could not be loaded by grpcio (a key that "
            "does not match its certificate, or an unparseable bundle)",
            fix="check the pair with grpcsec verify CERT --key KEY --ca CA",
        ),
    ),
    (
        ("Established channel does not have a sufficient security level",),
        Explanation(
            diagnosis="call_credentials_need_tls",
            meaning="call credentials (a token) were attached to a plaintext channel; grpcio "
            "refuses to send them and nothing reached the server",
            fix="use TLS (--ca FILE instead of --insecure), or local credentials on loopback",
        ),
    ),
    (
        ("TLSV1_ALERT_UNKNOWN_CA",),
        Explanation(
            diagnosis="client_cert_rejected",
            meaning="the server does not trust the CA that issued the client certificate",
            fix="use a client certificate from the CA the server trusts, or add its CA to the "
            "server's --client-ca bundle",
        ),
    ),
    (
        ("TSI_DATA_CORRUPTED", "TLSV13_ALERT_CERTIFICATE_REQUIRED", "CERTIFICATE_REQUIRED"),
        Explanation(
            diagnosis="client_cert_rejected",
            meaning="the server rejected the client certificate after the TLS 1.3 handshake "
            "(missing, expired, or from a CA it does not trust)",
            fix="pass --cert/--key issued by the CA in the server's --client-ca bundle",
        ),
    ),
)

_STATUS_RULES: dict[str, Explanation] = {
    "UNAUTHENTICATED": Explanation(
        diagnosis="unauthenticated",
        meaning="the server did not accept the caller's credentials (token or certificate "
        "identity)",
        fix="check the token (grpcsec token verify) or the identity the server requires",
    ),
    "PERMISSION_DENIED": Explanation(
        diagnosis="permission_denied",
        meaning="the caller is authenticated but not allowed to call this method",
        fix="check the server's authorization policy for this method and identity",
    ),
    "DEADLINE_EXCEEDED": Explanation(
        diagnosis="timeout",
        meaning="no answer in time: a black-holed address, an overloaded server, or a TLS "
        "failure hidden by wait_for_ready",
        fix="check the address and firewall; run grpcsec doctor TARGET for the real cause",
    ),
    "UNIMPLEMENTED": Explanation(
        diagnosis="unimplemented",
        meaning="the connection works, but the server does not have this method",
        fix="check the method name and that the server registers the service",
    ),
}


_CERT_REQUIRED = Explanation(
    diagnosis="client_cert_required",
    meaning="the server requires a client certificate (mTLS) and none was sent",
    fix="pass --cert and --key with a client certificate from the CA the server trusts",
)


def _closed_in_handshake(ctx: CallContext) -> Explanation:
    """``Socket closed``: grpcio servers send no alert when they refuse a client, so what the
    client sent decides the most likely reading."""
    if not ctx.tls:
        return Explanation(
            diagnosis="server_requires_tls",
            meaning="the server speaks TLS but the client connected in plaintext",
            fix="call it with TLS: --ca CA (and --cert/--key for mTLS) instead of --insecure",
        )
    if not ctx.client_cert_sent:
        return Explanation(
            diagnosis="client_cert_required",
            meaning="the server closed the connection during the handshake; it most likely "
            "requires a client certificate (mTLS) and none was sent",
            fix=_CERT_REQUIRED.fix,
        )
    return Explanation(
        diagnosis="client_cert_rejected",
        meaning="the server closed the connection during the handshake; it most likely "
        "rejected the client certificate (another CA, expired, or no clientAuth usage)",
        fix="check the client certificate with grpcsec verify CERT --ca SERVER_CLIENT_CA "
        "--role client",
    )


def _plain_rule(details: str, ctx: CallContext) -> Explanation | None:
    for needles, explanation in _PLAIN_RULES:
        if any(needle in details for needle in needles):
            if explanation.diagnosis == "client_cert_rejected" and not ctx.client_cert_sent:
                # grpc-go and Node answer a missing certificate with an alert after the TLS 1.3
                # handshake, as they do a bad one; what the client sent decides which it was.
                return _CERT_REQUIRED
            return explanation
    return None


def explain_failure(code: str, details: str, context: CallContext | None = None) -> Explanation:
    """The most likely cause of a failed call with status ``code`` (a ``grpc.StatusCode`` name)
    and ``details`` text."""
    ctx = context or CallContext()
    verify = _tls_verify_reason(details)
    if verify is not None:
        return verify
    alert = _handshake_alert(details, ctx)
    if alert is not None:
        return alert
    plain = _plain_rule(details, ctx)
    if plain is not None:
        return plain
    if "Socket closed" in details or "Connection reset" in details:
        return _closed_in_handshake(ctx)
    if code in _STATUS_RULES:
        return _STATUS_RULES[code]
    return Explanation(
        diagnosis="unknown",
        meaning=f"the call failed with {code}",
        fix="run grpcsec doctor TARGET with the same options for a step-by-step diagnosis",
    )
