"""Zero-downtime certificate rotation: servers, trust bundles, client channels and renewal.

Modules, one concept each:

* :mod:`~grpcsec.rotation.sources`: where material comes from (:class:`FileSource` for files,
  atomic renames and ``..data`` symlink swaps; :class:`MemorySource`), one small protocol;
* :mod:`~grpcsec.rotation.checks`: what new material must pass before it is served;
* :mod:`~grpcsec.rotation.trust`: trust-bundle changes that would lock peers out;
* :mod:`~grpcsec.rotation.watcher`: the one watcher (:mod:`grpcsec.watch`) with the rotation
  checks: polling, torn-update retries, keeping the last good material, status and counters;
* :mod:`~grpcsec.rotation.server`: :class:`ReloadingServerTLS`, the O(1) fetcher for
  ``grpc.dynamic_ssl_server_credentials``;
* :mod:`~grpcsec.rotation.channel` / :mod:`~grpcsec.rotation.aio_channel`: channels that swap
  in a new ``secure_channel`` and drain the old one;
* :mod:`~grpcsec.rotation.renew_plan` / :mod:`~grpcsec.rotation.renew`: when a certificate is
  due and what replaces it (pure), and the renewal agent behind ``grpcsec renew`` (files, hook).

See docs/rotation.md for deployment layouts (cert-manager, SPIRE, Vault agent) and the CA
rollover procedure.
"""

from grpcsec.rotation.aio_channel import AioReloadingChannel
from grpcsec.rotation.channel import ReloadingChannel
from grpcsec.rotation.checks import (
    ChannelMaterial,
    FailureKind,
    ServerMaterial,
    check_channel_material,
    check_server_material,
)
from grpcsec.rotation.renew import ExecHook, Renewer
from grpcsec.rotation.renew_plan import (
    AgentStep,
    Backoff,
    RenewalPlan,
    RenewalResult,
    reissue,
    renewal_time,
)
from grpcsec.rotation.server import ReloadingServerTLS
from grpcsec.rotation.sources import CertificateSource, FileSource, MemorySource, RawMaterial
from grpcsec.rotation.trust import CaRef, ClientIssuerLog, check_trust_change
from grpcsec.rotation.watcher import ReloadFailure, ReloadOutcome, RotationStatus, Watcher

__all__ = [
    "AgentStep",
    "AioReloadingChannel",
    "Backoff",
    "CaRef",
    "CertificateSource",
    "ChannelMaterial",
    "ClientIssuerLog",
    "ExecHook",
    "FailureKind",
    "FileSource",
    "MemorySource",
    "RawMaterial",
    "ReloadFailure",
    "ReloadOutcome",
    "ReloadingChannel",
    "ReloadingServerTLS",
    "RenewalPlan",
    "RenewalResult",
    "Renewer",
    "RotationStatus",
    "ServerMaterial",
    "Watcher",
    "check_channel_material",
    "check_server_material",
    "check_trust_change",
    "reissue",
    "renewal_time",
]
