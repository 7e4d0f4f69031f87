"""Checks of client authentication and of the final gRPC call. Pure.

Whether the server requires a client certificate is read from the handshake *without* one: a
CertificateRequest says it asks; what happens after the client's handshake says whether it
insists (TLS 1.3 servers reject after the handshake: grpc-go and OpenSSL with an alert, grpcio
by closing without a word; TLS 1.2 servers fail the handshake itself). Whether it accepts the
given certificate is read from a second handshake with it, the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from grpcsec.doctor.chain import describe, has_usage, validity_problem
from grpcsec.doctor.client import ClientMaterial
from grpcsec.doctor.codes import DIAGNOSES
from grpcsec.doctor.explain import CallContext, explain_failure
from grpcsec.doctor.handshake import name_from_der
from grpcsec.doctor.observations import Inputs, Observations
from grpcsec.doctor.probe import AfterHandshake, HandshakeOutcome, TlsProbe
from grpcsec.doctor.report import Check
from grpcsec.pki import CertificateInfo

__all__ = [
    "check_client_accepted",
    "check_client_auth",
    "check_client_cert",
    "check_grpc_health",
    "client_auth_mode",
]

_ALERT_MEANINGS = {
    "unknown_ca": "it does not trust the CA that issued the certificate",
    "certificate_expired": "it says the certificate has expired (check the server's clock too)",
    "certificate_revoked": "it says the certificate is revoked",
    "unsupported_certificate": "it does not accept this kind of certificate (usage, key type)",
    "certificate_required": "it says no certificate was sent",
}


def client_auth_mode(probe: TlsProbe | None) -> str | None:  # noqa: PLR0911 (a decision table: one return per case)
    """``required``, ``optional``, ``none``, ``unknown``, or ``closed`` (the server dropped a
    finished handshake without asking for a certificate), from the handshake without a client
    certificate; ``None`` when that handshake did not get far enough to tell."""
    if probe is None or not probe.server_hello_seen:
        return None
    requested = probe.server.certificate_requested
    if probe.outcome is not HandshakeOutcome.COMPLETED:
        if requested and probe.outcome in {HandshakeOutcome.ALERT, HandshakeOutcome.CLOSED}:
            return "required"
        return None
    after = probe.after
    if after in {AfterHandshake.HTTP2, AfterHandshake.DATA}:
        return "optional" if requested else "none"
    if after in {AfterHandshake.ALERT, AfterHandshake.CLOSED}:
        if requested or not probe.messages_recorded:
            return "required"
        return "closed"
    return "unknown"


def _acceptable(obs: Observations) -> tuple[str, ...]:
    tls = obs.tls
    if tls is None:
        return ()
    return tuple(name_from_der(n) for n in tls.server.acceptable_ca_names_der)


def _listed(names: Sequence[str]) -> str:
    return "; ".join(f"'{n}'" for n in names)


def check_client_auth(inputs: Inputs, obs: Observations) -> Check | None:  # noqa: PLR0911 (a decision table: one return per case)
    """Does the server ask for, or require, a client certificate (``client_auth``)?"""
    if inputs.insecure:
        return None
    mode = client_auth_mode(obs.tls)
    if mode is None:
        return Check.skipped("client_auth", "not judged: no handshake got far enough")
    accepted = _acceptable(obs)
    from_cas = f" (it accepts certificates from {_listed(accepted)})" if accepted else ""
    if mode == "required" and inputs.client is None:
        tls = obs.tls
        how = (
            f"it answered a handshake without one with the alert '{tls.alert}'"
            if tls is not None and tls.alert
            else "it closed a handshake without one, without a reason (what grpcio servers do)"
        )
        return Check.failed(
            "client_auth",
            "client_cert_required",
            f"the server requires a client certificate (mutual TLS) and none was given: {how}"
            f"{from_cas}",
            "pass --cert FILE --key FILE with a client certificate issued by a CA the server "
            "trusts" + (f": {_listed(accepted)}" if accepted else ""),
        )
    if mode == "required":
        return Check.passed("client_auth", f"the server requires a client certificate{from_cas}")
    if mode == "optional":
        return Check.passed(
            "client_auth",
            f"the server asks for a client certificate but accepts connections without one"
            f"{from_cas}",
        )
    if mode == "closed":
        return Check.failed(
            "client_auth",
            "tls_handshake_failed",
            "the server closes the connection right after the TLS handshake without asking for "
            "a client certificate",
            "check the server's log; it may reject this client's address or SNI",
        )
    if mode == "unknown":
        return Check.warned(
            "client_auth",
            "client_auth_unknown",
            "the server sent nothing after the handshake within the timeout, so whether it "
            "wants a client certificate could not be told",
        )
    if inputs.client is not None:
        return Check.warned(
            "client_auth",
            "client_cert_not_requested",
            "the server never asks for a client certificate, so --cert/--key are not used (a "
            "grpcio server given client CAs but require_client_auth=False never asks)",
            "if the server should authenticate clients, make it require certificates "
            "(grpcsec serve --client-ca FILE; grpc.ssl_server_credentials(..., "
            "require_client_auth=True))",
        )
    return Check.passed("client_auth", "the server does not ask for a client certificate (TLS)")


def _issuer_names_der(client: ClientMaterial) -> set[bytes]:
    names = {c.issuer.public_bytes() for c in client.chain}
    names.update(c.subject.public_bytes() for c in client.chain[1:])
    return names


def check_client_cert(  # noqa: PLR0911 (a decision table: one return per case)
    inputs: Inputs, obs: Observations, now: dt.datetime
) -> Check | None:
    """The given client certificate and key, checked locally (``client_cert``)."""
    client = inputs.client
    if client is None or inputs.insecure:
        return None
    leaf = client.leaf
    if not client.key_matches:
        return Check.failed(
            "client_cert",
            "client_key_mismatch",
            f"the key in {client.key_path} does not belong to the certificate in "
            f"{client.cert_path}; grpcio fails with 'Failed to create security handshaker' "
            "(1.78+) or 'empty address list' (older)",
            f"pass the key generated with this certificate (grpcsec verify {client.cert_path} "
            "--key KEY checks a pair)",
        )
    if isinstance(leaf.public_key(), ed25519.Ed25519PublicKey):
        return Check.failed(
            "client_cert",
            "unsupported_key_type",
            "the client certificate has an Ed25519 key, which grpcio cannot handshake with",
            "reissue it with an ECDSA P-256 key (the grpcsec default) or RSA",
        )
    mode = client_auth_mode(obs.tls)
    info = CertificateInfo.of(leaf)
    summary = f"{describe(leaf)}, issued by '{info.issuer}', valid until {info.not_after:%Y-%m-%d}"
    if mode == "none":
        return Check.passed("client_cert", f"{summary}; the key matches (not used: not asked)")
    problem = validity_problem(leaf, now)
    if problem == "expired":
        return Check.failed(
            "client_cert",
            "client_cert_expired",
            f"the client certificate {client.cert_path} expired on "
            f"{info.not_after:%Y-%m-%d %H:%M:%S}Z",
            "renew it (grpcsec issue client ...); servers refuse expired client certificates",
        )
    if problem == "not_yet_valid":
        return Check.failed(
            "client_cert",
            "client_cert_not_yet_valid",
            f"the client certificate {client.cert_path} is valid only from "
            f"{info.not_before:%Y-%m-%d %H:%M:%S}Z",
            "check the clocks of this machine, the server and the CA",
        )
    if not has_usage(leaf, ExtendedKeyUsageOID.CLIENT_AUTH):
        return Check.failed(
            "client_cert",
            "client_cert_wrong_eku",
            f"its extended key usage is {', '.join(info.extended_key_usage)}, without "
            "clientAuth: servers refuse it with 'unsupported certificate purpose'",
            "reissue it with the client or peer profile (grpcsec issue client ...)",
        )
    accepted = _acceptable(obs)
    wanted = set(obs.tls.server.acceptable_ca_names_der if obs.tls else ())
    if wanted and not wanted & _issuer_names_der(client):
        return Check.warned(
            "client_cert",
            "client_ca_not_listed",
            f"{summary}; but the server accepts only certificates from {_listed(accepted)}",
            f"use a client certificate issued by {_listed(accepted)}",
        )
    return Check.passed("client_cert", f"{summary}; the key matches; clientAuth")


def _rejection(client: ClientMaterial, probe: TlsProbe, accepted: Sequence[str]) -> Check:
    issuer = client.leaf.issuer.rfc4514_string()
    if probe.alert:
        why = _ALERT_MEANINGS.get(probe.alert, "it refused the certificate")
        how = f"the server answered with the alert '{probe.alert}': {why}"
    else:
        how = (
            "the server closed the connection after receiving the certificate, without a "
            "reason (grpcio servers send none); most likely it does not trust the CA that "
            f"issued it ('{issuer}')"
        )
    if accepted:
        how += f"; it accepts certificates from {_listed(accepted)}"
    return Check.failed(
        "client_cert_accepted",
        "client_cert_rejected",
        how,
        f"use a client certificate issued by a CA in the server's client CA bundle, or add "
        f"'{issuer}' to that bundle (grpcsec serve --client-ca FILE)",
    )


def check_client_accepted(inputs: Inputs, obs: Observations) -> Check | None:
    """Does the server accept the given client certificate (``client_cert_accepted``)?"""
    client = inputs.client
    if client is None or inputs.insecure or client_auth_mode(obs.tls) == "none":
        return None
    probe = obs.client_tls
    if probe is None:
        return Check.skipped("client_cert_accepted")
    if probe.outcome is HandshakeOutcome.COMPLETED and probe.after is AfterHandshake.HTTP2:
        return Check.passed("client_cert_accepted", "the server accepts the client certificate")
    if probe.outcome is HandshakeOutcome.COMPLETED and probe.after is AfterHandshake.TIMEOUT:
        return Check.warned(
            "client_cert_accepted",
            "client_auth_unknown",
            "the server sent nothing after the handshake with the client certificate",
        )
    if probe.outcome is HandshakeOutcome.FAILED and probe.error and "loaded" in probe.error:
        return Check.failed(
            "client_cert_accepted",
            "client_key_mismatch",
            probe.error,
            "check the pair with grpcsec verify CERT --key KEY",
        )
    return _rejection(client, probe, _acceptable(obs))


def check_grpc_health(inputs: Inputs, obs: Observations) -> Check:  # noqa: PLR0911 (a decision table: one return per case)
    """A real ``grpc.health.v1.Health/Check`` through grpcio (``grpc_health``)."""
    call = obs.call
    if call is None:
        return Check.skipped("grpc_health")
    took = f"{call.seconds * 1000:.0f} ms"
    if call.code == "OK":
        if call.health == "SERVING":
            return Check.passed("grpc_health", f"grpc.health.v1.Health/Check: SERVING ({took})")
        return Check.failed(
            "grpc_health",
            "not_serving",
            f"the server answers the health check with {call.health}",
            "the server runs but reports itself unhealthy: check its log and the services it "
            "depends on",
        )
    if call.code == "UNIMPLEMENTED":
        return Check.warned(
            "grpc_health",
            "health_unimplemented",
            "the server has no grpc.health.v1.Health service; TCP, TLS and HTTP/2 all work "
            "(UNIMPLEMENTED came from the server)",
            "register the health service (grpc_health.v1.health.HealthServicer) so probes and "
            "load balancers can check it",
        )
    if call.code == "NOT_FOUND":
        return Check.failed(
            "grpc_health",
            "not_serving",
            "the health service does not know the overall service ('')",
            "set the status of service '' in the server's health servicer",
        )
    if call.code == "UNAUTHENTICATED":
        fix = (
            "the token was refused: check that it is current and meant for this server "
            "(audience, issuer), or the identity the server requires"
            if inputs.token_given
            else "the server wants credentials on the call: pass --token TOKEN (sent as "
            "'authorization: Bearer TOKEN'), or the client certificate it expects"
        )
        return Check.failed(
            "grpc_health",
            "unauthenticated",
            f"the call was refused with UNAUTHENTICATED: {call.details}",
            fix,
        )
    if call.code == "PERMISSION_DENIED":
        return Check.failed(
            "grpc_health",
            "permission_denied",
            f"authenticated, but not allowed to call grpc.health.v1.Health/Check: {call.details}",
            "allow this identity (client certificate or token subject) to call "
            "/grpc.health.v1.Health/Check in the server's authorization policy",
        )
    context = CallContext(
        tls=not inputs.insecure,
        client_cert_sent=inputs.client is not None,
        server_name=inputs.server_name,
    )
    why = explain_failure(call.code, call.details, context)
    if why.diagnosis in DIAGNOSES and why.diagnosis not in {"unknown", "unimplemented", "ok"}:
        return Check.failed(
            "grpc_health",
            why.diagnosis,
            f"the health call failed with {call.code}: {why.meaning} ({call.details})",
            why.fix,
        )
    return Check.failed(
        "grpc_health",
        "grpc_call_failed",
        f"the health call failed with {call.code}: {call.details}",
        "the raw probes found nothing wrong; run the call with GRPC_VERBOSITY=debug "
        "GRPC_TRACE=tsi,handshaker to see grpcio's own view, and check the server's log",
    )
