"""A secured gRPC server in one call: :class:`SecurityConfig` → :func:`secure_server`.

* :mod:`~grpcsec.server.config`: the configuration value and its TOML file (no grpc);
* :mod:`~grpcsec.server.core`: the checked pieces, shared by sync and aio;
* :mod:`~grpcsec.server.sync` / :mod:`~grpcsec.server.aio`: the servers;
* :mod:`~grpcsec.server.status`: the status document (``status()``, ``GET /status``).

The configuration names load without grpc; the servers import it on first use.
"""

from typing import TYPE_CHECKING

from grpcsec.lazy import lazy_names
from grpcsec.server.config import AuthzConfig, MetricsConfig, SecurityConfig, TLSConfig

if TYPE_CHECKING:
    from grpcsec.server.aio import AioSecureServer, aio_secure_server
    from grpcsec.server.sync import SecureServer, secure_server

__getattr__ = lazy_names(
    "grpcsec.server",
    {
        "AioSecureServer": "grpcsec.server.aio",
        "aio_secure_server": "grpcsec.server.aio",
        "SecureServer": "grpcsec.server.sync",
        "secure_server": "grpcsec.server.sync",
    },
    globals(),
)

__all__ = [
    "AioSecureServer",
    "AuthzConfig",
    "MetricsConfig",
    "SecureServer",
    "SecurityConfig",
    "TLSConfig",
    "aio_secure_server",
    "secure_server",
]
