"""ProcessMessage reads everything it needs before the model in one query
(store.process_facts, in a conversation or for a contact outside one) and writes
the session with the day's usage in one statement (store.save_session with_usage). These tests pin what the
merged statements must still do: a missing or foreign conversation or contact is
NOT_FOUND; the settings, the session, the contact's profile, the account's business
hours, the prior slots and the day's usage all reach the decision; the session and
the usage are written together, and usage only when tokens were spent."""

from __future__ import annotations

import json
import uuid

import grpc
from ai_helpers import enable_ai, open_conversation, set_account_settings
from campaign_helpers import add_contacts
from google.protobuf.duration_pb2 import Duration
from helpers import expect_error

from mktx.v1 import ai_pb2

A = ai_pb2
NF = grpc.StatusCode.NOT_FOUND

ORDER = A.AIIntent(
    name="track_order",
    description="The customer asks where their order is",
    examples=["where is my order", "has my parcel shipped"],
    slots=[A.AISlot(name="order_id", type=A.AI_SLOT_TYPE_ORDER_ID, required=True)],
)


def _pm(conv, text: str, **kw) -> A.ProcessMessageRequest:
    return A.ProcessMessageRequest(conversation_id=str(conv.conversation_id), text=text, **kw)


async def _rows(db, query: str, *args) -> list[tuple]:
    return await (await db.execute(query, args)).fetchall()


async def test_missing_and_foreign_targets_are_not_found(
    api, ai, md, conv, db, merchant, other_merchant, sandbox
):
    await enable_ai(ai, md)
    other = api.auth(other_merchant)
    await enable_ai(ai, other)
    # No such conversation at all.
    missing = A.ProcessMessageRequest(conversation_id=str(uuid.uuid4()), text="hello")
    await expect_error(ai.ProcessMessage(missing, metadata=md), NF, "RESOURCE_NOT_FOUND")
    # Another merchant's conversation, contact and account: as if they did not exist.
    await expect_error(ai.ProcessMessage(_pm(conv, "hello"), metadata=other), NF)
    await expect_error(
        ai.ProcessMessage(
            A.ProcessMessageRequest(
                account_id=str(conv.account_id), contact_id=str(conv.contact_id), text="hello"
            ),
            metadata=other,
        ),
        NF,
        "RESOURCE_NOT_FOUND",
    )
    # The merchant's own contact named with the wrong account.
    await expect_error(
        ai.ProcessMessage(
            A.ProcessMessageRequest(
                account_id=str(uuid.uuid4()), contact_id=str(conv.contact_id), text="hello"
            ),
            metadata=md,
        ),
        NF,
    )
    # NOT_FOUND comes before AI_DISABLED: a merchant without settings asking about a
    # conversation it does not have learns nothing about the assistant.
    third = api.auth(uuid.uuid4())
    await expect_error(ai.ProcessMessage(_pm(conv, "hello"), metadata=third), NF)
    # Nothing was written for anyone.
    assert await _rows(db, "SELECT 1 FROM ai_sessions") == []
    assert await _rows(db, "SELECT 1 FROM ai_usage_daily") == []


async def test_settings_session_contact_and_account_all_reach_the_answer(ai, md, conv, db, admin):
    await enable_ai(
        ai,
        md,
        system_prompt="You sell garden tools.",
        model="gpt-4.1-mini",
        temperature=0.2,
        max_tokens=300,
        intents=[ORDER],
        moderation_enabled=False,
    )
    first = await ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md)
    assert first.intent == "track_order" and list(first.missing_slots) == ["order_id"]
    assert first.within_business_hours
    admin("DELETE", "/requests")
    # The account is closed now (a schedule with no open hours): the account's
    # settings are read with the conversation.
    await set_account_settings(
        db,
        conv.account_id,
        {"business_hours": {"enabled": True, "schedule": {"time_zone": "UTC", "days": []}}},
    )
    second = await ai.ProcessMessage(_pm(conv, "it is #4321"), metadata=md)
    assert not second.within_business_hours
    # The session's pending intent and slot carried the turn.
    assert second.intent == "track_order" and dict(second.slots) == {"order_id": "#4321"}
    (req,) = [
        r for r in admin("GET", "/requests?route=chat")["data"] if "response_format" in r["body"]
    ]
    body = req["body"]
    assert body["model"] == "gpt-4.1-mini"
    assert abs(body["temperature"] - 0.2) < 1e-6 and body["max_tokens"] == 300
    system = body["messages"][0]["content"]
    assert system.startswith("You sell garden tools.")
    assert '"track_order"' in system and '"human_request"' not in system  # its intents
    contact = json.loads(system.split("<contact>")[1].split("</contact>")[0])
    assert contact["tags"] == ["vip"] and contact["attributes"] == {"plan": "gold"}
    assert contact["name"].startswith("Customer ")
    # The session's context: the first turn's message and reply, then the new one.
    assert [m["role"] for m in body["messages"][1:]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == "where is my order"


async def test_prior_slots_are_read_only_for_a_conversation_without_a_session(
    ai, md, conv, db, merchant, admin
):
    await enable_ai(ai, md, intents=[ORDER], moderation_enabled=False)
    await ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md)
    await ai.ProcessMessage(_pm(conv, "#4321"), metadata=md)
    first_conv = conv.conversation_id
    await db.execute(
        "UPDATE conversations SET status = 'CLOSED', closed_at = now() WHERE id = %s",
        (first_conv,),
    )
    conv.conversation_id = await open_conversation(db, merchant, conv.account_id, conv.contact_id)
    admin("DELETE", "/requests")
    out = await ai.ProcessMessage(_pm(conv, "has my parcel shipped"), metadata=md)
    assert dict(out.slots) == {"order_id": "#4321"}  # carried over from the first
    (req,) = admin("GET", "/requests?route=chat")["data"]
    assert '<slots>{"order_id": "#4321"}</slots>' in req["body"]["messages"][0]["content"]
    # Once this conversation has a session, its own slots count, not the other's.
    await db.execute(
        'UPDATE ai_sessions SET slots = \'{"order_id": "#9999"}\' WHERE conversation_id = %s',
        (first_conv,),
    )
    again = await ai.ProcessMessage(_pm(conv, "any news"), metadata=md)
    assert dict(again.slots) == {"order_id": "#4321"}


async def test_the_days_usage_is_read_with_the_facts(ai, md, conv, db, merchant):
    await enable_ai(ai, md, daily_token_budget=1000, moderation_enabled=False)
    # Yesterday's tokens do not count against today's budget.
    await db.execute(
        "INSERT INTO ai_usage_daily (merchant_id, day, prompt_tokens, completion_tokens)"
        " VALUES (%s, (now() AT TIME ZONE 'UTC')::date - 1, 5000, 5000)",
        (merchant,),
    )
    await ai.ProcessMessage(_pm(conv, "where is my order", dry_run=True), metadata=md)
    await db.execute(
        "UPDATE ai_usage_daily SET prompt_tokens = 1000"
        " WHERE merchant_id = %s AND day = (now() AT TIME ZONE 'UTC')::date",
        (merchant,),
    )
    await expect_error(
        ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "AI_TOKEN_BUDGET_EXHAUSTED",
    )


async def test_session_and_usage_are_written_together(ai, md, conv, db, merchant, admin):
    await enable_ai(
        ai,
        md,
        moderation_enabled=False,
        escalation_keywords=["refund"],
        session_timeout=Duration(seconds=600),
    )
    out = await ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md)
    spent = out.usage.prompt_tokens, out.usage.completion_tokens
    assert spent[0] > 0 and spent[1] > 0
    usage = "SELECT prompt_tokens, completion_tokens, requests FROM ai_usage_daily"
    session = (
        "SELECT prompt_tokens, completion_tokens, jsonb_array_length(context),"
        " expires_at - last_activity_at FROM ai_sessions WHERE conversation_id = %s"
    )
    assert await _rows(db, usage) == [(*spent, 1)]
    ((p, c, items, ttl),) = await _rows(db, session, conv.conversation_id)
    assert (p, c, items, ttl.total_seconds()) == (*spent, 2, 600)
    # dry_run: the tokens are counted, the session is not touched.
    dry = await ai.ProcessMessage(_pm(conv, "where is my order", dry_run=True), metadata=md)
    assert dry.usage.total_tokens > 0
    ((p2, c2, n2),) = await _rows(db, usage)
    assert (p2 + c2, n2) == (sum(spent) + dry.usage.total_tokens, 2)
    assert (await _rows(db, session, conv.conversation_id))[0][:3] == (*spent, 2)
    # A keyword escalation whose summary the model cannot write spends no tokens: the
    # session is written, the day's usage is not.
    admin("POST", "/faults", {"kind": "error", "route": "chat", "status": 500})
    esc = await ai.ProcessMessage(_pm(conv, "I want a refund"), metadata=md)
    assert esc.requires_escalation and esc.usage.total_tokens == 0
    assert esc.escalation_summary.startswith("Intent:")  # the template's
    assert (await _rows(db, usage))[0][2] == 2
    assert (await _rows(db, session, conv.conversation_id))[0][:3] == (*spent, 4)


async def test_a_contact_outside_any_conversation_reads_settings_and_usage(
    ai, md, world, db, merchant, sandbox, admin
):
    await enable_ai(ai, md, system_prompt="You sell kites.", moderation_enabled=False)
    row, _ = world
    ((contact_id, _),) = await add_contacts(db, sandbox, merchant, row["id"], 1, tags=["new"])
    req = A.ProcessMessageRequest(
        account_id=str(row["id"]), contact_id=str(contact_id), text="where is my order"
    )
    out = await ai.ProcessMessage(req, metadata=md)
    assert out.intent == "order_status" and out.conversation_id == ""
    (chat,) = admin("GET", "/requests?route=chat")["data"]
    system = chat["body"]["messages"][0]["content"]
    assert system.startswith("You sell kites.") and '"new"' in system
    assert await _rows(db, "SELECT requests FROM ai_usage_daily") == [(1,)]
    assert await _rows(db, "SELECT 1 FROM ai_sessions") == []
