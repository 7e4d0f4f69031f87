"""SPIFFE identities from the Workload API, as a rotating certificate source.

* :mod:`grpcsec.spiffe.address`: the Workload API address (flag, config, environment); no grpc.
* :mod:`grpcsec.spiffe.status`: the status snapshot and its Prometheus collector; no grpc.
* :mod:`grpcsec.spiffe.workload`: :class:`~grpcsec.spiffe.workload.WorkloadAPISource`, the only
  module that talks gRPC (through py-spiffe, the ``grpcsec[spiffe]`` extra). Import it directly;
  it is not imported here so the package stays importable without py-spiffe.
* :mod:`grpcsec.spiffe.tls`: a rotating server TLS and channel fed by the source.
"""

from __future__ import annotations

import importlib.util

from grpcsec.errors import ConfigurationError
from grpcsec.spiffe.address import ENDPOINT_VARIABLE, WorkloadAPIAddress
from grpcsec.spiffe.status import SpiffeCollector, SpiffeStatus

__all__ = [
    "ENDPOINT_VARIABLE",
    "SpiffeCollector",
    "SpiffeStatus",
    "WorkloadAPIAddress",
    "require_py_spiffe",
]


def require_py_spiffe(what: str) -> None:
    """Raise a one-line :class:`ConfigurationError` naming ``what`` when py-spiffe (the
    ``grpcsec[spiffe]`` extra) is not installed; call before importing the workload modules."""
    if importlib.util.find_spec("spiffe") is None:
        raise ConfigurationError(f"{what} needs py-spiffe: pip install 'grpcsec[spiffe]'")
