"""Talking to an ACME CA: the acme library's client, with every exchange bounded.

:func:`connect` builds :class:`acme.client.ClientV2` over a :class:`BoundedNetwork` and fetches
the directory. What it adds to the library, and why:

* **trust**: the directory's HTTPS is verified against ``directory_ca`` when given (requests'
  ``verify=``), else the system store; never turned off.
* **bounds**: every request has a timeout; every response body is read up to
  :data:`MAX_RESPONSE_BYTES` and refused past it (a certificate chain or a problem document
  is a few kilobytes); polling is bounded by the caller (:mod:`grpcsec.acme.order`).
* **badNonce**: the library retries a rejected nonce once; a CA may reject several in a row
  (RFC 8555 §6.5: any time), so :meth:`BoundedNetwork.post` retries up to ``nonce_retries``
  times, each with a fresh nonce.
* **errors**: :func:`acme_errors` turns what requests, josepy and the library raise into one
  :class:`~grpcsec.errors.AcmeError` line (the problem document's type and detail, or the
  network failure), never a traceback, never a key.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import requests
from acme import client as acme_client
from acme import errors as acme_errors_module
from acme import messages
from josepy.errors import Error as JoseError
from josepy.jwa import ES256, JWASignature
from josepy.jwk import JWK
from requests.adapters import HTTPAdapter

from grpcsec.acme.config import AcmeConfig
from grpcsec.errors import AcmeError
from grpcsec.fileio import read_file
from grpcsec.pki import load_certificates
from grpcsec.text import get_logger

__all__ = ["MAX_RESPONSE_BYTES", "BoundedNetwork", "acme_errors", "connect"]

log = get_logger("grpcsec.acme")

MAX_RESPONSE_BYTES = 1024 * 1024
USER_AGENT = "grpcsec-acme"


class _BoundedAdapter(HTTPAdapter):
    """Reads each response body itself, up to the limit, so a hostile or broken server cannot
    make the client buffer an unbounded body (requests has no size option)."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]  # noqa: ANN401
        kwargs["stream"] = True
        response = super().send(request, **kwargs)
        try:
            body = response.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True)
        except Exception as exc:
            response.close()
            raise requests.ConnectionError(f"reading the response failed: {exc}") from exc
        response.close()
        if len(body) > MAX_RESPONSE_BYTES:
            raise requests.ConnectionError(
                f"the response from {request.url} is larger than {MAX_RESPONSE_BYTES} bytes"
            )
        # requests' documented way to pre-fill a streamed body is not public; this is the
        # attribute Response.content reads.
        response._content = body
        return response


class BoundedNetwork(acme_client.ClientNetwork):
    """:class:`acme.client.ClientNetwork` with a CA bundle, a size-bounded adapter, and
    ``nonce_retries`` retries of a ``badNonce`` answer (see the module docstring)."""

    def __init__(self, key: JWK | None, *, alg: JWASignature, config: AcmeConfig) -> None:
        super().__init__(key, alg=alg, user_agent=USER_AGENT, timeout=int(config.timeout) or 1)
        # requests takes a CA bundle path where the library takes its verify flag.
        self.verify_ssl = str(config.directory_ca) if config.directory_ca else True  # type: ignore[assignment]
        adapter = _BoundedAdapter()
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.nonce_retries = config.nonce_retries
        self.bad_nonces = 0

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:  # noqa: ANN401
        """POST (signed by the library), retrying ``badNonce`` with a fresh nonce."""
        for attempt in range(self.nonce_retries + 1):
            try:
                return self._post_once(*args, **kwargs)
            except messages.Error as error:  # noqa: PERF203 (a retry loop)
                if error.code != "badNonce" or attempt == self.nonce_retries:
                    raise
                self.bad_nonces += 1
                log.debug("the CA rejected a nonce; retrying with a fresh one")
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()


# urllib3 nests the cause in reprs; these pull out the part a person needs.
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"()]+)")
_VERIFY_FAILED = re.compile(r"certificate verify failed: ([^'\"()]+)")


def _describe(error: BaseException) -> str:  # noqa: PLR0911 (one line per kind of failure)
    if isinstance(error, messages.Error):
        kind = error.code or (error.typ or "error").rsplit(":", 1)[-1]
        detail = (error.detail or "").replace("\n", " ").strip()
        return f"{kind}: {detail}" if detail else kind
    if isinstance(error, requests.exceptions.SSLError):
        reason = _VERIFY_FAILED.search(str(error))
        return "the directory's TLS certificate is not trusted (check --directory-ca)" + (
            f": {reason[1].strip()}" if reason else ""
        )
    if isinstance(error, requests.exceptions.Timeout):
        return "the ACME server did not answer in time"
    if isinstance(error, requests.exceptions.ConnectionError):
        reason = _ERRNO.search(str(error))
        return f"the ACME server is unreachable: {reason[1] if reason else _first_line(error)}"
    if isinstance(error, acme_errors_module.ValidationError):
        problems = [
            _describe(challenge.error)
            for authz in error.failed_authzrs
            for challenge in authz.body.challenges
            if challenge.error is not None
        ]
        return "validation failed: " + "; ".join(problems or ["no detail"])
    if isinstance(error, acme_errors_module.TimeoutError):
        return "the CA did not finish within the polling budget"
    if isinstance(error, acme_errors_module.IssuanceError):
        return f"the order was refused: {_describe(error.error)}"
    return _first_line(error) or type(error).__name__


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= 300 else line[:297] + "..."


@contextlib.contextmanager
def acme_errors(what: str) -> Iterator[None]:
    """Re-raise what the ACME exchange ``what`` raised as one :class:`AcmeError` line."""
    try:
        yield
    except AcmeError:
        raise
    except (
        messages.Error,
        acme_errors_module.Error,
        requests.exceptions.RequestException,
        JoseError,
        ValueError,
        KeyError,
    ) as exc:
        raise AcmeError(f"{what}: {_describe(exc)}") from exc


def connect(config: AcmeConfig) -> acme_client.ClientV2:
    """A client for ``config.directory``, the directory fetched once. It signs nothing until
    the caller sets ``client.net.key`` and ``.alg`` (the account key); unsigned GETs (renewal
    information) need neither."""
    if config.directory_ca is not None:
        # requests would raise OSError on a missing bundle and an opaque SSL error on a bad
        # one: read it here (bounded) so either is one line naming the file.
        load_certificates(read_file(config.directory_ca), source=config.directory_ca)
    net = BoundedNetwork(None, alg=ES256, config=config)
    try:
        with acme_errors(f"fetching the ACME directory {config.directory}"):
            directory = acme_client.ClientV2.get_directory(config.directory, net)
    except AcmeError:
        net.close()
        raise
    return acme_client.ClientV2(directory, net)
