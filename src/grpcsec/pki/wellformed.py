"""Names a certificate may carry at all: the load-time rule for NUL bytes and broken DNS names.

cryptography parses names leniently: a subject with a NUL byte (the classic
``bank.example\\0.evil.example`` truncation trick), a dNSName with non-ASCII bytes (an IA5String
may not hold them), an ``xn--`` label that is not valid Punycode, or a label with control
characters all load. Matching code then compares strings that no resolver or peer would produce,
and display code has to guess. :func:`name_problem` is applied once, where certificates and CSRs
are loaded (:mod:`grpcsec.pki.files`), so such a certificate is refused as malformed with one
line instead of being served, trusted or shown.

Control characters other than NUL in subject attributes and URIs are *not* refused here: they are
well-formed strings, shown escaped (:func:`grpcsec.text.inert`) and refused only at issuance.
Not checked: whether a name is sensible (public suffixes, SPIFFE syntax), which is the
allow-lists' and verification's job.
"""

from __future__ import annotations

import re

from cryptography import x509

__all__ = ["DNS_LABEL", "a_label_problem", "name_problem"]

DNS_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
"""One DNS label: 1-63 letters, digits, hyphens or underscores, no hyphen at either end (the
rule for names read from certificates and for names grpcsec issues)."""


def a_label_problem(label: str) -> str | None:
    """Why an ``xn--`` label is not valid Punycode that round-trips (IDNA 2003 ToUnicode), or
    ``None`` (also for a label that is not an A-label)."""
    if label[:4].lower() != "xn--":
        return None
    try:
        label.encode("ascii").decode("idna")
    except UnicodeError:
        return f"has an A-label {label!r} that is not valid Punycode"
    return None


def _dns_problem(name: str) -> str | None:
    if not name.isascii():
        return "is not ASCII (a dNSName holds A-labels only)"
    labels = name.removesuffix(".").split(".")
    if labels and labels[0] == "*":
        labels = labels[1:]
    if not labels or len(name) > 253:
        return "is empty or longer than 253 characters"
    for label in labels:
        if not DNS_LABEL.match(label):
            return f"has an invalid label {label!r}"
        problem = a_label_problem(label)
        if problem is not None:
            return problem
    return None


def name_problem(value: x509.Certificate | x509.CertificateSigningRequest) -> str | None:
    """Why ``value``'s names are malformed, or ``None``. Reads the (already parsed) subject,
    issuer and subjectAltName."""
    names = [("subject", value.subject)]
    if isinstance(value, x509.Certificate):
        names.append(("issuer", value.issuer))
    for where, name in names:
        for attribute in name:
            text = attribute.value
            if isinstance(text, str) and "\x00" in text:
                return f"its {where} holds a NUL byte (a name-truncation trick)"
    try:
        san = value.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for dns in san.get_values_for_type(x509.DNSName):
        problem = _dns_problem(dns)
        if problem is not None:
            return f"its DNS name {dns!r} {problem}"
    for kind in (x509.UniformResourceIdentifier, x509.RFC822Name):
        for text in san.get_values_for_type(kind):
            if "\x00" in text:
                return "a subjectAltName holds a NUL byte (a name-truncation trick)"
    return None
