"""Day rollups (0019): kept incrementally equal to a rebuild, and reports read from
them give the figures the episode rows give (the path taken when the day rows are cut
in another zone), over periods with partly covered days, per account and for all."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import pytest
from analytics_helpers import World, settle
from google.protobuf.json_format import MessageToDict
from test_analytics_rollups import T0, random_history
from test_analytics_service import period, stub

from mktx.v1 import analytics_pb2 as A
from mktx_grpc.core.db import use_connection
from mktx_grpc.store import analytics as store
from mktx_grpc.worker.rollups import rebuild


async def days_of(pool: Any, merchant: uuid.UUID) -> list[Any]:
    async with use_connection(pool):
        return await store.dump_days(merchant)


async def reports(api: Any, merchant: uuid.UUID, account: str) -> list[dict[str, Any]]:
    out = []
    for start, end in (
        (T0 - timedelta(hours=5), T0 + timedelta(days=4, hours=7)),  # edges both ends
        (T0 - timedelta(days=1), T0 + timedelta(days=6)),
    ):
        for gran in (A.REPORT_GRANULARITY_DAY, A.REPORT_GRANULARITY_WEEK):
            conv = await stub(api).GetConversationAnalytics(
                A.GetConversationAnalyticsRequest(
                    period=period(start, end), granularity=gran, account_id=account
                ),
                metadata=api.auth(merchant),
            )
            out.append(MessageToDict(conv))
        ov = await stub(api).GetOverview(
            A.GetOverviewRequest(period=period(start, end), account_id=account),
            metadata=api.auth(merchant),
        )
        out.append(MessageToDict(ov))
    return out


def close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return bool(float(a) == pytest.approx(float(b), rel=1e-9, abs=1e-9))
    return bool(a == b)


@pytest.mark.parametrize("seed", [2, 3])
async def test_day_rollups_equal_the_rebuild_and_the_episode_rows(
    api: Any, world: World, pool: Any, merchant: uuid.UUID, db: Any, seed: int
) -> None:
    await world.set_time_zone("Europe/Berlin")
    convs = await random_history(random.Random(seed), world, pool, api, steps=120)
    await settle(pool)
    incremental = await days_of(pool, merchant)
    assert incremental, "no day rows"
    await rebuild(pool, merchant_id=merchant)
    assert await days_of(pool, merchant) == incremental
    assert convs
    cur = await db.execute("SELECT id FROM accounts WHERE merchant_id = %s", (merchant,))
    accounts = sorted(str(r[0]) for r in await cur.fetchall())
    assert len(accounts) == 2
    for account in ["", *accounts]:
        from_days = await reports(api, merchant, account)
        # Rows cut in another zone are not read: the reports come from the episodes.
        await db.execute(
            "UPDATE analytics_day_zone SET time_zone = 'UTC' WHERE merchant_id = %s", (merchant,)
        )
        from_episodes = await reports(api, merchant, account)
        await db.execute(
            "UPDATE analytics_day_zone SET time_zone = 'Europe/Berlin' WHERE merchant_id = %s",
            (merchant,),
        )
        assert close(from_days, from_episodes), account


async def test_a_time_zone_change_recuts_the_days(
    api: Any, world: World, pool: Any, merchant: uuid.UUID, db: Any
) -> None:
    acct = await world.account()
    contact = await world.contact(acct, T0)
    conv = await world.conversation(acct, contact, T0)
    # The merchant's zone is UTC: 23:30 and 23:40 on T0's day.
    await world.message(conv, T0 + timedelta(hours=15, minutes=30))
    await world.message(conv, T0 + timedelta(hours=15, minutes=40), "AGENT")
    await settle(pool)
    assert {r["day"] for r in await days_of(pool, merchant)} == {T0.date()}
    await world.set_time_zone("Asia/Tokyo")
    await world.message(conv, T0 + timedelta(days=1), "AGENT")
    await settle(pool)
    rows = await days_of(pool, merchant)
    # The reply at 23:40 UTC is 08:40 the next day in Tokyo (the account's and the
    # every-account row).
    assert [r["frt_n"] for r in rows if r["day"] == T0.date() + timedelta(days=1)] == [1, 1]


async def test_a_reopen_adds_to_the_old_days_without_recomputing_them(
    api: Any, world: World, pool: Any, merchant: uuid.UUID, db: Any
) -> None:
    """The consumer takes a changed episode's old part out of its days and adds the new
    one: a day row is never recomputed from its episodes (a marker left in an old
    day's row survives an episode change counted there), yet equals the rebuild."""
    acct = await world.account()
    contact = await world.contact(acct, T0)
    other = await world.contact(acct, T0)
    conv = await world.conversation(acct, contact, T0)
    await world.message(conv, T0)
    await world.message(conv, T0 + timedelta(minutes=5), "AGENT")
    await world.close(conv, T0 + timedelta(hours=1))
    conv2 = await world.conversation(acct, other, T0)
    await world.message(conv2, T0)
    await settle(pool)
    before = await days_of(pool, merchant)
    # An unanswered episode of T0's day is answered 10 days later, and the first
    # conversation reopens then: T0's day row changes (its open count) and the new
    # days gain rows.
    later = T0 + timedelta(days=10)
    await db.execute(
        "UPDATE analytics_episode_days SET escalated = escalated + 100"
        " WHERE merchant_id = %s AND day = %s",
        (merchant, T0.date()),
    )
    await world.message(conv2, later, "AGENT")
    await world.reopen(conv, later)
    await world.message(conv, later)
    await settle(pool)
    rows = await days_of(pool, merchant)
    t0_rows = [r for r in rows if r["day"] == T0.date()]
    assert [r["escalated"] for r in t0_rows] == [100, 100]  # kept: not recomputed
    assert [r["frt_n"] for r in t0_rows] == [1, 1]  # conv2's reply is counted later
    assert {r["day"] for r in rows} == {T0.date(), later.date()}
    assert [r["frt_n"] for r in rows if r["day"] == later.date()] == [1, 1]
    assert [r["opened"] for r in rows if r["day"] == later.date()] == [1, 1]
    await db.execute(
        "UPDATE analytics_episode_days SET escalated = escalated - 100"
        " WHERE merchant_id = %s AND day = %s",
        (merchant, T0.date()),
    )
    incremental = await days_of(pool, merchant)
    await rebuild(pool, merchant_id=merchant)
    assert await days_of(pool, merchant) == incremental
    assert incremental != before


async def test_a_day_row_missing_an_old_part_is_recomputed(
    api: Any, world: World, pool: Any, merchant: uuid.UUID, db: Any
) -> None:
    """When a day row does not hold the value an episode change takes out (rows lost
    or edited by hand), that day is recomputed from its episodes."""
    acct = await world.account()
    contact = await world.contact(acct, T0)
    conv = await world.conversation(acct, contact, T0)
    await world.message(conv, T0)
    await world.message(conv, T0 + timedelta(minutes=5), "AGENT")
    await settle(pool)
    await db.execute(
        "UPDATE analytics_episode_days SET frt_vals = '{}', opened = 7 WHERE merchant_id = %s",
        (merchant,),
    )
    # An earlier agent reply changes the episode's first response (5 -> 2 minutes).
    await world.message(conv, T0 + timedelta(minutes=2), "AGENT")
    await settle(pool)
    rows = await days_of(pool, merchant)
    assert [(r["opened"], r["frt_vals"]) for r in rows] == [(1, [120.0]), (1, [120.0])]
    incremental = rows
    await rebuild(pool, merchant_id=merchant)
    assert await days_of(pool, merchant) == incremental


async def test_overview_contacts_come_from_the_totals_and_the_latest_activity(
    api: Any, world: World, pool: Any, merchant: uuid.UUID, db: Any
) -> None:
    """GetOverview's contacts: the total is the kept per-account count less those
    created at or after the end; active counts a contact whose latest activity is
    in the period, and one active again after it that was active in it too."""
    acct, other_acct = await world.account(), await world.account()
    end = T0 + timedelta(days=2)
    a = await world.contact(acct, T0 - timedelta(days=10))  # active in the period only
    b = await world.contact(acct, T0)  # active in it and after it
    c = await world.contact(acct, T0 + timedelta(days=1))  # active after it only
    await world.contact(acct, T0 + timedelta(days=3))  # created after it
    o = await world.contact(other_acct, T0)  # another account's, active in it
    for contact, acct_id, times in (
        (a, acct, [T0 + timedelta(hours=1)]),
        (b, acct, [T0 + timedelta(hours=2), T0 + timedelta(days=3)]),
        (c, acct, [T0 + timedelta(days=3)]),
        (o, other_acct, [T0 + timedelta(hours=3)]),
    ):
        conv = await world.conversation(acct_id, contact, times[0])
        for at in times:
            await world.message(conv, at)
    await settle(pool)

    async def contacts(account: str) -> tuple[int, int, int]:
        ov = await stub(api).GetOverview(
            A.GetOverviewRequest(period=period(T0, end), account_id=account),
            metadata=api.auth(merchant),
        )
        return ov.contacts.total, ov.contacts.new_contacts, ov.contacts.active

    assert await contacts("") == (4, 3, 3)
    assert await contacts(str(acct)) == (3, 2, 2)
    assert await contacts(str(other_acct)) == (1, 1, 1)
    # The same figures from the episode path (day rows cut in another zone).
    await db.execute(
        "UPDATE analytics_day_zone SET time_zone = 'Asia/Tokyo' WHERE merchant_id = %s",
        (merchant,),
    )
    assert await contacts(str(acct)) == (3, 2, 2)
    cur = await db.execute(
        "SELECT account_id, contacts FROM analytics_contact_totals WHERE merchant_id = %s",
        (merchant,),
    )
    assert sorted(r[1] for r in await cur.fetchall()) == [1, 4]
