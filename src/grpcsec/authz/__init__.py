"""gRPC authorization policies (gRFC A43) with audit logging (gRFC A59); never imports grpc.

Modules, one concept each: :mod:`~grpcsec.authz.patterns` (the ``*`` pattern syntax),
:mod:`~grpcsec.authz.model` (the parsed policy), :mod:`~grpcsec.authz.parse` (validation with
located errors: :mod:`~grpcsec.authz.policy_json` reads strict JSON,
:mod:`~grpcsec.authz.parse_rules` the rules, :mod:`~grpcsec.authz.parse_audit` the audit
options), :mod:`~grpcsec.authz.request` (what a rule sees of an RPC:
principals, joined headers, token claims), :mod:`~grpcsec.authz.engine` (compiled, indexed
evaluation), :mod:`~grpcsec.authz.audit` (conditions, events, logger registry),
:mod:`~grpcsec.authz.provider` (static and file-watching providers) and
:mod:`~grpcsec.authz.authorizer` (what an interceptor calls). The format, our choices where
implementations disagree and the token-claims extension are in docs/authorization.md.
"""

from grpcsec.authz.audit import (
    FILE_LOGGER,
    STDOUT_LOGGER,
    AuditCondition,
    AuditEvent,
    AuditLogger,
    AuditLoggerFactory,
    AuditLoggerRegistry,
    FileAuditLogger,
    FileLoggerFactory,
    StdoutAuditLogger,
    StdoutLoggerFactory,
    default_registry,
    register_audit_logger,
)
from grpcsec.authz.authorizer import DENIED_MESSAGE, Authorizer, explain
from grpcsec.authz.engine import Decision, Engine, compile_policy
from grpcsec.authz.model import (
    CLAIMS_FIELD,
    AuditLoggerSpec,
    AuditOptions,
    ClaimMatch,
    HeaderMatch,
    Policy,
    Rule,
)
from grpcsec.authz.parse import load_policy, parse_policy
from grpcsec.authz.patterns import Pattern, PatternKind
from grpcsec.authz.provider import (
    FileWatcherPolicyProvider,
    PolicyProvider,
    ProviderStatus,
    ReloadResult,
    StaticPolicyProvider,
)
from grpcsec.authz.request import Request, claim_values, joined_headers, peer_principals

__all__ = [
    "CLAIMS_FIELD",
    "DENIED_MESSAGE",
    "FILE_LOGGER",
    "STDOUT_LOGGER",
    "AuditCondition",
    "AuditEvent",
    "AuditLogger",
    "AuditLoggerFactory",
    "AuditLoggerRegistry",
    "AuditLoggerSpec",
    "AuditOptions",
    "Authorizer",
    "ClaimMatch",
    "Decision",
    "Engine",
    "FileAuditLogger",
    "FileLoggerFactory",
    "FileWatcherPolicyProvider",
    "HeaderMatch",
    "Pattern",
    "PatternKind",
    "Policy",
    "PolicyProvider",
    "ProviderStatus",
    "ReloadResult",
    "Request",
    "Rule",
    "StaticPolicyProvider",
    "StdoutAuditLogger",
    "StdoutLoggerFactory",
    "claim_values",
    "compile_policy",
    "default_registry",
    "explain",
    "joined_headers",
    "load_policy",
    "parse_policy",
    "peer_principals",
    "register_audit_logger",
]
