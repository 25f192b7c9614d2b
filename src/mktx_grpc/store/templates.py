"""Template persistence (sql/queries/templates.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from ..core.errors import AlreadyExists
from ..domain.like import contains_pattern
from ..domain.templates import Button, QuickReply, TemplateDraft
from . import Jsonb, Queries, Row, execute, fetch_all, fetch_one
from .coalesce import PointReads

Q = Queries("templates")


def draft_from_row(row: Row) -> TemplateDraft:
    return TemplateDraft(
        name=row["name"],
        type=row["type"],
        content=row["content"],
        description=row["description"],
        quick_replies=[QuickReply(**q) for q in row["quick_replies"]],
        card_media_url=row["card_media_url"],
        card_buttons=[Button(**b) for b in row["card_buttons"]],
        tags=list(row["tags"]),
    )


def _params(merchant_id: UUID, d: TemplateDraft) -> dict[str, Any]:
    return {
        "merchant_id": merchant_id,
        "name": d.name,
        "description": d.description,
        "type": d.type,
        "content": d.content,
        "quick_replies": Jsonb([asdict(q) for q in d.quick_replies]),
        "card_media_url": d.card_media_url,
        "card_buttons": Jsonb([asdict(b) for b in d.card_buttons]),
        "variables": d.variables(),
        "tags": d.tags,
    }


async def insert(merchant_id: UUID, d: TemplateDraft) -> Row:
    """Insert a template. Raises AlreadyExists when the name is taken."""
    try:
        row = await fetch_one(Q.insert_template, _params(merchant_id, d))
    except psycopg.errors.UniqueViolation:
        raise AlreadyExists(f"a template named {d.name!r} already exists") from None
    assert row is not None
    return row


async def get(merchant_id: UUID, template_id: UUID, *, for_update: bool = False) -> Row | None:
    query = Q.get_template_for_update if for_update else Q.get_template
    return await fetch_one(query, {"merchant_id": merchant_id, "id": template_id})


async def update(merchant_id: UUID, template_id: UUID, d: TemplateDraft) -> Row:
    """Overwrite the editable fields. Raises AlreadyExists when the new name is taken."""
    try:
        row = await fetch_one(Q.update_template, {**_params(merchant_id, d), "id": template_id})
    except psycopg.errors.UniqueViolation:
        raise AlreadyExists(f"a template named {d.name!r} already exists") from None
    assert row is not None
    return row


async def delete(merchant_id: UUID, template_id: UUID) -> bool:
    return await execute(Q.delete_template, {"merchant_id": merchant_id, "id": template_id}) > 0


async def live_campaigns_using(merchant_id: UUID, template_id: UUID) -> list[Row]:
    return await fetch_all(
        Q.live_campaigns_using_template, {"merchant_id": merchant_id, "id": template_id}
    )


async def list_page(
    merchant_id: UUID,
    *,
    type_: str | None,
    name_contains: str,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Row]:
    pattern = contains_pattern(name_contains)
    return await fetch_all(
        Q.list_templates,
        {
            "merchant_id": merchant_id,
            "type": type_,
            "name_pattern": pattern,
            "after_created": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )


async def _get_batch(merchant_id: UUID, ids: Sequence[UUID]) -> list[Row]:
    return await fetch_all(Q.get_templates, {"merchant_id": merchant_id, "ids": list(ids)})


async def _get_one(merchant_id: UUID, template_id: UUID) -> Row | None:
    return await get(merchant_id, template_id)


#: Concurrent GetTemplate reads, coalesced (store/coalesce.py).
point_reads = PointReads(_get_batch, _get_one)


async def read_one(merchant_id: UUID, template_id: UUID) -> Row | None:
    """The template as :func:`get` returns it, read in a batch with the concurrent
    reads of the same merchant (autocommit only; inside a transaction, alone)."""
    return await point_reads.get(merchant_id, template_id)
