"""The status document of a secured server: ``SecureServer.status()`` and ``GET /status``.

What a person on call asks first (after ghostunnel's ``/_status``): which certificate is being
served, where it comes from (``source``: ``file``, ``acme``), when its source renews it next and
how the last renewal went (``renewal``, for a source that renews by itself), and did the last
reload work; which CAs are trusted for clients; which CRLs are enforced
(source, issuer, number, next update, entries) and did their last reload work; which policy is
in force and when it was loaded; which token keys are known and when they were fetched; how many
calls were allowed and refused, and why. Everything is a public fact (serials, fingerprints, key
ids, counts, file paths): no key material, no token, no PEM body. Times are RFC 3339 UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography import x509

from grpcsec.credentials import ServerTLS
from grpcsec.pki import load_certificates
from grpcsec.pki.inspect import fingerprint_sha256
from grpcsec.server.core import ServerCore
from grpcsec.target import Target

__all__ = ["status_document"]


def _moment(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.timezone.utc).isoformat()


def _certificate(leaf: x509.Certificate) -> dict[str, Any]:
    return {
        "serial": format(leaf.serial_number, "x"),
        "subject": leaf.subject.rfc4514_string(),
        "not_after": _moment(leaf.not_valid_after_utc),
        "fingerprint_sha256": fingerprint_sha256(leaf),
    }


def _anchors(certificates: tuple[x509.Certificate, ...] | list[x509.Certificate]) -> list[Any]:
    return [
        {"subject": c.subject.rfc4514_string(), "fingerprint_sha256": fingerprint_sha256(c)}
        for c in certificates
    ]


def _renewal(core: ServerCore) -> dict[str, Any] | None:
    """The renewal agent of a source that renews by itself (ACME): plan and last result."""
    renewer = core.renewer
    if renewer is None:
        return None
    result, error = renewer.last_result, renewer.last_error
    return {
        "next_renewal": _moment(renewer.next_renewal),
        "renewals": renewer.renewals,
        "failures": renewer.total_failures,
        "last_result": None if result is None else result.to_json(),
        "last_error": None if error is None else str(error),
    }


def _tls(core: ServerCore) -> tuple[dict[str, Any] | None, list[Any]]:
    source = core.config.tls.source if core.config.tls is not None else None
    rotation = core.reloading
    if rotation is not None:
        material = rotation.material
        status = rotation.status().to_json()
        tls = {
            **_certificate(material.leaf),
            "source": source,
            "renewal": _renewal(core),
            "reload": status,
        }
        workload = core.workload
        if workload is not None:
            tls["spiffe"] = workload.status().to_json()
        return tls, _anchors(material.client_cas)
    if isinstance(core.tls, ServerTLS):
        tls = {
            **_certificate(core.tls.identity.leaf),
            "source": source,
            "renewal": None,
            "reload": None,
        }
        bundle = core.tls.client_ca
        anchors = [] if bundle is None else _anchors(load_certificates(bundle.pem))
        return tls, anchors
    return None, []


def _policy(core: ServerCore) -> dict[str, Any] | None:
    authorizer = core.authorizer
    if authorizer is None:
        return None
    provider = authorizer.provider
    status = getattr(provider, "status", None)
    details = status().to_json() if callable(status) else {}
    return {
        "name": authorizer.policy.name,
        "last_reload_time": _moment(core.policy_updated_at),
        "last_error": details.get("last_error"),
        "watch": details or None,
    }


def status_document(core: ServerCore, *, addresses: list[Target], started: bool) -> dict[str, Any]:
    """The whole status document (module docstring), JSON-ready."""
    now = core.clock.now()
    tls, anchors = _tls(core)
    stats = core.guard.stats.snapshot()
    return {
        "time": _moment(now),
        "server": {
            "mode": core.config.mode,
            "aio": core.aio,
            "started": started,
            "listen": [str(a) for a in addresses],
            "metrics": None if core.metrics_address is None else str(core.metrics_address),
        },
        "tls": tls,
        "trust": {
            "client_ca": anchors,
            "spiffe": None if core.spiffe_bundles is None else core.spiffe_bundles().describe(),
        },
        "crl": None if core.crls is None else core.crls.to_json(),
        "policy": _policy(core),
        "jwks": [source.status(now.timestamp()) for source in core.key_sources],
        "calls": {
            "allowed": stats["allowed"],
            "denied": {
                "unauthenticated": stats["unauthenticated"],
                "permission_denied": stats["permission_denied"],
            },
            "internal": stats["internal"],
        },
    }
