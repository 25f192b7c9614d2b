"""CampaignsService through the production interceptor chain: validation, lifecycle,
audience snapshot, metrics, the ledger listing, test sends and tenant isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from campaign_helpers import (
    add_contacts,
    add_segment,
    add_template,
    connect_account,
    scalar,
    states,
    tag_condition,
)
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from helpers import expect_error

from mktx.v1 import campaigns_pb2, campaigns_pb2_grpc, common_pb2

C = campaigns_pb2
INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture
def stub(api):
    return campaigns_pb2_grpc.CampaignsServiceStub(api.channel)


@pytest.fixture
async def setup(api, merchant, sandbox, db):
    account, owner = await connect_account(api, merchant, sandbox, db)
    return account, owner


def _ts(dt: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(dt)
    return out


async def _create(stub, api, merchant, account, **fields):
    campaign = C.Campaign(
        name=fields.pop("name", "Spring sale"),
        account_id=str(account["id"]),
        type=fields.pop("type", C.CAMPAIGN_TYPE_BULK_DM),
        **fields,
    )
    return await stub.CreateCampaign(
        C.CreateCampaignRequest(campaign=campaign), metadata=api.auth(merchant)
    )


async def test_create_get_list_and_request_id(api, stub, merchant, setup):
    account, _ = setup
    md = api.auth(merchant)
    req = C.CreateCampaignRequest(
        campaign=C.Campaign(
            name="Launch",
            account_id=str(account["id"]),
            type=C.CAMPAIGN_TYPE_BULK_DM,
            variables={"code": "SPRING"},
        ),
        request_id="req-1",
    )
    first = await stub.CreateCampaign(req, metadata=md)
    again = await stub.CreateCampaign(req, metadata=md)
    assert first == again
    assert first.status == C.CAMPAIGN_STATUS_DRAFT and first.etag
    assert first.schedule.time_zone == "UTC" and first.stop_on_reply is True
    assert first.attribution_window.seconds == 3 * 86400
    got = await stub.GetCampaign(C.GetCampaignRequest(id=first.id), metadata=md)
    assert got == first
    for i in range(3):
        await _create(stub, api, merchant, account, name=f"other {i}")
    page = await stub.ListCampaigns(C.ListCampaignsRequest(page_size=2), metadata=md)
    assert len(page.campaigns) == 2 and page.next_page_token
    rest = await stub.ListCampaigns(
        C.ListCampaignsRequest(page_size=2, page_token=page.next_page_token), metadata=md
    )
    assert len(rest.campaigns) == 2 and not rest.next_page_token
    named = await stub.ListCampaigns(C.ListCampaignsRequest(name_contains="LAUN"), metadata=md)
    assert [c.id for c in named.campaigns] == [first.id]


async def test_validation_reports_every_bad_field(api, stub, merchant, setup):
    account, _ = setup
    bad = C.Campaign(
        name="x" * 201,
        account_id="nope",
        type=C.CAMPAIGN_TYPE_BULK_DM,
        segment_ids=["not-a-uuid"],
        steps=[C.CampaignStep(template_id=str(uuid.uuid4()))],
        schedule=C.CampaignSchedule(
            time_zone="Mars/Olympus",
            start_time=_ts(datetime(2030, 1, 2, tzinfo=UTC)),
            end_time=_ts(datetime(2030, 1, 1, tzinfo=UTC)),
            send_window=common_pb2.WeeklySchedule(
                days=[
                    common_pb2.DaySchedule(
                        day=common_pb2.DAY_OF_WEEK_MONDAY,
                        ranges=[common_pb2.TimeRange(start="18:00", end="09:00")],
                    )
                ]
            ),
        ),
        attribution_window=Duration(seconds=60),
        max_sends_per_hour=-1,
    )
    err = await expect_error(
        stub.CreateCampaign(C.CreateCampaignRequest(campaign=bad), metadata=api.auth(merchant)),
        INVALID,
        "VALIDATION_ERROR",
    )
    for f in (
        "campaign.name",
        "campaign.account_id",
        "campaign.segment_ids[0]",
        "campaign.steps",
        "campaign.schedule.time_zone",
        "campaign.schedule.end_time",
        "campaign.attribution_window",
        "campaign.max_sends_per_hour",
    ):
        assert f in err.bad_fields, (f, err.bad_fields)
    assert any(f.startswith("campaign.schedule.send_window.days[0]") for f in err.bad_fields)
    # Unknown references are NOT_FOUND.
    await expect_error(
        _create(stub, api, merchant, account, template_id=str(uuid.uuid4())),
        grpc.StatusCode.NOT_FOUND,
        "RESOURCE_NOT_FOUND",
    )


async def test_start_requires_template_and_segments(api, stub, merchant, setup, db):
    account, _ = setup
    md = api.auth(merchant)
    c = await _create(stub, api, merchant, account)
    err = await expect_error(
        stub.StartCampaign(C.StartCampaignRequest(id=c.id), metadata=md),
        PRECONDITION,
        "CAMPAIGN_NOT_READY",
    )
    assert err.info.metadata["missing"] == "template_id,segment_ids"
    drip = await _create(
        stub,
        api,
        merchant,
        account,
        type=C.CAMPAIGN_TYPE_DRIP,
        steps=[C.CampaignStep(delay=Duration(seconds=60))],
    )
    err = await expect_error(
        stub.StartCampaign(C.StartCampaignRequest(id=drip.id), metadata=md),
        PRECONDITION,
        "CAMPAIGN_NOT_READY",
    )
    assert err.info.metadata["missing"] == "steps[0].template_id,segment_ids"


async def test_lifecycle_and_illegal_transitions(api, stub, merchant, setup, sandbox, db):
    account, _ = setup
    md = api.auth(merchant)
    contacts = await add_contacts(db, sandbox, merchant, account["id"], 5, tags=["vip"])
    await add_contacts(db, sandbox, merchant, account["id"], 3, tags=["other"])
    seg = await add_segment(db, merchant, tag_condition("vip"))
    tpl = await add_template(api, merchant, "Hi {{contact.display_name}}, code {{code}}")
    c = await _create(
        stub, api, merchant, account, template_id=tpl, segment_ids=[seg], variables={"code": "X1"}
    )
    # Pause and resume are illegal from DRAFT.
    await expect_error(
        stub.PauseCampaign(C.PauseCampaignRequest(id=c.id), metadata=md),
        PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )
    # A stale etag is ABORTED.
    await expect_error(
        stub.StartCampaign(C.StartCampaignRequest(id=c.id, etag='"stale"'), metadata=md),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    running = await stub.StartCampaign(C.StartCampaignRequest(id=c.id, etag=c.etag), metadata=md)
    assert running.status == C.CAMPAIGN_STATUS_RUNNING and running.launch_time.seconds
    assert running.counts.total == 5 and running.counts.queued == 5
    # The snapshot is the segment, exactly once per contact.
    got = {
        r[0]
        for r in await (
            await db.execute(
                "SELECT contact_id FROM campaign_recipients WHERE campaign_id = %s", (c.id,)
            )
        ).fetchall()
    }
    assert got == {cid for cid, _ in contacts}
    # Update and delete are refused while running.
    await expect_error(
        stub.UpdateCampaign(
            C.UpdateCampaignRequest(
                campaign=C.Campaign(id=c.id, name="new"), update_mask=FieldMask(paths=["name"])
            ),
            metadata=md,
        ),
        PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )
    await expect_error(
        stub.DeleteCampaign(C.DeleteCampaignRequest(id=c.id), metadata=md),
        PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )
    await expect_error(
        stub.StartCampaign(C.StartCampaignRequest(id=c.id), metadata=md),
        PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )
    await expect_error(
        stub.ResumeCampaign(C.ResumeCampaignRequest(id=c.id), metadata=md),
        PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )
    paused = await stub.PauseCampaign(C.PauseCampaignRequest(id=c.id), metadata=md)
    assert paused.status == C.CAMPAIGN_STATUS_PAUSED
    resumed = await stub.ResumeCampaign(C.ResumeCampaignRequest(id=c.id), metadata=md)
    assert resumed.status == C.CAMPAIGN_STATUS_RUNNING
    cancelled = await stub.CancelCampaign(C.CancelCampaignRequest(id=c.id), metadata=md)
    assert cancelled.status == C.CAMPAIGN_STATUS_CANCELLED and cancelled.complete_time.seconds
    assert cancelled.counts.skipped == 5 and cancelled.counts.queued == 0
    assert await states(db, c.id) == {"SKIPPED": 5}
    assert (
        await scalar(
            db, "SELECT DISTINCT reason FROM campaign_recipients WHERE campaign_id = %s", c.id
        )
        == "campaign_cancelled"
    )
    await expect_error(
        stub.CancelCampaign(C.CancelCampaignRequest(id=c.id), metadata=md),
        PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )
    await stub.DeleteCampaign(C.DeleteCampaignRequest(id=c.id), metadata=md)
    await expect_error(
        stub.GetCampaign(C.GetCampaignRequest(id=c.id), metadata=md),
        grpc.StatusCode.NOT_FOUND,
        "RESOURCE_NOT_FOUND",
    )


async def test_update_in_draft_and_scheduled(api, stub, merchant, setup, sandbox, db):
    account, _ = setup
    md = api.auth(merchant)
    seg = await add_segment(db, merchant, tag_condition("vip"))
    tpl = await add_template(api, merchant, "Hello")
    c = await _create(stub, api, merchant, account)
    later = datetime.now(UTC) + timedelta(hours=2)
    updated = await stub.UpdateCampaign(
        C.UpdateCampaignRequest(
            campaign=C.Campaign(
                id=c.id,
                template_id=tpl,
                segment_ids=[seg],
                schedule=C.CampaignSchedule(start_time=_ts(later)),
                name="ignored",
            ),
            update_mask=FieldMask(paths=["template_id", "segment_ids", "schedule.start_time"]),
            etag=c.etag,
        ),
        metadata=md,
    )
    assert updated.name == "Spring sale" and updated.template_id == tpl
    assert list(updated.segment_ids) == [seg] and updated.etag != c.etag
    err = await expect_error(
        stub.UpdateCampaign(
            C.UpdateCampaignRequest(
                campaign=C.Campaign(id=c.id), update_mask=FieldMask(paths=["type", "nope"])
            ),
            metadata=md,
        ),
        INVALID,
    )
    assert {"update_mask.paths[0]", "update_mask.paths[1]"} <= set(err.bad_fields)
    scheduled = await stub.StartCampaign(C.StartCampaignRequest(id=c.id), metadata=md)
    assert scheduled.status == C.CAMPAIGN_STATUS_SCHEDULED and scheduled.counts.total == 0
    moved = await stub.UpdateCampaign(
        C.UpdateCampaignRequest(
            campaign=C.Campaign(id=c.id, description="still scheduled"),
            update_mask=FieldMask(paths=["description"]),
        ),
        metadata=md,
    )
    assert moved.status == C.CAMPAIGN_STATUS_SCHEDULED and moved.description == "still scheduled"


async def test_snapshot_leaves_out_opted_out_excluded_and_prior_recipients(
    api, stub, merchant, setup, sandbox, db
):
    account, _ = setup
    md = api.auth(merchant)
    vip = await add_contacts(db, sandbox, merchant, account["id"], 6, tags=["vip"])
    banned = await add_contacts(db, sandbox, merchant, account["id"], 2, tags=["vip", "banned"])
    await db.execute("UPDATE contacts SET opted_out = true WHERE id = %s", (vip[0][0],))
    seg = await add_segment(db, merchant, tag_condition("vip"))
    seg2 = await add_segment(db, merchant, tag_condition("vip"))  # overlapping: de-duplicated
    ban = await add_segment(db, merchant, tag_condition("banned"))
    tpl = await add_template(api, merchant, "Hello")
    earlier = await _create(stub, api, merchant, account, template_id=tpl, segment_ids=[seg])
    await db.execute(
        "INSERT INTO campaign_recipients (merchant_id, campaign_id, contact_id, state, sent_at)"
        " VALUES (%s, %s, %s, 'SENT', now())",
        (merchant, earlier.id, vip[1][0]),
    )
    c = await _create(
        stub,
        api,
        merchant,
        account,
        template_id=tpl,
        segment_ids=[seg, seg2],
        exclusion=C.CampaignExclusion(exclude_segment_ids=[ban], exclude_campaign_ids=[earlier.id]),
    )
    started = await stub.StartCampaign(C.StartCampaignRequest(id=c.id), metadata=md)
    assert started.counts.total == 4
    got = {
        r[0]
        for r in await (
            await db.execute(
                "SELECT contact_id FROM campaign_recipients WHERE campaign_id = %s", (c.id,)
            )
        ).fetchall()
    }
    assert got == {cid for cid, _ in vip[2:]}
    assert not got & {cid for cid, _ in banned}


async def test_metrics_and_recipient_listing(api, stub, merchant, setup, sandbox, db):
    account, _ = setup
    md = api.auth(merchant)
    await add_contacts(db, sandbox, merchant, account["id"], 7, tags=["vip"])
    seg = await add_segment(db, merchant, tag_condition("vip"))
    tpl = await add_template(api, merchant, "Hello")
    c = await _create(stub, api, merchant, account, template_id=tpl, segment_ids=[seg])
    await stub.StartCampaign(C.StartCampaignRequest(id=c.id), metadata=md)
    page = await stub.ListCampaignRecipients(
        C.ListCampaignRecipientsRequest(id=c.id, page_size=4), metadata=md
    )
    assert len(page.recipients) == 4 and page.next_page_token
    rest = await stub.ListCampaignRecipients(
        C.ListCampaignRecipientsRequest(id=c.id, page_size=4, page_token=page.next_page_token),
        metadata=md,
    )
    assert len(rest.recipients) == 3 and not rest.next_page_token
    everyone = list(page.recipients) + list(rest.recipients)
    assert len({r.contact_id for r in everyone}) == 7
    assert all(
        r.state == C.CAMPAIGN_RECIPIENT_STATE_QUEUED and r.contact.username for r in everyone
    )
    await expect_error(
        stub.ListCampaignRecipients(
            C.ListCampaignRecipientsRequest(
                id=c.id, page_token=page.next_page_token, state=C.CAMPAIGN_RECIPIENT_STATE_SENT
            ),
            metadata=md,
        ),
        INVALID,
    )
    m = await stub.GetCampaignMetrics(C.GetCampaignMetricsRequest(id=c.id), metadata=md)
    assert m.counts.total == 7 and m.counts.queued == 7 and m.delivery_rate == 0.0
    assert m.granularity == C.METRICS_GRANULARITY_HOUR and len(m.timeline) >= 1
    day = await stub.GetCampaignMetrics(
        C.GetCampaignMetricsRequest(
            id=c.id, granularity=C.METRICS_GRANULARITY_DAY, time_zone="Asia/Tokyo"
        ),
        metadata=md,
    )
    assert day.granularity == C.METRICS_GRANULARITY_DAY and len(day.timeline) in (1, 2)
    await expect_error(
        stub.GetCampaignMetrics(
            C.GetCampaignMetricsRequest(
                id=c.id,
                granularity=C.METRICS_GRANULARITY_HOUR,
                start_time=_ts(datetime(2020, 1, 1, tzinfo=UTC)),
            ),
            metadata=md,
        ),
        INVALID,
    )


async def test_send_test_message(api, stub, merchant, setup, sandbox, db):
    account, owner = setup
    md = api.auth(merchant)
    ((cid, user),) = await add_contacts(
        db, sandbox, merchant, account["id"], 1, attributes={"tier": "gold"}
    )
    tpl = await add_template(
        api, merchant, "Hi {{contact.display_name}} ({{contact.attributes.tier}}) {{code}}"
    )
    c = await _create(stub, api, merchant, account, template_id=tpl, variables={"code": "A"})
    res = await stub.SendTestMessage(
        C.SendTestMessageRequest(id=c.id, contact_ids=[str(cid)], variables={"code": "TEST"}),
        metadata=md,
    )
    (r,) = res.results
    assert r.rendered_text == f"Hi {user.name} (gold) TEST" and r.x_message_id and not r.error
    assert [d.text for d in sandbox.state.sent_dms(owner.id)] == [r.rendered_text]
    assert (
        await scalar(db, "SELECT count(*) FROM campaign_recipients WHERE campaign_id = %s", c.id)
        == 0
    )
    again = await stub.GetCampaign(C.GetCampaignRequest(id=c.id), metadata=md)
    assert again.counts.sent == 0
    await expect_error(
        stub.SendTestMessage(
            C.SendTestMessageRequest(id=c.id, contact_ids=[str(uuid.uuid4())]), metadata=md
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    await expect_error(
        stub.SendTestMessage(C.SendTestMessageRequest(id=c.id), metadata=md), INVALID
    )


async def test_tenant_isolation(api, stub, merchant, other_merchant, setup, db, sandbox):
    account, _ = setup
    c = await _create(stub, api, merchant, account)
    other = api.auth(other_merchant)
    nf = grpc.StatusCode.NOT_FOUND
    await expect_error(
        stub.GetCampaign(C.GetCampaignRequest(id=c.id), metadata=other), nf, "RESOURCE_NOT_FOUND"
    )
    for call in (
        stub.StartCampaign(C.StartCampaignRequest(id=c.id), metadata=other),
        stub.CancelCampaign(C.CancelCampaignRequest(id=c.id), metadata=other),
        stub.DeleteCampaign(C.DeleteCampaignRequest(id=c.id), metadata=other),
        stub.GetCampaignMetrics(C.GetCampaignMetricsRequest(id=c.id), metadata=other),
        stub.ListCampaignRecipients(C.ListCampaignRecipientsRequest(id=c.id), metadata=other),
        stub.UpdateCampaign(
            C.UpdateCampaignRequest(
                campaign=C.Campaign(id=c.id, name="x"), update_mask=FieldMask(paths=["name"])
            ),
            metadata=other,
        ),
    ):
        await expect_error(call, nf, "RESOURCE_NOT_FOUND")
    listed = await stub.ListCampaigns(C.ListCampaignsRequest(), metadata=other)
    assert not listed.campaigns
    # Another merchant cannot create a campaign on this merchant's account.
    await expect_error(_create(stub, api, other_merchant, account), nf, "RESOURCE_NOT_FOUND")
