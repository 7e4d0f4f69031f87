"""``grpcsec doctor --cert F --key F``: check local certificate files before serving them. No grpc.

The same judgement as the endpoint checks, on files: the key belongs to the certificate, the
key file is private, the leaf is not a CA, the chain is leaf-first and (with ``--ca``) leads to
a root without the bundle supplying intermediates the file lacks, the dates, the SANs (a
CN-only or URI-only server certificate fails: grpc-go and Python clients cannot verify it), the
name given with ``--host``, the extended key usage for the role, key and signature
strength, and (with ``--crl``) revocation of the leaf and its CAs
(:mod:`grpcsec.doctor.revocation`; the issuer comes from the chain file or ``--ca``). Codes
are the endpoint doctor's, with the role's prefix where there is one (``server_cert_expired`` /
``client_cert_expired``).
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from grpcsec.doctor.chain import (
    build_path,
    describe,
    grpc_name_match,
    has_usage,
    lifetime_problem,
    validity_problem,
    weak_points,
)
from grpcsec.doctor.report import Check, DoctorReport
from grpcsec.doctor.revocation import revocation_check
from grpcsec.doctor.roots import explicit_roots
from grpcsec.fileio import FileKind
from grpcsec.material import StrPath
from grpcsec.pki import (
    CertificateInfo,
    PrivateKey,
    Role,
    inspect_bundle,
    load_certificates,
    load_private_key,
    read_file,
)
from grpcsec.pki.crl import load_crl_file
from grpcsec.pki.keys import public_keys_equal

__all__ = ["LintRequest", "lint"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LintRequest:
    """Files to check, for which ``role``, and optionally the CA bundle, a host name and CRL
    files."""

    cert: StrPath
    key: StrPath
    ca: StrPath | None = None
    role: Role = Role.SERVER
    host: str | None = None
    key_password: bytes | None = field(default=None, repr=False)
    crls: tuple[StrPath, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Files:
    request: LintRequest
    chain: tuple[x509.Certificate, ...]
    key: PrivateKey = field(repr=False)
    anchors: tuple[x509.Certificate, ...] | None

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def role(self) -> str:
        return self.request.role.value


def _key_pair(files: _Files) -> Check:
    if public_keys_equal(files.leaf.public_key(), files.key.public_key()):
        return Check.passed("key_pair", "the key belongs to the certificate")
    return Check.failed(
        "key_pair",
        f"{files.role}_key_mismatch",
        f"the key in {files.request.key} does not belong to the certificate in "
        f"{files.request.cert}",
        "pair the certificate with the key generated for it (the two files of one "
        "grpcsec issue run)",
    )


def _key_file(files: _Files) -> Check:
    path = Path(files.request.key)
    if sys.platform == "win32":
        return Check.passed("key_file", "permissions not checked on Windows")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check.failed(
            "key_file",
            "key_file_permissions",
            f"{path} has mode {mode:04o}: the private key is readable by "
            f"{'others' if mode & 0o007 else 'its group'}",
            f"chmod 600 {path} (and make it owned by the service's user)",
        )
    return Check.passed("key_file", f"{path} has mode {mode:04o}")


def _leaf(files: _Files) -> Check:
    info = CertificateInfo.of(files.leaf)
    if info.is_ca:
        return Check.failed(
            "leaf",
            "ca_as_leaf",
            f"the first certificate of {files.request.cert} is a CA certificate",
            f"put the {files.role} certificate first; pass CA certificates with --ca",
        )
    if isinstance(files.leaf.public_key(), ed25519.Ed25519PublicKey):
        return Check.failed(
            "leaf",
            "unsupported_key_type",
            "an Ed25519 key, which grpcio cannot handshake with",
            "reissue it with an ECDSA P-256 key (the grpcsec default) or RSA",
        )
    return Check.passed("leaf", f"{describe(files.leaf)}, {info.key_algorithm}")


def _chain(files: _Files) -> Check:
    order = inspect_bundle(files.chain).problems
    count = f"{len(files.chain)} certificate(s)"
    if files.anchors is None:
        if order:
            return Check.warned(
                "chain", "chain_order", f"{count}, out of order: {order[0]}", "list leaf first"
            )
        return Check.passed("chain", f"{count}, leaf first; trust not checked (pass --ca)")
    path = build_path(files.leaf, files.chain[1:], files.anchors)
    if path.trusted and path.from_bundle:
        missing = ", ".join(describe(c) for c in path.from_bundle)
        return Check.failed(
            "chain",
            "incomplete_chain",
            f"{files.request.cert} lacks the intermediate {missing}; it verifies here only "
            "because the --ca bundle holds it, and peers that trust only the root fail",
            f"append {missing}'s certificate to {files.request.cert} (leaf first)",
        )
    if not path.trusted:
        top = path.path[-1]
        return Check.failed(
            "chain",
            "unknown_authority",
            f"{describe(top)} is issued by '{top.issuer.rfc4514_string()}', which is neither "
            f"in {files.request.ca} nor in {files.request.cert}",
            "pass the CA bundle that issued this certificate with --ca, and keep any "
            "intermediate in the certificate file after the leaf",
        )
    if order:
        return Check.warned(
            "chain", "chain_order", f"{count}, out of order: {order[0]}", "list leaf first"
        )
    return Check.passed("chain", f"{count}; leads to '{path.path[-1].subject.rfc4514_string()}'")


def _validity(files: _Files, now: dt.datetime) -> Check:
    for certificate in files.chain:
        problem = validity_problem(certificate, now)
        if problem is None:
            continue
        when = (
            certificate.not_valid_after_utc
            if problem == "expired"
            else certificate.not_valid_before_utc
        )
        verb = "expired on" if problem == "expired" else "is valid only from"
        return Check.failed(
            "validity",
            f"{files.role}_cert_{problem}",
            f"{describe(certificate)} {verb} {when:%Y-%m-%d %H:%M:%S}Z",
            f"renew it (grpcsec issue {files.role} ...)"
            if problem == "expired"
            else "check the clocks of this machine and the CA",
        )
    due = lifetime_problem(files.leaf, now)
    info = CertificateInfo.of(files.leaf)
    if due:
        return Check.warned(
            "validity", "renewal_due", due, f"renew it soon (grpcsec issue {files.role} ...)"
        )
    return Check.passed("validity", f"valid until {info.not_after:%Y-%m-%d %H:%M:%S}Z")


def _names(files: _Files) -> Check:
    info = CertificateInfo.of(files.leaf)
    names = info.names
    listed = ", ".join(names.as_strings())
    server = files.request.role is Role.SERVER
    if names.empty:
        check = Check.failed if server else Check.warned
        return check(
            "names",
            "cn_only_cert",
            f"no subject alternative names (CN {info.common_name!r} only): grpc-go, Python's "
            "ssl and browsers ignore the CN",
            f"reissue it with SANs (grpcsec issue {files.role} --host NAME)",
        )
    if server and not names.dns and not names.ips:
        return Check.failed(
            "names",
            "uri_only_server_cert",
            f"only URI names ({listed}): grpcio and Python clients never match a URI SAN",
            "reissue it with a DNS name or IP next to the SPIFFE ID",
        )
    host = files.request.host
    if host is not None:
        match = grpc_name_match(files.leaf, host)
        if match is None:
            return Check.failed(
                "names",
                "hostname_mismatch",
                f"'{host}' is not among its names ({listed})",
                f"reissue it with --host {host}",
            )
        if match == "cn":
            return Check.warned(
                "names",
                "cn_only_cert",
                f"'{host}' matches only the CN (grpcio's fallback; others refuse it)",
                f"reissue it with --host {host}",
            )
    return Check.passed("names", listed)


def _eku(files: _Files) -> Check:
    role = files.request.role
    info = CertificateInfo.of(files.leaf)
    if has_usage(files.leaf, role.eku):
        return Check.passed("eku", f"usable as a TLS {role.value} ({role.eku_name})")
    return Check.failed(
        "eku",
        f"{role.value}_cert_wrong_eku",
        f"its extended key usage is {', '.join(info.extended_key_usage)}, without {role.eku_name}",
        f"reissue it with the {role.value} or peer profile; or pass --role "
        f"{'client' if role is Role.SERVER else 'server'} if that is its job",
    )


def _strength(files: _Files) -> Check:
    weak = weak_points(files.chain)
    if weak:
        code = "weak_signature" if " signed with " in weak[0] else "weak_key"
        return Check.warned("key_strength", code, "; ".join(weak), "reissue with stronger keys")
    return Check.passed("key_strength", "no weak key or signature")


def lint(request: LintRequest, *, now: dt.datetime) -> DoctorReport:
    """Check the files of ``request`` at ``now``; unreadable files raise
    :class:`~grpcsec.errors.MaterialError` (encrypted keys need ``key_password``)."""
    cert_path, key_path = os.fspath(request.cert), os.fspath(request.key)
    chain = load_certificates(read_file(Path(cert_path)), source=cert_path, allow_der=False)
    key = load_private_key(
        read_file(Path(key_path), kind=FileKind.KEY), password=request.key_password, source=key_path
    )
    anchors = None if request.ca is None else explicit_roots(request.ca).certificates
    crls = tuple(load_crl_file(path) for path in request.crls)
    files = _Files(request=request, chain=tuple(chain), key=key, anchors=anchors)
    checks: tuple[Check, ...] = (
        _key_pair(files),
        _key_file(files),
        _leaf(files),
        _chain(files),
        _validity(files, now),
        _names(files),
        _eku(files),
        _strength(files),
    )
    if crls:
        path = build_path(files.leaf, files.chain[1:], anchors or ()).path
        checks += (revocation_check("revocation", files.role, path, crls, now),)
    facts = {
        "certificate": cert_path,
        "key": key_path,
        "ca": None if request.ca is None else os.fspath(request.ca),
        "role": request.role.value,
        "host": request.host,
        "chain": [CertificateInfo.of(c).to_json(now) for c in chain],
    }
    return DoctorReport(target=None, checks=checks, facts=facts, facts_key="files")
