"""Say why a secure gRPC connection fails, and how to fix it.

:mod:`~grpcsec.doctor.explain` maps grpcio failure texts to stable diagnosis codes; the full
endpoint probe (``grpcsec doctor``) builds on it.
"""

from grpcsec.doctor.explain import CallContext, Explanation, explain_failure

__all__ = ["CallContext", "Explanation", "explain_failure"]
