"""Validation rules for AccountsService requests."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from mktx.v1 import accounts_pb2

from ..core.errors import FieldViolation
from ..domain.post_text import LONG_POST_MAX_WEIGHTED_LENGTH
from ..domain.schedule import validate_weekly_schedule
from . import rules

SETTINGS_PATHS = (
    "auto_reply_enabled",
    "business_hours",
    "dm_budget",
    "dm_budget.per_15_minutes",
    "dm_budget.per_24_hours",
    "max_post_length",
)


def list_accounts(req: accounts_pb2.ListAccountsRequest) -> list[FieldViolation]:
    v = rules.page(req)
    v += rules.enum_field(req.status, "status", accounts_pb2.AccountStatus, required=False)
    return v


def update_account_settings(
    req: accounts_pb2.UpdateAccountSettingsRequest,
) -> list[FieldViolation]:
    v = rules.uuid_field(req.account_id, "account_id")
    v += rules.mask_paths(req.update_mask, SETTINGS_PATHS, required=False)
    paths = set(req.update_mask.paths) or set(SETTINGS_PATHS)
    s = req.settings
    if "business_hours" in paths and s.business_hours.enabled:
        if not s.business_hours.HasField("schedule"):
            v.append(FieldViolation("settings.business_hours.schedule", "is required when enabled"))
        else:
            v += validate_weekly_schedule(
                s.business_hours.schedule, "settings.business_hours.schedule"
            )
    elif "business_hours" in paths and s.business_hours.HasField("schedule"):
        v += validate_weekly_schedule(s.business_hours.schedule, "settings.business_hours.schedule")
    budget = s.dm_budget
    if paths & {"dm_budget", "dm_budget.per_15_minutes"} and not 0 <= budget.per_15_minutes <= 1000:
        v.append(
            FieldViolation("settings.dm_budget.per_15_minutes", "must be 1 to 1000 (0: default)")
        )
    if paths & {"dm_budget", "dm_budget.per_24_hours"} and not 0 <= budget.per_24_hours <= 100_000:
        v.append(
            FieldViolation("settings.dm_budget.per_24_hours", "must be 1 to 100000 (0: default)")
        )
    if "max_post_length" in paths and not 0 <= s.max_post_length <= LONG_POST_MAX_WEIGHTED_LENGTH:
        v.append(
            FieldViolation("settings.max_post_length", "must be 1 to 25000 (0: the standard 280)")
        )
    return v


_SCOPE_RE = re.compile(r"^[a-z.]{1,64}$")


def _absolute_http_url(value: str, field: str, *, required: bool) -> list[FieldViolation]:
    if not value:
        return [FieldViolation(field, "is required")] if required else []
    parsed = urlsplit(value)
    if len(value) > 2048 or parsed.scheme not in ("http", "https") or not parsed.netloc:
        return [FieldViolation(field, "must be an absolute http(s) URL of at most 2048 characters")]
    return []


def start_connection(req: accounts_pb2.StartConnectionRequest) -> list[FieldViolation]:
    v = rules.enum_field(req.auth_method, "auth_method", accounts_pb2.AuthMethod)
    v += _absolute_http_url(req.callback_uri, "callback_uri", required=True)
    if len(req.scopes) > 20:
        v.append(FieldViolation("scopes", "at most 20 scopes"))
    for i, scope in enumerate(req.scopes):
        if not _SCOPE_RE.match(scope):
            v.append(FieldViolation(f"scopes[{i}]", "is not a valid scope name"))
    return v


def complete_connection(req: accounts_pb2.CompleteConnectionRequest) -> list[FieldViolation]:
    v = rules.text_field(req.state, "state", required=True, max_len=500)
    if not req.oauth_verifier and not req.code:
        v.append(
            FieldViolation(
                "oauth_verifier", "oauth_verifier (OAuth 1.0a) or code (OAuth 2.0) is required"
            )
        )
    v += rules.text_field(req.oauth_verifier, "oauth_verifier", max_len=500)
    v += rules.text_field(req.oauth_token, "oauth_token", max_len=500)
    v += rules.text_field(req.code, "code", max_len=2000)
    return v


def register_webhook(req: accounts_pb2.RegisterWebhookRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.id, "id")
    v += _absolute_http_url(req.url, "url", required=False)
    return v
