"""Analytics rows -> mktx.v1 report messages, and the report's common arguments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast
from uuid import UUID
from zoneinfo import ZoneInfo

from google.protobuf.descriptor import Descriptor

from mktx.v1 import analytics_pb2 as A

from ..core.db import Row
from ..domain import analytics as domain
from .common import mask_path_ok, ts

GRANULARITY_FROM_PROTO = {
    A.REPORT_GRANULARITY_UNSPECIFIED: domain.DAY,
    A.REPORT_GRANULARITY_DAY: domain.DAY,
    A.REPORT_GRANULARITY_WEEK: domain.WEEK,
    A.REPORT_GRANULARITY_MONTH: domain.MONTH,
}
GRANULARITY_TO_PROTO = {
    domain.DAY: A.REPORT_GRANULARITY_DAY,
    domain.WEEK: A.REPORT_GRANULARITY_WEEK,
    domain.MONTH: A.REPORT_GRANULARITY_MONTH,
}

#: contacts.source -> ContactSourceCounts field.
SOURCE_FIELDS = {
    "NEW_FOLLOWER": "follow",
    "INBOUND_MESSAGE": "inbound_dm",
    "MENTION": "mention",
    "IMPORT": "imported",
    "MANUAL": "api",
}


@dataclass(frozen=True)
class ReportArgs:
    """What every report query takes."""

    merchant_id: UUID
    account_id: UUID | None
    start: datetime
    end: datetime
    time_zone: str
    tz: ZoneInfo
    granularity: str = domain.DAY

    def params(self, **extra: Any) -> dict[str, Any]:
        return {
            "merchant_id": self.merchant_id,
            "account_id": self.account_id,
            "start": self.start,
            "end": self.end,
            "tz": self.time_zone,
            "unit": self.granularity.lower(),
            **extra,
        }

    def buckets(self) -> list[domain.Bucket]:
        return domain.buckets(self.start, self.end, self.granularity, self.tz)


def by_key(rows: list[Row]) -> dict[date, Row]:
    return {r["key"]: r for r in rows}


def by_position(rows: list[Row]) -> dict[int, Row]:
    """Rows of a ``*_buckets`` query by their bucket's position (from 1)."""
    return {int(r["i"]): r for r in rows}


def bucket_bounds(args: ReportArgs, buckets: list[domain.Bucket]) -> dict[str, list[datetime]]:
    """The ``starts``/``ends`` parameters of the ``*_buckets`` queries: each bucket
    clipped to the period, so the buckets' counts add up to the period's."""
    return {
        "starts": [max(b.start, args.start) for b in buckets],
        "ends": [min(b.end, args.end) for b in buckets],
    }


def bucket_times(b: domain.Bucket) -> dict[str, Any]:
    return {"start_time": ts(b.start), "end_time": ts(b.end)}


def duration_stats(row: Row | None, prefix: str = "", count: str = "n") -> A.DurationStats:
    if row is None or not row[count]:
        return A.DurationStats()
    return A.DurationStats(
        count=int(row[count]),
        mean_seconds=float(row[f"{prefix}mean"] or 0.0),
        median_seconds=float(row[f"{prefix}median"] or 0.0),
        p90_seconds=float(row[f"{prefix}p90"] or 0.0),
    )


def ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def campaign_counts(row: Row | None) -> A.CampaignReportCounts:
    if row is None:
        return A.CampaignReportCounts()
    return A.CampaignReportCounts(
        sent=int(row["sent"] or 0),
        delivered=int(row["delivered"] or 0),
        read=int(row["read"] or 0),
        replied=int(row["replied"] or 0),
        failed=int(row["failed"] or 0),
    )


def campaign_rates(c: A.CampaignReportCounts) -> A.CampaignReportRates:
    return A.CampaignReportRates(
        delivery_rate=ratio(c.delivered, c.sent),
        read_rate=ratio(c.read, c.delivered),
        reply_rate=ratio(c.replied, c.sent),
        failure_rate=ratio(c.failed, c.sent + c.failed),
    )


def source_counts(rows: list[Row]) -> A.ContactSourceCounts:
    out = A.ContactSourceCounts()
    for r in rows:
        name = SOURCE_FIELDS.get(r["source"])
        if name is not None:
            setattr(out, name, getattr(out, name) + int(r["n"]))
            out.total += int(r["n"])
    return out


# ---------------------------------------------------------------- read masks


class ReportMask:
    """What a report's ``read_mask`` may name and the reads (store/analytics.py query
    names) each field needs: ``reads`` by top-level field of the report, and a series
    bucket's fields as ``series.<field>``."""

    def __init__(self, report: Any, reads: dict[str, frozenset[str]]) -> None:
        self.name = str(report.DESCRIPTOR.name)
        self._descriptor = cast(Descriptor, report.DESCRIPTOR)
        self._reads = dict(reads)
        self._reads["series"] = frozenset().union(
            *(v for k, v in reads.items() if k.startswith("series."))
        )
        #: What the whole report reads.
        self.all_reads = frozenset().union(*self._reads.values())

    def path_ok(self, path: str) -> bool:
        """Whether ``path`` may be in the report's ``read_mask``."""
        return mask_path_ok(self._descriptor, path)

    def reads(self, paths: Sequence[str]) -> frozenset[str]:
        """The queries a ``read_mask`` needs (valid paths; none: the whole report):
        its top-level field's, or for ``series`` its bucket field's."""
        if not paths:
            return self.all_reads
        out: set[str] = set()
        for path in paths:
            parts = [p for p in path.split(".") if p != "*"]
            out |= self._reads[".".join(parts[:2]) if parts[0] == "series" else parts[0]]
        return frozenset(out)


_NONE: frozenset[str] = frozenset()

CONVERSATION_MASK = ReportMask(
    A.ConversationAnalytics,
    {
        "time_zone": _NONE,
        "granularity": _NONE,
        "opened": frozenset({"episodes_opened_buckets"}),
        "resolved": frozenset({"conversation_totals"}),
        "first_response": frozenset({"conversation_totals"}),
        "first_response_business_hours": frozenset({"conversation_totals"}),
        "resolution": frozenset({"conversation_totals"}),
        "resolution_business_hours": frozenset({"conversation_totals"}),
        "bot": frozenset({"conversation_totals"}),
        "bot_resolved_share": frozenset({"conversation_totals"}),
        "escalation_rate": frozenset({"episodes_opened_buckets"}),
        "assignees": frozenset({"per_assignee"}),
        "series.start_time": _NONE,
        "series.end_time": _NONE,
        "series.opened": frozenset({"episodes_opened_buckets"}),
        "series.resolved": frozenset({"resolution_buckets"}),
        "series.first_response": frozenset({"first_response_buckets"}),
        "series.first_response_business_hours": frozenset({"first_response_buckets"}),
        "series.resolution": frozenset({"resolution_buckets"}),
        "series.resolution_business_hours": frozenset({"resolution_buckets"}),
    },
)

CONTACT_MASK = ReportMask(
    A.ContactAnalytics,
    {
        "time_zone": _NONE,
        "granularity": _NONE,
        "new_contacts": frozenset({"new_contacts_series"}),
        "active": frozenset({"active_contacts"}),
        "opted_out": frozenset({"contact_totals"}),
        "top_tags": frozenset({"top_tags"}),
        "series.start_time": _NONE,
        "series.end_time": _NONE,
        "series.new_contacts": frozenset({"new_contacts_series"}),
        "series.active": frozenset({"active_contacts_buckets"}),
        "series.opted_out": frozenset({"opt_outs_series"}),
    },
)
