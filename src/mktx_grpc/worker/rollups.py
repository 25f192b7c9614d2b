"""Analytics rollups: the ``analytics-rollups`` outbox consumer and the rebuild.

Every contact.*, conversation.* and message.* event names a contact and/or a
conversation; the consumer recomputes those contacts' and conversations' rollup
rows from raw data (store/analytics.py), once per batch however many events name
them. A rollup row is a function of raw data, never an increment, so a duplicated,
late or replayed event cannot double count, an erased contact's contribution
disappears with its rows, and the incremental rollups equal what
:func:`rebuild` computes (``mktx-grpc analytics rebuild``).

A conversation that only gained messages (no conversation.* event names it in the
batch) has its live episode *extended* instead (:func:`extend_conversations`): the
stored row keeps what a new message needs (``domain.analytics.extend_episode``), so
the new messages alone are read, not the conversation's history. Whenever that cannot
give exactly what the recomputation would (a message not newer than the episode's
latest, a first inbound message, a human reply after the bot's, a status or assignee
the row does not have, no stored row), the conversation is recomputed as above. A
conversation a campaign created and that never went live has no episode: its messages
change nothing, and nothing is read for it beyond its row.
message.delivered and message.read change no episode input and recompute nothing.

Business hours are each account's schedule at the time an episode was last
recomputed or extended: after an account's schedule changes, ``rebuild`` brings
older business-hours figures in line.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from ..core import metrics as core_metrics
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
                created_closed=c["created_closed"],
                status=c["status"],
                closed_at=c["closed_at"],
                assignee=c["assignee_user_id"],
                transitions=hist[c["id"]],
                messages=msgs[c["id"]],
                schedule=schedules[c["account_id"]],
            )
            out.extend((c, ep) for ep in eps)
        await store.replace_episodes(merchant_id, chunk, out)


#: Episode fields stored in columns of the same name (index and assignee are
#: ``episode`` and ``assignee_user_id``).
_STORED_FIELDS = tuple(
    f.name
    for f in fields(domain.Episode)
    if f.name not in ("index", "assignee", "messages", "transitions")
)


def _live_episode(row: dict[str, Any]) -> domain.Episode | None:
    """The stored last episode of a live_episodes row, or None when the row cannot be
    extended (none stored, or it disagrees with the conversation's current status,
    assignee, account or contact: something changed that no event in the batch said)."""
    if row["episode"] is None or (
        row["status"] != row["conv_status"]
        or row["assignee_user_id"] != row["conv_assignee"]
        or row["account_id"] != row["conv_account_id"]
        or row["contact_id"] != row["conv_contact_id"]
    ):
        return None
    return domain.Episode(
        index=row["episode"],
        assignee=row["assignee_user_id"],
        **{f: row[f] for f in _STORED_FIELDS},
    )


async def extend_conversations(merchant_id: UUID, new: dict[UUID, set[UUID]]) -> set[UUID]:
    """Extend the live episodes of the conversations in ``new`` (conversation id ->
    the ids of its messages the events name) on the current connection. Returns the
    conversations that must be recomputed instead (:func:`refresh_conversations`)."""
    recompute: set[UUID] = set()
    conv_ids = sorted(new)
    for i in range(0, len(conv_ids), CHUNK):
        chunk = conv_ids[i : i + CHUNK]
        rows = {r["conversation_id"]: r for r in await store.live_episodes(merchant_id, chunk)}
        named = sorted({m for c in chunk for m in new[c]})
        found: dict[UUID, list[tuple[UUID, domain.Message]]] = defaultdict(list)
        for mid, conv, at, direction, origin, is_from_bot in await store.messages_by_id(
            merchant_id, named
        ):
            found[conv].append(
                (mid, domain.Message(at, domain.message_author(direction, origin, is_from_bot)))
            )
        schedules: dict[UUID, Schedule | None] = {}
        updates: list[tuple[UUID, domain.Episode]] = []
        for conv in chunk:
            row = rows.get(conv)
            if row is not None and row["never_live"] and row["episode"] is None:
                continue  # a campaign's closed conversation: no episode to write
            ep = _live_episode(row) if row is not None else None
            msgs = found.get(conv, [])
            if ep is None or {mid for mid, _ in msgs} != new[conv]:
                # No row to extend, or a named message is gone or in another conversation.
                recompute.add(conv)
                continue
            assert row is not None
            if row["conv_account_id"] not in schedules:
                schedules[row["conv_account_id"]] = schedule_from_settings(row["business_hours"])
            out = domain.extend_episode(
                ep,
                sorted((m for _, m in msgs), key=lambda m: m.at),
                schedules[row["conv_account_id"]],
            )
            if out is None:
                recompute.add(conv)
            elif out != ep:
                updates.append((conv, out))
        await store.update_live_episodes(merchant_id, updates)
    return recompute


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
    #: message.* events (but outbound ones, which the contact did not start): only the
    #: contact's activity (interactions) can have changed.
    activity: set[UUID] = field(default_factory=set)
    #: Conversations to recompute: named by a conversation.* event, or by a message
    #: event that names no message.
    conversations: set[UUID] = field(default_factory=set)
    #: Conversations named only by message events, with the messages they name: their
    #: live episodes may be extended (:func:`extend_conversations`).
    messages: dict[UUID, set[UUID]] = field(default_factory=lambda: defaultdict(set))
    deleted: set[UUID] = field(default_factory=set)


#: Message events that change only a message's delivery state, none of the facts an
#: episode is measured from (its time, direction, origin or bot flag).
STATE_ONLY = frozenset({"message.delivered", "message.read"})


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
        if kind == "message" and contact is not None and ev.payload.get("direction") != "OUTBOUND":
            # Activity counts what the contact started; an outbound message is not.
            a.activity.add(contact)
        if conv is None or ev.type in STATE_ONLY:
            continue
        message = _uuid(ev.payload.get("message_id")) if kind == "message" else None
        if message is not None:
            a.messages[conv].add(message)
        else:
            a.conversations.add(conv)
    for a in out.values():
        for conv in a.conversations & a.messages.keys():
            del a.messages[conv]
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
        again = await extend_conversations(merchant_id, a.messages) if a.messages else set()
        recompute = a.conversations | again
        if recompute:
            await refresh_conversations(merchant_id, sorted(recompute))
        counts = core_metrics.get().analytics_conversations
        if len(a.messages) > len(again):
            counts.labels("extended").inc(len(a.messages) - len(again))
        if recompute:
            counts.labels("recomputed").inc(len(recompute))


#: Batches of up to 2,000 events: a conversation or contact named many times in a
#: batch (a burst of DMs) is recomputed once. Derived: every row it writes is a
#: function of raw data, so its passes need not wait for the disk flush. It lingers
#: 0.1 s between passes while events trickle in (a campaign or flow commits its DMs
#: 64 at a time): a pass costs more than its events, and reports may lag (≤ 2 s).
ANALYTICS_ROLLUPS = Consumer(
    name="analytics-rollups",
    handle_batch=apply_events,
    batch_size=2000,
    derived=True,
    linger=0.1,
)


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
