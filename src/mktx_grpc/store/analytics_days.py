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

#: days_for_update's bit for each duration's values.
_BIT = {prefix: 1 << i for i, (prefix, _, _) in enumerate(days.DURATIONS)}


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


async def recompute_days(merchant_id: UUID, wanted: set[date], tz: ZoneInfo) -> None:
    """Recompute the day rows of ``wanted`` days from their episodes (every account)."""
    if not wanted:
        return
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
    await execute(Q.delete_days, {"merchant_id": merchant_id, "days": sorted(wanted)})
    await _write(merchant_id, seen.values(), wanted, tz)


async def refresh_days(merchant_id: UUID, removed: Sequence[Row], added: Sequence[Row]) -> None:
    """Bring the day rows in line with episode rows ``removed`` (as they were) and
    ``added`` (as they are now): each one's part is taken out of or added to the (at
    most four) days it counts in, for its account and for every account. A day whose
    row does not hold a removed part (it cannot happen unless rows were lost) is
    recomputed from its episodes. When the merchant's zone is not the one its day rows
    are cut in, every day is re-cut instead."""
    rollup_zone, current = await zones(merchant_id)
    if rollup_zone != _tz(current)[0]:
        await rebuild_days(merchant_id)
        return
    if not removed and not added:
        return
    _, tz = _tz(current)
    parts: list[tuple[tuple[UUID, date], Row, int]] = []
    for sign, eps in ((-1, removed), (1, added)):
        for ep in eps:
            for d in days.episode_days(ep, tz):
                parts.append(((ep["account_id"], d), ep, sign))
                parts.append(((days.ALL_ACCOUNTS, d), ep, sign))
    keys = sorted({k for k, _, _ in parts}, key=lambda k: (str(k[0]), k[1]))
    # Only the values of durations an episode change adds to or takes out of are
    # read and written back (a day's values are most of its row).
    wants: dict[tuple[UUID, date], int] = dict.fromkeys(keys, 0)
    for k, ep, _ in parts:
        for prefix in days.DayWork.durations_of(ep, k[1], tz):
            wants[k] |= _BIT[prefix]
    async with current_connection().cursor(binary=True) as cur:
        await cur.execute(
            Q.days_for_update,
            {
                "merchant_id": merchant_id,
                "account_ids": [k[0] for k in keys],
                "days": [k[1] for k in keys],
                "wants": [wants[k] for k in keys],
            },
        )
        names = [c.name for c in cur.description or ()]
        stored = {
            (r["account_id"], r["day"]): r
            for r in (dict(zip(names, t, strict=True)) for t in await cur.fetchall())
        }
    work = {
        k: days.DayWork.of_row(stored[k]) if k in stored else days.DayWork.empty() for k in keys
    }
    broken: set[date] = set()
    # Take out before adding: a rewritten episode's old values leave first.
    for k, ep, sign in sorted(parts, key=lambda p: p[2]):
        if not work[k].apply(ep, k[1], tz, sign):
            broken.add(k[1])
    inserts: list[Row] = []
    updates: list[Row] = []
    gone: list[tuple[UUID, date]] = []
    for k in keys:
        if k[1] in broken:
            continue
        w = work[k]
        if w.is_empty():
            if k in stored:
                gone.append(k)
            continue
        row = w.row(k[1])
        row.update(merchant_id=merchant_id, account_id=k[0])
        if k not in stored:
            inserts.append(row)
            continue
        updates.append(row)
    if gone:
        await execute(
            Q.delete_day_keys,
            {
                "merchant_id": merchant_id,
                "account_ids": [k[0] for k in gone],
                "days": [k[1] for k in gone],
            },
        )
    async with current_connection().cursor() as cur:
        if updates:
            await cur.executemany(Q.update_day, updates)
        if inserts:
            await cur.executemany(Q.insert_day, inserts)
    await recompute_days(merchant_id, broken, tz)


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
