"""The pytest plugin (entry point ``pytest11``: ``grpcsec``): fixtures ``grpcsec_ca`` and
``grpcsec_secure_server`` (see :mod:`grpcsec.testing`). grpc is imported only when a test
asks for a server, so merely having grpcsec installed costs a test run nothing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from grpcsec.pki import CertificateAuthority

if TYPE_CHECKING:
    from grpcsec.testing.server import Register, SecureTestServer

__all__ = ["SecureServerFactory", "grpcsec_ca", "grpcsec_secure_server"]


class SecureServerFactory(Protocol):
    """The ``grpcsec_secure_server`` fixture's type, for annotations in users' tests."""

    def __call__(
        self,
        register: Register,
        *,
        policy: Mapping[str, Any] | str | Path | None = None,
        allow_cns: Sequence[str] | None = None,
        aio: bool = False,
    ) -> SecureTestServer: ...


@pytest.fixture
def grpcsec_ca() -> CertificateAuthority:
    """A fresh certificate authority (ECDSA P-256) for this test."""
    return CertificateAuthority.create("grpcsec test CA")


@pytest.fixture
def grpcsec_secure_server(
    grpcsec_ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureServerFactory]:
    """A factory starting secured servers from ``grpcsec_ca``; all are stopped at teardown."""
    from grpcsec.testing.server import start_secure_test_server  # noqa: PLC0415 (grpc on use)

    started: list[SecureTestServer] = []

    def factory(
        register: Register,
        *,
        policy: Mapping[str, Any] | str | Path | None = None,
        allow_cns: Sequence[str] | None = None,
        aio: bool = False,
    ) -> SecureTestServer:
        server = start_secure_test_server(
            register,
            ca=grpcsec_ca,
            directory=tmp_path_factory.mktemp("grpcsec-server"),
            policy=policy,
            allow_cns=allow_cns,
            aio=aio,
        )
        started.append(server)
        return server

    yield factory
    for server in reversed(started):
        server.close()
