"""Which roots a default grpcio client uses (grpcio-security.md §1.6), found without grpc."""

from __future__ import annotations

from pathlib import Path

from grpcsec.doctor.roots import default_grpc_roots, explicit_roots, grpcio_bundled_roots_path
from tests.doctor.conftest import Files


def test_the_environment_file_comes_first(files: Files) -> None:
    roots = default_grpc_roots(
        {
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": files("ca.crt"),
            "GRPC_USE_SYSTEM_ROOTS_OVER_LANGUAGE_CALLBACK": "1",
        }
    )
    assert (roots.origin, roots.source, len(roots.certificates)) == ("env", files("ca.crt"), 1)
    assert roots.pem is None  # grpcio is given None and finds the same file itself


def test_without_settings_it_is_grpcios_bundled_file() -> None:
    roots = default_grpc_roots({})
    bundled = grpcio_bundled_roots_path()
    assert bundled is not None
    assert bundled.name == "roots.pem"
    assert roots.origin == "grpcio_bundled"
    assert roots.source == str(bundled)
    assert len(roots.certificates) > 50


def test_system_roots_when_asked_for() -> None:
    roots = default_grpc_roots({"GRPC_USE_SYSTEM_ROOTS_OVER_LANGUAGE_CALLBACK": "true"})
    if roots.origin != "system":
        assert roots.origin == "grpcio_bundled"  # no OS bundle on this machine
        return
    assert Path(roots.source).is_file()


def test_explicit_bundle_carries_its_pem(files: Files) -> None:
    roots = explicit_roots(files("ca-and-intermediate.crt"))
    assert roots.origin == "explicit"
    assert len(roots.certificates) == 2
    assert roots.pem is not None
    assert roots.to_json() == {"origin": "explicit", "source": roots.source, "count": 2}
