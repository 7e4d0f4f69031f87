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
from typing import TYPE_CHECKING

from grpcsec.clock import SYSTEM_CLOCK, Clock
from grpcsec.errors import ConfigurationError
from grpcsec.spiffe.address import ENDPOINT_VARIABLE, WorkloadAPIAddress
from grpcsec.spiffe.status import SpiffeCollector, SpiffeStatus

if TYPE_CHECKING:
    from grpcsec.spiffe.tls import SpiffeServerTLS

__all__ = [
    "ENDPOINT_VARIABLE",
    "SpiffeCollector",
    "SpiffeStatus",
    "WorkloadAPIAddress",
    "open_server_tls",
    "require_py_spiffe",
]


def require_py_spiffe(what: str) -> None:
    """Raise a one-line :class:`ConfigurationError` naming ``what`` when py-spiffe (the
    ``grpcsec[spiffe]`` extra) is not installed; call before importing the workload modules."""
    if importlib.util.find_spec("spiffe") is None:
        raise ConfigurationError(f"{what} needs py-spiffe: pip install 'grpcsec[spiffe]'")


def open_server_tls(
    address: WorkloadAPIAddress,
    *,
    interval: float = 1.0,
    allow_weak_keys: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> SpiffeServerTLS:
    """:meth:`SpiffeServerTLS.open <grpcsec.spiffe.tls.SpiffeServerTLS.open>` for the server
    builder (``[tls] spiffe_socket``), with the one-line error when py-spiffe is missing."""
    require_py_spiffe("tls.spiffe_socket (--spiffe-socket)")
    from grpcsec.spiffe.tls import SpiffeServerTLS  # noqa: PLC0415 (grpc, optional py-spiffe)

    return SpiffeServerTLS.open(
        address, interval=interval, allow_weak_keys=allow_weak_keys, clock=clock
    )
