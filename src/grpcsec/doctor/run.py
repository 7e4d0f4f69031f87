"""``diagnose``: probe a gRPC endpoint stage by stage and stop at the first root cause.

Stages, each on fresh connections, each network operation bounded by the request's timeout:

1. TCP connect;
2. protocol: a TLS handshake without a client certificate (it also yields the served chain,
   ALPN, the cipher and whether a client certificate is asked for); a plaintext HTTP/2 sniff
   when the answer was not TLS (with ``--insecure`` the other way round);
3. one handshake per TLS version, 1.3 down to 1.0;
4. a handshake with the client certificate, when one is given and the server asks for one;
5. ``grpc.health.v1.Health/Check`` through grpcio.

After each stage the checks are judged (:func:`grpcsec.doctor.checks.evaluate`); the run stops
as soon as a check fed by a stage already run has failed, and reports what it learned.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from grpcsec.doctor.checks import STAGES, evaluate
from grpcsec.doctor.client import ClientMaterial
from grpcsec.doctor.client_checks import client_auth_mode
from grpcsec.doctor.codes import Status
from grpcsec.doctor.facts import server_facts
from grpcsec.doctor.grpc_call import call_health
from grpcsec.doctor.observations import Inputs, Observations
from grpcsec.doctor.probe import HandshakeOutcome, tls_probe
from grpcsec.doctor.report import DoctorReport
from grpcsec.doctor.roots import default_grpc_roots, explicit_roots
from grpcsec.doctor.tcp import SniffOutcome, TcpOutcome, sniff_h2c, tcp_connect
from grpcsec.errors import ConfigurationError
from grpcsec.material import StrPath
from grpcsec.pki.crl import load_crl_file
from grpcsec.target import Target

__all__ = ["DoctorRequest", "diagnose"]

VERSIONS = ("TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1.0")


@dataclass(frozen=True, slots=True, kw_only=True)
class DoctorRequest:
    """What to diagnose and with which client settings (the ``grpcsec doctor`` options).

    ``ca=None`` means "the roots a default grpcio client would use", which the report names.
    ``token`` is sent as ``authorization: Bearer`` on the health call only, and never appears in
    ``repr`` or the report. ``environ`` decides the default roots (``os.environ`` when
    ``None``). ``crls`` are CRL files: the served chain and the client certificate are
    checked against them. Invalid combinations raise
    :class:`~grpcsec.errors.ConfigurationError`.
    """

    target: Target
    ca: StrPath | None = None
    cert: StrPath | None = None
    key: StrPath | None = None
    key_password: bytes | None = field(default=None, repr=False)
    server_name: str | None = None
    token: str | None = field(default=None, repr=False)
    insecure: bool = False
    timeout: float = 5.0
    environ: Mapping[str, str] | None = field(default=None, repr=False)
    crls: tuple[StrPath, ...] = ()

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ConfigurationError("the timeout must be a positive number of seconds")
        if (self.cert is None) != (self.key is None):
            raise ConfigurationError("pass both --cert and --key, or neither")
        if self.insecure and (self.ca or self.cert or self.server_name or self.crls):
            raise ConfigurationError(
                "--insecure checks a plaintext server; drop --ca, --cert/--key, --server-name "
                "and --crl"
            )
        if self.insecure and self.token:
            raise ConfigurationError(
                "--token with --insecure would send the token in clear text; grpcio refuses to, "
                "and so does the doctor"
            )
        if self.token is not None and (
            not self.token or any(c.isspace() or not c.isprintable() for c in self.token)
        ):
            raise ConfigurationError("the token must be non-empty printable text without spaces")
        if self.server_name is not None and not self.server_name.strip():
            raise ConfigurationError("--server-name must not be empty")

    def inputs(self) -> Inputs:
        """Load the files (raises :class:`~grpcsec.errors.MaterialError` for unreadable ones)."""
        environ = os.environ if self.environ is None else self.environ
        roots = None
        if not self.insecure:
            roots = explicit_roots(self.ca) if self.ca is not None else default_grpc_roots(environ)
        client = None
        if self.cert is not None and self.key is not None:
            client = ClientMaterial.load(self.cert, self.key, password=self.key_password)
        return Inputs(
            target=self.target,
            server_name=self.server_name or self.target.host,
            server_name_given=self.server_name is not None,
            insecure=self.insecure,
            roots=roots,
            client=client,
            token_given=self.token is not None,
            timeout=self.timeout,
            crls=tuple(load_crl_file(path) for path in self.crls),
        )


Stage = Callable[[DoctorRequest, Inputs, Observations], Observations]


def _tcp(request: DoctorRequest, inputs: Inputs, obs: Observations) -> Observations:
    del request
    return replace(
        obs, tcp=tcp_connect(inputs.target.host, inputs.target.port, timeout=inputs.timeout)
    )


def _protocol(request: DoctorRequest, inputs: Inputs, obs: Observations) -> Observations:
    del request
    if obs.tcp is None or obs.tcp.endpoint is None:
        return obs
    endpoint, timeout, name = obs.tcp.endpoint, inputs.timeout, inputs.server_name
    if inputs.insecure:
        sniff = sniff_h2c(endpoint, timeout=timeout)
        if sniff.outcome in {SniffOutcome.HTTP2, SniffOutcome.TIMEOUT}:
            return replace(obs, sniff=sniff)
        probe = tls_probe(endpoint, server_name=name, timeout=timeout, after_handshake=False)
        return replace(obs, sniff=sniff, tls=probe)
    probe = tls_probe(endpoint, server_name=name, timeout=timeout)
    silent = {HandshakeOutcome.NOT_TLS, HandshakeOutcome.CLOSED, HandshakeOutcome.FAILED}
    if not probe.server_hello_seen and probe.outcome in silent:
        return replace(obs, tls=probe, sniff=sniff_h2c(endpoint, timeout=timeout))
    return replace(obs, tls=probe)


def _versions(request: DoctorRequest, inputs: Inputs, obs: Observations) -> Observations:
    del request
    if inputs.insecure or obs.tcp is None or obs.tcp.endpoint is None:
        return obs
    probes = tuple(
        tls_probe(
            obs.tcp.endpoint,
            server_name=inputs.server_name,
            timeout=inputs.timeout,
            version=version,
            after_handshake=False,
        )
        for version in VERSIONS
    )
    return replace(obs, versions=probes)


def _client_certificate(request: DoctorRequest, inputs: Inputs, obs: Observations) -> Observations:
    del request
    client = inputs.client
    if client is None or not client.key_matches or obs.tcp is None or obs.tcp.endpoint is None:
        return obs
    if inputs.insecure or client_auth_mode(obs.tls) == "none":
        return obs
    probe = tls_probe(
        obs.tcp.endpoint,
        server_name=inputs.server_name,
        timeout=inputs.timeout,
        client=client.files(),
    )
    return replace(obs, client_tls=probe)


def _call(request: DoctorRequest, inputs: Inputs, obs: Observations) -> Observations:
    if obs.tcp is None or obs.tcp.outcome is not TcpOutcome.CONNECTED:
        return obs
    return replace(obs, call=call_health(inputs, token=request.token))


_RUNNERS: tuple[Stage, ...] = (_tcp, _protocol, _versions, _client_certificate, _call)


def diagnose(request: DoctorRequest, *, now: dt.datetime) -> DoctorReport:
    """Probe ``request.target`` and return the report; certificates are judged at ``now``.

    Raises :class:`~grpcsec.errors.GrpcsecError` only for unusable input files; every network
    outcome is a result.
    """
    inputs = request.inputs()
    obs = Observations()
    gate: set[str] = set()
    for (_, owned), stage in zip(STAGES, _RUNNERS, strict=True):
        obs = stage(request, inputs, obs)
        gate |= owned
        judged = evaluate(inputs, obs, now)
        if any(c.status is Status.FAIL and c.name in gate for c in judged):
            break
    return DoctorReport(
        target=str(request.target),
        checks=evaluate(inputs, obs, now),
        facts=server_facts(inputs, obs, now),
    )
