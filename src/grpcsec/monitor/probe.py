"""A TLS probe that reads the certificate chain an endpoint serves. No grpc.

The probe connects over TCP, offers ALPN ``h2`` (gRPC servers require it) and TLS 1.2 or 1.3,
optionally presents a client certificate, and reads what the server sent. It does **not**
verify the chain: a monitor must see expired, not-yet-valid and untrusted certificates too
(trust is :func:`grpcsec.pki.verify_certificate`'s and the doctor's job). SNI is the target's
host name, or ``server_name`` when given; IP addresses send no SNI.

How the whole served chain is read (the leaf alone is easy, the intermediates are not):

1. **Python 3.13 and later:** ``SSLSocket.get_unverified_chain()``, from the same handshake.
2. **Python 3.10-3.12:** the standard library exposes only the leaf
   (``getpeercert(binary_form=True)``), and grpcsec does not reach into the private ``_ssl``
   module. So a second connection is made with ``openssl s_client -showcerts`` (same ALPN, SNI
   and client certificate), and its chain is used when its leaf is the leaf the first
   handshake saw (a load balancer may answer with different certificates).
3. **Otherwise** (no ``openssl`` on PATH, it fails, or the leaves differ): the leaf only, and
   :attr:`ProbeResult.chain_complete` is false, with the reason in ``chain_note``.

Failures raise :class:`EndpointError` whose ``reason`` is one of ``resolve``, ``refused``,
``timeout``, ``connect`` (another socket error), ``handshake`` (TLS failed: not a TLS
server, no common protocol, a client certificate required and missing or rejected) or
``certificate`` (the server sent a certificate that cannot be parsed).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from grpcsec.errors import ConfigurationError, GrpcsecError, MaterialError
from grpcsec.pki.files import load_certificates
from grpcsec.target import Target

__all__ = ["EndpointError", "ProbeOptions", "ProbeResult", "Prober", "probe_endpoint"]

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.DOTALL
)
_PASSWORD_VARIABLE = "GRPCSEC_PROBE_KEY_PASSWORD"  # noqa: S105 (a variable name)


class EndpointError(GrpcsecError):
    """An endpoint that could not be probed. ``reason`` is a short stable code (see the module
    docstring) for ``--json`` output and metrics; the message says what happened."""

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeOptions:
    """How to probe. ``client_cert`` and ``client_key`` (files, both or neither) present a
    client certificate to servers that require mTLS; ``password`` decrypts an encrypted key
    and never appears in ``repr``. ``openssl`` is the binary used to read the chain on Python
    versions without ``get_unverified_chain`` (``"auto"``: from PATH; ``None``: leaf only)."""

    timeout: float = 5.0
    server_name: str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    password: bytes | None = field(default=None, repr=False)
    openssl: str | None = "auto"

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ConfigurationError("the probe timeout must be longer than zero")
        if (self.client_cert is None) != (self.client_key is None):
            raise ConfigurationError(
                "a client certificate needs its key and a key needs its certificate; pass both"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    """What an endpoint served: its chain as sent (leaf first), and the TLS facts."""

    address: Target
    chain: tuple[x509.Certificate, ...]
    chain_complete: bool
    chain_note: str | None
    tls_version: str | None
    alpn: str | None


def _context(options: ProbeOptions) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # reading, not trusting: expired chains must be seen
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    if options.client_cert is not None and options.client_key is not None:
        try:
            context.load_cert_chain(
                options.client_cert, options.client_key, password=options.password
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load the client certificate {options.client_cert} and key "
                f"{options.client_key}: {getattr(exc, 'reason', None) or exc}"
            ) from exc
    return context


def _sni(address: Target, options: ProbeOptions) -> str | None:
    if options.server_name is not None:
        return options.server_name
    return None if address.is_ip else address.host


def _connect(address: Target, timeout: float) -> socket.socket:
    try:
        return socket.create_connection((address.host, address.port), timeout=timeout)
    except socket.gaierror as exc:
        raise EndpointError(
            f"{address}: cannot resolve {address.host!r} ({exc.strerror})", reason="resolve"
        ) from exc
    except ConnectionRefusedError as exc:
        raise EndpointError(f"{address}: connection refused", reason="refused") from exc
    except TimeoutError as exc:
        raise EndpointError(
            f"{address}: no TCP connection within {timeout:g}s", reason="timeout"
        ) from exc
    except OSError as exc:
        raise EndpointError(
            f"{address}: cannot connect ({exc.strerror or exc})", reason="connect"
        ) from exc


def _handshake_error(address: Target, exc: Exception) -> EndpointError:
    if isinstance(exc, TimeoutError):
        return EndpointError(
            f"{address}: the TLS handshake did not finish in time (a plaintext server?)",
            reason="timeout",
        )
    if isinstance(exc, ssl.SSLError):
        detail = exc.reason or exc.strerror or str(exc)
        if detail == "WRONG_VERSION_NUMBER":
            detail += " (the server does not speak TLS: plaintext?)"
        return EndpointError(f"{address}: TLS handshake failed: {detail}", reason="handshake")
    reason = getattr(exc, "strerror", None) or exc.__class__.__name__
    return EndpointError(
        f"{address}: the connection closed during the TLS handshake ({reason}); the server may "
        "require a client certificate, or not speak TLS",
        reason="handshake",
    )


class Prober:
    """Probes endpoints with one set of :class:`ProbeOptions`; the TLS context (and the client
    certificate) is loaded once, at construction, which raises
    :class:`~grpcsec.errors.ConfigurationError` for an unusable client certificate."""

    def __init__(self, options: ProbeOptions | None = None) -> None:
        self.options = options or ProbeOptions()
        self._context = _context(self.options)

    def probe(self, address: Target) -> ProbeResult:
        """Handshake with ``address`` and return the chain it served (module docstring).

        Raises :class:`EndpointError` when the endpoint cannot be reached or the handshake
        fails. Safe to call from several threads at once.
        """
        return _probe(address, self._context, self.options)


def probe_endpoint(address: Target, options: ProbeOptions | None = None) -> ProbeResult:
    """One probe: ``Prober(options).probe(address)``."""
    return Prober(options).probe(address)


def _probe(address: Target, context: ssl.SSLContext, options: ProbeOptions) -> ProbeResult:
    sni = _sni(address, options)
    raw = _connect(address, options.timeout)
    try:
        with context.wrap_socket(raw, server_hostname=sni) as tls:
            leaf_der = tls.getpeercert(binary_form=True)
            native = getattr(tls, "get_unverified_chain", None)
            chain_der = list(native()) if native is not None else None
            version = tls.version()
            alpn = tls.selected_alpn_protocol()
    except (OSError, ssl.SSLError) as exc:
        raise _handshake_error(address, exc) from exc
    finally:
        raw.close()
    if not leaf_der:
        raise EndpointError(f"{address}: the server sent no certificate", reason="handshake")
    try:
        leaf = load_certificates(leaf_der)[0]  # the one loader: malformed is refused, not raised
        native_chain = (
            tuple(load_certificates(item)[0] for item in chain_der)
            if chain_der and all(isinstance(item, bytes) for item in chain_der)
            else None
        )
    except (ValueError, MaterialError) as exc:
        raise EndpointError(
            f"{address}: the server sent a certificate that cannot be parsed ({exc})",
            reason="certificate",
        ) from exc
    note: str | None = None
    if native_chain is not None:
        chain, complete = native_chain, True
    else:
        chain, note = _chain_with_openssl(address, sni, options, leaf)
        complete = note is None
    return ProbeResult(
        address=address,
        chain=chain,
        chain_complete=complete,
        chain_note=note,
        tls_version=version,
        alpn=alpn,
    )


def _openssl_binary(options: ProbeOptions) -> str | None:
    if options.openssl == "auto":
        return shutil.which("openssl")
    return options.openssl


def _chain_with_openssl(
    address: Target, sni: str | None, options: ProbeOptions, leaf: x509.Certificate
) -> tuple[tuple[x509.Certificate, ...], str | None]:
    """The served chain from ``openssl s_client -showcerts``, or the leaf alone and why."""
    binary = _openssl_binary(options)
    if binary is None:
        return (leaf,), "leaf only: this Python cannot read the served chain, and no openssl"
    command = [binary, "s_client", "-connect", str(address), "-showcerts", "-alpn", "h2"]
    command += ["-servername", sni] if sni else ["-noservername"]
    env = dict(os.environ)
    if options.client_cert is not None and options.client_key is not None:
        command += ["-cert", str(options.client_cert), "-key", str(options.client_key)]
        if options.password is not None:
            # through the environment of this one child, never on its command line
            env[_PASSWORD_VARIABLE] = options.password.decode("utf-8", "surrogateescape")
            command += ["-pass", f"env:{_PASSWORD_VARIABLE}"]
    try:
        completed = subprocess.run(  # noqa: S603 (fixed argument list, no shell)
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=options.timeout,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return (leaf,), f"leaf only: openssl s_client failed ({exc.__class__.__name__})"
    chain: list[x509.Certificate] = []
    for block in _PEM_CERTIFICATE.findall(completed.stdout):
        with contextlib.suppress(ValueError, MaterialError):
            chain.append(load_certificates(block)[0])
    if not chain:
        return (leaf,), "leaf only: openssl s_client showed no certificates"
    if chain[0] != leaf:
        return (
            leaf,
        ), "leaf only: openssl saw a different leaf (several servers behind one address?)"
    return tuple(chain), None
