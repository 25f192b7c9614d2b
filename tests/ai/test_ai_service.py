"""AIService over gRPC against real PostgreSQL and the OpenAI-compatible stand-in
over HTTP: settings with etag, intents and slots, escalation rules, malformed
output, the breaker, the token budget, streaming, sessions, tenant isolation and
validation."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest
from ai_helpers import enable_ai, flag_nasty, open_conversation
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from helpers import expect_error

from mktx.v1 import ai_pb2, conversations_pb2, conversations_pb2_grpc

A = ai_pb2
BAD = grpc.StatusCode.INVALID_ARGUMENT

BOOKING = A.AIIntent(
    name="book_table",
    description="The customer wants to book a table",
    examples=["I want to book a table", "can I reserve a table", "table reservation please"],
    slots=[
        A.AISlot(name="date", type=A.AI_SLOT_TYPE_DATE, required=True),
        A.AISlot(name="party_size", type=A.AI_SLOT_TYPE_NUMBER, required=True),
    ],
)
HUMAN = A.AIIntent(
    name="talk_to_human", examples=["can I speak to a person", "I want a human agent"]
)


def _pm(conv, text: str, **kw) -> A.ProcessMessageRequest:
    return A.ProcessMessageRequest(conversation_id=str(conv.conversation_id), text=text, **kw)


async def test_settings_defaults_update_and_etag(ai, md):
    got = await ai.GetAISettings(A.GetAISettingsRequest(), metadata=md)
    assert not got.enabled and got.model == "gpt-4o-mini"
    assert got.escalation_threshold == pytest.approx(0.6)
    assert "human_request" in [i.name for i in got.intents]
    assert list(got.handoff_intents) == ["human_request"]
    assert got.session_timeout.seconds == 1800
    assert not got.HasField("update_time")

    updated = await ai.UpdateAISettings(
        A.UpdateAISettingsRequest(
            settings=A.AISettings(
                enabled=True,
                intents=[BOOKING, HUMAN],
                handoff_intents=["talk_to_human"],
                escalation_keywords=["refund"],
                daily_token_budget=100_000,
                session_timeout=Duration(seconds=600),
            ),
            update_mask=FieldMask(
                paths=[
                    "enabled",
                    "intents",
                    "handoff_intents",
                    "escalation_keywords",
                    "daily_token_budget",
                    "session_timeout",
                ]
            ),
            etag=got.etag,
        ),
        metadata=md,
    )
    assert updated.enabled and [i.name for i in updated.intents] == ["book_table", "talk_to_human"]
    assert updated.intents[0].slots[1].type == A.AI_SLOT_TYPE_NUMBER
    assert updated.session_timeout.seconds == 600 and updated.HasField("update_time")
    assert updated.etag != got.etag
    # Fields outside the mask are kept.
    assert updated.model == "gpt-4o-mini"
    # A stale etag is ABORTED and changes nothing.
    await expect_error(
        ai.UpdateAISettings(
            A.UpdateAISettingsRequest(
                settings=A.AISettings(enabled=False),
                update_mask=FieldMask(paths=["enabled"]),
                etag=got.etag,
            ),
            metadata=md,
        ),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    assert (await ai.GetAISettings(A.GetAISettingsRequest(), metadata=md)).enabled
    # A hand-off intent must be one of the intents.
    err = await expect_error(
        ai.UpdateAISettings(
            A.UpdateAISettingsRequest(
                settings=A.AISettings(handoff_intents=["nope"]),
                update_mask=FieldMask(paths=["handoff_intents"]),
            ),
            metadata=md,
        ),
        BAD,
        "VALIDATION_ERROR",
    )
    assert "settings.handoff_intents[0]" in err.bad_fields


async def test_update_settings_validation_names_every_bad_field(ai, md):
    err = await expect_error(
        ai.UpdateAISettings(
            A.UpdateAISettingsRequest(
                settings=A.AISettings(
                    model="",
                    temperature=2.5,
                    max_tokens=0,
                    escalation_threshold=1.5,
                    system_prompt="x" * 10_001,
                    handoff_message="x" * 1_001,
                    escalation_keywords=[""],
                    intents=[
                        A.AIIntent(name="Bad Name"),
                        A.AIIntent(name="ok", slots=[A.AISlot(name="s", type=99)]),
                        A.AIIntent(name="ok"),
                    ],
                    daily_token_budget=-1,
                    session_timeout=Duration(seconds=5),
                ),
                update_mask=FieldMask(
                    paths=[
                        "model",
                        "temperature",
                        "max_tokens",
                        "escalation_threshold",
                        "system_prompt",
                        "handoff_message",
                        "escalation_keywords",
                        "intents",
                        "daily_token_budget",
                        "session_timeout",
                        "etag",
                    ]
                ),
                etag="e" * 65,
            ),
            metadata=md,
        ),
        BAD,
        "VALIDATION_ERROR",
    )
    assert {
        "settings.model",
        "settings.temperature",
        "settings.max_tokens",
        "settings.escalation_threshold",
        "settings.system_prompt",
        "settings.handoff_message",
        "settings.escalation_keywords[0]",
        "settings.intents[0].name",
        "settings.intents[1].slots[0].type",
        "settings.intents[2].name",
        "settings.daily_token_budget",
        "settings.session_timeout",
        "update_mask.paths[10]",
        "etag",
    } <= set(err.bad_fields)
    await expect_error(
        ai.UpdateAISettings(A.UpdateAISettingsRequest(), metadata=md), BAD, "VALIDATION_ERROR"
    )
    # NUL characters anywhere are refused before the method's rules.
    err = await expect_error(
        ai.UpdateAISettings(
            A.UpdateAISettingsRequest(
                settings=A.AISettings(intents=[A.AIIntent(name="ok", examples=["a\x00"])]),
                update_mask=FieldMask(paths=["intents"]),
            ),
            metadata=md,
        ),
        BAD,
        "VALIDATION_ERROR",
    )
    assert "settings.intents[0].examples[0]" in err.bad_fields


async def test_process_message_validation(ai, md, conv):
    cases = [
        (A.ProcessMessageRequest(text="hi"), "conversation_id"),
        (A.ProcessMessageRequest(conversation_id="nope", text="hi"), "conversation_id"),
        (
            A.ProcessMessageRequest(
                conversation_id=str(conv.conversation_id), account_id=str(uuid.uuid4()), text="x"
            ),
            "conversation_id",
        ),
        (A.ProcessMessageRequest(account_id=str(uuid.uuid4()), text="hi"), "contact_id"),
        (_pm(conv, ""), "text"),
        (_pm(conv, "x" * 10_001), "text"),
        (_pm(conv, "nul\x00"), "text"),
    ]
    for req, field in cases:
        err = await expect_error(ai.ProcessMessage(req, metadata=md), BAD, "VALIDATION_ERROR")
        assert field in err.bad_fields, (req, err.bad_fields)
    err = await expect_error(
        ai.GetConversationContext(
            A.GetConversationContextRequest(conversation_id="x", message_limit=-1), metadata=md
        ),
        BAD,
    )
    assert {"conversation_id", "message_limit"} <= set(err.bad_fields)
    err = await expect_error(
        ai.EscalateConversation(
            A.EscalateConversationRequest(
                conversation_id=str(conv.conversation_id), reason="", assignee_user_id="u" * 201
            ),
            metadata=md,
        ),
        BAD,
    )
    assert {"reason", "assignee_user_id"} <= set(err.bad_fields)


async def test_disabled_assistant_is_failed_precondition(ai, md, conv):
    await expect_error(
        ai.ProcessMessage(_pm(conv, "hello"), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "AI_DISABLED",
    )


async def test_another_merchants_conversation_is_not_found_on_every_rpc(
    api, ai, md, conv, other_merchant
):
    await enable_ai(ai, md)
    other = api.auth(other_merchant)
    await enable_ai(ai, other)
    cid = str(conv.conversation_id)
    nf = grpc.StatusCode.NOT_FOUND
    await expect_error(
        ai.ProcessMessage(_pm(conv, "hello"), metadata=other), nf, "RESOURCE_NOT_FOUND"
    )
    stream = ai.StreamProcessMessage(
        A.StreamProcessMessageRequest(conversation_id=cid, text="hello"), metadata=other
    )

    async def drain() -> None:
        async for _ in stream:
            pass

    await expect_error(drain(), nf, "RESOURCE_NOT_FOUND")
    await expect_error(
        ai.ProcessMessage(
            A.ProcessMessageRequest(
                account_id=str(conv.account_id), contact_id=str(conv.contact_id), text="hello"
            ),
            metadata=other,
        ),
        nf,
    )
    await expect_error(
        ai.GetConversationContext(
            A.GetConversationContextRequest(conversation_id=cid), metadata=other
        ),
        nf,
    )
    await expect_error(
        ai.EscalateConversation(
            A.EscalateConversationRequest(conversation_id=cid, reason="help"), metadata=other
        ),
        nf,
    )
    # A conversation that does not exist at all looks the same.
    await expect_error(
        ai.GetConversationContext(
            A.GetConversationContextRequest(conversation_id=str(uuid.uuid4())), metadata=md
        ),
        nf,
    )
    # And the owner still sees it, untouched.
    ctx = await ai.GetConversationContext(
        A.GetConversationContextRequest(conversation_id=cid), metadata=md
    )
    assert not ctx.escalated


async def test_intent_slot_question_and_dry_run(ai, md, conv):
    await enable_ai(ai, md)
    dry = await ai.ProcessMessage(_pm(conv, "where is my order", dry_run=True), metadata=md)
    assert dry.intent == "order_status" and not dry.requires_escalation
    assert list(dry.missing_slots) == ["order_id"] and "order" in dry.response_text.lower()
    assert dry.usage.total_tokens > 0 and dry.model == "gpt-4o-mini"
    ctx = await ai.GetConversationContext(
        A.GetConversationContextRequest(conversation_id=str(conv.conversation_id)), metadata=md
    )
    assert len(ctx.session.context_items) == 0 and not ctx.detected_intents  # dry run
    real = await ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md)
    assert real.intent == "order_status"
    ctx = await ai.GetConversationContext(
        A.GetConversationContextRequest(conversation_id=str(conv.conversation_id)), metadata=md
    )
    assert [c.role for c in ctx.session.context_items] == ["user", "assistant"]
    assert ctx.session.current_intent == "order_status"
    assert list(ctx.session.missing_slots) == ["order_id"]
    assert ctx.session.HasField("expire_time") and ctx.detected_intents[0].intent == "order_status"
    assert ctx.total_usage.total_tokens == real.usage.total_tokens


async def test_slot_filling_across_three_turns(ai, md, conv):
    await enable_ai(ai, md, intents=[BOOKING, HUMAN], handoff_intents=["talk_to_human"])
    first = await ai.ProcessMessage(_pm(conv, "I want to book a table"), metadata=md)
    assert first.intent == "book_table" and set(first.missing_slots) == {"date", "party_size"}
    second = await ai.ProcessMessage(_pm(conv, "on 2030-05-17 please"), metadata=md)
    assert second.intent == "book_table" and not second.requires_escalation
    assert second.slots["date"] == "2030-05-17"
    assert list(second.missing_slots) == ["party_size"]
    third = await ai.ProcessMessage(_pm(conv, "we are 4"), metadata=md)
    assert third.intent == "book_table" and not third.requires_escalation
    assert dict(third.slots) == {"date": "2030-05-17", "party_size": "4"}
    assert list(third.missing_slots) == []
    ctx = await ai.GetConversationContext(
        A.GetConversationContextRequest(conversation_id=str(conv.conversation_id)), metadata=md
    )
    assert dict(ctx.slots) == {"date": "2030-05-17", "party_size": "4"}
    assert len(ctx.session.context_items) == 6


async def test_session_expiry_starts_fresh_but_keeps_valid_slots(ai, md, conv, db):
    await enable_ai(ai, md, intents=[BOOKING, HUMAN], handoff_intents=["talk_to_human"])
    await ai.ProcessMessage(_pm(conv, "I want to book a table"), metadata=md)
    await ai.ProcessMessage(_pm(conv, "on 2030-05-17 please"), metadata=md)
    # Silence past the session timeout; an undeclared slot was stored meanwhile.
    await db.execute(
        "UPDATE ai_sessions SET expires_at = now() - interval '1 second',"
        ' slots = slots || \'{"legacy": "x"}\'::jsonb WHERE conversation_id = %s',
        (conv.conversation_id,),
    )
    again = await ai.ProcessMessage(_pm(conv, "can I reserve a table"), metadata=md)
    assert again.intent == "book_table"
    assert dict(again.slots) == {"date": "2030-05-17"}  # kept; "legacy" dropped
    assert list(again.missing_slots) == ["party_size"]
    ctx = await ai.GetConversationContext(
        A.GetConversationContextRequest(conversation_id=str(conv.conversation_id)), metadata=md
    )
    # The fresh session holds only the new turn.
    assert ctx.session.context_items[0].text == "can I reserve a table"
    assert len(ctx.session.context_items) == 2


async def test_low_confidence_escalates_with_a_summary(ai, md, conv):
    await enable_ai(ai, md)
    out = await ai.ProcessMessage(_pm(conv, "blorp zzz quux"), metadata=md)
    assert out.requires_escalation
    assert out.escalation_reason == A.ESCALATION_REASON_LOW_CONFIDENCE
    assert out.response_text.startswith("Thanks! A member of our team")
    assert 2 <= len(out.escalation_summary.splitlines()) <= 3


async def test_handoff_intent_and_keyword_escalate(ai, md, conv, admin):
    await enable_ai(ai, md, escalation_keywords=["refund"])
    out = await ai.ProcessMessage(_pm(conv, "I want a human"), metadata=md)
    assert out.requires_escalation
    assert out.escalation_reason == A.ESCALATION_REASON_HUMAN_REQUESTED
    admin("DELETE", "/requests")
    kw = await ai.ProcessMessage(_pm(conv, "I want a REFUND now"), metadata=md)
    assert kw.requires_escalation and kw.escalation_reason == A.ESCALATION_REASON_KEYWORD
    assert "refund" in kw.escalation_detail
    # A keyword needs no model answer (only the agent's summary is asked for).
    chats = admin("GET", "/requests?route=chat")["data"]
    assert all("response_format" not in r["body"] for r in chats)
    # "refunded" is not the keyword (word boundaries).
    ok = await ai.ProcessMessage(_pm(conv, "where is my order, was it refunded"), metadata=md)
    assert ok.escalation_reason != A.ESCALATION_REASON_KEYWORD


async def test_moderation_flag_escalates_and_is_never_answered(ai, md, conv, admin, db):
    await enable_ai(ai, md)
    flag_nasty(admin)
    # The moderation answers late, after the model's answer is in: that answer is
    # discarded all the same.
    admin("POST", "/faults", {"kind": "latency", "route": "moderations", "latency_ms": 300})
    admin("DELETE", "/requests")
    out = await ai.ProcessMessage(_pm(conv, "you are nasty"), metadata=md)
    assert out.requires_escalation
    assert out.escalation_reason == A.ESCALATION_REASON_MODERATION_FLAGGED
    assert out.response_text.startswith("Thanks! A member of our team")
    assert out.intent == "other" and not out.slots
    routes = [r["route"] for r in admin("GET", "/requests")["data"]]
    assert "moderations" in routes
    # The model's answer, asked for beside the moderation, was spent: its tokens are
    # the message's usage, recorded for the day.
    answers = [
        r for r in admin("GET", "/requests?route=chat")["data"] if "response_format" in r["body"]
    ]
    assert len(answers) == 1 and out.usage.total_tokens > 0
    (used,) = await (
        await db.execute("SELECT prompt_tokens + completion_tokens FROM ai_usage_daily")
    ).fetchone()
    assert used >= out.usage.total_tokens
    # ... and the session's bot turn is the holding reply, not the model's answer.
    ctx = await ai.GetConversationContext(
        A.GetConversationContextRequest(conversation_id=str(conv.conversation_id)), metadata=md
    )
    turns = [i.text for i in ctx.session.context_items if i.role == "assistant"]
    assert turns == [out.response_text]


async def test_moderation_and_the_answer_are_asked_at_once(ai, md, conv, admin):
    """One model latency per message, not two: the answer is asked for while the
    moderation is still out (the stand-in's log: the answer's request starts before
    the moderation's ends), and a passed text gets that answer."""
    await enable_ai(ai, md)
    admin("POST", "/faults", {"kind": "latency", "route": "moderations", "latency_ms": 300})
    admin("DELETE", "/requests")
    out = await ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md)
    assert out.intent == "order_status" and not out.requires_escalation
    (moderation,) = admin("GET", "/requests?route=moderations")["data"]
    (answer,) = [
        r for r in admin("GET", "/requests?route=chat")["data"] if "response_format" in r["body"]
    ]
    assert answer["started"] < moderation["finished"]


async def test_moderation_failure_fails_the_message_and_cancels_the_answer(ai, md, conv, admin, db):
    await enable_ai(ai, md)
    admin("POST", "/faults", {"kind": "error", "route": "moderations", "status": 500})
    await expect_error(
        ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md),
        grpc.StatusCode.UNAVAILABLE,
        "AI_SERVICE_ERROR",
    )
    ctx = await ai.GetConversationContext(
        A.GetConversationContextRequest(conversation_id=str(conv.conversation_id)), metadata=md
    )
    assert len(ctx.session.context_items) == 0


async def test_stream_holds_pieces_until_moderation_passes(ai, md, conv, admin):
    """Streamed with moderation answering after the whole answer: every piece still
    arrives, in order, once the text is passed; a flagged text's pieces never do."""
    await enable_ai(ai, md)
    admin("POST", "/faults", {"kind": "latency", "route": "moderations", "latency_ms": 300})
    flag_nasty(admin)

    async def stream(text: str) -> list[Any]:
        return [
            m
            async for m in ai.StreamProcessMessage(
                A.StreamProcessMessageRequest(conversation_id=str(conv.conversation_id), text=text),
                metadata=md,
            )
        ]

    passed = await stream("where is my order")
    deltas = [m.text_delta for m in passed if m.WhichOneof("event") == "text_delta"]
    assert len(deltas) >= 2 and "".join(deltas) == passed[-1].result.response_text
    assert passed[-1].result.intent == "order_status"
    flagged = await stream("where is my order, you nasty")
    assert [m.WhichOneof("event") for m in flagged] == ["result"]
    result = flagged[-1].result
    assert result.escalation_reason == A.ESCALATION_REASON_MODERATION_FLAGGED
    assert result.response_text.startswith("Thanks! A member of our team")


async def test_malformed_output_is_retried_once_then_escalates(ai, md, conv, admin):
    await enable_ai(ai, md)
    admin("POST", "/faults", {"kind": "schema_mismatch", "route": "chat", "count": 1})
    once = await ai.ProcessMessage(_pm(conv, "where is my order", dry_run=True), metadata=md)
    assert once.intent == "order_status" and not once.requires_escalation
    admin("DELETE", "/faults")
    admin("POST", "/faults", {"kind": "schema_mismatch", "route": "chat", "count": 2})
    admin("DELETE", "/requests")
    twice = await ai.ProcessMessage(_pm(conv, "where is my order", dry_run=True), metadata=md)
    assert twice.requires_escalation
    assert twice.escalation_reason == A.ESCALATION_REASON_MALFORMED_OUTPUT
    assert twice.response_text.startswith("Thanks! A member of our team")  # not the bad reply
    structured = [
        r for r in admin("GET", "/requests?route=chat")["data"] if "response_format" in r["body"]
    ]
    assert len(structured) == 2  # the answer and exactly one retry


async def test_outage_opens_the_breaker_which_closes_again(api, ai, md, conv, admin):
    await enable_ai(ai, md, moderation_enabled=False)
    clock = [1000.0]
    breaker = api.app.deps.model.breaker
    breaker._clock = lambda: clock[0]
    admin("POST", "/faults", {"kind": "error", "route": "chat", "status": 500})
    for _ in range(3):
        await expect_error(
            ai.ProcessMessage(_pm(conv, "hello", dry_run=True), metadata=md),
            grpc.StatusCode.UNAVAILABLE,
            "AI_SERVICE_ERROR",
        )
    admin("DELETE", "/requests")
    err = await expect_error(
        ai.ProcessMessage(_pm(conv, "hello", dry_run=True), metadata=md),
        grpc.StatusCode.UNAVAILABLE,
        "AI_SERVICE_ERROR",
    )
    assert "breaker" in err.message
    assert admin("GET", "/requests?route=chat")["data"] == []  # failed fast
    admin("DELETE", "/faults")
    clock[0] += 31  # past ai_breaker_reset: one half-open probe goes through
    out = await ai.ProcessMessage(_pm(conv, "where is my order", dry_run=True), metadata=md)
    assert out.intent == "order_status"
    assert breaker.state.value == "closed"


async def test_daily_token_budget_is_resource_exhausted_with_retry_info(ai, md, conv, db):
    await enable_ai(ai, md, daily_token_budget=500)
    first = await ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md)
    assert first.usage.total_tokens > 500  # one call may overshoot; the next is refused
    err = await expect_error(
        ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "AI_TOKEN_BUDGET_EXHAUSTED",
    )
    assert err.retry_delay_s is not None and 0 < err.retry_delay_s <= 86_400
    (used,) = await (
        await db.execute("SELECT prompt_tokens + completion_tokens FROM ai_usage_daily")
    ).fetchone()
    assert used == first.usage.total_tokens


async def test_stream_relays_deltas_then_one_result(ai, md, conv, admin):
    await enable_ai(ai, md)
    items = [
        m
        async for m in ai.StreamProcessMessage(
            A.StreamProcessMessageRequest(
                conversation_id=str(conv.conversation_id), text="where is my order"
            ),
            metadata=md,
        )
    ]
    kinds = [m.WhichOneof("event") for m in items]
    assert kinds[-1] == "result" and kinds.count("result") == 1
    deltas = [m.text_delta for m in items if m.WhichOneof("event") == "text_delta"]
    assert len(deltas) >= 2
    assert "".join(deltas) == items[-1].result.response_text
    assert items[-1].result.intent == "order_status"
    chats = admin("GET", "/requests?route=chat")["data"]
    assert any(r["body"].get("stream") for r in chats)


async def test_process_by_account_and_contact_without_conversation(ai, md, conv):
    await enable_ai(ai, md)
    out = await ai.ProcessMessage(
        A.ProcessMessageRequest(
            account_id=str(conv.account_id),
            contact_id=str(conv.contact_id),
            text="where is my order",
        ),
        metadata=md,
    )
    assert out.conversation_id == "" and out.intent == "order_status"


async def test_escalate_by_hand_marks_queues_handoff_and_emits_event(ai, md, conv, db, merchant):
    await enable_ai(ai, md)
    got = await ai.EscalateConversation(
        A.EscalateConversationRequest(
            conversation_id=str(conv.conversation_id),
            reason="VIP customer",
            assignee_user_id="agent-7",
            notify_contact=True,
        ),
        metadata=md,
    )
    assert got.escalated and got.assignee_user_id == "agent-7"
    assert "VIP customer" in got.escalation_reason
    rows = await (
        await db.execute(
            "SELECT text, is_from_bot, source FROM outbound_dms WHERE conversation_id = %s",
            (conv.conversation_id,),
        )
    ).fetchall()
    assert rows == [("Thanks! A member of our team will get back to you shortly.", True, "ai")]
    (payload,) = await (
        await db.execute(
            "SELECT payload FROM domain_events WHERE merchant_id = %s"
            " AND type = 'conversation.escalated'",
            (merchant,),
        )
    ).fetchone()
    assert payload["reason"] == "MANUAL" and payload["summary"]
    # Again: the reason and assignee change, the contact is not told twice.
    again = await ai.EscalateConversation(
        A.EscalateConversationRequest(
            conversation_id=str(conv.conversation_id),
            reason="still waiting",
            assignee_user_id="agent-9",
            notify_contact=True,
        ),
        metadata=md,
    )
    assert again.assignee_user_id == "agent-9" and "still waiting" in again.escalation_reason
    (n,) = await (
        await db.execute(
            "SELECT count(*) FROM outbound_dms WHERE conversation_id = %s",
            (conv.conversation_id,),
        )
    ).fetchone()
    assert n == 1
    # A closed conversation cannot be escalated.
    await db.execute(
        "UPDATE conversations SET status = 'CLOSED' WHERE id = %s", (conv.conversation_id,)
    )
    await expect_error(
        ai.EscalateConversation(
            A.EscalateConversationRequest(conversation_id=str(conv.conversation_id), reason="x"),
            metadata=md,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )


async def test_provider_rate_limit_is_resource_exhausted_with_retry_info(ai, md, conv, admin):
    await enable_ai(ai, md, moderation_enabled=False)
    admin("POST", "/faults", {"kind": "rate_limit", "route": "chat", "count": 1, "retry_after": 7})
    err = await expect_error(
        ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "RATE_LIMIT_EXCEEDED",
    )
    assert err.retry_delay_s == pytest.approx(7, abs=1)
    # A busy provider does not open the breaker: the next call goes through.
    assert (await ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md)).intent


async def test_stream_error_after_deltas_ends_without_a_result(ai, md, conv, admin):
    await enable_ai(ai, md, moderation_enabled=False)
    admin("POST", "/faults", {"kind": "malformed_json", "route": "chat", "count": 1})
    got = []

    async def consume() -> None:
        async for m in ai.StreamProcessMessage(
            A.StreamProcessMessageRequest(
                conversation_id=str(conv.conversation_id), text="where is my order"
            ),
            metadata=md,
        ):
            got.append(m.WhichOneof("event"))

    await expect_error(consume(), grpc.StatusCode.UNAVAILABLE, "AI_SERVICE_ERROR")
    assert "result" not in got
    # Nothing was recorded in the session.
    ctx = await ai.GetConversationContext(
        A.GetConversationContextRequest(conversation_id=str(conv.conversation_id)), metadata=md
    )
    assert len(ctx.session.context_items) == 0


async def test_watch_conversations_shows_the_escalation(api, ai, md, conv):
    C = conversations_pb2
    watch = conversations_pb2_grpc.ConversationsServiceStub(api.channel).WatchConversations(
        C.WatchConversationsRequest(conversation_id=str(conv.conversation_id)), metadata=md
    )
    try:
        await asyncio.wait_for(watch.initial_metadata(), 5.0)
        await ai.EscalateConversation(
            A.EscalateConversationRequest(
                conversation_id=str(conv.conversation_id), reason="angry customer"
            ),
            metadata=md,
        )
        ev = await asyncio.wait_for(watch.read(), 5.0)
        assert ev.type == C.CONVERSATION_EVENT_TYPE_ESCALATED
        assert ev.conversation.escalated and ev.conversation.id == str(conv.conversation_id)
    finally:
        watch.cancel()


async def test_model_timeout_is_deadline_exceeded(ai, md, conv, admin):
    await enable_ai(ai, md, moderation_enabled=False)
    admin("POST", "/faults", {"kind": "timeout", "route": "chat", "count": 1})
    await expect_error(
        ai.ProcessMessage(_pm(conv, "where is my order", dry_run=True), metadata=md),
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "AI_SERVICE_ERROR",
    )


async def test_the_prompt_carries_the_contact_profile_intents_and_context(ai, md, conv, admin):
    await enable_ai(ai, md, system_prompt="You sell garden tools.")
    await ai.ProcessMessage(_pm(conv, "where is my order"), metadata=md)
    admin("DELETE", "/requests")
    await ai.ProcessMessage(_pm(conv, "#4321"), metadata=md)
    (req,) = [
        r for r in admin("GET", "/requests?route=chat")["data"] if "response_format" in r["body"]
    ]
    msgs = req["body"]["messages"]
    system = msgs[0]["content"]
    assert system.startswith("You sell garden tools.")
    assert '"vip"' in system and '"plan": "gold"' in system and "<intents>" in system
    assert [m["role"] for m in msgs[1:]] == ["user", "assistant", "user"]
    assert msgs[-1]["content"] == "#4321"
    assert req["body"]["response_format"]["json_schema"]["strict"] is True


async def test_a_new_conversation_keeps_the_contacts_valid_slots(ai, md, conv, db, merchant):
    await enable_ai(ai, md, intents=[BOOKING, HUMAN], handoff_intents=["talk_to_human"])
    await ai.ProcessMessage(_pm(conv, "I want to book a table"), metadata=md)
    await ai.ProcessMessage(_pm(conv, "on 2030-05-17 please"), metadata=md)
    await db.execute(
        "UPDATE conversations SET status = 'CLOSED', closed_at = now() WHERE id = %s",
        (conv.conversation_id,),
    )
    conv.conversation_id = await open_conversation(db, merchant, conv.account_id, conv.contact_id)
    out = await ai.ProcessMessage(_pm(conv, "can I reserve a table"), metadata=md)
    assert dict(out.slots) == {"date": "2030-05-17"}
    assert list(out.missing_slots) == ["party_size"]
