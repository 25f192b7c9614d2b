"""Campaign persistence: campaigns, counters and hourly metrics, the ledger reads
and writes of the lifecycle (sql/queries/campaigns.sql), plus the audience snapshot:
``domain.campaigns.audience`` decides whom it reaches, and its segments' compiled
conditions (``domain.segments.compile_conditions``) become one statement here. The
dispatcher's statements on the ledger are in ``store/dispatch.py``.

Every function runs on the current connection (the caller's unit of work or
``use_connection``) and takes ``merchant_id`` explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import sql

from ..core.context import current_connection
from ..domain.campaigns import CampaignDraft, SegmentRef, Step, audience, launch_due_at
from ..domain.like import contains_pattern
from ..domain.segments import compile_conditions
from . import Jsonb, Queries, Row, execute, fetch_all, fetch_one

Q = Queries("campaigns")

COUNTERS = ("total", "sent", "delivered", "read", "replied", "failed", "skipped")


# ------------------------------------------------------------------ campaigns


def draft_from_row(row: Row) -> CampaignDraft:
    excl = row["exclusion"] or {}
    return CampaignDraft(
        name=row["name"],
        account_id=str(row["account_id"]),
        type=row["type"],
        description=row["description"],
        template_id=str(row["template_id"]) if row["template_id"] else "",
        segment_ids=[str(s) for s in row.get("segment_ids") or []],
        exclude_segment_ids=[str(s) for s in row.get("exclude_segment_ids") or []],
        exclude_messaged_within=timedelta(seconds=float(excl.get("messaged_within_s", 0))),
        exclude_campaign_ids=list(excl.get("campaign_ids", [])),
        exclude_open_conversations=bool(excl.get("open_conversations", False)),
        variables=dict(row["variables"] or {}),
        start_at=row["start_at"],
        end_at=row["end_at"],
        time_zone=row["time_zone"],
        send_window=row["send_window"],
        respect_contact_time_zone=row["respect_contact_time_zone"],
        enrol_delay=row["enrol_delay"],
        steps=[
            Step(
                s.get("template_id", ""),
                timedelta(seconds=float(s.get("delay_s", 0))),
                dict(s.get("variables", {})),
            )
            for s in row["steps"] or []
        ],
        stop_on_reply=row["stop_on_reply"],
        attribution_window=row["attribution_window"],
        max_sends_per_hour=row["max_sends_per_hour"],
    )


def _params(merchant_id: UUID, d: CampaignDraft) -> dict[str, Any]:
    return {
        "merchant_id": merchant_id,
        "account_id": UUID(d.account_id),
        "name": d.name,
        "description": d.description,
        "type": d.type,
        "template_id": UUID(d.template_id) if d.template_id else None,
        "variables": Jsonb(d.variables),
        "start_at": d.start_at,
        "end_at": d.end_at,
        "time_zone": d.time_zone,
        "send_window": Jsonb(d.send_window) if d.send_window is not None else None,
        "respect_contact_time_zone": d.respect_contact_time_zone,
        "steps": Jsonb(
            [
                {
                    "template_id": s.template_id,
                    "delay_s": s.delay.total_seconds(),
                    "variables": s.variables,
                }
                for s in d.steps
            ]
        ),
        "stop_on_reply": d.stop_on_reply,
        "attribution_window": d.attribution_window,
        "exclusion": Jsonb(
            {
                "messaged_within_s": d.exclude_messaged_within.total_seconds(),
                "campaign_ids": d.exclude_campaign_ids,
                "open_conversations": d.exclude_open_conversations,
            }
        ),
        "max_sends_per_hour": d.max_sends_per_hour,
        "enrol_delay": d.enrol_delay,
    }


async def _set_segments(merchant_id: UUID, campaign_id: UUID, d: CampaignDraft) -> None:
    await execute(Q.delete_campaign_segments, {"merchant_id": merchant_id, "id": campaign_id})
    await execute(
        Q.insert_campaign_segments,
        {
            "merchant_id": merchant_id,
            "id": campaign_id,
            "segment_ids": [UUID(s) for s in d.segment_ids],
            "exclude_segment_ids": [UUID(s) for s in d.exclude_segment_ids],
        },
    )


async def insert(merchant_id: UUID, d: CampaignDraft) -> Row:
    row = await fetch_one(Q.insert_campaign, _params(merchant_id, d))
    assert row is not None
    await _set_segments(merchant_id, row["id"], d)
    got = await get(merchant_id, row["id"])
    assert got is not None
    return got


async def get(merchant_id: UUID, campaign_id: UUID) -> Row | None:
    return await fetch_one(Q.get_campaign, {"merchant_id": merchant_id, "id": campaign_id})


async def lock(merchant_id: UUID, campaign_id: UUID) -> Row | None:
    """Lock the campaign row (status, version) for a lifecycle change."""
    return await fetch_one(Q.lock_campaign, {"merchant_id": merchant_id, "id": campaign_id})


async def update(merchant_id: UUID, campaign_id: UUID, d: CampaignDraft) -> Row:
    await execute(Q.update_campaign, {**_params(merchant_id, d), "id": campaign_id})
    await _set_segments(merchant_id, campaign_id, d)
    got = await get(merchant_id, campaign_id)
    assert got is not None
    return got


async def delete(merchant_id: UUID, campaign_id: UUID) -> bool:
    return await execute(Q.delete_campaign, {"merchant_id": merchant_id, "id": campaign_id}) > 0


async def set_status(merchant_id: UUID, campaign_id: UUID, status: str, reason: str = "") -> None:
    await execute(
        Q.set_status,
        {"merchant_id": merchant_id, "id": campaign_id, "status": status, "status_reason": reason},
    )


async def list_page(
    merchant_id: UUID,
    *,
    account_id: UUID | None,
    status: str | None,
    type_: str | None,
    name_contains: str,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Row]:
    pattern = contains_pattern(name_contains)
    return await fetch_all(
        Q.list_campaigns,
        {
            "merchant_id": merchant_id,
            "account_id": account_id,
            "status": status,
            "type": type_,
            "name_pattern": pattern,
            "after_created": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )


async def _existing(query: str, merchant_id: UUID, ids: Iterable[str]) -> set[str]:
    wanted = [UUID(i) for i in ids]
    if not wanted:
        return set()
    rows = await fetch_all(query, {"merchant_id": merchant_id, "ids": wanted})
    return {str(r["id"]) for r in rows}


async def existing_templates(merchant_id: UUID, ids: Iterable[str]) -> set[str]:
    return await _existing(Q.existing_templates, merchant_id, ids)


async def existing_segments(merchant_id: UUID, ids: Iterable[str]) -> set[str]:
    return await _existing(Q.existing_segments, merchant_id, ids)


async def existing_campaigns(merchant_id: UUID, ids: Iterable[str]) -> set[str]:
    return await _existing(Q.existing_campaigns, merchant_id, ids)


async def templates(merchant_id: UUID, ids: Iterable[str]) -> dict[str, Row]:
    wanted = [UUID(i) for i in ids]
    rows = await fetch_all(Q.get_templates, {"merchant_id": merchant_id, "ids": wanted})
    return {str(r["id"]): r for r in rows}


async def contacts(merchant_id: UUID, ids: Sequence[UUID]) -> dict[UUID, Row]:
    rows = await fetch_all(Q.get_contacts, {"merchant_id": merchant_id, "ids": list(ids)})
    return {r["id"]: r for r in rows}


async def get_contact(merchant_id: UUID, contact_id: UUID) -> Row | None:
    return await fetch_one(Q.get_contact, {"merchant_id": merchant_id, "id": contact_id})


# ------------------------------------------------------------------ counters


async def bump(merchant_id: UUID, campaign_id: UUID, **deltas: int) -> None:
    """Add ``deltas`` (names from COUNTERS) to the campaign's counters and to the
    current hour's bucket, in the caller's transaction. Lock order: call it after
    changing ledger rows (see campaigns.sql)."""
    if not any(deltas.values()):
        return
    unknown = set(deltas) - set(COUNTERS)
    if unknown:
        raise ValueError(f"unknown counters {sorted(unknown)}")
    params: dict[str, Any] = {name: int(deltas.get(name, 0)) for name in COUNTERS}
    await execute(
        Q.bump_counters, {**params, "merchant_id": merchant_id, "campaign_id": campaign_id}
    )


async def hourly(merchant_id: UUID, campaign_id: UUID, start: datetime, end: datetime) -> list[Row]:
    return await fetch_all(
        Q.hourly_metrics,
        {"merchant_id": merchant_id, "campaign_id": campaign_id, "start": start, "end": end},
    )


# ------------------------------------------------------------------ audience


async def snapshot(
    merchant_id: UUID,
    campaign: Row,
    draft: CampaignDraft,
    *,
    due_at: datetime,
    contact_id: UUID | None = None,
) -> int:
    """Resolve the audience (``domain.campaigns.audience``) into the ledger in ONE
    statement (INSERT … SELECT … ON CONFLICT DO NOTHING), each contact due at
    ``due_at``. Erased contacts no longer exist. With ``contact_id`` only that contact
    is considered (WELCOME enrolment). Returns the rows inserted; the caller bumps
    ``total``. Raises what ``compile_conditions`` raises for stored conditions that
    no longer compile."""
    account_id = campaign["account_id"]
    seg_rows = await fetch_all(
        Q.get_segments,
        {
            "merchant_id": merchant_id,
            "ids": [UUID(s) for s in draft.segment_ids + draft.exclude_segment_ids],
        },
    )
    who = audience(
        draft,
        account_id,
        {
            str(r["id"]): SegmentRef(str(r["id"]), r["account_id"], r["conditions"])
            for r in seg_rows
        },
    )
    if who is None:
        return 0
    params: dict[str, Any] = {
        "merchant_id": merchant_id,
        "campaign_id": campaign["id"],
        "account_id": account_id,
        "due_at": due_at,
        "contact_id": contact_id,
        "exclude_campaign_ids": [UUID(c) for c in who.exclude_campaign_ids],
    }

    def compiled(groups: list[dict[str, Any]], tag: str) -> list[sql.Composable]:
        parts: list[sql.Composable] = []
        for i, conditions in enumerate(groups):
            comp = compile_conditions(conditions, prefix=f"{tag}{i}_")
            params.update(comp.params)
            parts.append(sql.SQL("({})").format(comp.where))
        return parts

    include = compiled(who.include, "s")
    exclude = compiled(who.exclude, "x")
    where: list[sql.Composable] = [
        sql.SQL("c.merchant_id = %(merchant_id)s"),
        sql.SQL("c.account_id = %(account_id)s"),
        sql.SQL("NOT c.opted_out"),
    ]
    if contact_id is not None:
        where.append(sql.SQL("c.id = %(contact_id)s"))
    if include:
        where.append(sql.SQL("({})").format(sql.SQL(" OR ").join(include)))
    if exclude:
        where.append(sql.SQL("NOT ({})").format(sql.SQL(" OR ").join(exclude)))
    if who.exclude_campaign_ids:
        where.append(
            sql.SQL(
                "NOT EXISTS (SELECT 1 FROM campaign_recipients e"
                " WHERE e.merchant_id = %(merchant_id)s AND e.contact_id = c.id"
                " AND e.campaign_id = ANY(%(exclude_campaign_ids)s::uuid[])"
                " AND e.sent_at IS NOT NULL)"
            )
        )
    query = sql.SQL(
        "INSERT INTO campaign_recipients"
        " (merchant_id, campaign_id, contact_id, step, due_at, ready_at)"
        " SELECT %(merchant_id)s, %(campaign_id)s, c.id, 0, %(due_at)s, %(due_at)s"
        " FROM contacts c WHERE {}"
        " ON CONFLICT (campaign_id, contact_id, step) DO NOTHING"
    ).format(sql.SQL(" AND ").join(where))
    async with current_connection().cursor() as cur:
        await cur.execute(query, params)
        return cur.rowcount


async def skip_queued(merchant_id: UUID, campaign_id: UUID, reason: str) -> int:
    return await execute(
        Q.skip_queued, {"merchant_id": merchant_id, "campaign_id": campaign_id, "reason": reason}
    )


async def list_recipients(
    merchant_id: UUID,
    campaign_id: UUID,
    *,
    state: str | None,
    contact_id: UUID | None,
    after: tuple[datetime, UUID, int] | None,
    limit: int,
) -> list[Row]:
    return await fetch_all(
        Q.list_recipients,
        {
            "merchant_id": merchant_id,
            "campaign_id": campaign_id,
            "state": state,
            "contact_id": contact_id,
            "after_due": after[0] if after else None,
            "after_contact": after[1] if after else None,
            "after_step": after[2] if after else None,
            "limit": limit,
        },
    )


# ------------------------------------------------------------------ lifecycle


async def launch(merchant_id: UUID, campaign: Row, *, now: datetime) -> int:
    """SCHEDULED/DRAFT → RUNNING with the audience snapshotted now, due at
    ``domain.campaigns.launch_due_at`` (WELCOME enrols followers as they come
    instead). Runs in the caller's transaction with the campaign row locked. Returns
    the ledger rows created."""
    draft = draft_from_row(campaign)
    await set_status(merchant_id, campaign["id"], "RUNNING")
    due_at = launch_due_at(draft, now)
    if due_at is None:
        return 0
    n = await snapshot(merchant_id, campaign, draft, due_at=due_at)
    await bump(merchant_id, campaign["id"], total=n)
    return n


async def finish(merchant_id: UUID, campaign_id: UUID, status: str, reason: str) -> int:
    """Move a live campaign to COMPLETED or CANCELLED (lock held by the caller) and
    skip its unsent rows with ``reason`` ("campaign_cancelled", "end_time_passed")."""
    await set_status(
        merchant_id, campaign_id, status, "end_time passed" if reason == "end_time_passed" else ""
    )
    n = await skip_queued(merchant_id, campaign_id, reason)
    await bump(merchant_id, campaign_id, skipped=n)
    return n
