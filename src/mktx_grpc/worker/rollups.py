"""Analytics rollups: the ``analytics-rollups`` outbox consumer and the rebuild.

Every contact.*, conversation.* and message.* event names a contact and/or a
conversation; the consumer recomputes those contacts' and conversations' rollup
rows from raw data (store/analytics.py), once per batch however many events name
them. A rollup row is a function of raw data, never an increment, so a duplicated,
late or replayed event cannot double count, an erased contact's contribution
disappears with its rows, and the incremental rollups equal what
:func:`rebuild` computes (``mktx-grpc analytics rebuild``).

Business hours are each account's schedule at the time of recomputation: after an
account's schedule changes, ``rebuild`` brings older business-hours figures in line.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from ..core.db import use_connection
from ..domain import analytics as domain
from ..domain.schedule import Schedule, parse_hhmm, zone
from ..store import analytics as store
from ..store.events import OutboxEvent
from .consumer import Consumer

log = logging.getLogger(__name__)

#: Conversations (and contacts) recomputed per statement batch.
CHUNK = 500

_DAYS = {
    "DAY_OF_WEEK_MONDAY": 1,
    "DAY_OF_WEEK_TUESDAY": 2,
    "DAY_OF_WEEK_WEDNESDAY": 3,
    "DAY_OF_WEEK_THURSDAY": 4,
    "DAY_OF_WEEK_FRIDAY": 5,
    "DAY_OF_WEEK_SATURDAY": 6,
    "DAY_OF_WEEK_SUNDAY": 7,
}


def schedule_from_settings(business_hours: Any) -> Schedule | None:
    """The account's business hours from its stored settings (AccountSettings as
    JSON: ``{"enabled": true, "schedule": {"time_zone", "days": [...]}}``), or None
    when it has none (always open). A malformed stored schedule counts as none."""
    if not isinstance(business_hours, dict) or not business_hours.get("enabled"):
        return None
    sched = business_hours.get("schedule") or {}
    tz = zone(str(sched.get("time_zone", "")))
    if tz is None:
        return None
    spans: dict[int, list[tuple[int, int]]] = {}
    for day in sched.get("days", []) or []:
        raw = day.get("day")
        num = _DAYS.get(raw, raw if isinstance(raw, int) else 0)
        if not 1 <= int(num) <= 7:
            continue
        for r in day.get("ranges", []) or []:
            s, e = parse_hhmm(str(r.get("start", ""))), parse_hhmm(str(r.get("end", "")))
            if s is not None and e is not None and e > s:
                spans.setdefault(int(num), []).append((s, e))
    for v in spans.values():
        v.sort()
    return Schedule(tz, spans)


async def refresh_conversations(merchant_id: UUID, ids: Sequence[UUID]) -> None:
    """Recompute the episodes of the conversations ``ids`` on the current connection."""
    for i in range(0, len(ids), CHUNK):
        chunk = list(ids[i : i + CHUNK])
        convs = await store.conversations_for_rollup(merchant_id, chunk)
        msgs: dict[UUID, list[domain.Message]] = defaultdict(list)
        for conv_id, at, direction, origin, is_from_bot in await store.messages_for_rollup(
            merchant_id, chunk
        ):
            author = domain.message_author(direction, origin, is_from_bot)
            msgs[conv_id].append(domain.Message(at, author))
        hist: dict[UUID, list[domain.Transition]] = defaultdict(list)
        for h in await store.history_for_rollup(merchant_id, chunk):
            hist[h["conversation_id"]].append(
                domain.Transition(
                    h["created_at"], domain.TRANSITION_FOR_EVENT[h["type"]], h["assignee_user_id"]
                )
            )
        out: list[tuple[dict[str, Any], domain.Episode]] = []
        schedules: dict[UUID, Schedule | None] = {}
        for c in convs:
            if c["account_id"] not in schedules:
                schedules[c["account_id"]] = schedule_from_settings(c["business_hours"])
            eps = domain.episodes(
                created_at=c["created_at"],
                status=c["status"],
                closed_at=c["closed_at"],
                assignee=c["assignee_user_id"],
                transitions=hist[c["id"]],
                messages=msgs[c["id"]],
                schedule=schedules[c["account_id"]],
            )
            out.extend((c, ep) for ep in eps)
        await store.replace_episodes(merchant_id, chunk, out)


async def refresh_contacts(merchant_id: UUID, ids: Sequence[UUID]) -> None:
    """Recompute the contacts' rows and activity (an erased contact keeps none)."""
    for i in range(0, len(ids), CHUNK):
        chunk = list(ids[i : i + CHUNK])
        await store.refresh_contacts(merchant_id, chunk)


def _uuid(value: Any) -> UUID | None:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except (ValueError, TypeError):
        return None


@dataclass
class Affected:
    """What a batch of events names, for one merchant."""

    #: contact.* events: the contact row (source, tags, opt-out) and its activity.
    contacts: set[UUID] = field(default_factory=set)
    #: message.* events: only the contact's activity (interactions) can have changed.
    activity: set[UUID] = field(default_factory=set)
    conversations: set[UUID] = field(default_factory=set)
    deleted: set[UUID] = field(default_factory=set)


def affected(events: Sequence[OutboxEvent]) -> dict[UUID, Affected]:
    """Per merchant, the contacts and conversations ``events`` name (contact.*,
    conversation.* and message.* events; others are ignored)."""
    out: dict[UUID, Affected] = {}
    for ev in events:
        kind = ev.type.split(".", 1)[0]
        if kind not in ("contact", "conversation", "message"):
            continue
        a = out.setdefault(ev.merchant_id, Affected())
        contact = _uuid(ev.payload.get("contact_id"))
        conv = _uuid(ev.payload.get("conversation_id"))
        if kind == "contact":
            many = ev.payload.get("contact_ids")  # contact.imported: one per message
            if isinstance(many, list):
                a.contacts.update(u for u in map(_uuid, many) if u is not None)
            contact = contact or ev.aggregate_id
            if contact is not None:
                a.contacts.add(contact)
                if ev.type == "contact.deleted":
                    a.deleted.add(contact)
            continue
        conv = conv or ev.aggregate_id
        if conv is not None:
            a.conversations.add(conv)
        if kind == "message" and contact is not None:
            a.activity.add(contact)
    return out


async def apply_events(events: Sequence[OutboxEvent]) -> None:
    """The consumer's batch handler: recompute what ``events`` name."""
    for merchant_id, a in sorted(affected(events).items(), key=lambda kv: kv[0]):
        await store.lock_merchant(merchant_id)
        if a.contacts:
            await refresh_contacts(merchant_id, sorted(a.contacts))
        if a.activity - a.contacts:
            await store.refresh_activity(merchant_id, sorted(a.activity - a.contacts))
        if a.deleted:
            await store.delete_episodes_of_contacts(merchant_id, sorted(a.deleted))
        if a.conversations:
            await refresh_conversations(merchant_id, sorted(a.conversations))


#: Batches of up to 2,000 events: a conversation or contact named many times in a
#: batch (a burst of DMs) is recomputed once.
ANALYTICS_ROLLUPS = Consumer(name="analytics-rollups", handle_batch=apply_events, batch_size=2000)


async def rebuild(
    pool: AsyncConnectionPool,
    *,
    merchant_id: UUID | None = None,
    since: datetime | None = None,
) -> dict[str, int]:
    """Recompute rollups from raw data: for one merchant or all; every contact and
    conversation, or only those changed since ``since``; rows of erased ones are
    removed either way. Works in short transactions of :data:`CHUNK` contacts or
    conversations (each recomputed whole, under the merchant's rollup lock), so it
    holds the merchant's consumer pass back for one chunk at most (the outbox
    consumers themselves wait only for transactions writing the outbox, which a
    rebuild does not) and reports only ever see whole conversations. Returns counts."""
    async with use_connection(pool):
        merchants = [merchant_id] if merchant_id is not None else await store.rebuild_merchants()
    totals = {"merchants": 0, "contacts": 0, "conversations": 0}
    for m in merchants:
        async with use_connection(pool):
            contact_ids = await store.rebuild_contact_ids(m, since)
            conv_ids = await store.rebuild_conversation_ids(m, since)
        for ids, refresh in ((contact_ids, refresh_contacts), (conv_ids, refresh_conversations)):
            for i in range(0, len(ids), CHUNK):
                async with use_connection(pool, transaction=True):
                    await store.lock_merchant(m)
                    await refresh(m, ids[i : i + CHUNK])
        totals["merchants"] += 1
        totals["contacts"] += len(contact_ids)
        totals["conversations"] += len(conv_ids)
        log.info(
            "analytics rollups rebuilt",
            extra={
                "merchant_id": str(m),
                "contacts": len(contact_ids),
                "conversations": len(conv_ids),
            },
        )
    return totals
