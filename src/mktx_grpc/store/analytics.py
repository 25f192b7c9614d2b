"""Analytics rollups and report reads (sql/queries/analytics.sql).

The writers recompute the rollup rows of a batch of contacts or conversations from
raw data, so they are idempotent: the outbox consumer (worker/rollups.py) and the
rebuild command call the same functions. The readers aggregate rollup rows for a
report period in the merchant's time zone.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

from ..core.context import current_connection
from ..core.db import gather_reads
from ..domain import analytics as domain
from . import Queries, Row, execute, fetch_all, fetch_one

Q = Queries("analytics")

#: The outbox event types that make up a conversation's status history.
HISTORY_TYPES = sorted(domain.TRANSITION_FOR_EVENT)


# ------------------------------------------------------------------ writers


async def lock_merchant(merchant_id: UUID) -> None:
    """Hold the merchant's rollup lock until the transaction ends (consumer passes and
    rebuilds of one merchant run one at a time)."""
    await execute(Q.lock_merchant_rollups, {"merchant_id": merchant_id})


async def conversations_for_rollup(merchant_id: UUID, ids: Sequence[UUID]) -> list[Row]:
    return await fetch_all(Q.conversations_for_rollup, {"merchant_id": merchant_id, "ids": ids})


async def messages_for_rollup(
    merchant_id: UUID, ids: Sequence[UUID]
) -> list[tuple[UUID, datetime, str, str, bool]]:
    """(conversation_id, created_at, direction, origin, is_from_bot) of every message
    of the conversations, in order; plain tuples (this is the consumer's largest read)."""
    async with current_connection().cursor(binary=True) as cur:
        await cur.execute(Q.messages_for_rollup, {"merchant_id": merchant_id, "ids": ids})
        return await cur.fetchall()


async def history_for_rollup(merchant_id: UUID, ids: Sequence[UUID]) -> list[Row]:
    return await fetch_all(
        Q.history_for_rollup, {"merchant_id": merchant_id, "ids": ids, "types": HISTORY_TYPES}
    )


#: insert_episodes' columns after merchant_id, in episodes_for_rollup's order.
EPISODE_COLUMNS = (
    "conversation_id",
    "episode",
    "account_id",
    "contact_id",
    "status",
    "assignee_user_id",
    "opened_at",
    "first_inbound_at",
    "first_bot_reply_at",
    "handoff_at",
    "first_human_reply_at",
    "resolved_at",
    "first_response_s",
    "first_response_bh_s",
    "bot_response_s",
    "bot_handled_s",
    "resolution_s",
    "resolution_bh_s",
    "bot_replied",
    "human_replied",
    "escalated",
    "bot_only",
    "last_bot_reply_at",
    "contact_after_bot_at",
    "last_message_at",
)

#: The Episode fields behind EPISODE_COLUMNS after the conversation's own columns
#: (the episode's index is ``episode``, its assignee ``assignee_user_id``).
_EPISODE_FIELDS = tuple({"assignee_user_id": "assignee"}.get(c, c) for c in EPISODE_COLUMNS[4:])

#: The double precision columns of EPISODE_COLUMNS.
_SECONDS_COLUMNS = tuple(c for c in EPISODE_COLUMNS if c.endswith("_s"))

#: The columns a new message can change in a live episode (update_live_episodes).
LIVE_COLUMNS = (
    "first_bot_reply_at",
    "first_human_reply_at",
    "first_response_s",
    "first_response_bh_s",
    "bot_response_s",
    "bot_replied",
    "human_replied",
    "last_bot_reply_at",
    "contact_after_bot_at",
    "last_message_at",
)


async def replace_episodes(
    merchant_id: UUID,
    conversation_ids: Sequence[UUID],
    episodes: Sequence[tuple[Row, domain.Episode]],
) -> None:
    """Make the episode rows of ``conversation_ids`` exactly ``episodes`` (pairs of
    the conversation row and one of its episodes); conversations without episodes
    (gone) lose their rows. Only rows that differ are written: most recomputations
    (another message in a conversation already answered) change nothing, and the
    consumer's cost is then a read."""
    wanted: dict[tuple[UUID, int], tuple[Any, ...]] = {}
    for conv, ep in episodes:
        own = (getattr(ep, c) for c in _EPISODE_FIELDS)
        row = (conv["id"], ep.index, conv["account_id"], conv["contact_id"], *own)
        wanted[(row[0], row[1])] = row
    async with current_connection().cursor(binary=True) as cur:
        await cur.execute(
            Q.episodes_for_rollup, {"merchant_id": merchant_id, "ids": list(conversation_ids)}
        )
        stored = {(r[0], r[1]): r for r in await cur.fetchall()}
    stale = [key for key, row in stored.items() if key not in wanted or wanted[key] != tuple(row)]
    changed = set(stale)
    fresh = [row for key, row in wanted.items() if key not in stored or key in changed]
    if stale:
        await execute(
            Q.delete_episode_keys,
            {
                "merchant_id": merchant_id,
                "conversation_ids": [k[0] for k in stale],
                "episodes": [k[1] for k in stale],
            },
        )
    if fresh:
        # One statement over column arrays, sent binary (no per-row statements, no
        # text escaping of the arrays).
        p: dict[str, Any] = {"merchant_id": merchant_id}
        p.update((c, [r[i] for r in fresh]) for i, c in enumerate(EPISODE_COLUMNS))
        for c in _SECONDS_COLUMNS:  # a list of one type (an int 0 beside floats)
            p[c] = [None if v is None else float(v) for v in p[c]]
        async with current_connection().cursor(binary=True) as cur:
            await cur.execute(Q.insert_episodes, p)


async def live_episodes(merchant_id: UUID, conversation_ids: Sequence[UUID]) -> list[Row]:
    """Per conversation, its current status, assignee, account, contact and business
    hours (``conv_*``, ``business_hours``) beside its last stored episode row (NULL
    columns when it has none); conversations that are gone are missing."""
    return await fetch_all(
        Q.live_episodes, {"merchant_id": merchant_id, "ids": list(conversation_ids)}
    )


async def messages_by_id(
    merchant_id: UUID, message_ids: Sequence[UUID]
) -> list[tuple[UUID, UUID, datetime, str, str, bool]]:
    """(id, conversation_id, created_at, direction, origin, is_from_bot) of the
    messages that still exist."""
    async with current_connection().cursor(binary=True) as cur:
        await cur.execute(Q.messages_by_id, {"merchant_id": merchant_id, "ids": list(message_ids)})
        return await cur.fetchall()


async def update_live_episodes(
    merchant_id: UUID, episodes: Sequence[tuple[UUID, domain.Episode]]
) -> None:
    """Write the live columns (:data:`LIVE_COLUMNS`) of ``episodes`` (pairs of the
    conversation id and its extended last episode) in one statement."""
    if not episodes:
        return
    p: dict[str, Any] = {
        "merchant_id": merchant_id,
        "conversation_id": [c for c, _ in episodes],
        "episode": [ep.index for _, ep in episodes],
        **{col: [getattr(ep, col) for _, ep in episodes] for col in LIVE_COLUMNS},
    }
    await execute(Q.update_live_episodes, p)


async def delete_episodes_of_contacts(merchant_id: UUID, contact_ids: Sequence[UUID]) -> None:
    await execute(
        Q.delete_episodes_of_contacts, {"merchant_id": merchant_id, "ids": list(contact_ids)}
    )


async def refresh_contacts(merchant_id: UUID, contact_ids: Sequence[UUID]) -> None:
    """Recompute the contacts' rows and activity buckets from raw data (an erased
    contact keeps none)."""
    p = {"merchant_id": merchant_id, "ids": list(contact_ids)}
    await execute(Q.delete_contacts, p)
    await execute(Q.insert_contacts, p)
    await execute(Q.delete_contact_activity, p)
    await execute(Q.insert_contact_activity, p)


async def refresh_activity(merchant_id: UUID, contact_ids: Sequence[UUID]) -> None:
    """Bring the contacts' activity buckets up to date after new messages: interactions
    are only ever added between contact refreshes (an erased contact's go with a
    contact.* event, which recomputes them whole), so the missing buckets are added
    and the rest stay, with the same result as recomputing them."""
    await execute(Q.add_contact_activity, {"merchant_id": merchant_id, "ids": list(contact_ids)})


async def rebuild_merchants() -> list[UUID]:
    """Every merchant with contacts or rollup rows (reads across merchants: the
    operator's rebuild of everything)."""
    return [r["merchant_id"] for r in await fetch_all(Q.rebuild_merchants, {})]


async def rebuild_contact_ids(merchant_id: UUID, since: datetime | None) -> list[UUID]:
    rows = await fetch_all(Q.rebuild_contact_ids, {"merchant_id": merchant_id, "since": since})
    return [r["id"] for r in rows]


async def rebuild_conversation_ids(merchant_id: UUID, since: datetime | None) -> list[UUID]:
    rows = await fetch_all(Q.rebuild_conversation_ids, {"merchant_id": merchant_id, "since": since})
    return [r["id"] for r in rows]


async def dump(merchant_id: UUID) -> dict[str, list[Row]]:
    """Every rollup row of the merchant (tests and operators compare rollups)."""
    p = {"merchant_id": merchant_id}
    return {
        "episodes": await fetch_all(Q.dump_episodes, p),
        "contacts": await fetch_all(Q.dump_contacts, p),
        "activity": await fetch_all(Q.dump_activity, p),
    }


# ------------------------------------------------------------------ lookups


async def time_zone(merchant_id: UUID) -> str:
    row = await fetch_one(Q.time_zone, {"merchant_id": merchant_id})
    return str(row["time_zone"]) if row is not None else "UTC"


async def account_exists(merchant_id: UUID, account_id: UUID) -> bool:
    return (
        await fetch_one(Q.account_exists, {"merchant_id": merchant_id, "id": account_id})
        is not None
    )


async def campaign_exists(merchant_id: UUID, campaign_id: UUID) -> bool:
    row = await fetch_one(Q.campaign_exists, {"merchant_id": merchant_id, "id": campaign_id})
    return row is not None


# ------------------------------------------------------------------ readers


#: The report queries, by name: looked up at import, so a misspelled one fails at once.
READERS: dict[str, str] = {
    name: getattr(Q, name)
    for name in (
        "contact_totals",
        "active_contacts",
        "new_contacts_series",
        "active_contacts_buckets",
        "opt_outs_series",
        "top_tags",
        "episodes_opened_buckets",
        "first_response_buckets",
        "resolution_buckets",
        "per_assignee",
        "campaign_series",
        "campaign_counts",
        "automation_counts",
        "automation_series",
        "automation_funnel",
        "post_readings",
        "posts_published",
        "posts_published_count",
        "overview",
        "conversation_totals",
    )
}


async def read(name: str, params: dict[str, Any]) -> list[Row]:
    """Run report query ``name`` (one of :data:`READERS`) with the report parameters
    (merchant_id, account_id, start, end, tz, unit, and what the query adds).

    Report queries are never prepared: PostgreSQL plans each one for its own period
    and account filter. A prepared statement switches to a generic plan after five
    runs, which cannot know how much of the index a period covers; at issue 12's
    scale that plan made GetOverview's query 36 -> 49 ms and per_assignee
    16 -> 35 ms, where planning costs about a millisecond."""
    return await fetch_all(READERS[name], params, prepare=False)


#: The report queries that return exactly one row (aggregates): read with read_one.
_ONE_ROW = frozenset({"conversation_totals", "contact_totals", "active_contacts", "overview"})


async def read_side_by_side(params: dict[str, Any], *groups: Sequence[str]) -> dict[str, Any]:
    """Run report queries in ``groups``: the groups side by side (``gather_reads``: in
    one snapshot when the call is a ``snapshot`` read), each group's queries in turn.
    Returns each query's rows by its name (a one-row query's row itself)."""

    async def group(names: Sequence[str]) -> dict[str, Any]:
        return {n: await (read_one if n in _ONE_ROW else read)(n, params) for n in names}

    out: dict[str, Any] = {}
    for part in await gather_reads(*(partial(group, g) for g in groups)):
        out |= part
    return out


async def overview_report(params: dict[str, Any]) -> dict[str, Any]:
    """GetOverview's three queries in two groups about equal in cost at issue 12's
    scale (the distinct active contacts, 16 ms of SQL there, beside the contact counts
    and the rest, 13 and 11 ms)."""
    return await read_side_by_side(params, ("active_contacts",), ("contact_totals", "overview"))


#: GetConversationAnalytics' queries in two groups about equal in cost at issue 12's
#: scale (47 and 55 ms of the 90-day report's SQL there; p50 49.0, 48.4, 49.2 ms
#: against 52.2, 50.7, 48.4 with the first split tried, alternated).
CONVERSATION_GROUPS = (
    ("conversation_totals", "resolution_buckets"),
    ("per_assignee", "first_response_buckets", "episodes_opened_buckets"),
)


async def conversation_report(
    params: dict[str, Any], only: Collection[str] | None = None
) -> dict[str, Any]:
    """GetConversationAnalytics' queries (those named in ``only``, when given): the
    :data:`CONVERSATION_GROUPS` side by side."""
    return await _report(params, CONVERSATION_GROUPS, only)


#: GetContactAnalytics' six queries in two groups.
CONTACT_GROUPS = (
    ("active_contacts", "contact_totals", "opt_outs_series"),
    ("top_tags", "new_contacts_series", "active_contacts_buckets"),
)


async def contact_report(
    params: dict[str, Any], only: Collection[str] | None = None
) -> dict[str, Any]:
    """GetContactAnalytics' queries (those named in ``only``, when given): the
    :data:`CONTACT_GROUPS` side by side; ``params`` has ``limit`` for ``top_tags`` and
    the buckets' bounds."""
    return await _report(params, CONTACT_GROUPS, only)


async def _report(
    params: dict[str, Any], groups: Sequence[Sequence[str]], only: Collection[str] | None
) -> dict[str, Any]:
    """The queries of ``groups`` named in ``only`` (all when None), the groups side by
    side (:func:`read_side_by_side`)."""
    wanted = [[n for n in g if only is None or n in only] for g in groups]
    wanted = [g for g in wanted if g]
    return await read_side_by_side(params, *wanted) if wanted else {}


async def read_one(name: str, params: dict[str, Any]) -> Row:
    """Like :func:`read` for a query that returns exactly one row (aggregates)."""
    row = await fetch_one(READERS[name], params, prepare=False)
    assert row is not None
    return row
