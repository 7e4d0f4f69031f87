"""The secured test server behind the pytest fixtures (see :mod:`grpcsec.testing`).

Why a thread with its own event loop for ``aio=True``: the test function is usually synchronous,
and a ``grpc.aio`` server needs a running loop for as long as it serves; the user's async
servicers run on that loop, and the test talks to it with ordinary (sync) channels.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc

from grpcsec.authn.options import AuthnOptions
from grpcsec.credentials import channel_credentials
from grpcsec.errors import ConfigurationError
from grpcsec.pki import CertificateAuthority, IssuedCertificate, Profile, SubjectAltNames
from grpcsec.server.aio import AioSecureServer, aio_secure_server
from grpcsec.server.config import AuthzConfig, SecurityConfig, TLSConfig
from grpcsec.server.sync import SecureServer, secure_server
from grpcsec.target import Target

__all__ = ["Register", "SecureTestServer", "start_secure_test_server"]

Register = Callable[[Any], None]
"""Called with the ``grpc.Server`` (or ``grpc.aio.Server``) to add the user's servicers."""

_START_TIMEOUT = 30.0


class _LoopThread:
    """An asyncio loop running in a daemon thread, for an aio server under sync tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="grpcsec-testing-aio", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Any) -> Any:  # noqa: ANN401 (whatever the coroutine returns)
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(_START_TIMEOUT)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(_START_TIMEOUT)
        self.loop.close()


class SecureTestServer:
    """A started :func:`~grpcsec.server.secure_server` with a throwaway PKI.

    ``target`` is ``"127.0.0.1:PORT"``; ``ca_file`` the CA certificate (PEM) that signed the
    server and every client certificate :meth:`channel` issues; ``ca`` the CA itself;
    ``server`` the :class:`~grpcsec.server.SecureServer` (or aio one) for ``status()``.
    """

    def __init__(
        self,
        *,
        ca: CertificateAuthority,
        directory: Path,
        server: SecureServer | AioSecureServer,
        loop: _LoopThread | None,
    ) -> None:
        self.ca = ca
        self.directory = directory
        self.server = server
        self.ca_file = directory / "ca.crt"
        self.target = f"127.0.0.1:{server.port}"
        self._loop = loop
        self._channels: list[grpc.Channel] = []
        self._clients: dict[str, IssuedCertificate] = {}
        self._closed = False

    def client_certificate(self, client: str) -> IssuedCertificate:
        """A client certificate for ``client`` (its CN and a DNS SAN), issued once per name."""
        if client not in self._clients:
            names = SubjectAltNames.build(dns=[client])
            self._clients[client] = self.ca.issue(Profile.CLIENT, names, common_name=client)
        return self._clients[client]

    def channel(self, client: str | None = "alice") -> grpc.Channel:
        """A secure channel to the server, presenting a client certificate for ``client`` (a
        name: its CN and DNS SAN); ``client=None`` presents none (a negative control: the
        handshake is refused). Closed at teardown."""
        identity = None if client is None else self.client_certificate(client)
        credentials = channel_credentials(ca=self.ca.certificate, identity=identity)
        channel = grpc.secure_channel(
            self.target, credentials, options=(("grpc.ssl_target_name_override", "localhost"),)
        )
        self._channels.append(channel)
        return channel

    def close(self) -> None:
        """Close the channels and stop the server (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for channel in self._channels:
            channel.close()
        if isinstance(self.server, SecureServer):
            self.server.stop(0).wait(_START_TIMEOUT)
        elif self._loop is not None:
            self._loop.run(self.server.stop(0))
            self._loop.close()

    def __enter__(self) -> SecureTestServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SecureTestServer(target={self.target!r})"


def _policy_file(policy: Mapping[str, Any] | str | Path, directory: Path) -> Path:
    if isinstance(policy, Path):
        return policy
    text = policy if isinstance(policy, str) else json.dumps(policy)
    path = directory / "policy.json"
    path.write_text(text)
    return path


def start_secure_test_server(
    register: Register,
    *,
    ca: CertificateAuthority,
    directory: Path,
    policy: Mapping[str, Any] | str | Path | None = None,
    allow_cns: Sequence[str] | None = None,
    aio: bool = False,
) -> SecureTestServer:
    """Write a server certificate from ``ca`` into ``directory``, start ``secure_server``
    (mTLS; ``allow_cns`` as the CN allow-list; ``policy`` an A43 policy as a mapping, JSON text
    or a file) on 127.0.0.1:0 with ``register``'s servicers, and return it started.

    Without ``allow_cns`` and ``policy``, every client with a certificate from ``ca`` is let in.
    Raises :class:`~grpcsec.errors.GrpcsecError` for a bad policy or allow-list, like the real
    server."""
    if isinstance(allow_cns, str):
        raise ConfigurationError("allow_cns takes a list of names, not one string")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(ca.certificate_pem())
    issued = ca.issue(Profile.SERVER, SubjectAltNames.build(dns=["localhost"], ips=["127.0.0.1"]))
    issued.write(directory / "server.crt", directory / "server.key")
    config = SecurityConfig(
        listen=(Target("127.0.0.1", 0),),
        tls=TLSConfig(
            cert=directory / "server.crt",
            key=directory / "server.key",
            client_ca=directory / "ca.crt",
        ),
        authn=AuthnOptions(allow_common_names=tuple(allow_cns or ())),
        authz=None if policy is None else AuthzConfig(policy=_policy_file(policy, directory)),
        aio=aio,
        shutdown_grace=0.0,
        workers=4,
    )
    if not aio:
        server = secure_server(config)
        try:
            register(server.server)
            server.start()
        except BaseException:
            server.stop(0)
            raise
        return SecureTestServer(ca=ca, directory=directory, server=server, loop=None)

    loop = _LoopThread()

    async def start() -> AioSecureServer:
        started = aio_secure_server(config)
        try:
            register(started.server)
            await started.start()
        except BaseException:
            await started.stop(0)
            raise
        return started

    try:
        aio_server = loop.run(start())
    except BaseException:
        loop.close()
        raise
    return SecureTestServer(ca=ca, directory=directory, server=aio_server, loop=loop)
