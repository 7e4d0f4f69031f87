"""The doctor's last probe: a real ``grpc.health.v1.Health/Check`` through grpcio.

It uses the settings a grpcio client would: the ``--ca`` PEM (or ``None``, grpcio's default
roots), the client pair, ``grpc.ssl_target_name_override`` for ``--server-name``, and the token
as ``authorization: Bearer`` metadata. Per grpcio-security.md §5.1 it probes fail-fast on a
fresh connection: ``grpc.use_local_subchannel_pool`` (no connection shared with an earlier
channel) and ``wait_for_ready=False`` (a TLS failure is reported as itself, not as a deadline).
HTTP proxies are disabled, so the call takes the same direct path as the raw probes.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpcsec.doctor.observations import CallResult, Inputs

__all__ = ["call_health"]


def _channel(inputs: Inputs) -> grpc.Channel:
    options: list[tuple[str, Any]] = [
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.enable_http_proxy", 0),
    ]
    target = str(inputs.target)
    if inputs.insecure:
        return grpc.insecure_channel(target, options=options)
    if inputs.server_name_given:
        options.append(("grpc.ssl_target_name_override", inputs.server_name))
    roots = inputs.roots.pem if inputs.roots is not None else None
    if inputs.client is None:
        credentials = grpc.ssl_channel_credentials(root_certificates=roots)
    else:
        key, chain = inputs.client.grpc_pair()
        credentials = grpc.ssl_channel_credentials(
            root_certificates=roots, private_key=key, certificate_chain=chain
        )
    return grpc.secure_channel(target, credentials, options=options)


def call_health(inputs: Inputs, *, token: str | None = None) -> CallResult:
    """Call the health service for service ``""`` within ``inputs.timeout`` seconds."""
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    start = time.monotonic()
    channel = _channel(inputs)
    try:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""),
            timeout=inputs.timeout,
            metadata=metadata,
            wait_for_ready=False,
        )
    except grpc.RpcError as exc:
        return CallResult(
            code=exc.code().name,
            details=exc.details() or "",
            seconds=time.monotonic() - start,
        )
    finally:
        channel.close()
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return CallResult(code="OK", health=str(status), seconds=time.monotonic() - start)
