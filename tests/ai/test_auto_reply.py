"""Auto-reply (worker/auto_reply.py) against real PostgreSQL, the X sandbox and the
AI stand-in over HTTP: the outbox consumer queues inbound DMs of auto-reply
accounts, the loop answers through the one DM ledger (sent once, is_from_bot),
escalates with the hand-off message and the AIEscalationRequested event, sends the
away message once per closed period (across a DST change), and stays out once a
human has the conversation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from ai_helpers import enable_ai, open_conversation, set_account_settings
from campaign_helpers import add_contacts

from mktx_grpc.core.db import use_connection
from mktx_grpc.store import ai as ai_store
from mktx_grpc.store.events import append_event
from mktx_grpc.worker.auto_reply import (
    AUTO_REPLY_EVENTS,
    auto_reply_loop,
    drain_replies,
    purge_answered,
    stop_auto_replies,
)
from mktx_grpc.worker.consumer import drain
from mktx_grpc.worker.outbound import dispatch_outbound

NEW_YORK_WEEKDAYS = {
    "time_zone": "America/New_York",
    "days": [{"day": d, "ranges": [{"start": "09:00", "end": "17:00"}]} for d in range(1, 6)],
}
# 2026-03-08 is the US switch to daylight time: 13:30 UTC is 08:30 EST on Friday the
# 6th (closed) and 09:30 EDT on Monday the 9th (open).
FRIDAY_BEFORE = datetime(2026, 3, 6, 13, 30, tzinfo=UTC)
FRIDAY_LATER = datetime(2026, 3, 6, 13, 45, tzinfo=UTC)
MONDAY_AFTER = datetime(2026, 3, 9, 13, 30, tzinfo=UTC)


async def _inbound(api, db, merchant, conv, text: str) -> uuid.UUID:
    """Store an inbound DM and its ``message.received`` event, as ingestion does."""
    mid = uuid.uuid4()
    await db.execute(
        "INSERT INTO messages (id, merchant_id, conversation_id, direction, text, origin,"
        " delivery_state) VALUES (%s, %s, %s, 'INBOUND', %s, 'CONTACT', 'DELIVERED')",
        (mid, merchant, conv.conversation_id, text),
    )
    async with use_connection(api.app.deps.pool, transaction=True):
        await append_event(
            merchant,
            "message.received",
            conv.conversation_id,
            {
                "message_id": str(mid),
                "conversation_id": str(conv.conversation_id),
                "contact_id": str(conv.contact_id),
                "direction": "INBOUND",
            },
        )
    return mid


async def _deliver(api) -> None:
    """Run the consumer until the events are delivered. Settling waits for every
    older transaction on the server (shared by other work on this box), so allow
    it time; fail loudly rather than pass on an undelivered event."""
    r = await drain(api.app.deps.pool, AUTO_REPLY_EVENTS, settle_within=60.0)
    assert r.held_event_id is None, "the outbox event did not settle"


async def _run(api, now: datetime | None = None) -> None:
    await _deliver(api)
    await drain_replies(api.app.deps, now=now)


async def _queue(db, conv) -> list[tuple[str, str]]:
    rows = await (
        await db.execute(
            "SELECT state, outcome FROM ai_reply_queue WHERE conversation_id = %s ORDER BY id",
            (conv.conversation_id,),
        )
    ).fetchall()
    return [(s, o) for s, o in rows]


async def _outbound(db, conv) -> list[dict[str, Any]]:
    async with db.cursor() as cur:
        await cur.execute(
            "SELECT text, is_from_bot, origin, source, source_ref, state FROM outbound_dms"
            " WHERE conversation_id = %s ORDER BY id",
            (conv.conversation_id,),
        )
        cols = [c.name for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in await cur.fetchall()]


async def _escalations(db, merchant) -> list[dict[str, Any]]:
    rows = await (
        await db.execute(
            "SELECT payload FROM domain_events WHERE merchant_id = %s"
            " AND type = 'conversation.escalated' ORDER BY id",
            (merchant,),
        )
    ).fetchall()
    return [p for (p,) in rows]


async def test_inbound_dm_gets_the_bots_reply_through_the_ledger(
    api, ai, md, conv, db, merchant, sandbox
):
    await enable_ai(ai, md)
    await set_account_settings(db, conv.account_id, {"auto_reply_enabled": True})
    mid = await _inbound(api, db, merchant, conv, "where is my order")
    await _run(api)
    assert await _queue(db, conv) == [("DONE", "REPLIED")]
    (dm,) = await _outbound(db, conv)
    assert dm["is_from_bot"] and dm["origin"] == "AI" and dm["source"] == "ai"
    assert dm["source_ref"] == f"reply:{mid}" and "order" in dm["text"].lower()
    # The session was written with the reply's send.
    (context, intent) = await (
        await db.execute(
            "SELECT context, current_intent FROM ai_sessions WHERE conversation_id = %s",
            (conv.conversation_id,),
        )
    ).fetchone()
    assert [c["role"] for c in context] == ["user", "assistant"] and intent == "order_status"
    # The event delivered again (a rewound cursor) queues nothing twice.
    await db.execute(
        "UPDATE event_consumer_cursors SET last_event_id = 0 WHERE consumer = 'ai-auto-reply'"
    )
    await _run(api)
    assert len(await _queue(db, conv)) == 1 and len(await _outbound(db, conv)) == 1
    # The normal sender sends it to X once, stored as the bot's message.
    await dispatch_outbound(api.app.deps)
    (dm,) = await _outbound(db, conv)
    assert dm["state"] == "SENT"
    sent = [d.text for d in sandbox.state.sent_dms(conv.owner.id)]
    assert sent.count(dm["text"]) == 1
    (bot,) = await (
        await db.execute(
            "SELECT is_from_bot FROM messages WHERE conversation_id = %s AND direction = 'OUTBOUND'",
            (conv.conversation_id,),
        )
    ).fetchall()
    assert bot == (True,)


async def test_accounts_without_auto_reply_are_left_to_humans(api, ai, md, conv, db, merchant):
    await enable_ai(ai, md)
    await _inbound(api, db, merchant, conv, "where is my order")
    await _run(api)
    assert await _queue(db, conv) == []
    assert await _outbound(db, conv) == []


async def test_low_confidence_escalates_with_handoff_and_summary_then_bot_stays_out(
    api, ai, md, conv, db, merchant
):
    await enable_ai(ai, md)
    await set_account_settings(db, conv.account_id, {"auto_reply_enabled": True})
    await _inbound(api, db, merchant, conv, "blorp zzz quux")
    await _run(api)
    assert await _queue(db, conv) == [("DONE", "ESCALATED")]
    (dm,) = await _outbound(db, conv)
    assert dm["text"].startswith("Thanks! A member of our team") and dm["is_from_bot"]
    (ev,) = await _escalations(db, merchant)
    assert ev["reason"] == "LOW_CONFIDENCE" and ev["requested_by"] == "ai"
    assert 2 <= len(ev["summary"].splitlines()) <= 3
    (escalated, status) = await (
        await db.execute(
            "SELECT escalated, status FROM conversations WHERE id = %s", (conv.conversation_id,)
        )
    ).fetchone()
    assert escalated and status == "OPEN"
    # Escalated: the next message is the humans'.
    await _inbound(api, db, merchant, conv, "where is my order")
    await _run(api)
    assert (await _queue(db, conv))[-1] == ("DONE", "HUMANS")
    assert len(await _outbound(db, conv)) == 1


async def test_bot_stops_after_a_human_replied(api, ai, md, conv, db, merchant):
    await enable_ai(ai, md)
    await set_account_settings(db, conv.account_id, {"auto_reply_enabled": True})
    await _inbound(api, db, merchant, conv, "where is my order")
    await _run(api)
    await db.execute(
        "INSERT INTO messages (merchant_id, conversation_id, direction, text, origin,"
        " sender_user_id) VALUES (%s, %s, 'OUTBOUND', 'Hi, Sam here', 'AGENT', 'sam')",
        (merchant, conv.conversation_id),
    )
    await _inbound(api, db, merchant, conv, "#4321")
    await _run(api)
    assert await _queue(db, conv) == [("DONE", "REPLIED"), ("DONE", "HUMANS")]
    assert len(await _outbound(db, conv)) == 1
    # A new conversation (the old one closed) gets the bot again.
    await db.execute(
        "UPDATE conversations SET status = 'CLOSED', closed_at = now() WHERE id = %s",
        (conv.conversation_id,),
    )
    conv.conversation_id = await open_conversation(db, merchant, conv.account_id, conv.contact_id)
    await _inbound(api, db, merchant, conv, "where is my order")
    await _run(api)
    assert await _queue(db, conv) == [("DONE", "REPLIED")]


async def test_model_outage_escalates_with_a_template_summary(
    api, ai, md, conv, db, merchant, admin
):
    await enable_ai(ai, md, moderation_enabled=False)
    await set_account_settings(db, conv.account_id, {"auto_reply_enabled": True})
    admin("POST", "/faults", {"kind": "error", "route": "chat", "status": 503})
    await _inbound(api, db, merchant, conv, "where is my order")
    await _run(api)
    assert await _queue(db, conv) == [("DONE", "ESCALATED")]
    (ev,) = await _escalations(db, merchant)
    assert ev["reason"] == "MODEL_UNAVAILABLE"
    assert "where is my order" in ev["summary"]  # the template, not the model
    assert len(await _outbound(db, conv)) == 1  # the hand-off message


async def test_spent_token_budget_escalates(api, ai, md, conv, db, merchant):
    await enable_ai(ai, md, daily_token_budget=1)
    await set_account_settings(db, conv.account_id, {"auto_reply_enabled": True})
    await db.execute(
        "INSERT INTO ai_usage_daily (merchant_id, day, prompt_tokens) VALUES"
        " (%s, (now() AT TIME ZONE 'UTC')::date, 5)",
        (merchant,),
    )
    await _inbound(api, db, merchant, conv, "where is my order")
    await _run(api)
    assert await _queue(db, conv) == [("DONE", "ESCALATED")]
    assert (await _escalations(db, merchant))[0]["reason"] == "BUDGET_EXHAUSTED"


async def test_away_message_once_per_closed_period_across_dst(
    api, ai, md, world, db, merchant, sandbox
):
    await enable_ai(ai, md)
    row, owner = world
    await set_account_settings(
        db,
        row["id"],
        {
            "auto_reply_enabled": True,
            "business_hours": {"enabled": True, "schedule": NEW_YORK_WEEKDAYS},
        },
    )
    ((contact_id, _),) = await add_contacts(db, sandbox, merchant, row["id"], 1)
    from ai_helpers import Conv

    conv = Conv(
        row["id"],
        contact_id,
        await open_conversation(db, merchant, row["id"], contact_id),
        owner,
        None,
    )
    # Friday 08:30 EST: closed. The away message goes out once for this period.
    await _inbound(api, db, merchant, conv, "where is my order")
    await _run(api, FRIDAY_BEFORE)
    await _inbound(api, db, merchant, conv, "hello?")
    await _run(api, FRIDAY_LATER)
    assert await _queue(db, conv) == [("DONE", "AWAY"), ("DONE", "AWAY_SENT")]
    (away,) = await _outbound(db, conv)
    assert away["text"].startswith("Thanks for your message! We are away")
    # Monday 09:30 EDT, the same UTC time of day after the DST change: open, the bot answers.
    await _inbound(api, db, merchant, conv, "where is my order")
    await _run(api, MONDAY_AFTER)
    assert (await _queue(db, conv))[-1] == ("DONE", "REPLIED")
    assert len(await _outbound(db, conv)) == 2


async def test_stale_inbound_messages_are_left_to_humans(api, ai, md, conv, db, merchant):
    await enable_ai(ai, md)
    await set_account_settings(db, conv.account_id, {"auto_reply_enabled": True})
    mid = await _inbound(api, db, merchant, conv, "where is my order")
    # As if the consumer first met it long after it arrived (first deploy, backlog).
    await db.execute(
        "UPDATE messages SET created_at = now() - interval '2 hours' WHERE id = %s", (mid,)
    )
    await _run(api)
    assert await _queue(db, conv) == []


async def test_the_worker_loop_answers_in_tasks_of_its_own(api, ai, md, conv, db, merchant):
    await enable_ai(ai, md)
    await set_account_settings(db, conv.account_id, {"auto_reply_enabled": True})
    await _inbound(api, db, merchant, conv, "where is my order")
    await _deliver(api)
    assert await auto_reply_loop(api.app.deps) == 0.0
    await stop_auto_replies(api.app.deps)
    assert await _queue(db, conv) == [("DONE", "REPLIED")]


async def test_an_automation_step_takes_the_same_path_without_auto_reply(
    api, ai, md, conv, db, merchant
):
    await enable_ai(ai, md)
    mid = await _inbound(api, db, merchant, conv, "where is my order")
    async with use_connection(api.app.deps.pool, transaction=True):
        assert not await ai_store.enqueue_reply(
            merchant, conv.conversation_id, mid, max_age_seconds=60
        )
        assert await ai_store.enqueue_reply(
            merchant, conv.conversation_id, mid, max_age_seconds=60, require_auto_reply=False
        )
    await drain_replies(api.app.deps)
    assert await _queue(db, conv) == [("DONE", "REPLIED")]
    (dm,) = await _outbound(db, conv)
    assert dm["is_from_bot"] and dm["source_ref"] == f"reply:{mid}"


async def test_answered_rows_are_purged_after_the_retention(api, ai, md, conv, db, merchant):
    await enable_ai(ai, md)
    await set_account_settings(db, conv.account_id, {"auto_reply_enabled": True})
    await _inbound(api, db, merchant, conv, "where is my order")
    await _inbound(api, db, merchant, conv, "#4321")
    await _run(api)
    await db.execute(
        "UPDATE ai_reply_queue SET done_at = now() - interval '8 days'"
        " WHERE id = (SELECT min(id) FROM ai_reply_queue WHERE conversation_id = %s)",
        (conv.conversation_id,),
    )
    assert await purge_answered(api.app.deps) == 3600.0
    assert await _queue(db, conv) == [("DONE", "REPLIED")]
