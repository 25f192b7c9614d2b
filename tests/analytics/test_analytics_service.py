"""AnalyticsService over gRPC, read from rollups the analytics-rollups consumer
keeps: definitions end to end, DST series, reopen, bot hand-off, business hours,
erase, tenant isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import grpc
import pytest
from analytics_helpers import World, business_hours, dump, settle
from google.protobuf.timestamp_pb2 import Timestamp
from helpers import expect_error

from mktx.v1 import analytics_pb2 as A
from mktx.v1 import analytics_pb2_grpc, contacts_pb2, contacts_pb2_grpc
from mktx_grpc.mapping import analytics as mapping

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def ts(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value.astimezone(UTC))
    return out


def period(start: datetime, end: datetime) -> A.ReportPeriod:
    return A.ReportPeriod(start_time=ts(start), end_time=ts(end))


def local(tz: ZoneInfo, *a: int) -> datetime:
    return datetime(*a, tzinfo=tz).astimezone(UTC)


def stub(api: Any) -> Any:
    return api.stub(analytics_pb2_grpc, "AnalyticsService")


R = TypeVar("R", A.GetConversationAnalyticsRequest, A.GetContactAnalyticsRequest)


def with_mask(request: R, *paths: str) -> R:
    """A copy of a report request that asks for ``paths`` only."""
    out = type(request)()
    out.CopyFrom(request)
    out.read_mask.paths[:] = paths
    return out


async def test_weekend_dm_answered_monday_is_five_business_minutes(
    api: Any, world: World, pool: Any, merchant: uuid.UUID
) -> None:
    acct = await world.account(business_hours("Europe/Berlin"))
    fri = local(BERLIN, 2026, 3, 6, 23)
    mon = local(BERLIN, 2026, 3, 9, 9, 5)
    contact = await world.contact(acct, fri)
    conv = await world.conversation(acct, contact, fri)
    await world.message(conv, fri)
    await world.message(conv, mon, "AGENT")
    await world.close(conv, mon + timedelta(minutes=10))
    await settle(pool)
    out = await stub(api).GetConversationAnalytics(
        A.GetConversationAnalyticsRequest(
            period=period(fri - timedelta(days=1), mon + timedelta(days=1))
        ),
        metadata=api.auth(merchant),
    )
    assert out.first_response.count == 1
    assert out.first_response.mean_seconds == (mon - fri).total_seconds()
    assert out.first_response_business_hours.mean_seconds == 300
    assert out.first_response_business_hours.median_seconds == 300
    assert out.resolution_business_hours.mean_seconds == 15 * 60
    assert out.opened == 1 and out.resolved == 1
    # The daily series in UTC (the default zone): the response lands on Monday.
    by_day = {b.start_time.ToDatetime(tzinfo=UTC).date(): b for b in out.series}
    assert by_day[mon.date()].first_response.count == 1
    assert by_day[mon.date()].first_response_business_hours.mean_seconds == 300
    assert by_day[fri.date()].opened == 1


@pytest.mark.parametrize(
    ("zone", "day"),
    [("Europe/Berlin", (2026, 3, 29)), ("America/New_York", (2026, 11, 1))],
)
async def test_daily_series_across_dst_in_two_zones(
    api: Any, world: World, pool: Any, merchant: uuid.UUID, zone: str, day: tuple[int, int, int]
) -> None:
    tz = ZoneInfo(zone)
    await world.set_time_zone(zone)
    acct = await world.account()
    d0 = datetime(*day)
    prev, nxt = d0 - timedelta(days=1), d0 + timedelta(days=1)
    opened_at = [
        local(tz, prev.year, prev.month, prev.day, 23, 30),  # the day before
        local(tz, *day, 0, 30),  # the DST day, early
        local(tz, *day, 23, 30),  # the DST day, late (23 or 25 hours after midnight)
        local(tz, nxt.year, nxt.month, nxt.day, 0, 10),  # the day after
    ]
    for at in opened_at:
        c = await world.contact(acct, at)
        conv = await world.conversation(acct, c, at)
        await world.message(conv, at)
    await settle(pool)
    start = local(tz, prev.year, prev.month, prev.day)
    end = local(tz, nxt.year, nxt.month, nxt.day) + timedelta(days=1)
    out = await stub(api).GetConversationAnalytics(
        A.GetConversationAnalyticsRequest(period=period(start, end)), metadata=api.auth(merchant)
    )
    assert out.time_zone == zone
    assert [b.opened for b in out.series] == [1, 2, 1]
    hours = [
        (b.end_time.ToDatetime() - b.start_time.ToDatetime()) / timedelta(hours=1)
        for b in out.series
    ]
    assert hours[1] in (23, 25) and hours[0] == hours[2] == 24
    assert all(b.start_time.ToDatetime(tzinfo=UTC).astimezone(tz).hour == 0 for b in out.series)
    contacts = await stub(api).GetContactAnalytics(
        A.GetContactAnalyticsRequest(period=period(start, end)), metadata=api.auth(merchant)
    )
    assert [b.new_contacts.inbound_dm for b in contacts.series] == [1, 2, 1]
    assert [b.active for b in contacts.series] == [1, 2, 1]
    # Weeks (Monday to Sunday) and months over the same data.
    weeks = await stub(api).GetConversationAnalytics(
        A.GetConversationAnalyticsRequest(
            period=period(start, end), granularity=A.REPORT_GRANULARITY_WEEK
        ),
        metadata=api.auth(merchant),
    )
    # Both DST days are Sundays: the day after starts a new ISO week.
    assert [b.opened for b in weeks.series] == [3, 1]
    monday = weeks.series[1].start_time.ToDatetime(tzinfo=UTC).astimezone(tz)
    assert monday.weekday() == 0 and monday.hour == 0
    months = await stub(api).GetConversationAnalytics(
        A.GetConversationAnalyticsRequest(
            period=period(start, end), granularity=A.REPORT_GRANULARITY_MONTH
        ),
        metadata=api.auth(merchant),
    )
    assert sum(b.opened for b in months.series) == 4
    assert all(b.start_time.ToDatetime(tzinfo=UTC).astimezone(tz).day == 1 for b in months.series)


async def test_reopen_bot_hand_off_and_assignees(
    api: Any, world: World, pool: Any, merchant: uuid.UUID
) -> None:
    acct = await world.account()
    t0 = datetime(2026, 5, 4, 10, tzinfo=UTC)

    def at(minutes: float) -> datetime:
        return t0 + timedelta(minutes=minutes)

    contact = await world.contact(acct, at(0))
    conv = await world.conversation(acct, contact, at(0))
    # Episode 1: the bot answers at once, the contact asks for a person, alice answers.
    await world.message(conv, at(0))
    await world.message(conv, at(0.5), "AI", is_from_bot=True)
    await world.message(conv, at(4))
    await world.assign(conv, at(5), "alice")
    await world.message(conv, at(20), "AGENT")
    await world.close(conv, at(60))
    # Episode 2: reopened by the contact an hour later; bob answers in 10 minutes.
    await world.message(conv, at(120))
    await world.reopen(conv, at(120))
    await world.assign(conv, at(121), "bob")
    await world.message(conv, at(130), "AGENT")
    await world.close(conv, at(150))
    # A second conversation the bot handles alone.
    c2 = await world.contact(acct, at(10))
    conv2 = await world.conversation(acct, c2, at(10))
    await world.message(conv2, at(10))
    await world.message(conv2, at(10.2), "AUTOMATION")
    await world.close(conv2, at(40))
    await settle(pool)
    out = await stub(api).GetConversationAnalytics(
        A.GetConversationAnalyticsRequest(period=period(at(-60), at(24 * 60))),
        metadata=api.auth(merchant),
    )
    assert out.opened == 3 and out.resolved == 3
    # Human first responses: 15 min (from the hand-off at the contact's 4-minute
    # message, not from 0) and 10 min (from the reopening message, not the opening).
    assert out.first_response.count == 2
    assert out.first_response.mean_seconds == pytest.approx(12.5 * 60)
    assert out.first_response.median_seconds == pytest.approx(12.5 * 60)
    assert out.first_response.p90_seconds == pytest.approx(14.5 * 60)
    # Resolution: 60 min, 30 min (reopened at 120, closed 150) and 30 min.
    assert out.resolution.mean_seconds == pytest.approx(40 * 60)
    assert out.bot.conversations == 2
    assert out.bot.first_response.mean_seconds == pytest.approx((30 + 12) / 2)
    assert out.bot.resolved_by_bot == 1
    assert out.bot_resolved_share == pytest.approx(1 / 3)
    assert out.escalation_rate == pytest.approx(1 / 2)
    by_assignee = {a.assignee_user_id: a for a in out.assignees}
    assert set(by_assignee) == {"alice", "bob", ""}
    assert by_assignee["alice"].responded == 1
    assert by_assignee["alice"].first_response_mean_seconds == 15 * 60
    assert by_assignee["bob"].first_response_mean_seconds == 10 * 60
    assert by_assignee[""].resolved == 1
    overview = await stub(api).GetOverview(
        A.GetOverviewRequest(period=period(at(-60), at(24 * 60))), metadata=api.auth(merchant)
    )
    assert overview.conversations.total == 3 and overview.conversations.closed == 3
    assert overview.conversations.first_response_mean_seconds == pytest.approx(12.5 * 60)
    assert overview.conversations.resolution_mean_seconds == pytest.approx(40 * 60)
    assert overview.contacts.total == 2 and overview.contacts.new_contacts == 2
    assert overview.contacts.active == 2


async def test_replayed_and_duplicated_events_never_double_count(
    api: Any, world: World, pool: Any, db: Any, merchant: uuid.UUID
) -> None:
    acct = await world.account()
    t0 = datetime(2026, 6, 1, 9, tzinfo=UTC)
    contact = await world.contact(acct, t0)
    conv = await world.conversation(acct, contact, t0)
    await world.message(conv, t0)
    await world.message(conv, t0 + timedelta(minutes=3), "AGENT")
    await settle(pool)
    before = await dump(pool, merchant)
    req = A.GetOverviewRequest(period=period(t0 - timedelta(days=1), t0 + timedelta(days=1)))
    first = await stub(api).GetOverview(req, metadata=api.auth(merchant))
    # A duplicated event, a late one (older time, after the others), and then every
    # event again (an operator rewinds the cursor).
    await world.event("message.created", conv, t0 + timedelta(minutes=3), conversation_id=conv)
    await world.event("contact.created", contact, t0 - timedelta(days=30), contact_id=contact)
    await settle(pool)
    assert await dump(pool, merchant) == before
    await db.execute(
        "UPDATE event_consumer_cursors SET last_event_id = 0 WHERE consumer = 'analytics-rollups'"
    )
    await settle(pool)
    assert await dump(pool, merchant) == before
    again = await stub(api).GetOverview(req, metadata=api.auth(merchant))
    assert again == first
    assert again.conversations.total == 1 and again.contacts.new_contacts == 1
    assert again.conversations.first_response_mean_seconds == 180


async def test_erasing_a_contact_removes_its_contribution(
    api: Any, world: World, pool: Any, merchant: uuid.UUID
) -> None:
    acct = await world.account()
    t0 = datetime(2026, 6, 1, 9, tzinfo=UTC)
    keep = await world.contact(acct, t0, tags=["vip"])
    gone = await world.contact(acct, t0, tags=["vip", "lead"])
    for c, reply in ((keep, 2), (gone, 30)):
        conv = await world.conversation(acct, c, t0)
        await world.message(conv, t0)
        await world.message(conv, t0 + timedelta(minutes=reply), "AGENT")
    await settle(pool)
    req = A.GetConversationAnalyticsRequest(
        period=period(t0 - timedelta(hours=1), t0 + timedelta(hours=2))
    )
    out = await stub(api).GetConversationAnalytics(req, metadata=api.auth(merchant))
    assert out.first_response.count == 2 and out.first_response.mean_seconds == 16 * 60
    contacts = api.stub(contacts_pb2_grpc, "ContactsService")
    await contacts.DeleteContact(
        contacts_pb2.DeleteContactRequest(id=str(gone)), metadata=api.auth(merchant)
    )
    await settle(pool)
    out = await stub(api).GetConversationAnalytics(req, metadata=api.auth(merchant))
    assert out.first_response.count == 1 and out.first_response.mean_seconds == 120
    assert out.opened == 1
    ca = await stub(api).GetContactAnalytics(
        A.GetContactAnalyticsRequest(period=req.period), metadata=api.auth(merchant)
    )
    assert ca.new_contacts.total == 1 and ca.active == 1
    assert [(t.tag, t.contacts) for t in ca.top_tags] == [("vip", 1)]
    rows = await dump(pool, merchant)
    assert all(r["contact_id"] != gone for part in rows.values() for r in part)


async def test_another_merchants_data_never_appears(
    api: Any,
    world: World,
    other_world: World,
    pool: Any,
    db: Any,
    merchant: uuid.UUID,
    other_merchant: uuid.UUID,
) -> None:
    t0 = datetime(2026, 6, 1, 9, tzinfo=UTC)
    mine = await world.account()
    theirs = await other_world.account()
    for w, acct, n in ((world, mine, 1), (other_world, theirs, 3)):
        for i in range(n):
            c = await w.contact(acct, t0 + timedelta(minutes=i))
            conv = await w.conversation(acct, c, t0)
            await w.message(conv, t0)
            await w.message(conv, t0 + timedelta(minutes=5), "AGENT")
    campaign = await other_world._one(
        "INSERT INTO campaigns (merchant_id, account_id, name, type) VALUES (%s, %s, 'x', 'BULK_DM')"
        " RETURNING id",
        other_merchant,
        theirs,
    )
    await settle(pool)
    p = period(t0 - timedelta(days=1), t0 + timedelta(days=1))
    out = await stub(api).GetOverview(A.GetOverviewRequest(period=p), metadata=api.auth(merchant))
    assert out.contacts.total == 1 and out.conversations.total == 1
    theirs_out = await stub(api).GetOverview(
        A.GetOverviewRequest(period=p), metadata=api.auth(other_merchant)
    )
    assert theirs_out.contacts.total == 3 and theirs_out.conversations.total == 3
    # My own account filter works; theirs is NOT_FOUND, as is their campaign.
    own = await stub(api).GetOverview(
        A.GetOverviewRequest(period=p, account_id=str(mine)), metadata=api.auth(merchant)
    )
    assert own.contacts.total == 1
    for call, req in (
        (stub(api).GetOverview, A.GetOverviewRequest(period=p, account_id=str(theirs))),
        (
            stub(api).GetContactAnalytics,
            A.GetContactAnalyticsRequest(period=p, account_id=str(theirs)),
        ),
        (
            stub(api).GetConversationAnalytics,
            A.GetConversationAnalyticsRequest(period=p, account_id=str(theirs)),
        ),
        (
            stub(api).GetCampaignAnalytics,
            A.GetCampaignAnalyticsRequest(period=p, account_id=str(theirs)),
        ),
        (
            stub(api).GetCampaignAnalytics,
            A.GetCampaignAnalyticsRequest(period=p, campaign_id=str(campaign)),
        ),
        (
            stub(api).GetAutomationAnalytics,
            A.GetAutomationAnalyticsRequest(period=p, account_id=str(theirs)),
        ),
        (stub(api).GetPostAnalytics, A.GetPostAnalyticsRequest(period=p, account_id=str(theirs))),
    ):
        await expect_error(
            call(req, metadata=api.auth(merchant)), grpc.StatusCode.NOT_FOUND, "RESOURCE_NOT_FOUND"
        )


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between ranks."""
    v = sorted(values)
    pos = fraction * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


async def answered_and_closed(
    world: World, acct: uuid.UUID, opened: datetime, frt: int, res: int
) -> None:
    """A new contact's conversation opened by its DM at ``opened``, answered by an
    agent ``frt`` minutes later and closed ``res`` minutes after the opening."""
    contact = await world.contact(acct, opened)
    conv = await world.conversation(acct, contact, opened)
    await world.message(conv, opened)
    await world.message(conv, opened + timedelta(minutes=frt), "AGENT")
    await world.close(conv, opened + timedelta(minutes=res))


async def test_each_day_bucket_has_its_own_median_and_p90(
    api: Any, world: World, pool: Any, merchant: uuid.UUID
) -> None:
    """The series' per-bucket quantiles (first response, resolution and their
    business-hours variants, which equal them without a schedule) are each day's own,
    computed as percentile_cont is."""
    acct = await world.account()
    days = {
        datetime(2026, 6, 1, 8, tzinfo=UTC): ([1, 2, 4, 8, 30], [10, 20, 40, 80, 300]),
        datetime(2026, 6, 2, 8, tzinfo=UTC): ([3, 5, 60], [61, 50, 70]),
    }
    for day, (responses, resolutions) in days.items():
        for i, (frt, res) in enumerate(zip(responses, resolutions, strict=True)):
            await answered_and_closed(world, acct, day + timedelta(minutes=7 * i), frt, res)
    await settle(pool)
    out = await stub(api).GetConversationAnalytics(
        A.GetConversationAnalyticsRequest(
            period=period(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 4, tzinfo=UTC)),
            granularity=A.REPORT_GRANULARITY_DAY,
        ),
        metadata=api.auth(merchant),
    )
    assert len(out.series) == 3
    for bucket, (responses, resolutions) in zip(out.series, days.values(), strict=False):
        for stats, minutes in (
            (bucket.first_response, responses),
            (bucket.first_response_business_hours, responses),
            (bucket.resolution, resolutions),
            (bucket.resolution_business_hours, resolutions),
        ):
            seconds = [m * 60.0 for m in minutes]
            assert stats.count == len(seconds)
            assert stats.mean_seconds == pytest.approx(sum(seconds) / len(seconds))
            assert stats.median_seconds == pytest.approx(percentile_cont(seconds, 0.5))
            assert stats.p90_seconds == pytest.approx(percentile_cont(seconds, 0.9))
    empty = out.series[2]
    assert empty.first_response.count == 0 and empty.resolution.p90_seconds == 0


async def test_a_period_cut_inside_its_buckets_counts_only_what_falls_inside(
    api: Any, world: World, pool: Any, merchant: uuid.UUID
) -> None:
    """Buckets are whole local days but the period is not: its first and last
    buckets, and the period's own totals and quantiles, count only the episodes
    opened, answered and closed inside it (in the merchant's zone, here UTC-4)."""
    tz = ZoneInfo("America/New_York")
    await world.set_time_zone("America/New_York")
    acct = await world.account()
    # (opened, minutes to the first human reply, minutes to the close), local times.
    plan = [
        (local(tz, 2026, 6, 1, 6), 5, 60),  # before the period: nothing of it counts
        (local(tz, 2026, 6, 1, 9, 50), 20, 90),  # opened before, answered and closed inside
        (local(tz, 2026, 6, 1, 14), 3, 30),
        (local(tz, 2026, 6, 2, 11), 40, 24 * 60),  # closed after the period
        (local(tz, 2026, 6, 2, 15), 1, 10),  # after the period
    ]
    for opened, frt, res in plan:
        await answered_and_closed(world, acct, opened, frt, res)
    await settle(pool)
    start, end = local(tz, 2026, 6, 1, 10), local(tz, 2026, 6, 2, 12)
    out = await stub(api).GetConversationAnalytics(
        A.GetConversationAnalyticsRequest(period=period(start, end)), metadata=api.auth(merchant)
    )
    assert [b.opened for b in out.series] == [1, 1]
    assert out.opened == 2
    # First replies inside: 10:10 (20 min), 14:03 (3 min) on day one; 11:40 (40) on day two.
    assert [b.first_response.count for b in out.series] == [2, 1]
    assert out.first_response.count == 3
    frt = [20 * 60.0, 3 * 60.0, 40 * 60.0]
    assert out.first_response.mean_seconds == pytest.approx(sum(frt) / 3)
    assert out.first_response.median_seconds == pytest.approx(percentile_cont(frt, 0.5))
    assert out.first_response.p90_seconds == pytest.approx(percentile_cont(frt, 0.9))
    assert out.series[0].first_response.median_seconds == pytest.approx(
        percentile_cont(frt[:2], 0.5)
    )
    # Closes inside: 11:20 (90 min) and 14:30 (30 min), both on day one.
    assert [b.resolved for b in out.series] == [2, 0]
    assert out.resolved == 2
    assert out.resolution.p90_seconds == pytest.approx(percentile_cont([90 * 60.0, 30 * 60.0], 0.9))
    assert out.series[1].resolution.count == 0
    # The contact report over the same cut period: each contact was created (and
    # wrote) at its conversation's opening.
    contacts = await stub(api).GetContactAnalytics(
        A.GetContactAnalyticsRequest(period=period(start, end)), metadata=api.auth(merchant)
    )
    assert [b.new_contacts.inbound_dm for b in contacts.series] == [1, 1]
    assert [b.active for b in contacts.series] == [1, 1]
    assert contacts.active == 2


async def test_a_report_on_a_pool_of_one_connection_answers_the_same(
    api: Any, start_server: Any, world: World, pool: Any, merchant: uuid.UUID
) -> None:
    """With no second connection to be had, a snapshot report's groups run in turn on
    the call's own connection (no wait for a connection while holding one): the same
    answer as with a pool to spare."""
    acct = await world.account()
    for i, (frt, res) in enumerate([(3, 30), (9, 50), (20, 400)]):
        await answered_and_closed(world, acct, datetime(2026, 6, 1, 9 + i, tzinfo=UTC), frt, res)
    await settle(pool)
    conv = A.GetConversationAnalyticsRequest(
        period=period(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 3, tzinfo=UTC))
    )
    contacts = A.GetContactAnalyticsRequest(period=conv.period)
    roomy = (
        await stub(api).GetConversationAnalytics(conv, metadata=api.auth(merchant)),
        await stub(api).GetContactAnalytics(contacts, metadata=api.auth(merchant)),
    )
    assert roomy[0].first_response.count == 3 and roomy[1].active == 3
    async with start_server(pool_size=1) as small:
        for _ in range(3):
            got = (
                await stub(small).GetConversationAnalytics(
                    conv, metadata=small.auth(merchant), timeout=10
                ),
                await stub(small).GetContactAnalytics(
                    contacts, metadata=small.auth(merchant), timeout=10
                ),
            )
            assert got == roomy
        # Each report asked for a second connection once, and got none in time.
        assert small.app.deps.pool.get_stats().get("requests_errors", 0) >= 6


async def test_a_read_mask_returns_what_it_names_and_only_that(
    api: Any, world: World, pool: Any, merchant: uuid.UUID
) -> None:
    """A chart asking for one series gets that series, equal to the whole report's,
    and nothing else; a mask of top-level fields gets those; the reads a mask needs
    are only its fields' (the first-response chart reads one query of the five)."""
    acct = await world.account()
    for i, (frt, res) in enumerate([(3, 30), (9, 50), (20, 400), (1, 5)]):
        day = datetime(2026, 6, 1 + i % 2, 9 + i, tzinfo=UTC)
        await answered_and_closed(world, acct, day, frt, res)
    await settle(pool)
    whole = A.GetConversationAnalyticsRequest(
        period=period(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 4, tzinfo=UTC))
    )
    full = await stub(api).GetConversationAnalytics(whole, metadata=api.auth(merchant))
    assert full.opened == 4 and full.first_response.count == 4 and len(full.series) == 3

    async def masked(*paths: str) -> A.ConversationAnalytics:
        req = with_mask(whole, *paths)
        out: A.ConversationAnalytics = await stub(api).GetConversationAnalytics(
            req, metadata=api.auth(merchant)
        )
        return out

    chart = await masked("series.*.start_time", "series.*.first_response")
    assert len(chart.series) == 3
    for got, want in zip(chart.series, full.series, strict=True):
        assert got.start_time == want.start_time
        assert got.first_response == want.first_response
        assert not got.HasField("end_time") and not got.HasField("resolution")
        assert got.opened == 0 and not got.HasField("first_response_business_hours")
    assert [b.first_response.count for b in chart.series] == [2, 2, 0]
    assert not chart.HasField("first_response") and chart.opened == 0 and chart.time_zone == ""

    # Without the AIP-161 `*`, a deeper path, and top-level fields.
    top = await masked("opened", "bot.conversations", "series.resolved", "time_zone")
    assert top.opened == full.opened and top.time_zone == full.time_zone == "UTC"
    assert top.HasField("bot") and not top.bot.HasField("first_response")
    assert [b.resolved for b in top.series] == [b.resolved for b in full.series] == [2, 2, 0]
    assert not top.HasField("first_response") and top.resolved == 0 and not top.assignees
    assert all(not b.HasField("start_time") for b in top.series)

    # A whole field wins over paths into it; the whole series equals the full one.
    series = await masked("series.*.opened", "series")
    assert list(series.series) == list(full.series) and not series.HasField("resolution")

    # The reads each mask needs.
    reads = mapping.CONVERSATION_MASK.reads
    assert reads(["series.*.start_time", "series.*.first_response"]) == {"first_response_buckets"}
    assert reads(["series.resolved", "bot.conversations"]) == {
        "resolution_buckets",
        "conversation_totals",
    }
    assert reads(["time_zone", "series.*.end_time"]) == set()
    assert reads([]) == reads(["series", "opened", "first_response", "assignees"])
    assert len(reads([])) == 5


async def test_the_contact_report_takes_a_read_mask_too(
    api: Any, world: World, pool: Any, merchant: uuid.UUID
) -> None:
    """GetContactAnalytics with a mask: the new contacts per day alone, equal to the
    whole report's; the active count alone; the reads each mask needs."""
    acct = await world.account()
    for i in range(3):
        day = datetime(2026, 6, 1 + i % 2, 9 + i, tzinfo=UTC)
        await answered_and_closed(world, acct, day, 5, 30)
    await settle(pool)
    whole = A.GetContactAnalyticsRequest(
        period=period(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 3, tzinfo=UTC))
    )
    full = await stub(api).GetContactAnalytics(whole, metadata=api.auth(merchant))
    assert full.active == 3 and [b.new_contacts.inbound_dm for b in full.series] == [2, 1]

    async def masked(*paths: str) -> A.ContactAnalytics:
        req = with_mask(whole, *paths)
        out: A.ContactAnalytics = await stub(api).GetContactAnalytics(
            req, metadata=api.auth(merchant)
        )
        return out

    chart = await masked("series.*.new_contacts")
    assert [b.new_contacts for b in chart.series] == [b.new_contacts for b in full.series]
    assert all(not b.HasField("start_time") and b.active == 0 for b in chart.series)
    assert chart.active == 0 and not chart.HasField("new_contacts") and chart.time_zone == ""
    active = await masked("active")
    assert active.active == 3 and not active.series and not active.HasField("new_contacts")

    reads = mapping.CONTACT_MASK.reads
    assert reads(["series.*.new_contacts"]) == {"new_contacts_series"}
    assert reads(["active", "series.active"]) == {"active_contacts", "active_contacts_buckets"}
    assert reads([]) == reads(["series", "top_tags", "active", "opted_out"])
    assert len(reads([])) == 6
