"""The built-in http-01 responder, bound only while an order's challenges are answered.

It is :class:`acme.standalone.HTTP01DualNetworkedServers` (IPv6 and IPv4 on one port): it
answers ``GET /.well-known/acme-challenge/<token>`` with the key authorization of the
challenges it was given and 404 otherwise. :func:`http01_responder` binds it, serves it on
daemon threads and closes it on exit, so port 80 (or ``--http-port``) is held for seconds per
order, not for the life of the process. A port that cannot be bound (in use, privileged) is an
:class:`~grpcsec.errors.AcmeError` naming it. The key authorization is public by design (the
CA fetches it over plain HTTP); the account key never leaves the process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from acme import standalone

from grpcsec.errors import AcmeError

__all__ = ["Http01Resource", "http01_responder"]

Http01Resource = standalone.HTTP01RequestHandler.HTTP01Resource
REQUEST_TIMEOUT = 10  # seconds a validator's connection may stay idle


@contextlib.contextmanager
def http01_responder(
    host: str, port: int, resources: set[Http01Resource]
) -> Iterator[list[tuple[str, int]]]:
    """Serve ``resources`` on ``host:port`` for the duration of the block; the bound
    addresses. ``resources`` may be filled in after the responder starts (it is read per
    request)."""
    try:
        servers = standalone.HTTP01DualNetworkedServers(
            (host, port), resources, timeout=REQUEST_TIMEOUT
        )
    except OSError as exc:
        raise AcmeError(
            f"the http-01 responder cannot listen on port {port}: {exc.strerror or exc} "
            "(is the port in use, or privileged? see --http-port)"
        ) from exc
    servers.serve_forever()
    try:
        yield [(str(a[0]), int(a[1])) for a in servers.getsocknames()]
    finally:
        servers.shutdown_and_server_close()
