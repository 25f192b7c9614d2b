"""Proto ⇄ domain and row conversions for segments (shared by the servicer, validation and
other modules that need them)."""

from __future__ import annotations

from uuid import UUID

from mktx.v1 import segments_pb2

from ..domain import segments as domain
from ..store import Row, etag_of
from ..store import segments as store
from .common import ts

#: Update mask paths.
UPDATABLE = ("name", "description", "account_id", "conditions")


def segment_to_proto(row: Row) -> segments_pb2.Segment:
    return segments_pb2.Segment(
        id=str(row["id"]),
        name=row["name"],
        description=row["description"],
        account_id=str(row["account_id"]) if row["account_id"] else "",
        conditions=domain.conditions_from_json(row["conditions"]),
        contact_count=row["contact_count"],
        count_refresh_time=ts(row["count_refreshed_at"]),
        create_time=ts(row["created_at"]),
        update_time=ts(row["updated_at"]),
        etag=etag_of(row["id"], row["version"]),
    )


def draft_from_proto(s: segments_pb2.Segment) -> store.SegmentDraft:
    return store.SegmentDraft(
        name=s.name.strip(),
        description=s.description,
        account_id=UUID(s.account_id) if s.account_id else None,
        conditions=domain.conditions_to_json(s.conditions),
    )
