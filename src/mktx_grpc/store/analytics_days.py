"""Analytics day rollups (sql/queries/analytics_days.sql): recomputing days from the
episode rows, and the report reads of whole days. Definitions in
domain/analytics_days.py."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from ..core.context import current_connection
from ..domain import analytics_days as days
from ..domain.schedule import zone
from . import Queries, Row, execute, fetch_all, fetch_one

Q = Queries("analytics_days")


async def zones(merchant_id: UUID) -> tuple[str | None, str]:
    """(the zone the day rows are cut in or None, the merchant's current zone)."""
    row = await fetch_one(Q.day_zone, {"merchant_id": merchant_id})
    assert row is not None
    return row["rollup_zone"], str(row["time_zone"])


def _tz(name: str) -> tuple[str, ZoneInfo]:
    tz = zone(name)
    if tz is None:
        name, tz = "UTC", zone("UTC")
    assert tz is not None
    return name, tz


async def _write(
    merchant_id: UUID, eps: Iterable[Row], wanted: set[date] | None, tz: ZoneInfo
) -> None:
    """Insert the day rows of ``wanted`` days (every day when None) from ``eps``."""
    by_day: dict[tuple[UUID, date], list[Row]] = defaultdict(list)
    for ep in eps:
        for d in days.episode_days(ep, tz):
            if wanted is None or d in wanted:
                by_day[(ep["account_id"], d)].append(ep)
                by_day[(days.ALL_ACCOUNTS, d)].append(ep)
    rows = []
    for (account, d), group in sorted(by_day.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        row = days.day_row(d, group, tz)
        row.update(merchant_id=merchant_id, account_id=account)
        rows.append(row)
    if rows:
        async with current_connection().cursor() as cur:
            await cur.executemany(Q.insert_day, rows)


async def rebuild_days(merchant_id: UUID) -> None:
    """Re-cut every day row of the merchant in its current zone."""
    _, current = await zones(merchant_id)
    name, tz = _tz(current)
    await execute(Q.delete_all_days, {"merchant_id": merchant_id})
    eps = await fetch_all(Q.all_episodes_for_days, {"merchant_id": merchant_id})
    await _write(merchant_id, eps, None, tz)
    await execute(Q.set_day_zone, {"merchant_id": merchant_id, "time_zone": name})


async def refresh_days(merchant_id: UUID, changed: Sequence[Row]) -> None:
    """Recompute the day rows the episode rows ``changed`` (as they were before and as
    they are now: anything with the episode instants) count in. When the merchant's
    zone is not the one its day rows are cut in, every day is re-cut instead."""
    rollup_zone, current = await zones(merchant_id)
    if rollup_zone != _tz(current)[0]:
        await rebuild_days(merchant_id)
        return
    if not changed:
        return
    _, tz = _tz(current)
    wanted: set[date] = set()
    for ep in changed:
        wanted |= days.episode_days(ep, tz)
    # One span per run of consecutive days (an episode in several runs comes once).
    spans: list[tuple[Any, Any]] = []
    prev: date | None = None
    for d in sorted(wanted):
        s, e = days.day_span(d, tz)
        if prev is not None and d - prev == timedelta(days=1):
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
        prev = d
    seen: dict[tuple[Any, Any], Row] = {}
    for ep in await edge_episodes(merchant_id, None, spans):
        seen[(ep["conversation_id"], ep["episode"])] = ep
    eps = list(seen.values())
    await execute(Q.delete_days, {"merchant_id": merchant_id, "days": sorted(wanted)})
    await _write(merchant_id, eps, wanted, tz)


# ------------------------------------------------------------------ readers


async def day_rows(
    merchant_id: UUID, account_id: UUID | None, first: date, last: date, *, overview: bool = False
) -> list[Row]:
    async with current_connection().cursor(binary=True) as cur:
        await cur.execute(
            Q.day_rows_overview if overview else Q.day_rows,
            {
                "merchant_id": merchant_id,
                "account_id": account_id or days.ALL_ACCOUNTS,
                "first_day": first,
                "last_day": last,
            },
        )
        names = [c.name for c in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]


async def edge_episodes(
    merchant_id: UUID, account_id: UUID | None, spans: Sequence[tuple[Any, Any]]
) -> list[Row]:
    """Episode rows with an instant in one of ``spans`` (the period outside its whole
    days), for one account or all."""
    out: list[Row] = []
    for s, e in spans:
        out += await fetch_all(
            Q.episodes_in_span,
            {"merchant_id": merchant_id, "account_id": account_id, "s": s, "e": e},
        )
    return out


async def slices(
    merchant_id: UUID,
    account_id: UUID | None,
    first: date,
    last: date,
    buckets: dict[str, list[int]],
) -> dict[tuple[str, int], tuple[float, float, list[float] | None]]:
    """Per (duration, bucket) named: the day rows' smallest and largest value there,
    and the values unless those two are equal."""
    p: dict[str, Any] = {
        "merchant_id": merchant_id,
        "account_id": account_id or days.ALL_ACCOUNTS,
        "first_day": first,
        "last_day": last,
    }
    for prefix, _, _ in days.DURATIONS:
        p[prefix] = buckets.get(prefix, [])
    async with current_connection().cursor(binary=True) as cur:
        await cur.execute(Q.day_slices, p)
        return {
            (m, b): (lo, hi, None if v is None else list(v))
            for m, b, lo, hi, v in await cur.fetchall()
        }


async def overview_rest(params: dict[str, Any]) -> Row:
    row = await fetch_one(Q.overview_rest, params)
    assert row is not None
    return row
