"""The HTTP endpoint of a service: ``/metrics`` (Prometheus) and, when given, ``/status`` (JSON).

Served from a background thread on an address the caller chose (no default: never 0.0.0.0 by
accident). ``/status`` is a snapshot function called per request; it must be quick and must not
raise (a failure answers 500 with a generic body, and the error goes to the log, not the peer).
Anything else under ``/`` is the Prometheus exposition (the client library's own handler, so
content negotiation and gzip behave as everywhere else). No grpc import.

Not checked: who asks. The endpoint has no authentication, like every Prometheus exporter; bind
it to loopback or a management network. ``/status`` holds no secrets (serials, fingerprints,
key ids, counts), so it is as safe to expose as ``/metrics``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from grpcsec.errors import ConfigurationError
from grpcsec.target import Target
from grpcsec.text import get_logger

__all__ = ["MetricsServer", "StatusSource", "serve_metrics"]

log = get_logger("grpcsec.metrics")

StatusSource = Callable[[], Mapping[str, Any]]
"""Returns the JSON-ready status document served at ``/status``."""


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ANN401 (stdlib signature)
        """No access log on stderr."""


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Threading6(_Threading):
    address_family = socket.AF_INET6


def _app(
    registry: CollectorRegistry, status: StatusSource | None
) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if status is not None and environ.get("PATH_INFO") == "/status":
            try:
                body = json.dumps(status(), indent=2, sort_keys=True).encode() + b"\n"
            except Exception:
                log.exception("the /status snapshot failed")
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
                return [b"status unavailable\n"]
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        result: Iterable[bytes] = metrics(environ, start_response)
        return result

    return app


@dataclass(slots=True, eq=False)
class MetricsServer:
    """A running ``/metrics`` HTTP server; ``address`` has the real port. Stop it with
    :meth:`stop` (or use it as a context manager)."""

    address: Target
    _httpd: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        """``http://HOST:PORT/metrics``."""
        return f"http://{self.address}/metrics"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_metrics(
    registry: CollectorRegistry, listen: Target, *, status: StatusSource | None = None
) -> MetricsServer:
    """Serve ``registry`` on ``listen`` (port 0: a free port), and ``status`` at ``/status``,
    from a background thread. Raises :class:`~grpcsec.errors.ConfigurationError` when the
    address cannot be bound."""
    server_class = _Threading6 if ":" in listen.host else _Threading
    try:
        httpd = make_server(
            listen.host,
            listen.port,
            _app(registry, status),
            server_class=server_class,
            handler_class=_Quiet,
        )
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigurationError(f"cannot serve metrics on {listen}: {reason}") from exc
    thread = threading.Thread(target=httpd.serve_forever, name="grpcsec-metrics", daemon=True)
    thread.start()
    return MetricsServer(listen.with_port(int(httpd.server_address[1])), httpd, thread)
