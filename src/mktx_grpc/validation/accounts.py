"""Validation rules for AccountsService requests."""

from __future__ import annotations

from mktx.v1 import accounts_pb2

from ..domain.schedule import validate_weekly_schedule
from ..errors import FieldViolation
from . import rules

SETTINGS_PATHS = (
    "auto_reply_enabled",
    "business_hours",
    "dm_budget",
    "dm_budget.per_15_minutes",
    "dm_budget.per_24_hours",
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
        v.append(FieldViolation("settings.dm_budget.per_15_minutes", "must be 1 to 1000 (0: default)"))
    if paths & {"dm_budget", "dm_budget.per_24_hours"} and not 0 <= budget.per_24_hours <= 100_000:
        v.append(FieldViolation("settings.dm_budget.per_24_hours", "must be 1 to 100000 (0: default)"))
    return v
