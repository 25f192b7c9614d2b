"""AnalyticsService: every validation error, campaign figures consistent with
GetCampaignMetrics, automation and post sections, and an empty merchant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from analytics_helpers import World, settle
from google.protobuf import field_mask_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from helpers import expect_error

from mktx.v1 import analytics_pb2 as A
from mktx.v1 import analytics_pb2_grpc, campaigns_pb2, campaigns_pb2_grpc

T0 = datetime(2026, 7, 6, 0, tzinfo=UTC)  # a Monday


def ts(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


def period(start: datetime, end: datetime) -> A.ReportPeriod:
    return A.ReportPeriod(start_time=ts(start), end_time=ts(end))


GOOD = period(T0, T0 + timedelta(days=7))


def stub(api: Any) -> Any:
    return api.stub(analytics_pb2_grpc, "AnalyticsService")


def bad_requests() -> list[tuple[str, Any, dict[str, str]]]:
    """(rpc, request, {field: part of the description}) for every rule."""
    huge = A.ReportPeriod(start_time=ts(T0), end_time=ts(T0 + timedelta(days=400, seconds=1)))
    backwards = A.ReportPeriod(start_time=ts(T0), end_time=ts(T0 - timedelta(seconds=1)))
    same = A.ReportPeriod(start_time=ts(T0), end_time=ts(T0))
    ancient = A.ReportPeriod(start_time=Timestamp(seconds=-1), end_time=ts(T0))
    far = A.ReportPeriod(start_time=ts(T0), end_time=Timestamp(seconds=10**11))
    bad_nanos = A.ReportPeriod(start_time=Timestamp(seconds=10, nanos=-1), end_time=ts(T0))
    only_start = A.ReportPeriod(start_time=ts(T0))
    only_end = A.ReportPeriod(end_time=ts(T0))
    out: list[tuple[str, Any, dict[str, str]]] = [
        ("GetOverview", A.GetOverviewRequest(), {"period": "required"}),
        ("GetOverview", A.GetOverviewRequest(period=huge), {"period.end_time": "400 days"}),
        ("GetOverview", A.GetOverviewRequest(period=backwards), {"period.end_time": "after"}),
        ("GetOverview", A.GetOverviewRequest(period=same), {"period.end_time": "after"}),
        ("GetOverview", A.GetOverviewRequest(period=ancient), {"period.start_time": "1970"}),
        ("GetOverview", A.GetOverviewRequest(period=far), {"period.end_time": "1970"}),
        ("GetOverview", A.GetOverviewRequest(period=bad_nanos), {"period.start_time": "nanos"}),
        ("GetOverview", A.GetOverviewRequest(period=only_start), {"period.end_time": "required"}),
        ("GetOverview", A.GetOverviewRequest(period=only_end), {"period.start_time": "required"}),
        (
            "GetOverview",
            A.GetOverviewRequest(period=GOOD, account_id="x\x00"),
            {"account_id": "NUL"},
        ),
        (
            "GetCampaignAnalytics",
            A.GetCampaignAnalyticsRequest(period=GOOD, campaign_id="nope"),
            {"campaign_id": "UUID"},
        ),
        (
            "GetPostAnalytics",
            A.GetPostAnalyticsRequest(period=GOOD, max_posts=-1),
            {"max_posts": "500"},
        ),
        (
            "GetPostAnalytics",
            A.GetPostAnalyticsRequest(period=GOOD, max_posts=501),
            {"max_posts": "500"},
        ),
        (
            "GetConversationAnalytics",
            A.GetConversationAnalyticsRequest(
                period=GOOD,
                read_mask=field_mask_pb2.FieldMask(
                    paths=[
                        "series.*.first_response",
                        "nope",
                        "series.*.nope",
                        "first_response.nope",
                        "s" * 100_000,
                        "series.*.*",
                        "",
                        "resolved.*",
                    ]
                ),
            ),
            {f"read_mask.paths[{i}]": "names no field" for i in range(1, 8)},
        ),
        (
            "GetConversationAnalytics",
            A.GetConversationAnalyticsRequest(
                period=GOOD, read_mask=field_mask_pb2.FieldMask(paths=["opened", "series\x00"])
            ),
            {"read_mask.paths[1]": "NUL"},
        ),
        (
            "GetContactAnalytics",
            A.GetContactAnalyticsRequest(
                period=GOOD,
                read_mask=field_mask_pb2.FieldMask(
                    paths=["top_tags", "series.*.first_response", "top_tags.*.tag", "opened"]
                ),
            ),
            {"read_mask.paths[1]": "ContactAnalytics", "read_mask.paths[3]": "names no field"},
        ),
        # Several at once: each is named.
        (
            "GetConversationAnalytics",
            A.GetConversationAnalyticsRequest(period=huge, account_id="a" * 5000, granularity=9),
            {"period.end_time": "400", "account_id": "UUID", "granularity": "known"},
        ),
    ]
    for rpc, cls in (
        ("GetContactAnalytics", A.GetContactAnalyticsRequest),
        ("GetConversationAnalytics", A.GetConversationAnalyticsRequest),
        ("GetCampaignAnalytics", A.GetCampaignAnalyticsRequest),
        ("GetAutomationAnalytics", A.GetAutomationAnalyticsRequest),
        ("GetPostAnalytics", A.GetPostAnalyticsRequest),
    ):
        out.append((rpc, cls(period=GOOD, granularity=4), {"granularity": "known"}))
        out.append((rpc, cls(period=backwards), {"period.end_time": "after"}))
        out.append((rpc, cls(), {"period": "required"}))
    return out


@pytest.mark.parametrize(("rpc", "request_", "fields"), bad_requests())
async def test_every_validation_error(
    api: Any, merchant: uuid.UUID, rpc: str, request_: Any, fields: dict[str, str]
) -> None:
    err = await expect_error(
        getattr(stub(api), rpc)(request_, metadata=api.auth(merchant)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "VALIDATION_ERROR",
    )
    assert set(err.bad_fields) == set(fields), err.bad_fields
    for f, part in fields.items():
        assert part in err.bad_fields[f]


async def test_unauthenticated(api: Any) -> None:
    await expect_error(
        stub(api).GetOverview(A.GetOverviewRequest(period=GOOD)), grpc.StatusCode.UNAUTHENTICATED
    )


async def test_a_new_merchant_gets_zeros_and_every_bucket(api: Any, merchant: uuid.UUID) -> None:
    out = await stub(api).GetOverview(
        A.GetOverviewRequest(period=GOOD), metadata=api.auth(merchant)
    )
    assert out.time_zone == "UTC"
    for section in (out.contacts, out.conversations, out.campaigns, out.automation, out.posts):
        assert all(v == 0 for _, v in section.ListFields())
    conv = await stub(api).GetConversationAnalytics(
        A.GetConversationAnalyticsRequest(period=GOOD), metadata=api.auth(merchant)
    )
    assert len(conv.series) == 7 and conv.granularity == A.REPORT_GRANULARITY_DAY
    assert conv.series[0].start_time == ts(T0)
    assert conv.series[-1].end_time == ts(T0 + timedelta(days=7))


async def test_campaign_figures_match_get_campaign_metrics(
    api: Any, world: World, db: Any, merchant: uuid.UUID
) -> None:
    acct = await world.account()
    campaign = await world._one(
        "INSERT INTO campaigns (merchant_id, account_id, name, type, status, started_at)"
        " VALUES (%s, %s, 'summer', 'BULK_DM', 'RUNNING', %s) RETURNING id",
        merchant,
        acct,
        T0,
    )
    other = await world._one(
        "INSERT INTO campaigns (merchant_id, account_id, name, type, status, completed_at)"
        " VALUES (%s, %s, 'spring', 'BULK_DM', 'COMPLETED', %s) RETURNING id",
        merchant,
        acct,
        T0 + timedelta(days=2),
    )
    hours = [(campaign, T0 + timedelta(hours=h), 10 + h, 8, 5, 2, 1) for h in (1, 5, 30, 100)]
    hours.append((other, T0 + timedelta(hours=5), 7, 7, 7, 7, 0))
    for cid, hour, sent, delivered, read, replied, failed in hours:
        await db.execute(
            "INSERT INTO campaign_metrics_hourly (merchant_id, campaign_id, hour, sent, delivered,"
            " read, replied, failed) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (merchant, cid, hour, sent, delivered, read, replied, failed),
        )
    p = period(T0, T0 + timedelta(days=7))
    one = await stub(api).GetCampaignAnalytics(
        A.GetCampaignAnalyticsRequest(period=p, campaign_id=str(campaign)),
        metadata=api.auth(merchant),
    )
    metrics = await api.stub(campaigns_pb2_grpc, "CampaignsService").GetCampaignMetrics(
        campaigns_pb2.GetCampaignMetricsRequest(
            id=str(campaign),
            start_time=p.start_time,
            end_time=p.end_time,
            granularity=campaigns_pb2.METRICS_GRANULARITY_HOUR,
        ),
        metadata=api.auth(merchant),
    )
    for f in ("sent", "delivered", "read", "replied", "failed"):
        assert getattr(one.counts, f) == sum(getattr(b, f) for b in metrics.timeline), f
    assert one.counts.sent == 11 + 15 + 40 + 110
    assert one.rates.delivery_rate == pytest.approx(32 / 176)
    assert one.rates.read_rate == pytest.approx(20 / 32)
    assert one.rates.failure_rate == pytest.approx(4 / 180)
    # Daily: hours 1 and 5 on day 1, 30 on day 2, 100 on day 5.
    assert [b.counts.sent for b in one.series] == [26, 40, 0, 0, 110, 0, 0]
    every = await stub(api).GetCampaignAnalytics(
        A.GetCampaignAnalyticsRequest(period=p), metadata=api.auth(merchant)
    )
    assert every.counts.sent == one.counts.sent + 7 and every.campaign_id == ""
    overview = await stub(api).GetOverview(
        A.GetOverviewRequest(period=p), metadata=api.auth(merchant)
    )
    assert overview.campaigns.active == 1 and overview.campaigns.completed == 1
    assert overview.campaigns.messages_sent == every.counts.sent
    missing = await expect_error(
        stub(api).GetCampaignAnalytics(
            A.GetCampaignAnalyticsRequest(period=p, campaign_id=str(uuid.uuid4())),
            metadata=api.auth(merchant),
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert missing.info is not None and missing.info.reason == "RESOURCE_NOT_FOUND"


async def test_automation_and_post_sections(
    api: Any, world: World, db: Any, pool: Any, merchant: uuid.UUID
) -> None:
    acct = await world.account()
    contact = await world.contact(acct, T0)
    flow = await world._one(
        "INSERT INTO flows (merchant_id, account_id, name, status) VALUES (%s, %s, 'welcome',"
        " 'ACTIVE') RETURNING id",
        merchant,
        acct,
    )
    runs = [("COMPLETED", 1), ("COMPLETED", 1), ("FAILED", 2), ("RUNNING", 2)]
    for n, (status, day) in enumerate(runs):
        started = T0 + timedelta(days=day, hours=3)
        ex = await world._one(
            "INSERT INTO flow_executions (merchant_id, flow_id, contact_id, trigger_key, status,"
            " started_at, completed_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            merchant,
            flow,
            contact,
            f"event-{n}",
            status,
            started,
            started + timedelta(minutes=5) if status != "RUNNING" else None,
            started + timedelta(minutes=5),
        )
        await db.execute(
            "INSERT INTO flow_execution_steps (merchant_id, execution_id, step_no, node_id,"
            " status) VALUES (%s, %s, 0, 'start', 'COMPLETED')",
            (merchant, ex),
        )
        if status != "RUNNING":
            await db.execute(
                "INSERT INTO flow_execution_steps (merchant_id, execution_id, step_no, node_id,"
                " status) VALUES (%s, %s, 1, 'send', %s)",
                (merchant, ex, status),
            )
    post = await world._one(
        "INSERT INTO posts (merchant_id, account_id, status, publish_at, due_at, published_at)"
        " VALUES (%s, %s, 'PUBLISHED', %s, %s, %s) RETURNING id",
        merchant,
        acct,
        T0 + timedelta(days=1),
        T0 + timedelta(days=1),
        T0 + timedelta(days=1),
    )
    # Two readings of a two-part post: day 1 (100+20 impressions), day 3 (250+50).
    for day, parts in ((1, [(100, 5), (20, 1)]), (3, [(250, 9), (50, 3)])):
        for idx, (imp, likes) in enumerate(parts):
            await db.execute(
                "INSERT INTO post_metrics (merchant_id, post_id, observed_at, idx, impressions,"
                " likes, replies) VALUES (%s, %s, %s, %s, %s, %s, 1)",
                (merchant, post, T0 + timedelta(days=day, hours=6), idx, imp, likes),
            )
    await settle(pool)
    p = period(T0, T0 + timedelta(days=7))
    auto = await stub(api).GetAutomationAnalytics(
        A.GetAutomationAnalyticsRequest(period=p), metadata=api.auth(merchant)
    )
    assert (auto.active_flows, auto.started, auto.completed, auto.failed) == (1, 4, 2, 1)
    (fa,) = auto.flows
    assert fa.flow_id == str(flow) and fa.name == "welcome"
    assert [b.started for b in fa.series] == [0, 2, 2, 0, 0, 0, 0]
    assert [b.failed for b in fa.series] == [0, 0, 1, 0, 0, 0, 0]
    funnel = {n.node_id: (n.entered, n.completed, n.failed) for n in fa.funnel}
    assert funnel == {"start": (4, 4, 0), "send": (3, 2, 1)}
    posts = await stub(api).GetPostAnalytics(
        A.GetPostAnalyticsRequest(period=p), metadata=api.auth(merchant)
    )
    assert posts.published == 1
    assert posts.impressions == 300 and posts.engagements == 12 + 2
    assert [b.impressions for b in posts.series] == [0, 120, 0, 180, 0, 0, 0]
    (ps,) = posts.posts
    assert ps.post_id == str(post) and ps.impressions == 300 and ps.engagements == 14
    # Up to day 2 only: the first reading is the latest.
    early = await stub(api).GetPostAnalytics(
        A.GetPostAnalyticsRequest(period=period(T0, T0 + timedelta(days=2))),
        metadata=api.auth(merchant),
    )
    assert early.posts[0].impressions == 120 and early.impressions == 120
    overview = await stub(api).GetOverview(
        A.GetOverviewRequest(period=p), metadata=api.auth(merchant)
    )
    assert overview.automation.active_flows == 1
    assert overview.automation.executions_started == 4
    assert overview.automation.executions_completed == 2
    assert (overview.posts.published, overview.posts.impressions) == (1, 300)
    assert overview.posts.engagements == 14


async def test_contacts_by_source_opt_outs_tags_and_account_filter(
    api: Any, world: World, pool: Any, merchant: uuid.UUID
) -> None:
    shop, other_shop = await world.account(), await world.account()
    sources = ["NEW_FOLLOWER", "INBOUND_MESSAGE", "MENTION", "IMPORT", "MANUAL", "IMPORT"]
    made = []
    for i, source in enumerate(sources):
        at = T0 + timedelta(days=i % 3, hours=5)
        made.append(
            await world.contact(shop, at, source=source, tags=["vip"] if i % 2 else ["new", "vip"])
        )
    await world.contact(other_shop, T0 + timedelta(hours=1), source="MENTION", tags=["other"])
    await world.contact(shop, T0 - timedelta(days=3), source="MANUAL", tags=["old"])  # before
    await world.opt_out(made[0], T0 + timedelta(days=1, hours=2))
    await world.opt_out(made[1], T0 + timedelta(days=8))  # after the period
    await settle(pool)
    out = await stub(api).GetContactAnalytics(
        A.GetContactAnalyticsRequest(period=GOOD, account_id=str(shop)), metadata=api.auth(merchant)
    )
    n = out.new_contacts
    assert (n.follow, n.inbound_dm, n.mention, n.imported, n.api, n.total) == (1, 1, 1, 2, 1, 6)
    assert out.opted_out == 1
    assert [b.opted_out for b in out.series] == [0, 1, 0, 0, 0, 0, 0]
    assert [b.new_contacts.total for b in out.series] == [2, 2, 2, 0, 0, 0, 0]
    assert [b.new_contacts.imported for b in out.series] == [1, 0, 1, 0, 0, 0, 0]
    assert [(t.tag, t.contacts) for t in out.top_tags] == [("vip", 6), ("new", 3), ("old", 1)]
    every = await stub(api).GetContactAnalytics(
        A.GetContactAnalyticsRequest(period=GOOD), metadata=api.auth(merchant)
    )
    assert every.new_contacts.total == 7 and every.new_contacts.mention == 2
    assert ("other", 1) in [(t.tag, t.contacts) for t in every.top_tags]
    overview = await stub(api).GetOverview(
        A.GetOverviewRequest(period=GOOD, account_id=str(shop)), metadata=api.auth(merchant)
    )
    assert overview.contacts.total == 7 and overview.contacts.new_contacts == 6
    assert overview.contacts.active == 0  # nobody wrote, followed or mentioned in the period


async def test_imported_contacts_reach_the_report(
    api: Any, world: World, pool: Any, merchant: uuid.UUID
) -> None:
    from mktx.v1 import contacts_pb2 as P
    from mktx.v1 import contacts_pb2_grpc

    acct = await world.account()
    stub_c = api.stub(contacts_pb2_grpc, "ContactsService")
    opts = P.ImportContactsOptions(account_id=str(acct), tags=["fair"])

    async def messages() -> Any:
        yield P.ImportContactsRequest(
            options=opts, contacts=[P.Contact(x_user_id=str(500 + i)) for i in range(3)]
        )
        yield P.ImportContactsRequest(contacts=[P.Contact(x_user_id="600")])

    summary = await stub_c.ImportContacts(messages(), metadata=api.auth(merchant))
    assert summary.created_count == 4
    await settle(pool)
    now = datetime.now(UTC)
    out = await stub(api).GetContactAnalytics(
        A.GetContactAnalyticsRequest(
            period=period(now - timedelta(hours=1), now + timedelta(hours=1))
        ),
        metadata=api.auth(merchant),
    )
    assert out.new_contacts.imported == 4 and out.new_contacts.total == 4
    assert [(t.tag, t.contacts) for t in out.top_tags] == [("fair", 4)]
