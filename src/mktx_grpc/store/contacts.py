"""Contact persistence (sql/queries/contacts.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ..core.context import current_connection
from ..core.errors import AlreadyExists
from ..domain.segments import compile_conditions
from . import Jsonb, Queries, Row, execute, fetch_all, fetch_one
from .coalesce import PointReads

Q = Queries("contacts")


@dataclass
class ContactFilter:
    """The filters shared by ListContacts and ExportContacts (None = unused)."""

    account_id: UUID | None = None
    pattern: str | None = None
    prefix: str | None = None
    tags_any: list[str] | None = None
    tags_all: list[str] | None = None
    attributes: dict[str, Any] | None = None
    source: str | None = None

    def params(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "pattern": self.pattern,
            "prefix": self.prefix,
            "tags_any": self.tags_any,
            "tags_all": self.tags_all,
            "attributes": Jsonb(self.attributes) if self.attributes is not None else None,
            "source": self.source,
        }


@dataclass
class NewContact:
    account_id: UUID
    x_user_id: str
    username: str = ""
    display_name: str = ""
    profile_image_url: str = ""
    source: str = "MANUAL"
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    time_zone: str = ""
    language: str = ""
    opted_out: bool = False


async def _fetch_all_unprepared(query: str, params: dict[str, Any]) -> list[Row]:
    # Unprepared: planned with the actual parameters, so "%(x)s IS NULL OR ..." arms
    # fold away and the right index is chosen for each filter combination.
    async with current_connection().cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params, prepare=False)
        return await cur.fetchall()


async def insert(merchant_id: UUID, c: NewContact) -> Row:
    """Insert a contact. Raises AlreadyExists when the X user is already a contact."""
    try:
        row = await fetch_one(
            Q.insert_contact,
            {
                "merchant_id": merchant_id,
                "account_id": c.account_id,
                "x_user_id": c.x_user_id,
                "username": c.username,
                "display_name": c.display_name,
                "profile_image_url": c.profile_image_url,
                "source": c.source,
                "tags": c.tags,
                "attributes": Jsonb(c.attributes),
                "time_zone": c.time_zone,
                "language": c.language,
                "opted_out": c.opted_out,
            },
        )
    except psycopg.errors.UniqueViolation:
        raise AlreadyExists(
            f"X user {c.x_user_id} is already a contact of account {c.account_id}",
            metadata={"x_user_id": c.x_user_id, "account_id": str(c.account_id)},
        ) from None
    assert row is not None
    return row


async def get(merchant_id: UUID, contact_id: UUID, *, for_update: bool = False) -> Row | None:
    query = Q.get_contact_for_update if for_update else Q.get_contact
    return await fetch_one(query, {"merchant_id": merchant_id, "id": contact_id})


async def segment_exists(merchant_id: UUID, segment_id: UUID) -> bool:
    return (
        await fetch_one(Q.segment_exists, {"merchant_id": merchant_id, "id": segment_id})
        is not None
    )


async def update(
    merchant_id: UUID,
    contact_id: UUID,
    *,
    tags: list[str],
    attributes: dict[str, Any],
    time_zone: str,
    language: str,
    opted_out: bool,
) -> Row:
    row = await fetch_one(
        Q.update_contact,
        {
            "merchant_id": merchant_id,
            "id": contact_id,
            "tags": tags,
            "attributes": Jsonb(attributes),
            "time_zone": time_zone,
            "language": language,
            "opted_out": opted_out,
        },
    )
    assert row is not None
    return row


async def engagement(merchant_id: UUID, contact_id: UUID) -> Row:
    row = await fetch_one(Q.contact_engagement, {"merchant_id": merchant_id, "id": contact_id})
    assert row is not None
    return row


async def list_page(
    merchant_id: UUID,
    f: ContactFilter,
    *,
    after: tuple[datetime | None, UUID] | None,
    limit: int,
) -> list[Row]:
    return await _fetch_all_unprepared(
        Q.list_contacts,
        {
            "merchant_id": merchant_id,
            **f.params(),
            "after_time": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )


async def export_batch(
    merchant_id: UUID,
    f: ContactFilter,
    *,
    after_id: UUID | None,
    limit: int,
    segment: Row | None = None,
) -> list[Row]:
    """One batch of the export, by id. With ``segment`` (a row from
    :func:`segment_conditions`), only the segment's members."""
    params = {"merchant_id": merchant_id, **f.params(), "after_id": after_id, "limit": limit}
    if segment is None:
        return await _fetch_all_unprepared(Q.export_contacts, params)
    compiled = compile_conditions(segment["conditions"], prefix="seg_")
    query = sql.SQL(Q.export_contacts_in_segment).format(segment=compiled.where)
    async with current_connection().cursor(row_factory=dict_row) as cur:
        await cur.execute(
            query,
            {**params, **compiled.params, "segment_account_id": segment["account_id"]},
            prepare=False,
        )
        return await cur.fetchall()


async def segment_conditions(merchant_id: UUID, segment_id: UUID) -> Row | None:
    return await fetch_one(Q.segment_conditions, {"merchant_id": merchant_id, "id": segment_id})


async def erase(merchant_id: UUID, contact_id: UUID, *, erased_by: str) -> list[Row]:
    """GDPR erase in the caller's transaction: purge the outbox rows and request ids
    naming the contact, delete it (cascading to every per-contact table) and write the
    audit row. Returns the erased conversations (id, account_id)."""
    conversations = await fetch_all(
        Q.contact_conversation_ids, {"merchant_id": merchant_id, "id": contact_id}
    )
    conv_ids = [r["id"] for r in conversations]
    await execute(
        Q.purge_contact_events,
        {
            "merchant_id": merchant_id,
            "id": contact_id,
            "conversation_ids": conv_ids,
        },
    )
    await execute(Q.purge_contact_request_ids, {"merchant_id": merchant_id, "id": contact_id})
    audit = await fetch_one(
        Q.erase_contact, {"merchant_id": merchant_id, "id": contact_id, "erased_by": erased_by}
    )
    assert audit is not None
    return conversations


# ------------------------------------------------------------------ import


async def existing_for_import(
    merchant_id: UUID, account_id: UUID, x_user_ids: Sequence[str], *, lock: bool
) -> dict[str, Row]:
    query = Q.existing_for_import if lock else Q.existing_for_import_check
    rows = await fetch_all(
        query,
        {"merchant_id": merchant_id, "account_id": account_id, "x_user_ids": list(x_user_ids)},
    )
    return {r["x_user_id"]: r for r in rows}


async def import_insert(merchant_id: UUID, account_id: UUID, rows: list[NewContact]) -> int:
    """Insert new contacts in one pipelined executemany; returns how many were inserted
    (a row a concurrent writer created meanwhile is skipped by ON CONFLICT)."""
    if not rows:
        return 0
    params = [
        {
            "merchant_id": merchant_id,
            "account_id": account_id,
            "x_user_id": c.x_user_id,
            "username": c.username,
            "display_name": c.display_name,
            "profile_image_url": c.profile_image_url,
            "tags": c.tags,
            "attributes": Jsonb(c.attributes),
            "time_zone": c.time_zone,
            "language": c.language,
        }
        for c in rows
    ]
    async with current_connection().cursor() as cur:
        await cur.executemany(Q.import_insert_contact, params)
        return cur.rowcount


async def import_update(merchant_id: UUID, updates: list[tuple[UUID, NewContact]]) -> None:
    if not updates:
        return
    params = [
        {
            "merchant_id": merchant_id,
            "id": contact_id,
            "username": c.username,
            "display_name": c.display_name,
            "profile_image_url": c.profile_image_url,
            "tags": c.tags,
            "attributes": Jsonb(c.attributes),
            "time_zone": c.time_zone,
            "language": c.language,
        }
        for contact_id, c in updates
    ]
    async with current_connection().cursor() as cur:
        await cur.executemany(Q.import_update_contact, params)


async def get_import(merchant_id: UUID, request_id: str) -> dict[str, Any] | None:
    row = await fetch_one(Q.get_import, {"merchant_id": merchant_id, "request_id": request_id})
    return None if row is None else dict(row["summary"])


async def record_import(
    merchant_id: UUID, request_id: str, account_id: UUID, summary: dict[str, Any]
) -> None:
    await execute(
        Q.record_import,
        {
            "merchant_id": merchant_id,
            "request_id": request_id,
            "account_id": account_id,
            "summary": Jsonb(summary),
        },
    )


async def _get_batch(merchant_id: UUID, ids: Sequence[UUID]) -> list[Row]:
    return await fetch_all(Q.get_contacts, {"merchant_id": merchant_id, "ids": list(ids)})


async def _get_one(merchant_id: UUID, contact_id: UUID) -> Row | None:
    return await get(merchant_id, contact_id)


#: Concurrent GetContact reads, coalesced (store/coalesce.py).
point_reads = PointReads(_get_batch, _get_one)


async def read_one(merchant_id: UUID, contact_id: UUID) -> Row | None:
    """The contact as :func:`get` returns it, read in a batch with the concurrent
    reads of the same merchant (autocommit only; inside a transaction, alone)."""
    return await point_reads.get(merchant_id, contact_id)
