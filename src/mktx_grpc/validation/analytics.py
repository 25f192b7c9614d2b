"""Validation rules for AnalyticsService requests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from mktx.v1 import analytics_pb2 as A

from ..core.errors import FieldViolation
from ..domain import analytics as domain
from ..mapping.analytics import CONTACT_MASK, CONVERSATION_MASK, ReportMask
from . import rules

#: Report periods must lie in [1970, 2200): far enough for any real report, and
#: clear of the calendar's ends where local-time arithmetic overflows.
_MIN_SECONDS = 0
_MAX_SECONDS = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp())
MAX_POSTS = 500


def _time(ts: Timestamp, field: str) -> tuple[datetime | None, list[FieldViolation]]:
    if not _MIN_SECONDS <= ts.seconds < _MAX_SECONDS or not 0 <= ts.nanos <= 999_999_999:
        return None, [FieldViolation(field, "must be a time from 1970 to 2199")]
    return ts.ToDatetime(tzinfo=UTC), []


def period(req: Any) -> list[FieldViolation]:
    """The request's ``period``: both ends set and valid, end after start, at most
    400 days."""
    if not req.HasField("period"):
        return [FieldViolation("period", "is required")]
    p = req.period
    v: list[FieldViolation] = []
    start = end = None
    if p.HasField("start_time"):
        start, bad = _time(p.start_time, "period.start_time")
        v += bad
    if p.HasField("end_time"):
        end, bad = _time(p.end_time, "period.end_time")
        v += bad
    if v:
        return v
    return [FieldViolation(f, d) for f, d in domain.period_violations(start, end)]


def _common(req: Any, *, series: bool = True) -> list[FieldViolation]:
    v = period(req)
    v += rules.uuid_field(req.account_id, "account_id", required=False)
    if series:
        v += rules.enum_field(req.granularity, "granularity", A.ReportGranularity, required=False)
    return v


def get_overview(req: A.GetOverviewRequest) -> list[FieldViolation]:
    return _common(req, series=False)


def get_contact_analytics(req: A.GetContactAnalyticsRequest) -> list[FieldViolation]:
    return _common(req) + read_mask(req.read_mask.paths, CONTACT_MASK)


def get_conversation_analytics(req: A.GetConversationAnalyticsRequest) -> list[FieldViolation]:
    return _common(req) + read_mask(req.read_mask.paths, CONVERSATION_MASK)


def read_mask(paths: Sequence[str], mask: ReportMask) -> list[FieldViolation]:
    """A report's ``read_mask``: every path one the report takes (empty: the whole
    report)."""
    return [
        FieldViolation(
            f"read_mask.paths[{i}]",
            f"names no field of {mask.name} (a field such as series, a field in one "
            "such as series.*.start_time)",
        )
        for i, p in enumerate(paths)
        if not mask.path_ok(p)
    ]


def get_campaign_analytics(req: A.GetCampaignAnalyticsRequest) -> list[FieldViolation]:
    return _common(req) + rules.uuid_field(req.campaign_id, "campaign_id", required=False)


def get_automation_analytics(req: A.GetAutomationAnalyticsRequest) -> list[FieldViolation]:
    return _common(req)


def get_post_analytics(req: A.GetPostAnalyticsRequest) -> list[FieldViolation]:
    v = _common(req)
    if req.max_posts < 0 or req.max_posts > MAX_POSTS:
        v.append(FieldViolation("max_posts", f"must be 0 (default 50) to {MAX_POSTS}"))
    return v
