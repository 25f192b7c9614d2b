"""Campaign DMs through real campaign dispatch (the X sandbox over HTTP): every DM is
announced like any stored message, so the inbox stream and the analytics rollups
see it, and the incremental rollups equal the rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from analytics_helpers import World, dump, settle
from campaign_helpers import (
    add_contacts,
    add_segment,
    add_template,
    connect_account,
    lift_budget,
    sandbox_limits_lifted,
    scalar,
    tag_condition,
)

from mktx.v1 import campaigns_pb2, campaigns_pb2_grpc
from mktx_grpc.worker.dispatch import dispatch_due_recipients
from mktx_grpc.worker.rollups import rebuild

C = campaigns_pb2


async def _send_campaign(api: Any, merchant: Any, sandbox: Any, db: Any, row: Any) -> str:
    seg = await add_segment(db, merchant, tag_condition("spring"))
    tpl = await add_template(api, merchant, "Spring sale starts now")
    stub = campaigns_pb2_grpc.CampaignsServiceStub(api.channel)
    md = api.auth(merchant)
    c = await stub.CreateCampaign(
        C.CreateCampaignRequest(
            campaign=C.Campaign(
                name="spring",
                account_id=str(row["id"]),
                type=C.CAMPAIGN_TYPE_BULK_DM,
                segment_ids=[seg],
                template_id=tpl,
            )
        ),
        metadata=md,
    )
    with sandbox_limits_lifted(sandbox):
        await stub.StartCampaign(C.StartCampaignRequest(id=c.id), metadata=md)
        await dispatch_due_recipients(api.app.deps)
    return c.id


async def test_campaign_dms_are_announced_and_rollups_equal_the_rebuild(
    api: Any, merchant: Any, sandbox: Any, db: Any, pool: Any
) -> None:
    row, _owner = await connect_account(api, merchant, sandbox, db)
    await lift_budget(db, row["id"])
    contacts = await add_contacts(db, sandbox, merchant, row["id"], 3, tags=["spring"])
    # One contact is in a live conversation (it wrote), two have none.
    world = World(db, merchant)
    at = datetime.now(UTC) - timedelta(minutes=5)
    live = await world.conversation(row["id"], contacts[0][0], at)
    await world.message(live, at)
    await settle(pool)
    campaign_id = await _send_campaign(api, merchant, sandbox, db, row)
    assert (
        await scalar(
            db,
            "SELECT count(*) FROM campaign_recipients WHERE campaign_id = %s AND state = 'SENT'",
            campaign_id,
        )
        == 3
    )
    # Each DM: one message.created (stored SENT), naming its conversation and message.
    cur = await db.execute(
        "SELECT e.type, e.aggregate_id, e.payload, m.id, m.conversation_id"
        " FROM domain_events e JOIN messages m ON m.id = (e.payload->>'message_id')::uuid"
        " WHERE e.merchant_id = %s AND m.campaign_id = %s ORDER BY e.id",
        (merchant, campaign_id),
    )
    events = await cur.fetchall()
    assert [t for t, *_ in events] == ["message.created"] * 3
    for _type, aggregate, payload, message_id, conv in events:
        assert aggregate == conv and payload["conversation_id"] == str(conv)
        assert payload["origin"] == "CAMPAIGN" and payload["campaign_id"] == campaign_id
        assert payload["direction"] == "OUTBOUND" and payload["message_id"] == str(message_id)
        assert payload["x_event_id"]
    assert live in {conv for *_, conv in events}
    # The rollups the consumer keeps from those events are the rebuild's. The two
    # conversations the campaign created (closed) are no episode: not support work,
    # not two conversations resolved in 0 s; the live one's latest message is the DM.
    await settle(pool)
    incremental = await dump(pool, merchant)
    (episode,) = incremental["episodes"]
    assert episode["conversation_id"] == live
    sent_at = await scalar(
        db,
        "SELECT created_at FROM messages WHERE conversation_id = %s AND campaign_id = %s",
        live,
        campaign_id,
    )
    assert episode["last_message_at"] == sent_at
    created_closed = await scalar(
        db,
        "SELECT count(*) FROM conversations WHERE merchant_id = %s AND created_closed"
        " AND close_reason = 'campaign' AND status = 'CLOSED'",
        merchant,
    )
    assert created_closed == 2
    await rebuild(pool, merchant_id=merchant)
    assert (await dump(pool, merchant))["episodes"] == incremental["episodes"]
    # One of them answers: the reply reopens the campaign's conversation (as ingestion
    # does), and its first episode starts there, the same incrementally and rebuilt.
    (answered,) = [conv for *_, conv in events if conv != live][:1]
    reply_at = datetime.now(UTC) + timedelta(minutes=1)
    await world.message(answered, reply_at)
    await world.reopen(answered, reply_at + timedelta(seconds=1))
    await settle(pool)
    after = await dump(pool, merchant)
    (reopened,) = [r for r in after["episodes"] if r["conversation_id"] == answered]
    assert (reopened["episode"], reopened["status"]) == (0, "OPEN")
    assert reopened["opened_at"] == reply_at + timedelta(seconds=1)
    assert reopened["first_inbound_at"] == reply_at and reopened["resolved_at"] is None
    await rebuild(pool, merchant_id=merchant)
    assert (await dump(pool, merchant))["episodes"] == after["episodes"]


async def test_watch_conversations_shows_a_campaign_dm_in_a_live_conversation(
    api: Any, merchant: Any, sandbox: Any, db: Any, pool: Any
) -> None:
    import asyncio

    from mktx.v1 import conversations_pb2, conversations_pb2_grpc

    row, _owner = await connect_account(api, merchant, sandbox, db)
    await lift_budget(db, row["id"])
    ((contact, _user),) = await add_contacts(db, sandbox, merchant, row["id"], 1, tags=["spring"])
    at = datetime.now(UTC) - timedelta(minutes=5)
    live = await World(db, merchant).conversation(row["id"], contact, at)
    watch = conversations_pb2_grpc.ConversationsServiceStub(api.channel).WatchConversations(
        conversations_pb2.WatchConversationsRequest(
            event_types=[conversations_pb2.CONVERSATION_EVENT_TYPE_NEW_MESSAGE]
        ),
        metadata=api.auth(merchant),
    )
    await asyncio.wait_for(watch.initial_metadata(), 5.0)  # live from here on
    campaign_id = await _send_campaign(api, merchant, sandbox, db, row)
    ev = await asyncio.wait_for(watch.read(), 5.0)
    watch.cancel()
    assert ev.type == conversations_pb2.CONVERSATION_EVENT_TYPE_NEW_MESSAGE
    assert ev.conversation.id == str(live)
    assert ev.message.text == "Spring sale starts now"
    assert ev.message.id == str(
        await scalar(db, "SELECT id FROM messages WHERE campaign_id = %s", campaign_id)
    )
