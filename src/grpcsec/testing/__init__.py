"""Test a service secured by grpcsec the way it will run: ``grpcsec.testing``, the trustme of gRPC.

A pytest plugin (entry point ``pytest11`` named ``grpcsec``, loaded by pytest whenever grpcsec
is installed) with two fixtures:

* ``grpcsec_ca``: a fresh :class:`~grpcsec.pki.CertificateAuthority` for the test;
* ``grpcsec_secure_server``: a factory ``grpcsec_secure_server(register, *, policy=None,
  allow_cns=None, aio=False)`` that starts the user's servicers behind
  :func:`grpcsec.server.secure_server` (mTLS with a server certificate for ``localhost`` and
  ``127.0.0.1`` from ``grpcsec_ca``) on ``127.0.0.1:0``, and returns a
  :class:`SecureTestServer` with ``.target``, ``.ca_file`` and ``.channel(client="alice")``.
  Everything it started is stopped, and its files removed, at teardown.

Outside pytest, :func:`start_secure_test_server` does the same and returns the server to
close. Not meant for production: the keys live in a temporary directory and the CA is thrown
away. See docs/testing.md.
"""

from grpcsec.testing.server import SecureTestServer, start_secure_test_server

__all__ = ["SecureTestServer", "start_secure_test_server"]
