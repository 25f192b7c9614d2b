"""Segment persistence and evaluation (sql/queries/segments.sql).

Evaluation runs the compiled conditions (``domain.segments.compile_conditions``)
inside the ``count_matching`` and ``sample_matching`` templates, always with the
merchant filter and, for account-scoped segments, the account filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from ..core.errors import AlreadyExists
from ..domain.like import contains_pattern
from ..domain.segments import compile_conditions
from . import Jsonb, Queries, Row, execute, fetch_all, fetch_one

Q = Queries("segments")


@dataclass
class SegmentDraft:
    """The user-editable part of a segment, as validated and stored."""

    name: str
    description: str = ""
    account_id: UUID | None = None
    #: The stored JSON of the root ConditionGroup (domain.segments.conditions_to_json).
    conditions: dict[str, Any] = field(default_factory=dict)


def draft_from_row(row: Row) -> SegmentDraft:
    return SegmentDraft(
        name=row["name"],
        description=row["description"],
        account_id=row["account_id"],
        conditions=row["conditions"],
    )


def _params(merchant_id: UUID, d: SegmentDraft, contact_count: int | None) -> dict[str, Any]:
    return {
        "merchant_id": merchant_id,
        "name": d.name,
        "description": d.description,
        "account_id": d.account_id,
        "conditions": Jsonb(d.conditions),
        "contact_count": contact_count,
    }


def _duplicate(name: str) -> AlreadyExists:
    return AlreadyExists(f"a segment named {name!r} already exists")


async def insert(merchant_id: UUID, d: SegmentDraft, contact_count: int) -> Row:
    """Insert a segment with its first count. Raises AlreadyExists when the name is taken."""
    try:
        row = await fetch_one(Q.insert_segment, _params(merchant_id, d, contact_count))
    except psycopg.errors.UniqueViolation:
        raise _duplicate(d.name) from None
    assert row is not None
    return row


async def get(merchant_id: UUID, segment_id: UUID, *, for_update: bool = False) -> Row | None:
    query = Q.get_segment_for_update if for_update else Q.get_segment
    return await fetch_one(query, {"merchant_id": merchant_id, "id": segment_id})


async def update(
    merchant_id: UUID, segment_id: UUID, d: SegmentDraft, contact_count: int | None
) -> Row:
    """Overwrite the editable fields and bump the version. ``contact_count`` None keeps
    the stored count. Raises AlreadyExists when the new name is taken."""
    params = {**_params(merchant_id, d, contact_count), "id": segment_id}
    try:
        row = await fetch_one(Q.update_segment, params)
    except psycopg.errors.UniqueViolation:
        raise _duplicate(d.name) from None
    assert row is not None
    return row


async def set_count(merchant_id: UUID, segment_id: UUID, contact_count: int) -> Row | None:
    """Store a fresh count without changing the version; None when the segment is gone."""
    return await fetch_one(
        Q.set_segment_count,
        {"merchant_id": merchant_id, "id": segment_id, "contact_count": contact_count},
    )


async def delete(merchant_id: UUID, segment_id: UUID) -> bool:
    return await execute(Q.delete_segment, {"merchant_id": merchant_id, "id": segment_id}) > 0


async def live_campaigns_using(merchant_id: UUID, segment_id: UUID) -> list[Row]:
    """Up to 5 SCHEDULED, RUNNING or PAUSED campaigns using the segment (either way)."""
    return await fetch_all(
        Q.live_campaigns_using_segment, {"merchant_id": merchant_id, "id": segment_id}
    )


async def missing_campaigns(merchant_id: UUID, campaign_ids: Iterable[str]) -> list[str]:
    """The ids among ``campaign_ids`` that are not campaigns of this merchant."""
    wanted = {UUID(c): c for c in campaign_ids}
    if not wanted:
        return []
    rows = await fetch_all(
        Q.existing_campaign_ids, {"merchant_id": merchant_id, "ids": list(wanted)}
    )
    found = {r["id"] for r in rows}
    return [text for cid, text in wanted.items() if cid not in found]


async def list_page(
    merchant_id: UUID,
    *,
    account_id: UUID | None,
    name_contains: str,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Row]:
    pattern = contains_pattern(name_contains)
    return await fetch_all(
        Q.list_segments,
        {
            "merchant_id": merchant_id,
            "account_id": account_id,
            "name_pattern": pattern,
            "after_created": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )


def _evaluation(
    template: str, merchant_id: UUID, conditions: dict[str, Any], account_id: UUID | None
) -> tuple[sql.Composed, dict[str, Any]]:
    compiled = compile_conditions(conditions)
    account_filter = (
        sql.SQL("AND c.account_id = %(account_id)s") if account_id is not None else sql.SQL("")
    )
    query = sql.SQL(template).format(where=compiled.where, account_filter=account_filter)
    params = {**compiled.params, "merchant_id": merchant_id, "account_id": account_id}
    return query, params


async def count_matching(
    merchant_id: UUID, conditions: dict[str, Any], account_id: UUID | None
) -> int:
    """How many of the merchant's contacts (of ``account_id`` when set) match now.

    Raises InvalidArgument when ``conditions`` do not validate.
    """
    query, params = _evaluation(Q.count_matching, merchant_id, conditions, account_id)
    row = await fetch_one(query, params)  # type: ignore[arg-type]
    assert row is not None
    return int(row["total"])


async def count_and_sample(
    merchant_id: UUID, conditions: dict[str, Any], account_id: UUID | None, sample_size: int
) -> tuple[int, list[Row]]:
    """The match count and up to ``sample_size`` matching contact rows (``contacts.*``),
    most recent interaction first. ``conditions`` is the stored JSON of a condition
    tree. Raises InvalidArgument when it does not validate."""
    total = await count_matching(merchant_id, conditions, account_id)
    if total == 0 or sample_size <= 0:
        return total, []
    query, params = _evaluation(Q.sample_matching, merchant_id, conditions, account_id)
    rows = await fetch_all(query, {**params, "limit": sample_size})  # type: ignore[arg-type]
    return total, rows


async def claim_stale(max_age_seconds: float) -> Row | None:
    """Lock one segment (any merchant) whose count is older than ``max_age_seconds``,
    skipping segments other workers hold. Call inside a transaction."""
    return await fetch_one(Q.claim_stale_segment, {"max_age": max_age_seconds})


async def touch_count(merchant_id: UUID, segment_id: UUID) -> None:
    await execute(Q.touch_segment_count, {"merchant_id": merchant_id, "id": segment_id})
