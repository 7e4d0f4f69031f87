"""Judge what was observed: the ordered list of checks, without any I/O.

:func:`evaluate` turns :class:`~grpcsec.doctor.observations.Inputs` and
:class:`~grpcsec.doctor.observations.Observations` into checks in the order a connection is
built. A check whose probe did not run is ``skip``; a check that does not apply (TLS checks with
``--insecure``, client-certificate checks without ``--cert``) is left out. Checks on facts
already in hand are still judged after an earlier failure, so the report says everything that
was learned; the diagnosis is the first failure (:attr:`DoctorReport.diagnosis`).

:data:`STAGES` says which checks each probe stage feeds: the runner stops probing as soon as a
check of a stage already run has failed.
"""

from __future__ import annotations

import datetime as dt

from grpcsec.doctor.chain import build_path
from grpcsec.doctor.client_checks import (
    check_client_accepted,
    check_client_auth,
    check_client_cert,
    check_grpc_health,
)
from grpcsec.doctor.codes import Status
from grpcsec.doctor.connection_checks import (
    check_alpn,
    check_cipher,
    check_protocol,
    check_tcp,
    check_tls_versions,
)
from grpcsec.doctor.observations import Inputs, Observations
from grpcsec.doctor.report import Check
from grpcsec.doctor.revocation import revocation_check
from grpcsec.doctor.server_checks import (
    ServedChain,
    check_chain,
    check_hostname,
    check_key_strength,
    check_server_eku,
    check_validity,
)

__all__ = ["CERTIFICATE_CHECKS", "CHECK_NAMES", "STAGES", "evaluate"]

CERTIFICATE_CHECKS = ("chain", "validity", "hostname", "server_eku", "key_strength")

_TLS_STAGE = (
    "tls_versions",
    "alpn",
    "cipher",
    *CERTIFICATE_CHECKS,
    "server_revocation",
    "client_auth",
    "client_cert",
    "client_revocation",
)

#: Every check, in order.
CHECK_NAMES = ("tcp", "protocol", *_TLS_STAGE, "client_cert_accepted", "grpc_health")

#: Probe stages, and the checks whose inputs each one completes.
STAGES: tuple[tuple[str, frozenset[str]], ...] = (
    ("tcp", frozenset({"tcp"})),
    ("protocol", frozenset({"protocol"})),
    ("tls", frozenset(_TLS_STAGE)),
    ("client_certificate", frozenset({"client_cert_accepted"})),
    ("call", frozenset({"grpc_health"})),
)


def _certificate_checks(inputs: Inputs, obs: Observations, now: dt.datetime) -> list[Check]:
    if inputs.insecure or inputs.roots is None:
        return []
    chain, whole = obs.served_chain()
    served = ServedChain.of(chain, inputs.roots, whole=whole)
    if served is None:
        reason = "not judged: no certificate was received"
        names = (*CERTIFICATE_CHECKS, "server_revocation") if inputs.crls else CERTIFICATE_CHECKS
        return [Check.skipped(name, reason) for name in names]
    checks = [
        check_chain(inputs, served),
        check_validity(inputs, served, now),
        check_hostname(inputs, served),
        check_server_eku(inputs, served),
        check_key_strength(inputs, served),
    ]
    if inputs.crls:
        path = served.path.path
        checks.append(revocation_check("server_revocation", "server", path, inputs.crls, now))
    return checks


def _client_revocation(inputs: Inputs, now: dt.datetime) -> Check | None:
    """The client certificate against ``--crl``, on its path through its own chain file and
    ``--ca`` (the issuer must be in one of them for the CRL's signature to be checked)."""
    client = inputs.client
    if client is None or not inputs.crls or inputs.insecure:
        return None
    anchors = inputs.roots.certificates if inputs.roots is not None else ()
    path = build_path(client.leaf, client.chain[1:], anchors).path
    return revocation_check("client_revocation", "client", path, inputs.crls, now)


def evaluate(inputs: Inputs, obs: Observations, now: dt.datetime) -> tuple[Check, ...]:
    """Every applicable check, in order, judged from what is known."""
    checks: list[Check | None] = [
        check_tcp(inputs, obs),
        check_protocol(inputs, obs),
        check_tls_versions(inputs, obs),
        check_alpn(inputs, obs),
        check_cipher(inputs, obs),
        *_certificate_checks(inputs, obs, now),
        check_client_auth(inputs, obs),
        check_client_cert(inputs, obs, now),
        _client_revocation(inputs, now),
        check_client_accepted(inputs, obs),
        check_grpc_health(inputs, obs),
    ]
    found = [c for c in checks if c is not None]
    first_failure = next((i for i, c in enumerate(found) if c.status is Status.FAIL), len(found))
    return tuple(
        Check.skipped(c.name) if c.status is Status.SKIP and i > first_failure else c
        for i, c in enumerate(found)
    )
