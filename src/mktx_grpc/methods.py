"""The method table: per-RPC facts, keyed by full method name, in one place.

Interceptors read it to decide whether a call is public, whether it writes (one
transaction) or reads (autocommit), whether it needs a database connection at all,
and which validation rule to run. An RPC of ours missing from the table is treated
as authenticated, read-only and without a database connection, which is what the
UNIMPLEMENTED stubs of later services need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .validation import rules
from .validation import templates as templates_rules
from .validation import accounts as accounts_rules

Rule = rules.Rule


@dataclass(frozen=True)
class MethodSpec:
    #: No bearer token required (health, reflection).
    public: bool = False
    #: Runs in one transaction (commit on success, roll back on any error).
    write: bool = False
    #: Gets a pooled connection for the call. Streaming RPCs manage their own.
    db: bool = True
    #: Validation rule for the request, or None.
    validate: Rule | None = None


PUBLIC = MethodSpec(public=True, db=False)
NO_DB = MethodSpec(db=False)


def read(validate: Rule | None = None) -> MethodSpec:
    return MethodSpec(write=False, validate=validate)


def write(validate: Rule | None = None) -> MethodSpec:
    return MethodSpec(write=True, validate=validate)


_T = "/mktx.v1.TemplatesService/"
_A = "/mktx.v1.AccountsService/"

METHODS: dict[str, MethodSpec] = {
    # Templates
    _T + "CreateTemplate": write(templates_rules.create_template),
    _T + "GetTemplate": read(rules.require_uuid("id")),
    _T + "ListTemplates": read(templates_rules.list_templates),
    _T + "UpdateTemplate": write(templates_rules.update_template),
    _T + "DeleteTemplate": write(templates_rules.delete_template),
    _T + "PreviewTemplate": read(templates_rules.preview_template),
    # Accounts
    _A + "GetAccount": read(rules.require_uuid("id")),
    _A + "ListAccounts": read(accounts_rules.list_accounts),
    _A + "UpdateAccountSettings": write(accounts_rules.update_account_settings),
    _A + "DisconnectAccount": write(rules.require_uuid("id")),
    _A + "GetAccountStatistics": read(rules.require_uuid("id")),
}

_PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def spec_for(method: str) -> MethodSpec:
    spec = METHODS.get(method)
    if spec is not None:
        return spec
    if method.startswith(_PUBLIC_PREFIXES):
        return PUBLIC
    return NO_DB


