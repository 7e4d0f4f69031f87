"""SPIFFE identities from the Workload API, as a rotating certificate source.

* :mod:`grpcsec.spiffe.address`: the Workload API address (flag, config, environment); no grpc.
* :mod:`grpcsec.spiffe.status`: the status snapshot and its Prometheus collector; no grpc.
* :mod:`grpcsec.spiffe.workload`: :class:`~grpcsec.spiffe.workload.WorkloadAPISource`, the only
  module that talks gRPC (through py-spiffe, the ``grpcsec[spiffe]`` extra). Import it directly;
  it is not imported here so the package stays importable without py-spiffe.
* :mod:`grpcsec.spiffe.tls`: a rotating server TLS and channel fed by the source.
"""

from __future__ import annotations

from grpcsec.spiffe.address import ENDPOINT_VARIABLE, WorkloadAPIAddress
from grpcsec.spiffe.status import SpiffeCollector, SpiffeStatus

__all__ = ["ENDPOINT_VARIABLE", "SpiffeCollector", "SpiffeStatus", "WorkloadAPIAddress"]
