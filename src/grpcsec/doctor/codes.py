"""The doctor's stable vocabulary: check statuses, diagnosis codes and warning codes. No grpc.

A *diagnosis* is the root cause of a run (``ok`` when there is none); a *warning* is a problem
that does not stop a connection today. Codes are part of the ``--json`` contract and are
documented in docs/doctor.md (a test keeps the two in step): add codes, never rename them.
"""

from __future__ import annotations

import enum
from types import MappingProxyType

__all__ = ["DIAGNOSES", "OK", "WARNINGS", "Status"]

OK = "ok"


class Status(str, enum.Enum):
    """The outcome of one check. Values are stable (``--json``)."""

    PASS = "pass"  # noqa: S105 (a status, not a password)
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    """Not run: an earlier check failed, so this one would only repeat or confuse it."""


DIAGNOSES: MappingProxyType[str, str] = MappingProxyType(
    {
        OK: "every check passed (warnings aside)",
        # 1. reaching the server
        "connection_refused": "nothing listens at that address",
        "timeout": "no answer in time (black-holed address, firewall drop, a server that "
        "accepts and never speaks)",
        "dns_failure": "the host name does not resolve",
        "connection_failed": "the TCP connection failed for another reason (unreachable network)",
        "plaintext_server": "TLS client, plaintext server",
        "server_requires_tls": "plaintext client (--insecure), TLS server",
        "unknown_protocol": "the server answers, but with neither TLS nor HTTP/2",
        # 2. TLS parameters
        "tls_version_unsupported": "the server offers no TLS version gRPC uses (1.2 or 1.3)",
        "tls_handshake_failed": "the TLS handshake fails for another reason (no shared cipher, "
        "the server closes without a reason)",
        "no_alpn_h2": "the server does not negotiate ALPN h2 (HTTP/2)",
        # 3. the server certificate
        "unknown_authority": "the server chain does not lead to a trusted CA",
        "incomplete_chain": "the server does not send the intermediate CA its certificate needs",
        "server_cert_expired": "the server certificate (or a CA in its chain) has expired",
        "server_cert_not_yet_valid": "the server certificate is not valid yet",
        "hostname_mismatch": "the server certificate does not name the host dialled",
        "uri_only_server_cert": "the server certificate names only URIs (SPIFFE), which gRPC "
        "clients in Python never match",
        "server_cert_wrong_eku": "the server certificate is not for TLS servers (no serverAuth)",
        "server_cert_revoked": "the server certificate, or a CA in its chain, is revoked by a "
        "CRL given with --crl",
        "server_key_mismatch": "the server key does not belong to its certificate (lint)",
        "unsupported_key_type": "a leaf key type grpcio cannot handshake with (Ed25519)",
        "cn_only_cert": "a certificate without subject alternative names (lint)",
        "ca_as_leaf": "a CA certificate where a server or client certificate belongs (lint)",
        "key_file_permissions": "a private key file readable by group or others (lint)",
        # 4. client authentication
        "client_cert_required": "the server requires a client certificate and none was given",
        "client_key_mismatch": "the client key does not belong to the client certificate",
        "client_cert_expired": "the client certificate has expired",
        "client_cert_not_yet_valid": "the client certificate is not valid yet",
        "client_cert_wrong_eku": "the client certificate is not for TLS clients (no clientAuth)",
        "client_cert_rejected": "the server refuses the client certificate",
        "client_cert_revoked": "the client certificate, or a CA in its chain, is revoked by a "
        "CRL given with --crl",
        # 5. the gRPC call
        "unauthenticated": "the call is refused with UNAUTHENTICATED (token or identity)",
        "permission_denied": "the call is refused with PERMISSION_DENIED (authorization)",
        "not_serving": "the health service answers, but not SERVING",
        "grpc_call_failed": "the health call fails in a way the earlier checks did not explain",
        # grpcsec call only (texts the doctor's own probes never produce)
        "unimplemented": "the connection works but the method does not exist",
        "call_credentials_need_tls": "a token was attached to a plaintext channel; grpcio "
        "refuses to send it",
        "unknown": "a failure text the table does not know",
    }
)

WARNINGS: MappingProxyType[str, str] = MappingProxyType(
    {
        "weak_tls_version": "the server also accepts TLS 1.0 or 1.1",
        "weak_cipher": "the negotiated TLS 1.2 cipher lacks forward secrecy or an AEAD mode",
        "renewal_due": "a certificate is past two thirds of its lifetime, or has under 7 days",
        "cn_only_cert": "the server certificate is matched by its CN only (grpcio's fallback; "
        "grpc-go, Python ssl and browsers refuse it)",
        "chain_order": "the chain is not in leaf-first order or carries unrelated certificates",
        "chain_not_read": "only the leaf of the served chain could be read (a Python without "
        "ssl's handshake hook), so trust was left to the gRPC call",
        "weak_key": "an RSA key under 2048 bits or an EC key under 256 bits",
        "weak_signature": "a certificate signed with SHA-1 or MD5",
        "client_cert_not_requested": "a client certificate was given but the server never asks "
        "for one",
        "client_ca_not_listed": "the server names the CAs it accepts and the client "
        "certificate's issuer is not among them",
        "client_auth_unknown": "whether the server wants a client certificate could not be told",
        "health_unimplemented": "the server has no health service; the connection itself works",
        "revocation_undetermined": "a CRL given with --crl cannot tell: none of the issuer, "
        "signed by another key, or past its next update",
    }
)
