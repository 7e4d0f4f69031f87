"""Say why a secure gRPC connection fails, and how to fix it.

* :func:`diagnose` probes an endpoint in the order a connection is built (TCP, TLS or
  plaintext, TLS versions and ALPN, the server chain, client authentication, a real health
  call) and stops at the first root cause; :func:`lint` checks local certificate files.
  Both return a :class:`DoctorReport` whose ``diagnosis`` is one of :data:`DIAGNOSES`.
* :func:`explain_failure` maps grpcio failure texts (1.76 and 1.78+) to the same codes, for
  callers that only have a failed call (``grpcsec call``).
"""

from grpcsec.doctor.codes import DIAGNOSES, WARNINGS, Status
from grpcsec.doctor.explain import CallContext, Explanation, explain_failure
from grpcsec.doctor.lint import LintRequest, lint
from grpcsec.doctor.report import Check, DoctorReport
from grpcsec.doctor.run import DoctorRequest, diagnose

__all__ = [
    "DIAGNOSES",
    "WARNINGS",
    "CallContext",
    "Check",
    "DoctorReport",
    "DoctorRequest",
    "Explanation",
    "LintRequest",
    "Status",
    "diagnose",
    "explain_failure",
    "lint",
]
