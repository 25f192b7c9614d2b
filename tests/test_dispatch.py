"""The campaign engine against real PostgreSQL and the X sandbox: dispatch exactly
once, budget and rate limits, send windows, pause/resume/cancel, scheduled start,
sequences that stop on reply, welcome on follow, recovery of interrupted sends."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import xhelpers as xh
from campaign_helpers import (
    add_contacts,
    add_segment,
    add_template,
    connect_account,
    lift_budget,
    run_until,
    sandbox_limits_lifted,
    scalar,
    states,
    tag_condition,
)
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from mktx.v1 import campaigns_pb2, campaigns_pb2_grpc, common_pb2
from mktx_grpc.domain import conversations as conversations_domain
from mktx_grpc.worker.dispatch import (
    DispatchOptions,
    consume_campaign_events,
    dispatch_due_recipients,
    recover_stale_sends,
    run_campaign_schedules,
)

C = campaigns_pb2


@pytest.fixture
def stub(api):
    return campaigns_pb2_grpc.CampaignsServiceStub(api.channel)


@pytest.fixture
async def account(api, merchant, sandbox, db):
    row, owner = await connect_account(api, merchant, sandbox, db)
    await lift_budget(db, row["id"])
    return row, owner


async def _campaign(stub, api, merchant, account_row, *, start=True, **fields):
    c = await stub.CreateCampaign(
        C.CreateCampaignRequest(
            campaign=C.Campaign(
                name=fields.pop("name", f"c-{uuid.uuid4().hex[:6]}"),
                account_id=str(account_row["id"]),
                type=fields.pop("type", C.CAMPAIGN_TYPE_BULK_DM),
                **fields,
            )
        ),
        metadata=api.auth(merchant),
    )
    if start:
        c = await stub.StartCampaign(C.StartCampaignRequest(id=c.id), metadata=api.auth(merchant))
    return c


def _settled(db, campaign_id):
    async def done() -> bool:
        return (
            await scalar(
                db,
                "SELECT count(*) FROM campaign_recipients WHERE campaign_id = %s"
                " AND state IN ('QUEUED', 'SENDING')",
                campaign_id,
            )
            == 0
        )

    return done


def _status(db, campaign_id, status):
    async def done() -> bool:
        return await scalar(db, "SELECT status FROM campaigns WHERE id = %s", campaign_id) == status

    return done


async def _event(db, merchant, type_, payload):
    await db.execute(
        "INSERT INTO domain_events (merchant_id, type, payload) VALUES (%s, %s, %s)",
        (merchant, type_, json.dumps({k: str(v) for k, v in payload.items()})),
    )


async def test_end_to_end_thousand_contacts_exactly_once(api, stub, merchant, account, sandbox, db):
    row, owner = account
    contacts = await add_contacts(
        db, sandbox, merchant, row["id"], 1000, tags=["spring"], attributes={"tier": "gold"}
    )
    seg = await add_segment(db, merchant, tag_condition("spring"))
    tpl = await add_template(
        api, merchant, "Hi {{contact.display_name}} ({{contact.attributes.tier}}): {{code}}"
    )
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(
            stub,
            api,
            merchant,
            row,
            template_id=tpl,
            segment_ids=[seg],
            variables={"code": "SPRING25"},
        )
        assert c.counts.total == 1000
        await run_until(api.app.deps, _status(db, c.id, "COMPLETED"), timeout=60)
    received = Counter(d.recipient_id for d in sandbox.state.sent_dms(owner.id))
    assert len(received) == 1000 and set(received.values()) == {1}
    texts = {d.recipient_id: d.text for d in sandbox.state.sent_dms(owner.id)}
    for _, user in contacts:
        assert texts[user.id] == f"Hi {user.name} (gold): SPRING25"
    md = api.auth(merchant)
    m = await stub.GetCampaignMetrics(C.GetCampaignMetricsRequest(id=c.id), metadata=md)
    assert (m.counts.total, m.counts.sent, m.counts.queued, m.counts.failed) == (1000, 1000, 0, 0)
    assert sum(b.sent for b in m.timeline) == 1000
    # Each DM is an outbound message of the campaign in the contact's conversation.
    assert (
        await scalar(
            db,
            "SELECT count(*) FROM messages WHERE campaign_id = %s"
            " AND x_event_id IS NOT NULL AND direction = 'OUTBOUND'",
            c.id,
        )
        == 1000
    )
    assert (
        await scalar(
            db,
            "SELECT count(*) FROM campaign_recipients WHERE campaign_id = %s"
            " AND state = 'SENT' AND x_event_id IS NOT NULL"
            " AND message_id IS NOT NULL",
            c.id,
        )
        == 1000
    )
    # A delivery echo and a read receipt flow back into the ledger and the counters.
    msg_a, msg_b = [
        r[0]
        for r in await (
            await db.execute(
                "SELECT message_id FROM campaign_recipients WHERE campaign_id = %s LIMIT 2", (c.id,)
            )
        ).fetchall()
    ]
    await _event(db, merchant, "message.delivered", {"message_id": msg_a})
    await _event(db, merchant, "message.read", {"message_id": msg_b})
    await consume_campaign_events(api.app.deps)
    m = await stub.GetCampaignMetrics(C.GetCampaignMetricsRequest(id=c.id), metadata=md)
    assert (m.counts.delivered, m.counts.read) == (2, 1)
    assert m.delivery_rate == pytest.approx(2 / 1000) and m.read_rate == pytest.approx(0.5)


async def test_budget_exhaustion_waits_and_resumes_by_itself(
    api, stub, merchant, account, sandbox, db
):
    row, owner = account
    await lift_budget(db, row["id"], per_15=5)
    await add_contacts(db, sandbox, merchant, row["id"], 8, tags=["b"])
    seg = await add_segment(db, merchant, tag_condition("b"))
    tpl = await add_template(api, merchant, "Budget {{contact.username}}")
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(stub, api, merchant, row, template_id=tpl, segment_ids=[seg])
        for _ in range(3):
            await dispatch_due_recipients(api.app.deps)
        assert await states(db, c.id) == {"SENT": 5, "QUEUED": 3}
        got = await stub.GetCampaign(C.GetCampaignRequest(id=c.id), metadata=api.auth(merchant))
        assert got.status == C.CAMPAIGN_STATUS_RUNNING
        assert got.status_reason.startswith("waiting for DM budget until")
        wait = await scalar(db, "SELECT wait_until FROM campaigns WHERE id = %s", c.id)
        assert wait > datetime.now(UTC) + timedelta(minutes=14)
        # Fifteen minutes pass: the budget window and the campaign's wait both end.
        await db.execute(
            "UPDATE account_dm_budget SET w15_start = w15_start - interval '16 minutes'"
            " WHERE account_id = %s",
            (row["id"],),
        )
        await db.execute(
            "UPDATE campaigns SET wait_until = wait_until - interval '16 minutes' WHERE id = %s",
            (c.id,),
        )
        await run_until(api.app.deps, _status(db, c.id, "COMPLETED"))
    assert len(sandbox.state.sent_dms(owner.id)) == 8
    assert len({d.recipient_id for d in sandbox.state.sent_dms(owner.id)}) == 8


async def test_x_rate_limit_requeues_without_loss_or_duplicates(
    api, stub, merchant, account, sandbox, db
):
    row, owner = account
    await add_contacts(db, sandbox, merchant, row["id"], 6, tags=["r"])
    seg = await add_segment(db, merchant, tag_condition("r"))
    tpl = await add_template(api, merchant, "Rate {{contact.username}}")
    faults = sandbox.state.faults
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(stub, api, merchant, row, template_id=tpl, segment_ids=[seg])
        try:
            with sandbox.state.lock:
                faults.rate_limit_next, faults.rate_limit_reset_after = 5, 120
            await dispatch_due_recipients(api.app.deps, DispatchOptions(concurrency=1))
            reason = await scalar(db, "SELECT status_reason FROM campaigns WHERE id = %s", c.id)
            assert reason.startswith("X rate limit until")
            assert await states(db, c.id) == {"QUEUED": 6}
        finally:
            with sandbox.state.lock:
                faults.rate_limit_next = 0
        # X's window resets.
        await db.execute("UPDATE campaigns SET wait_until = now() WHERE id = %s", (c.id,))
        await db.execute(
            "UPDATE campaign_recipients SET ready_at = now() WHERE campaign_id = %s", (c.id,)
        )
        await run_until(api.app.deps, _status(db, c.id, "COMPLETED"))
    received = Counter(d.recipient_id for d in sandbox.state.sent_dms(owner.id))
    assert len(received) == 6 and set(received.values()) == {1}


def _hour_offset_zone(local_hour: int) -> str:
    """An Etc/GMT zone where it is now ``local_hour`` o'clock."""
    off = ((local_hour - datetime.now(UTC).hour + 12) % 24) - 12
    return "Etc/GMT" if off == 0 else f"Etc/GMT{-off:+d}"


async def test_send_window_campaign_and_contact_time_zones(
    api, stub, merchant, account, sandbox, db
):
    row, owner = account
    today = datetime.now(UTC).isoweekday()
    tomorrow = today % 7 + 1
    closed_now = common_pb2.WeeklySchedule(
        days=[
            common_pb2.DaySchedule(
                day=tomorrow, ranges=[common_pb2.TimeRange(start="09:00", end="10:00")]
            )
        ]
    )
    await add_contacts(db, sandbox, merchant, row["id"], 3, tags=["w"])
    seg = await add_segment(db, merchant, tag_condition("w"))
    tpl = await add_template(api, merchant, "Window")
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(
            stub,
            api,
            merchant,
            row,
            template_id=tpl,
            segment_ids=[seg],
            schedule=C.CampaignSchedule(send_window=closed_now),
        )
        await dispatch_due_recipients(api.app.deps)
        assert await states(db, c.id) == {"QUEUED": 3}
        reason, wait = await (
            await db.execute(
                "SELECT status_reason, wait_until FROM campaigns WHERE id = %s", (c.id,)
            )
        ).fetchone()
        assert reason == "outside send window"
        assert wait.astimezone(UTC).isoweekday() == tomorrow and wait.astimezone(UTC).hour == 9
        assert not sandbox.state.sent_dms(owner.id)

        # Per contact: 09:00-17:00 every day in each contact's own zone.
        every_day = common_pb2.WeeklySchedule(
            days=[
                common_pb2.DaySchedule(
                    day=d, ranges=[common_pb2.TimeRange(start="09:00", end="17:00")]
                )
                for d in range(1, 8)
            ]
        )
        ((open_id, open_user),) = await add_contacts(
            db, sandbox, merchant, row["id"], 1, tags=["z"], time_zone=_hour_offset_zone(12)
        )
        ((shut_id, _),) = await add_contacts(
            db, sandbox, merchant, row["id"], 1, tags=["z"], time_zone=_hour_offset_zone(2)
        )
        seg_z = await add_segment(db, merchant, tag_condition("z"))
        z = await _campaign(
            stub,
            api,
            merchant,
            row,
            template_id=tpl,
            segment_ids=[seg_z],
            schedule=C.CampaignSchedule(send_window=every_day, respect_contact_time_zone=True),
        )
        for _ in range(2):
            await dispatch_due_recipients(api.app.deps)
    assert [d.recipient_id for d in sandbox.state.sent_dms(owner.id)] == [open_user.id]
    ready = await scalar(
        db,
        "SELECT ready_at FROM campaign_recipients WHERE campaign_id = %s"
        " AND contact_id = %s AND state = 'QUEUED'",
        z.id,
        shut_id,
    )
    assert timedelta(hours=6) < ready - datetime.now(UTC) <= timedelta(hours=7)


async def test_pause_stops_within_a_batch_and_resume_finishes(
    api, stub, merchant, account, sandbox, db
):
    row, owner = account
    md = api.auth(merchant)
    await add_contacts(db, sandbox, merchant, row["id"], 20, tags=["p"])
    seg = await add_segment(db, merchant, tag_condition("p"))
    tpl = await add_template(api, merchant, "Pause test")
    small = DispatchOptions(batch_size=5)
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(stub, api, merchant, row, template_id=tpl, segment_ids=[seg])
        await dispatch_due_recipients(api.app.deps, small)
        assert await states(db, c.id) == {"SENT": 5, "QUEUED": 15}
        await stub.PauseCampaign(C.PauseCampaignRequest(id=c.id), metadata=md)
        for _ in range(3):
            await dispatch_due_recipients(api.app.deps, small)
            await run_campaign_schedules(api.app.deps)
        assert await states(db, c.id) == {"SENT": 5, "QUEUED": 15}
        assert len(sandbox.state.sent_dms(owner.id)) == 5
        await stub.ResumeCampaign(C.ResumeCampaignRequest(id=c.id), metadata=md)
        await run_until(api.app.deps, _status(db, c.id, "COMPLETED"))
    received = Counter(d.recipient_id for d in sandbox.state.sent_dms(owner.id))
    assert len(received) == 20 and set(received.values()) == {1}


async def test_cancel_stops_sending_and_skips_the_rest(api, stub, merchant, account, sandbox, db):
    row, owner = account
    md = api.auth(merchant)
    await add_contacts(db, sandbox, merchant, row["id"], 10, tags=["x"])
    seg = await add_segment(db, merchant, tag_condition("x"))
    tpl = await add_template(api, merchant, "Cancel test")
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(stub, api, merchant, row, template_id=tpl, segment_ids=[seg])
        await dispatch_due_recipients(api.app.deps, DispatchOptions(batch_size=4))
        done = await stub.CancelCampaign(C.CancelCampaignRequest(id=c.id), metadata=md)
        for _ in range(3):
            await dispatch_due_recipients(api.app.deps)
            await run_campaign_schedules(api.app.deps)
    assert done.counts.sent == 4 and done.counts.skipped == 6
    assert await states(db, c.id) == {"SENT": 4, "SKIPPED": 6}
    assert len(sandbox.state.sent_dms(owner.id)) == 4


async def test_scheduled_campaign_starts_by_itself(api, stub, merchant, account, sandbox, db):
    row, owner = account
    await add_contacts(db, sandbox, merchant, row["id"], 3, tags=["s"])
    seg = await add_segment(db, merchant, tag_condition("s"))
    tpl = await add_template(api, merchant, "Scheduled")
    later = Timestamp()
    later.FromDatetime(datetime.now(UTC) + timedelta(minutes=10))
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(
            stub,
            api,
            merchant,
            row,
            template_id=tpl,
            segment_ids=[seg],
            schedule=C.CampaignSchedule(start_time=later),
        )
        assert c.status == C.CAMPAIGN_STATUS_SCHEDULED
        await run_campaign_schedules(api.app.deps)
        await dispatch_due_recipients(api.app.deps)
        assert await scalar(db, "SELECT status FROM campaigns WHERE id = %s", c.id) == "SCHEDULED"
        assert not sandbox.state.sent_dms(owner.id)
        # Ten minutes pass.
        await db.execute(
            "UPDATE campaigns SET start_at = now() - interval '1 second' WHERE id = %s", (c.id,)
        )
        await run_until(api.app.deps, _status(db, c.id, "COMPLETED"))
    got = await stub.GetCampaign(C.GetCampaignRequest(id=c.id), metadata=api.auth(merchant))
    assert got.counts.sent == 3 and got.launch_time.seconds and got.complete_time.seconds
    assert len(sandbox.state.sent_dms(owner.id)) == 3


async def test_drip_stops_on_reply(api, stub, merchant, account, sandbox, db):
    row, owner = account
    (a_id, a), (b_id, b) = await add_contacts(db, sandbox, merchant, row["id"], 2, tags=["d"])
    seg = await add_segment(db, merchant, tag_condition("d"))
    t1 = await add_template(api, merchant, "Step one {{contact.username}}")
    t2 = await add_template(api, merchant, "Step two {{offer}}")
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(
            stub,
            api,
            merchant,
            row,
            type=C.CAMPAIGN_TYPE_DRIP,
            segment_ids=[seg],
            steps=[
                C.CampaignStep(template_id=t1),
                C.CampaignStep(
                    template_id=t2, delay=Duration(seconds=3600), variables={"offer": "10% off"}
                ),
            ],
        )
        await run_until(api.app.deps, lambda: _count(db, c.id, "SENT", 2))
        assert await states(db, c.id) == {"SENT": 2, "QUEUED": 2}
        # A replies (the inbox ingestion's event for an inbound DM).
        await _event(
            db, merchant, "message.received", {"contact_id": a_id, "conversation_id": uuid.uuid4()}
        )
        await consume_campaign_events(api.app.deps)
        rows = dict(
            ((r[0], r[1]), (r[2], r[3]))
            for r in await (
                await db.execute(
                    "SELECT contact_id, step, state, reason FROM campaign_recipients WHERE campaign_id = %s",
                    (c.id,),
                )
            ).fetchall()
        )
        assert rows[(a_id, 0)][0] == "REPLIED"
        assert rows[(a_id, 1)] == ("SKIPPED", "replied")
        assert rows[(b_id, 1)][0] == "QUEUED"
        # An hour passes: B gets step two.
        await db.execute(
            "UPDATE campaign_recipients SET ready_at = now(), due_at = now()"
            " WHERE campaign_id = %s AND state = 'QUEUED'",
            (c.id,),
        )
        await run_until(api.app.deps, _status(db, c.id, "COMPLETED"))
    by_user = Counter(d.recipient_id for d in sandbox.state.sent_dms(owner.id))
    assert by_user == {a.id: 1, b.id: 2}
    assert [d.text for d in sandbox.state.sent_dms(owner.id) if d.recipient_id == b.id][-1] == (
        "Step two 10% off"
    )
    m = await stub.GetCampaignMetrics(
        C.GetCampaignMetricsRequest(id=c.id), metadata=api.auth(merchant)
    )
    assert (m.counts.total, m.counts.sent, m.counts.replied, m.counts.skipped) == (4, 3, 1, 1)
    assert m.reply_rate == pytest.approx(1 / 3)


async def _count(db, campaign_id, state, n):
    return (
        await scalar(
            db,
            "SELECT count(*) FROM campaign_recipients WHERE campaign_id = %s AND state = %s",
            campaign_id,
            state,
        )
        == n
    )


async def test_welcome_enrols_new_followers(api, stub, merchant, account, sandbox, db):
    row, owner = account
    tpl = await add_template(api, merchant, "Thanks for following, {{contact.display_name}}!")
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(stub, api, merchant, row, type=C.CAMPAIGN_TYPE_WELCOME, template_id=tpl)
        assert c.status == C.CAMPAIGN_STATUS_RUNNING and c.counts.total == 0
        ((cid, user),) = await add_contacts(db, sandbox, merchant, row["id"], 1)
        for _ in range(2):  # a redelivered follow enrols once
            await _event(
                db, merchant, "contact.followed", {"contact_id": cid, "account_id": row["id"]}
            )
        await run_until(api.app.deps, lambda: _count(db, c.id, "SENT", 1))
        for _ in range(2):
            await run_campaign_schedules(api.app.deps)
            await dispatch_due_recipients(api.app.deps)
    dms = sandbox.state.sent_dms(owner.id)
    assert [(d.recipient_id, d.text) for d in dms] == [
        (user.id, f"Thanks for following, {user.name}!")
    ]
    assert await scalar(db, "SELECT status FROM campaigns WHERE id = %s", c.id) == "RUNNING"


async def test_missing_variable_and_refusing_recipient(api, stub, merchant, account, sandbox, db):
    row, owner = account
    ((ok_id, _),) = await add_contacts(
        db, sandbox, merchant, row["id"], 1, tags=["m"], attributes={"city": "Oslo"}
    )
    ((bare_id, _),) = await add_contacts(db, sandbox, merchant, row["id"], 1, tags=["m"])
    ((closed_id, _),) = await add_contacts(
        db,
        sandbox,
        merchant,
        row["id"],
        1,
        tags=["m"],
        attributes={"city": "Rome"},
        accepts_dms=False,
    )
    seg = await add_segment(db, merchant, tag_condition("m"))
    tpl = await add_template(api, merchant, "See you in {{contact.attributes.city}}")
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(stub, api, merchant, row, template_id=tpl, segment_ids=[seg])
        await run_until(api.app.deps, _status(db, c.id, "COMPLETED"))
    got = {
        r[0]: (r[1], r[2])
        for r in await (
            await db.execute(
                "SELECT contact_id, state, reason FROM campaign_recipients WHERE campaign_id = %s",
                (c.id,),
            )
        ).fetchall()
    }
    assert got[ok_id] == ("SENT", "")
    assert got[bare_id] == ("SKIPPED", "missing_variable:contact.attributes.city")
    assert got[closed_id][0] == "FAILED" and got[closed_id][1].startswith("TWITTER_FORBIDDEN")
    assert [d.text for d in sandbox.state.sent_dms(owner.id)] == ["See you in Oslo"]


async def test_interrupted_sends_are_resolved_at_x_before_any_resend(
    api, stub, merchant, account, sandbox, db
):
    """Two rows left SENDING by a dispatcher that died: one whose DM reached X (it is
    found by looking up the conversation and becomes SENT, never resent), one whose
    DM never left (it is queued again and sent once)."""
    row, owner = account
    (sent_id, sent_user), (lost_id, lost_user) = await add_contacts(
        db, sandbox, merchant, row["id"], 2, tags=["k"]
    )
    seg = await add_segment(db, merchant, tag_condition("k"))
    tpl = await add_template(api, merchant, "Hello {{contact.username}}")
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(stub, api, merchant, row, template_id=tpl, segment_ids=[seg])
        await db.execute(
            "UPDATE campaign_recipients r SET state = 'SENDING', attempts = 1,"
            " sending_at = now() - interval '5 minutes', lease_until = now() - interval '1 second',"
            " text = 'Hello ' || c.username FROM contacts c"
            " WHERE r.campaign_id = %s AND c.id = r.contact_id",
            (c.id,),
        )
        # The DM of the first row reached X before the crash.
        reached = await api.app.deps.xaccess.send_dm(
            row, sent_user.id, text=f"Hello {sent_user.username}"
        )
        await recover_stale_sends(api.app.deps)
        assert (
            await scalar(
                db, "SELECT x_event_id FROM campaign_recipients WHERE contact_id = %s", sent_id
            )
            == reached.dm_event_id
        )
        assert (
            await scalar(db, "SELECT state FROM campaign_recipients WHERE contact_id = %s", lost_id)
            == "QUEUED"
        )
        await run_until(api.app.deps, _status(db, c.id, "COMPLETED"))
    received = Counter(d.recipient_id for d in sandbox.state.sent_dms(owner.id))
    assert received == {sent_user.id: 1, lost_user.id: 1}
    got = await stub.GetCampaign(C.GetCampaignRequest(id=c.id), metadata=api.auth(merchant))
    assert got.counts.sent == 2 and got.counts.queued == 0


async def test_x_accepts_then_fails_each_contact_gets_exactly_one_dm(
    api, stub, merchant, account, sandbox, db
):
    """X stores some DMs and then answers 503 or drops the connection: those rows are
    never resent blindly (their reason says they are being resolved, as
    ListCampaignRecipients shows), recovery finds them at X, and every contact gets
    exactly one DM."""
    row, owner = account
    await add_contacts(db, sandbox, merchant, row["id"], 6, tags=["f"])
    seg = await add_segment(db, merchant, tag_condition("f"))
    tpl = await add_template(api, merchant, "Once {{contact.username}}")
    route = "POST /2/dm_conversations/with/:participant_id/messages"
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(stub, api, merchant, row, template_id=tpl, segment_ids=[seg])
        with (
            xh.fault_rule(sandbox, route=route, kind="accept_then_error", count=2),
            xh.fault_rule(sandbox, route=route, kind="accept_then_drop", count=1),
        ):
            await dispatch_due_recipients(api.app.deps, DispatchOptions(concurrency=1))
        assert await states(db, c.id) == {"SENT": 3, "SENDING": 3}
        listed = await stub.ListCampaignRecipients(
            C.ListCampaignRecipientsRequest(id=c.id, state=C.CAMPAIGN_RECIPIENT_STATE_SENDING),
            metadata=api.auth(merchant),
        )
        assert [r.reason for r in listed.recipients] == ["resolving an ambiguous send at X"] * 3
        await db.execute(
            "UPDATE campaign_recipients SET lease_until = now() - interval '1 second'"
            " WHERE campaign_id = %s AND state = 'SENDING'",
            (c.id,),
        )
        await run_until(api.app.deps, _status(db, c.id, "COMPLETED"))
    received = Counter(d.recipient_id for d in sandbox.state.sent_dms(owner.id))
    assert len(received) == 6 and set(received.values()) == {1}
    assert await states(db, c.id) == {"SENT": 6}


async def test_open_breaker_requeues_at_once_with_its_reason(
    api, stub, merchant, account, sandbox, db
):
    row, owner = account
    await add_contacts(db, sandbox, merchant, row["id"], 3, tags=["o"])
    seg = await add_segment(db, merchant, tag_condition("o"))
    tpl = await add_template(api, merchant, "Breaker {{contact.username}}")
    breaker = api.app.deps.xaccess.x.breaker(sandbox.base_url.removeprefix("http://"))
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(stub, api, merchant, row, template_id=tpl, segment_ids=[seg])
        for _ in range(breaker.failure_threshold):
            breaker.record_failure()
        try:
            await dispatch_due_recipients(api.app.deps)
        finally:
            breaker.record_success()
        assert await states(db, c.id) == {"QUEUED": 3}  # not SENDING: nothing to look up
        listed = await stub.ListCampaignRecipients(
            C.ListCampaignRecipientsRequest(id=c.id), metadata=api.auth(merchant)
        )
        assert all(r.reason.startswith("breaker open until ") for r in listed.recipients)
        got = await stub.GetCampaign(C.GetCampaignRequest(id=c.id), metadata=api.auth(merchant))
        assert got.status_reason.startswith("breaker open until ")
        attempts = await scalar(
            db, "SELECT max(attempts) FROM campaign_recipients WHERE campaign_id = %s", c.id
        )
        assert attempts == 0
        await db.execute("UPDATE campaigns SET wait_until = now() WHERE id = %s", (c.id,))
        await db.execute(
            "UPDATE campaign_recipients SET ready_at = now() WHERE campaign_id = %s", (c.id,)
        )
        await run_until(api.app.deps, _status(db, c.id, "COMPLETED"))
    assert len(sandbox.state.sent_dms(owner.id)) == 3


async def test_first_name_comes_from_the_display_name(api, stub, merchant, account, sandbox, db):
    """Issue 9: a campaign rendering {{first_name|there}} for "Alice Smith" said "Hi
    there"; the contact's variables are now the one set every sender uses."""
    row, owner = account
    people = await add_contacts(
        db, sandbox, merchant, row["id"], 4, tags=["n"], attributes={"city": "Oslo"}
    )
    names = ["Alice Smith", "🌸 Mia Chen", "🔥🔥", "Bob Stone"]
    for (cid, _), name in zip(people, names, strict=True):
        await db.execute("UPDATE contacts SET display_name = %s WHERE id = %s", (name, cid))
    await db.execute(
        'UPDATE contacts SET attributes = \'{"first_name": "Bobby"}\' WHERE id = %s',
        (people[3][0],),
    )
    seg = await add_segment(db, merchant, tag_condition("n"))
    tpl = await add_template(
        api, merchant, "Hi {{first_name|there}} in {{attributes.city|your town}}"
    )
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(stub, api, merchant, row, template_id=tpl, segment_ids=[seg])
        await run_until(api.app.deps, _status(db, c.id, "COMPLETED"))
    texts = {d.recipient_id: d.text for d in sandbox.state.sent_dms(owner.id)}
    assert [texts[u.id] for _, u in people] == [
        "Hi Alice in Oslo",
        "Hi Mia in Oslo",
        "Hi there in Oslo",
        "Hi Bobby in your town",
    ]


async def test_a_campaign_dm_previews_as_every_other_message(
    api, stub, merchant, account, sandbox, db
):
    """Issue 8: the conversation preview is one rule (``domain.conversations.preview``);
    a campaign DM longer than the preview was cut to 200 characters without the marker,
    unlike the same text arriving by any other path, and a conversation the campaign
    opened kept no preview and no count at all."""
    row, _ = account
    people = await add_contacts(db, sandbox, merchant, row["id"], 2, tags=["p"])
    long_text = "Spring sale: " + "é" * 250
    for (cid, _), note in zip(people, [long_text, "See you soon"], strict=True):
        await db.execute(
            "UPDATE contacts SET attributes = jsonb_build_object('note', %s::text) WHERE id = %s",
            (note, cid),
        )
    seg = await add_segment(db, merchant, tag_condition("p"))
    tpl = await add_template(api, merchant, "{{contact.attributes.note}}")
    with sandbox_limits_lifted(sandbox):
        c = await _campaign(stub, api, merchant, row, template_id=tpl, segment_ids=[seg])
        await run_until(api.app.deps, _status(db, c.id, "COMPLETED"))
    got = [
        tuple(
            await (
                await db.execute(
                    "SELECT v.last_message_preview, v.message_count, v.status FROM conversations v"
                    " JOIN messages m ON m.conversation_id = v.id"
                    " WHERE m.campaign_id = %s AND v.contact_id = %s",
                    (c.id, cid),
                )
            ).fetchone()
        )
        for cid, _ in people
    ]
    # Neither contact had a conversation: the campaign opened a CLOSED one for each,
    # with the DM counted and previewed (a new one once had neither).
    assert got == [(long_text[:199] + "…", 1, "CLOSED"), ("See you soon", 1, "CLOSED")]
    assert got[0][0] == conversations_domain.preview(long_text, [])
    # A second campaign DM lands in the same conversation: counted, previewed anew.
    tpl2 = await add_template(api, merchant, "Last call")
    with sandbox_limits_lifted(sandbox):
        c2 = await _campaign(stub, api, merchant, row, template_id=tpl2, segment_ids=[seg])
        await run_until(api.app.deps, _status(db, c2.id, "COMPLETED"))
    again = await (
        await db.execute(
            "SELECT last_message_preview, message_count FROM conversations"
            " WHERE contact_id = ANY(%s) ORDER BY contact_id = %s DESC",
            ([cid for cid, _ in people], people[0][0]),
        )
    ).fetchall()
    assert [tuple(r) for r in again] == [("Last call", 2), ("Last call", 2)]
