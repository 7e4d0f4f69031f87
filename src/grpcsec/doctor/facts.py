"""What a run learned about the server, as the ``server`` object of ``--json``. Pure.

Everything here is reported whether or not a check failed on it: the versions accepted, ALPN,
the cipher, the served chain and how it verifies, whether client certificates are required and
from which CAs, and the health status.
"""

from __future__ import annotations

import datetime as dt

from grpcsec.doctor.client_checks import client_auth_mode
from grpcsec.doctor.connection_checks import version_table
from grpcsec.doctor.handshake import name_from_der
from grpcsec.doctor.observations import Inputs, Observations
from grpcsec.doctor.probe import AfterHandshake, HandshakeOutcome
from grpcsec.doctor.server_checks import ServedChain
from grpcsec.doctor.tcp import SniffOutcome
from grpcsec.pki import CertificateInfo

__all__ = ["server_facts"]


def _protocol(obs: Observations) -> str | None:
    tls = obs.tls
    if tls is not None and (tls.server_hello_seen or tls.outcome is HandshakeOutcome.ALERT):
        return "tls"
    if obs.sniff is not None and obs.sniff.outcome is SniffOutcome.HTTP2:
        return "plaintext"
    return None


def _chain(inputs: Inputs, obs: Observations, now: dt.datetime) -> dict[str, object]:
    if inputs.roots is None:
        return {}
    facts: dict[str, object] = {"roots": inputs.roots.to_json()}
    chain, whole = obs.served_chain()
    served = ServedChain.of(chain, inputs.roots, whole=whole)
    if served is None:
        return facts
    facts["chain_read"] = "whole" if whole else "leaf_only"
    path = served.path
    facts.update(
        chain=[CertificateInfo.of(c).to_json(now) for c in served.certificates],
        trusted=path.trusted,
        chain_complete=path.trusted and not path.from_bundle,
        verified_path=[c.subject.rfc4514_string() for c in path.path] if path.trusted else None,
    )
    return facts


def _accepted(obs: Observations) -> bool | None:
    probe = obs.client_tls
    if probe is None:
        return None
    return probe.outcome is HandshakeOutcome.COMPLETED and probe.after is AfterHandshake.HTTP2


def server_facts(inputs: Inputs, obs: Observations, now: dt.datetime) -> dict[str, object]:
    """The ``server`` object: ``None`` for whatever was not learned."""
    tls = obs.tls
    facts: dict[str, object] = {
        "address": str(obs.tcp.endpoint) if obs.tcp and obs.tcp.endpoint else None,
        "server_name": None if inputs.insecure else inputs.server_name,
        "protocol": _protocol(obs),
    }
    if inputs.insecure:
        facts["health"] = obs.call.health if obs.call else None
        return facts
    facts["tls_versions"] = version_table(obs) or None
    facts["version"] = tls.negotiated_version if tls else None
    facts["cipher"] = tls.cipher if tls else None
    facts["alpn"] = (tls.alpn or tls.server.alpn) if tls else None
    facts.update(_chain(inputs, obs, now))
    facts["client_auth"] = client_auth_mode(tls)
    names = tls.server.acceptable_ca_names_der if tls else ()
    facts["acceptable_client_cas"] = [name_from_der(n) for n in names]
    facts["client_cert_accepted"] = _accepted(obs)
    facts["health"] = obs.call.health if obs.call else None
    facts["grpc_status"] = obs.call.code if obs.call else None
    return facts
