"""The AI_REPLY node against real PostgreSQL, the X sandbox and the AI stand-in over
HTTP: the step hands the contact's latest DM to the assistant through the auto-reply
queue (answered by its loop, sent once through the one DM ledger), parks durably,
and the execution continues on "default" when the bot answered and on "escalated"
when it handed over (low confidence, the model down) or had nothing to answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from flow_helpers import (
    c,
    contact_id_of,
    create_active,
    engine_pass,
    executions,
    fast_forward,
    flow,
    n,
    run_until,
    steps,
)
from google.protobuf.field_mask_pb2 import FieldMask

from mktx.v1 import ai_pb2 as A
from mktx.v1 import ai_pb2_grpc
from mktx.v1 import automation_pb2 as P
from mktx_grpc.ai_standin import AIStandinServer
from mktx_grpc.core.config import Settings
from mktx_grpc.worker.auto_reply import drain_replies


@pytest.fixture
def standin() -> Iterator[AIStandinServer]:
    with AIStandinServer() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, standin: AIStandinServer) -> Settings:
    """The automation settings with the model client pointed at this test's stand-in
    (no client retries, so a fault is seen once per call)."""
    return settings.replace(
        ai_base_url=standin.openai_base_url,
        ai_api_key=standin.api_key,
        ai_max_retries=0,
        ai_timeout=5.0,
        ai_breaker_failures=3,
    )


async def _enable_ai(api, merchant) -> None:
    ai = ai_pb2_grpc.AIServiceStub(api.channel)
    await ai.UpdateAISettings(
        A.UpdateAISettingsRequest(
            settings=A.AISettings(enabled=True), update_mask=FieldMask(paths=["enabled"])
        ),
        metadata=api.auth(merchant),
    )


def _ai_flow(
    account_id: str, trigger: str = "INBOUND_MESSAGE", *, instructions: str = "", **config: Any
) -> P.Flow:
    """trigger → ai (AI_REPLY) → "bot" tag on default, "humans" tag on escalated."""
    ai = n("ai", "AI_REPLY", instructions=instructions) if instructions else n("ai", "AI_REPLY")
    return flow(
        account_id,
        trigger,
        [
            ai,
            n("ok", "ADD_TAG", tags=["bot-answered"]),
            n("human", "ADD_TAG", tags=["needs-human"]),
        ],
        [c("trigger", "ai"), c("ai", "ok"), c("ai", "human", "escalated")],
        **config,
    )


async def _one_execution(db, flow_id: str) -> dict[str, Any]:
    rows = await executions(db, flow_id)
    assert len(rows) == 1, rows
    return rows[0]


async def _parked(db, flow_id: str) -> bool:
    rows = await executions(db, flow_id)
    return len(rows) == 1 and rows[0]["status"] == "WAITING"


async def _start_and_park(
    api, merchant, shop, db, text: str, *, instructions: str = ""
) -> tuple[Any, P.Flow]:
    """A DM starts the flow; its AI_REPLY step queues the message and parks."""
    deps = api.app.deps
    f = await create_active(api, merchant, _ai_flow(shop.account_id, instructions=instructions))
    who = shop.customer()
    await shop.dm(who, text)

    async def parked() -> bool:
        return await _parked(db, f.id)

    await run_until(deps, parked, send=False)
    ex = await _one_execution(db, f.id)
    assert ex["waiting_for"] == "AI_REPLY" and ex["current_node_id"] == "ai"
    # A durable wait: the queue row exists, the execution is not due before its recheck.
    (state,) = await (
        await db.execute(
            "SELECT state FROM ai_reply_queue WHERE message_id = %s",
            (ex["context"]["ai_reply_message_id"],),
        )
    ).fetchone()
    assert state == "QUEUED"
    (due_later,) = await (
        await db.execute("SELECT due_at > now() FROM flow_executions WHERE id = %s", (ex["id"],))
    ).fetchone()
    assert due_later
    return who, f


async def _answer_and_finish(api, db, f: P.Flow, now: datetime | None = None) -> dict[str, Any]:
    """The assistant's loop answers (business hours judged at ``now``); recording the
    outcome makes the execution due (no fast-forward), and the runner finishes it."""
    deps = api.app.deps
    assert await drain_replies(deps, now=now) == 1
    ex = await _one_execution(db, f.id)
    (due_now,) = await (
        await db.execute("SELECT due_at <= now() FROM flow_executions WHERE id = %s", (ex["id"],))
    ).fetchone()
    assert due_now, "finishing the queue row did not wake the execution"

    async def finished() -> bool:
        return (await _one_execution(db, f.id))["status"] == "COMPLETED"

    await run_until(deps, finished)
    return await _one_execution(db, f.id)


async def _tags(db, merchant, who) -> list[str]:
    cid = await contact_id_of(db, merchant, who)
    (tags,) = await (await db.execute("SELECT tags FROM contacts WHERE id = %s", (cid,))).fetchone()
    return list(tags)


async def _conversation(db, merchant, who) -> tuple[bool, str]:
    cid = await contact_id_of(db, merchant, who)
    row = await (
        await db.execute(
            "SELECT escalated, status FROM conversations WHERE contact_id = %s", (cid,)
        )
    ).fetchone()
    return bool(row[0]), str(row[1])


async def test_a_confident_answer_is_sent_once_and_takes_default(api, merchant, shop, db):
    await _enable_ai(api, merchant)
    who, f = await _start_and_park(api, merchant, shop, db, "where is my order")
    ex = await _answer_and_finish(api, db, f)
    assert await steps(db, ex["id"]) == [
        ("ai", "COMPLETED", "default"),
        ("ok", "COMPLETED", "default"),
    ]
    (output,) = await (
        await db.execute(
            "SELECT output FROM flow_execution_steps WHERE execution_id = %s AND node_id = 'ai'",
            (ex["id"],),
        )
    ).fetchone()
    assert output["outcome"] == "REPLIED"
    assert "ai_reply_message_id" not in ex["context"]
    # The bot's reply went through the one ledger, to X once.
    rows = await (
        await db.execute(
            "SELECT source, is_from_bot, state FROM outbound_dms WHERE contact_id = %s",
            (await contact_id_of(db, merchant, who),),
        )
    ).fetchall()
    assert rows == [("ai", True, "SENT")]
    for _ in range(3):
        await engine_pass(api.app.deps)
        await drain_replies(api.app.deps)
    texts = shop.texts_to(who)
    assert len(texts) == 1 and "order" in texts[0].lower()
    assert await _tags(db, merchant, who) == ["bot-answered"]
    assert await _conversation(db, merchant, who) == (False, "OPEN")


async def test_a_low_confidence_answer_escalates(api, merchant, shop, db):
    await _enable_ai(api, merchant)
    who, f = await _start_and_park(api, merchant, shop, db, "blorp zzz quux")
    ex = await _answer_and_finish(api, db, f)
    assert await steps(db, ex["id"]) == [
        ("ai", "COMPLETED", "escalated"),
        ("human", "COMPLETED", "default"),
    ]
    assert await _tags(db, merchant, who) == ["needs-human"]
    assert await _conversation(db, merchant, who) == (True, "OPEN")
    # The hand-off message is the only DM.
    (text,) = shop.texts_to(who)
    assert text.startswith("Thanks! A member of our team")


async def test_the_model_down_escalates(api, merchant, shop, db, standin):
    await _enable_ai(api, merchant)
    who, f = await _start_and_park(api, merchant, shop, db, "where is my order")
    async with httpx.AsyncClient(base_url=f"{standin.base_url}/_standin") as admin:
        resp = await admin.post("/faults", json={"kind": "error", "route": "chat", "status": 503})
        assert resp.status_code < 300, resp.text
    ex = await _answer_and_finish(api, db, f)
    assert await steps(db, ex["id"]) == [
        ("ai", "COMPLETED", "escalated"),
        ("human", "COMPLETED", "default"),
    ]
    assert await _tags(db, merchant, who) == ["needs-human"]
    assert await _conversation(db, merchant, who) == (True, "OPEN")


async def test_the_assistant_disabled_takes_escalated(api, merchant, shop, db):
    # AI settings never enabled: the queue row ends SKIPPED, humans get the turn.
    who, f = await _start_and_park(api, merchant, shop, db, "where is my order")
    ex = await _answer_and_finish(api, db, f)
    assert await steps(db, ex["id"]) == [
        ("ai", "COMPLETED", "escalated"),
        ("human", "COMPLETED", "default"),
    ]
    assert shop.texts_to(who) == []


async def test_auto_reply_and_the_step_answer_a_message_once(api, merchant, shop, db):
    """The account also auto-replies: the step finds the message already queued (or
    answered) and waits on that same row; the contact gets one answer."""
    await _enable_ai(api, merchant)
    await db.execute(
        "UPDATE accounts SET settings = settings || '{\"auto_reply_enabled\": true}'::jsonb"
        " WHERE id = %s",
        (shop.account_id,),
    )
    deps = api.app.deps
    f = await create_active(api, merchant, _ai_flow(shop.account_id))
    who = shop.customer()
    await shop.dm(who, "where is my order")

    async def finished() -> bool:
        from mktx_grpc.worker.auto_reply import AUTO_REPLY_EVENTS
        from mktx_grpc.worker.consumer import drain

        await drain(deps.pool, AUTO_REPLY_EVENTS)
        await drain_replies(deps)
        rows = await executions(db, f.id)
        return len(rows) == 1 and rows[0]["status"] == "COMPLETED"

    await run_until(deps, finished)
    ex = await _one_execution(db, f.id)
    assert (await steps(db, ex["id"]))[0] == ("ai", "COMPLETED", "default")
    (queued,) = await (
        await db.execute(
            "SELECT count(*) FROM ai_reply_queue WHERE contact_id = %s",
            (await contact_id_of(db, merchant, who),),
        )
    ).fetchone()
    assert queued == 1
    await engine_pass(deps)
    assert len(shop.texts_to(who)) == 1


async def test_nothing_to_answer_is_skipped_on_escalated(api, merchant, shop, db):
    """A follower who never wrote: no conversation, so no assistant; escalated."""
    await _enable_ai(api, merchant)
    f = await create_active(api, merchant, _ai_flow(shop.account_id, "NEW_FOLLOWER"))
    who = shop.customer()
    await shop.follow(who)

    async def finished() -> bool:
        rows = await executions(db, f.id)
        return len(rows) == 1 and rows[0]["status"] == "COMPLETED"

    await run_until(api.app.deps, finished)
    ex = await _one_execution(db, f.id)
    assert await steps(db, ex["id"]) == [
        ("ai", "SKIPPED", "escalated"),
        ("human", "COMPLETED", "default"),
    ]
    assert await _tags(db, merchant, who) == ["needs-human"]
    assert await drain_replies(api.app.deps) == 0


async def test_the_nodes_instructions_reach_the_model(api, merchant, shop, db, standin):
    await _enable_ai(api, merchant)
    note = "Always sign off as Robo from the night shift."
    who, f = await _start_and_park(api, merchant, shop, db, "where is my order", instructions=note)
    ex = await _answer_and_finish(api, db, f)
    assert (await steps(db, ex["id"]))[0] == ("ai", "COMPLETED", "default")
    async with httpx.AsyncClient(base_url=f"{standin.base_url}/_standin") as admin:
        resp = await admin.get("/requests", params={"route": "chat"})
    assert resp.status_code == 200, resp.text
    req = resp.json()["data"][0]  # the message's classification
    system = req["body"]["messages"][0]
    assert system["role"] == "system"
    assert note in system["content"] and "customer-service assistant" in system["content"]
    assert len(shop.texts_to(who)) == 1


async def test_out_of_business_hours_sends_the_away_message_and_escalates(api, merchant, shop, db):
    await _enable_ai(api, merchant)
    weekdays = {
        "time_zone": "America/New_York",
        "days": [{"day": d, "ranges": [{"start": "09:00", "end": "17:00"}]} for d in range(1, 6)],
    }
    await db.execute(
        "UPDATE accounts SET settings = settings || %s::jsonb WHERE id = %s",
        (
            json.dumps({"business_hours": {"enabled": True, "schedule": weekdays}}),
            shop.account_id,
        ),
    )
    who, f = await _start_and_park(api, merchant, shop, db, "where is my order")
    # Friday 2026-03-06 13:30 UTC is 08:30 in New York: closed.
    ex = await _answer_and_finish(api, db, f, now=datetime(2026, 3, 6, 13, 30, tzinfo=UTC))
    assert await steps(db, ex["id"]) == [
        ("ai", "COMPLETED", "escalated"),
        ("human", "COMPLETED", "default"),
    ]
    (text,) = shop.texts_to(who)
    assert text.startswith("Thanks for your message! We are away")


async def test_a_recheck_before_the_answer_parks_again(api, merchant, shop, db):
    """The periodic recheck (here forced due) finds the message not yet answered:
    the execution parks again on the same step, then the answer resumes it."""
    await _enable_ai(api, merchant)
    who, f = await _start_and_park(api, merchant, shop, db, "where is my order")
    await fast_forward(db, f.id)
    await engine_pass(api.app.deps, send=False)
    ex = await _one_execution(db, f.id)
    assert ex["status"] == "WAITING" and ex["waiting_for"] == "AI_REPLY"
    assert await steps(db, ex["id"]) == [("ai", "WAITING", "")]
    (due_later,) = await (
        await db.execute("SELECT due_at > now() FROM flow_executions WHERE id = %s", (ex["id"],))
    ).fetchone()
    assert due_later
    ex = await _answer_and_finish(api, db, f)
    assert await steps(db, ex["id"]) == [
        ("ai", "COMPLETED", "default"),
        ("ok", "COMPLETED", "default"),
    ]
    assert len(shop.texts_to(who)) == 1


async def _cancel(api, merchant, ex_id) -> None:
    from flow_helpers import stub

    await stub(api).CancelFlowExecution(
        P.CancelFlowExecutionRequest(id=str(ex_id)), metadata=api.auth(merchant)
    )


async def test_cancelling_a_parked_execution_withdraws_its_ai_reply_request(
    api, merchant, shop, db
):
    """The request only the flow wanted is withdrawn: the assistant's loop finds
    nothing to answer and nothing reaches the contact."""
    await _enable_ai(api, merchant)
    who, f = await _start_and_park(api, merchant, shop, db, "where is my order")
    ex = await _one_execution(db, f.id)
    msg = ex["context"]["ai_reply_message_id"]
    await _cancel(api, merchant, ex["id"])
    assert (await _one_execution(db, f.id))["status"] == "CANCELLED"
    left = await (
        await db.execute("SELECT count(*) FROM ai_reply_queue WHERE message_id = %s", (msg,))
    ).fetchone()
    assert left == (0,)
    assert await drain_replies(api.app.deps) == 0
    for _ in range(2):
        await engine_pass(api.app.deps)
    assert shop.texts_to(who) == []


async def test_cancelling_keeps_a_request_auto_reply_also_made(api, merchant, shop, db):
    """On an account that answers its DMs by auto-reply the queue row is auto-reply's
    too (one row per message): cancelling the flow does not take the answer away."""
    await _enable_ai(api, merchant)
    who, f = await _start_and_park(api, merchant, shop, db, "where is my order")
    await db.execute(
        "UPDATE accounts SET settings = settings || '{\"auto_reply_enabled\": true}' WHERE id = %s",
        (shop.account_id,),
    )
    ex = await _one_execution(db, f.id)
    await _cancel(api, merchant, ex["id"])
    (state,) = await (
        await db.execute(
            "SELECT state FROM ai_reply_queue WHERE message_id = %s",
            (ex["context"]["ai_reply_message_id"],),
        )
    ).fetchone()
    assert state == "QUEUED"
    assert await drain_replies(api.app.deps) == 1
