"""Posts, their per-part publish ledger and their metrics (sql/queries/publishing.sql).

Every function runs on the current connection (the unit of work's, or one an
operation or loop borrowed with ``use_connection``) and takes the merchant id
explicitly, except the publisher's and the metrics reader's claims, which look across
merchants. Functions that a publisher calls while it holds a post name the post's
``token`` (its lease): they change nothing, and say so, once the lease was lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from ..core.context import current_connection
from ..domain.publishing import MetricsValues, PartDraft, PostDraft
from . import Jsonb, Queries, Row, execute, fetch_all, fetch_one

Q = Queries("publishing")


# ------------------------------------------------------------------ posts


def _media_json(part: PartDraft) -> list[dict[str, Any]]:
    return [
        {
            "url": m.url,
            "alt_text": m.alt_text,
            "declared": m.declared.value if m.declared else None,
        }
        for m in part.media
    ]


def _poll_json(part: PartDraft) -> dict[str, Any] | None:
    if part.poll is None:
        return None
    return {"options": list(part.poll.options), "duration_minutes": part.poll.duration_minutes}


async def insert_parts(merchant_id: UUID, post_id: UUID, parts: Sequence[PartDraft]) -> None:
    """Insert a post's parts in one pipelined executemany."""
    params = [
        {
            "merchant_id": merchant_id,
            "post_id": post_id,
            "idx": i,
            "text": p.text,
            "media": Jsonb(_media_json(p)),
            "poll": Jsonb(_poll_json(p)) if p.poll is not None else None,
        }
        for i, p in enumerate(parts)
    ]
    async with current_connection().cursor() as cur:
        await cur.executemany(Q.insert_part, params)


async def insert(
    merchant_id: UUID,
    draft: PostDraft,
    *,
    status: str,
    publish_at: datetime,
    lease: timedelta | None = None,
) -> Row:
    """Insert a post and its parts. With ``lease`` the post is inserted PUBLISHING and
    already claimed by the caller (its ``lease_token`` is in the returned row); else it
    waits for ``publish_at``."""
    params = {
        "id": uuid4(),
        "merchant_id": merchant_id,
        "account_id": UUID(draft.account_id),
        "status": status,
        "reply_settings": draft.reply_settings,
        "quote_post_id": draft.quote_post_id,
        "reply_to_post_id": draft.reply_to_post_id,
        "publish_at": publish_at,
        "due_at": publish_at,
        "ready_at": publish_at,
        "lease_until": publish_at + lease if lease is not None else None,
        "lease_token": uuid4() if lease is not None else None,
        "attempts": 1 if lease is not None else 0,
    }
    row = await fetch_one(Q.insert_post, params)
    assert row is not None
    await insert_parts(merchant_id, row["id"], draft.parts)
    return row


async def get(merchant_id: UUID, post_id: UUID, *, for_update: bool = False) -> Row | None:
    query = Q.get_post_for_update if for_update else Q.get_post
    return await fetch_one(query, {"merchant_id": merchant_id, "id": post_id})


async def parts(merchant_id: UUID, post_id: UUID) -> list[Row]:
    """The post's parts in thread order."""
    return await fetch_all(Q.get_parts, {"merchant_id": merchant_id, "post_id": post_id})


async def parts_of(merchant_id: UUID, post_ids: Sequence[UUID]) -> dict[UUID, list[Row]]:
    """The parts of several posts, each list in thread order."""
    out: dict[UUID, list[Row]] = {pid: [] for pid in post_ids}
    if not post_ids:
        return out
    for r in await fetch_all(
        Q.parts_of_posts, {"merchant_id": merchant_id, "post_ids": list(post_ids)}
    ):
        out[r["post_id"]].append(r)
    return out


async def list_page(
    merchant_id: UUID,
    *,
    account_id: UUID | None,
    status: str | None,
    show_deleted: bool,
    start_at: datetime | None,
    end_at: datetime | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Row]:
    return await fetch_all(
        Q.list_posts,
        {
            "merchant_id": merchant_id,
            "account_id": account_id,
            "status": status,
            "show_deleted": show_deleted,
            "start_at": start_at,
            "end_at": end_at,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )


async def update(merchant_id: UUID, post_id: UUID, draft: PostDraft, publish_at: datetime) -> Row:
    """Replace a scheduled post's fields and parts (the caller holds the row lock)."""
    row = await fetch_one(
        Q.update_post,
        {
            "merchant_id": merchant_id,
            "id": post_id,
            "reply_settings": draft.reply_settings,
            "quote_post_id": draft.quote_post_id,
            "reply_to_post_id": draft.reply_to_post_id,
            "publish_at": publish_at,
        },
    )
    assert row is not None
    await execute(Q.delete_parts, {"merchant_id": merchant_id, "post_id": post_id})
    await insert_parts(merchant_id, post_id, draft.parts)
    return row


async def set_status(merchant_id: UUID, post_id: UUID, status: str, reason: str = "") -> Row:
    """A client's lifecycle change; the caller holds the row lock."""
    row = await fetch_one(
        Q.set_status,
        {"merchant_id": merchant_id, "id": post_id, "status": status, "status_reason": reason},
    )
    assert row is not None
    return row


# ------------------------------------------------------------------ the publisher


@dataclass(frozen=True, slots=True)
class Claim:
    """A post a publisher holds: its lease token names every write it makes."""

    merchant_id: UUID
    post_id: UUID
    token: UUID
    #: The status when claimed (SCHEDULED: its time came; PUBLISHING: resumed).
    status: str
    due_at: datetime


async def claim_due(limit: int, lease: timedelta) -> list[Claim]:
    """Claim up to ``limit`` due posts across merchants (FOR UPDATE SKIP LOCKED)."""
    rows = await fetch_all(Q.claim_due_posts, {"limit": limit, "lease": lease})
    return [
        Claim(r["merchant_id"], r["id"], r["lease_token"], r["status"], r["due_at"]) for r in rows
    ]


async def take_lease(merchant_id: UUID, post_id: UUID, lease: timedelta) -> Claim:
    """Claim a post for the calling RPC (the caller holds the row lock and checked the
    status); it becomes PUBLISHING, due now."""
    row = await fetch_one(Q.take_lease, {"merchant_id": merchant_id, "id": post_id, "lease": lease})
    assert row is not None
    return Claim(merchant_id, post_id, row["lease_token"], row["status"], row["due_at"])


async def extend_lease(c: Claim, lease: timedelta) -> bool:
    """False when the lease was lost (another publisher took the post)."""
    row = await fetch_one(
        Q.extend_lease,
        {"merchant_id": c.merchant_id, "id": c.post_id, "token": c.token, "lease": lease},
    )
    return row is not None


async def start_publishing(c: Claim) -> Row | None:
    """The claimed post becomes PUBLISHING; None when the lease was lost."""
    return await fetch_one(
        Q.start_publishing, {"merchant_id": c.merchant_id, "id": c.post_id, "token": c.token}
    )


async def arm_part(c: Claim, idx: int, in_reply_to: str | None, lease: timedelta) -> Row | None:
    """Arm part ``idx`` before it is sent (and extend the post's lease); None when the
    lease was lost or the part is no longer sendable."""
    if not await extend_lease(c, lease):
        return None
    return await fetch_one(
        Q.arm_part,
        {
            "merchant_id": c.merchant_id,
            "post_id": c.post_id,
            "idx": idx,
            "token": c.token,
            "in_reply_to": in_reply_to,
        },
    )


async def disarm_part(c: Claim, idx: int) -> None:
    await execute(Q.disarm_part, {"merchant_id": c.merchant_id, "post_id": c.post_id, "idx": idx})


async def record_part_published(
    c: Claim, idx: int, *, x_post_id: str, url: str, published_at: datetime
) -> bool:
    """Record part ``idx`` as at X; False when it was already settled or the lease was
    lost (the post's etag moves with the part)."""
    if (
        await fetch_one(
            Q.touch_post, {"merchant_id": c.merchant_id, "id": c.post_id, "token": c.token}
        )
        is None
    ):
        return False
    row = await fetch_one(
        Q.record_part_published,
        {
            "merchant_id": c.merchant_id,
            "post_id": c.post_id,
            "idx": idx,
            "x_post_id": x_post_id,
            "url": url,
            "published_at": published_at,
        },
    )
    return row is not None


async def record_part_failed(c: Claim, idx: int, error: str) -> None:
    await execute(
        Q.record_part_failed,
        {"merchant_id": c.merchant_id, "post_id": c.post_id, "idx": idx, "error": error},
    )


async def set_part_media(c: Claim, idx: int, media: list[dict[str, Any]]) -> None:
    await execute(
        Q.set_part_media,
        {"merchant_id": c.merchant_id, "post_id": c.post_id, "idx": idx, "media": Jsonb(media)},
    )


async def finish(
    c: Claim,
    status: str,
    reason: str = "",
    *,
    published_at: datetime | None = None,
    metrics_next_at: datetime | None = None,
) -> Row | None:
    """The publisher is done: the post settles in ``status`` and is no longer leased."""
    return await fetch_one(
        Q.finish_post,
        {
            "merchant_id": c.merchant_id,
            "id": c.post_id,
            "token": c.token,
            "status": status,
            "status_reason": reason,
            "published_at": published_at,
            "metrics_next_at": metrics_next_at,
        },
    )


async def release(
    c: Claim, status: str, reason: str, *, ready_at: datetime, due_at: datetime | None = None
) -> Row | None:
    """The publisher stops for now; the post is taken again from ``ready_at``."""
    return await fetch_one(
        Q.release_post,
        {
            "merchant_id": c.merchant_id,
            "id": c.post_id,
            "token": c.token,
            "status": status,
            "status_reason": reason,
            "ready_at": ready_at,
            "due_at": due_at,
        },
    )


async def reset_failed_parts(merchant_id: UUID, post_id: UUID) -> None:
    await execute(Q.reset_failed_parts, {"merchant_id": merchant_id, "post_id": post_id})


async def known_x_post_ids(merchant_id: UUID, account_id: UUID, since: datetime) -> set[str]:
    rows = await fetch_all(
        Q.known_x_post_ids, {"merchant_id": merchant_id, "account_id": account_id, "since": since}
    )
    return {r["x_post_id"] for r in rows}


async def mark_part_deleted(merchant_id: UUID, post_id: UUID, idx: int) -> None:
    await execute(Q.mark_part_deleted, {"merchant_id": merchant_id, "post_id": post_id, "idx": idx})


# ------------------------------------------------------------------ metrics


async def claim_metrics_due(limit: int, hold: timedelta) -> list[Row]:
    """Posts whose metrics are due, across merchants (id, merchant_id, account_id,
    published_at), held for ``hold``."""
    return await fetch_all(Q.claim_metrics_due, {"limit": limit, "hold": hold})


async def published_parts(merchant_id: UUID, post_ids: Sequence[UUID]) -> dict[UUID, list[Row]]:
    """Each post's published parts (idx, x_post_id, published_at), in thread order."""
    out: dict[UUID, list[Row]] = {pid: [] for pid in post_ids}
    rows = await fetch_all(
        Q.published_parts_of_posts, {"merchant_id": merchant_id, "post_ids": list(post_ids)}
    )
    for r in rows:
        out[r["post_id"]].append(r)
    return out


async def record_metrics(
    merchant_id: UUID,
    post_id: UUID,
    observed_at: datetime,
    per_part: Sequence[tuple[int, MetricsValues]],
    total: MetricsValues,
    next_at: datetime | None,
) -> Row | None:
    """Store one reading of a post (a row per part) and its latest totals."""
    params = [
        {"merchant_id": merchant_id, "post_id": post_id, "observed_at": observed_at, "idx": idx}
        | v.as_dict()
        for idx, v in per_part
    ]
    if params:
        async with current_connection().cursor() as cur:
            await cur.executemany(Q.insert_metrics, params)
    return await fetch_one(
        Q.set_post_metrics,
        {
            "merchant_id": merchant_id,
            "id": post_id,
            "metrics": Jsonb(total.as_dict()),
            "metrics_at": observed_at,
            "metrics_next_at": next_at,
        },
    )


async def defer_metrics(
    merchant_id: UUID, post_ids: Sequence[UUID], until: datetime | None
) -> None:
    """Plan the posts' next reading at ``until`` (None: no more readings)."""
    await execute(
        Q.defer_metrics, {"merchant_id": merchant_id, "ids": list(post_ids), "until": until}
    )


async def metrics_history(
    merchant_id: UUID,
    post_id: UUID,
    *,
    start_at: datetime | None,
    end_at: datetime | None,
    limit: int,
) -> list[Row]:
    return await fetch_all(
        Q.metrics_history,
        {
            "merchant_id": merchant_id,
            "post_id": post_id,
            "start_at": start_at,
            "end_at": end_at,
            "limit": limit,
        },
    )


async def latest_part_metrics(merchant_id: UUID, post_id: UUID) -> list[Row]:
    return await fetch_all(Q.latest_part_metrics, {"merchant_id": merchant_id, "post_id": post_id})


# ------------------------------------------------------------------ holds


async def hold(merchant_id: UUID, post_id: UUID, lease: timedelta) -> UUID:
    """Hold the post for the calling RPC without changing its status (the caller holds
    the row lock); returns the hold's token."""
    row = await fetch_one(Q.hold_post, {"merchant_id": merchant_id, "id": post_id, "lease": lease})
    assert row is not None
    return UUID(str(row["lease_token"]))


async def drop_hold(merchant_id: UUID, post_id: UUID, token: UUID) -> None:
    await execute(Q.drop_hold, {"merchant_id": merchant_id, "id": post_id, "token": token})
