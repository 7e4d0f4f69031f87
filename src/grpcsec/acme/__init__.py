"""Certificates from an ACME CA (RFC 8555): Let's Encrypt, step-ca, Boulder, pebble.

Spoken with certbot's ``acme`` library (JOSE, nonces, messages); grpcsec adds the bounds, the
http-01 responder, atomic writes, the renewal decision (ARI, RFC 9773, else 2/3 of the
lifetime) and the agent. One concept per module:

* :mod:`~grpcsec.acme.config`: :class:`AcmeConfig`, the value (also ``[tls.acme]``).
* :mod:`~grpcsec.acme.network`: the bounded client, badNonce retries, one-line errors.
* :mod:`~grpcsec.acme.account`: the account key (0600) and create-or-reuse registration.
* :mod:`~grpcsec.acme.responder`: the http-01 responder, bound only during an order.
* :mod:`~grpcsec.acme.order`: one order, new key, checked chain, atomic write.
* :mod:`~grpcsec.acme.schedule`: when to renew (pure).
* :mod:`~grpcsec.acme.renewer`: :func:`issue_certificate` and :class:`AcmeRenewer`.

Needs the optional extra ``grpcsec[acme]`` (the names that use it load on first use, so
:mod:`grpcsec.acme.config` is importable without it). No grpc import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grpcsec.acme.config import AcmeConfig, parse_key_type
from grpcsec.errors import AcmeError
from grpcsec.lazy import lazy_names

if TYPE_CHECKING:
    from grpcsec.acme.order import AcmeMaterial
    from grpcsec.acme.renewer import AcmeRenewer, issue_certificate
    from grpcsec.acme.schedule import RenewalWindow, acme_renewal_time, parse_renewal_info

__all__ = [
    "AcmeConfig",
    "AcmeError",
    "AcmeMaterial",
    "AcmeRenewer",
    "RenewalWindow",
    "acme_renewal_time",
    "issue_certificate",
    "parse_key_type",
    "parse_renewal_info",
]

__getattr__ = lazy_names(
    __name__,
    {
        "AcmeMaterial": "grpcsec.acme.order",
        "AcmeRenewer": "grpcsec.acme.renewer",
        "issue_certificate": "grpcsec.acme.renewer",
        "RenewalWindow": "grpcsec.acme.schedule",
        "acme_renewal_time": "grpcsec.acme.schedule",
        "parse_renewal_info": "grpcsec.acme.schedule",
    },
    globals(),
)
