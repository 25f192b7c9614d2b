"""The analytics-rollups consumer against the rebuild: after a randomized mix of
events (reopen, reassignment, bot hand-off, GDPR erase, opt-outs, late and
duplicated events, partial drains), the incremental rollups equal the rollups
recomputed from raw data, for everything and with --since."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from analytics_helpers import World, business_hours, dump, settle

from mktx.v1 import contacts_pb2, contacts_pb2_grpc
from mktx_grpc.cli import main as cli_main
from mktx_grpc.worker.rollups import rebuild

T0 = datetime(2026, 3, 20, 8, tzinfo=UTC)  # spans the European DST change


async def random_history(
    rng: random.Random, world: World, pool: Any, api: Any, steps: int
) -> dict[uuid.UUID, dict[str, Any]]:
    accounts = [await world.account(business_hours("Europe/Berlin")), await world.account()]
    convs: dict[uuid.UUID, dict[str, Any]] = {}
    erased = 0
    now = T0
    contacts = api.stub(contacts_pb2_grpc, "ContactsService")
    for _ in range(steps):
        now += timedelta(minutes=rng.choice([1, 3, 17, 45, 200, 900]))
        live = [c for c, s in convs.items() if s["status"] != "CLOSED"]
        closed = [c for c, s in convs.items() if s["status"] == "CLOSED"]
        op = rng.choice(
            [
                "new",
                "new",
                "in",
                "in",
                "bot",
                "human",
                "human",
                "campaign",
                "close",
                "close",
                "reopen",
                "assign",
                "escalate",
                "pending",
                "erase",
                "opt_out",
                "dup",
                "delivered",
                "drain",
            ]
        )
        if op == "new" or not convs:
            acct = rng.choice(accounts)
            source = rng.choice(["INBOUND_MESSAGE", "NEW_FOLLOWER", "MENTION", "IMPORT", "MANUAL"])
            contact = await world.contact(
                acct, now, source=source, tags=rng.sample(["a", "b", "c"], 2)
            )
            conv = await world.conversation(acct, contact, now)
            convs[conv] = {"contact": contact, "status": "OPEN"}
            convs[conv]["message"] = await world.message(conv, now)
        elif op == "in":
            conv = rng.choice(list(convs))
            if convs[conv]["status"] == "CLOSED":
                await world.message(conv, now)
                await world.reopen(conv, now + timedelta(seconds=1))
                convs[conv]["status"] = "OPEN"
            else:
                await world.message(conv, now)
        elif op in ("bot", "human", "campaign") and live:
            origin = {"bot": "AI", "human": "AGENT", "campaign": "CAMPAIGN"}[op]
            await world.message(rng.choice(live), now, origin, is_from_bot=op == "bot")
        elif op == "close" and live:
            conv = rng.choice(live)
            await world.close(conv, now)
            convs[conv]["status"] = "CLOSED"
        elif op == "reopen" and closed:
            conv = rng.choice(closed)
            await world.reopen(conv, now)
            convs[conv]["status"] = "OPEN"
        elif op == "assign" and live:
            await world.assign(rng.choice(live), now, rng.choice(["ann", "ben", "cy"]))
        elif op == "escalate" and live:
            await world.escalate(rng.choice(live), now)
        elif op == "pending" and live:
            conv = rng.choice(live)
            await world.set_pending(conv, now)
            convs[conv]["status"] = "PENDING"
        elif op == "erase" and len(convs) > 2:
            conv = rng.choice(list(convs))
            await contacts.DeleteContact(
                contacts_pb2.DeleteContactRequest(id=str(convs[conv]["contact"])),
                metadata=api.auth(world.merchant),
            )
            del convs[conv]
            erased += 1
        elif op == "opt_out":
            await world.opt_out(convs[rng.choice(list(convs))]["contact"], now)
        elif op == "dup":
            # A duplicated and a late event naming an existing conversation, or one of
            # its messages (already counted: the shortcut must not count it twice).
            conv = rng.choice(list(convs))
            named = {"message_id": convs[conv]["message"]} if rng.random() < 0.5 else {}
            await world.event(
                "message.created", conv, now - timedelta(days=3), conversation_id=conv, **named
            )
        elif op == "delivered":
            conv = rng.choice(list(convs))
            await world.event(
                "message.delivered",
                conv,
                now,
                conversation_id=conv,
                message_id=convs[conv]["message"],
            )
        elif op == "drain":
            await settle(pool)
    assert erased, "the mix erased no contact"
    return convs


@pytest.mark.parametrize("seed", [2, 7])
async def test_incremental_rollups_equal_the_rebuild(
    api: Any,
    world: World,
    other_world: World,
    pool: Any,
    merchant: uuid.UUID,
    other_merchant: uuid.UUID,
    seed: int,
) -> None:
    rng = random.Random(seed)
    extended, recomputed = _path_count("extended"), _path_count("recomputed")
    convs = await random_history(rng, world, pool, api, steps=120)
    # Another merchant's data, consumed too, must stay as it is through our rebuild.
    other_acct = await other_world.account()
    oc = await other_world.contact(other_acct, T0)
    oconv = await other_world.conversation(other_acct, oc, T0)
    await other_world.message(oconv, T0)
    await settle(pool)
    incremental = await dump(pool, merchant)
    theirs = await dump(pool, other_merchant)
    assert incremental["episodes"], "the history produced no episodes"
    assert {r["conversation_id"] for r in incremental["episodes"]} == set(convs)
    eps = incremental["episodes"]
    # The mix covered what it is for (seeds chosen so): reopened episodes, a bot
    # hand-off to a person, more than one assignee, opt-outs.
    assert any(r["episode"] > 0 for r in eps)
    assert any(r["bot_replied"] and r["human_replied"] for r in eps)
    assert len({r["assignee_user_id"] for r in eps}) >= 2
    assert any(r["opted_out_at"] is not None for r in incremental["contacts"])
    # Both of the consumer's paths were taken.
    assert _path_count("extended") > extended and _path_count("recomputed") > recomputed
    # Rebuild everything for the merchant: the same rows.
    done = await rebuild(pool, merchant_id=merchant)
    assert done["conversations"] == len(convs)
    assert await dump(pool, merchant) == incremental
    assert await dump(pool, other_merchant) == theirs
    # Rollups wiped then rebuilt --since a mid point (every change after it) for all
    # merchants: rows of conversations changed since then come back identical.
    await rebuild(pool, since=T0 + timedelta(days=1))
    assert await dump(pool, merchant) == incremental
    assert await dump(pool, other_merchant) == theirs


async def test_rebuild_command_restores_lost_rollups(
    world: World,
    pool: Any,
    db: Any,
    merchant: uuid.UUID,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    acct = await world.account()
    c = await world.contact(acct, T0)
    conv = await world.conversation(acct, c, T0)
    await world.message(conv, T0)
    await world.message(conv, T0 + timedelta(minutes=4), "AGENT")
    await world.close(conv, T0 + timedelta(minutes=9))
    await settle(pool)
    before = await dump(pool, merchant)
    await db.execute(
        "DELETE FROM analytics_conversation_episodes WHERE merchant_id = %s", (merchant,)
    )
    await db.execute(
        "UPDATE analytics_contacts SET tags = '{}' WHERE merchant_id = %s", (merchant,)
    )
    assert await dump(pool, merchant) != before
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert cli_main(["analytics", "rebuild", "--merchant", "nope"]) == 2
    assert cli_main(["analytics", "rebuild", "--since", "yesterday"]) == 2
    # The command runs its own event loop: in a thread, beside the test's.
    assert (
        await asyncio.to_thread(cli_main, ["analytics", "rebuild", "--merchant", str(merchant)])
        == 0
    )
    assert "1 merchant(s): 1 contacts, 1 conversations" in capsys.readouterr().out
    assert await dump(pool, merchant) == before


async def test_the_worker_loop_keeps_reports_current(
    api: Any, world: World, pool: Any, merchant: uuid.UUID
) -> None:
    """The consumer is registered with the worker, and its loop (woken by the outbox
    NOTIFY) brings a new conversation into GetOverview without anyone draining it."""
    from mktx.v1 import analytics_pb2 as A
    from mktx.v1 import analytics_pb2_grpc
    from mktx_grpc.worker import CONSUMERS, LOOPS
    from mktx_grpc.worker.rollups import ANALYTICS_ROLLUPS

    assert ANALYTICS_ROLLUPS in CONSUMERS
    (loop,) = [lp for lp in LOOPS if lp.__name__ == "consume_analytics-rollups"]
    await settle(pool)
    now = datetime.now(UTC)
    req = A.GetOverviewRequest(
        period=A.ReportPeriod(
            start_time={"seconds": int((now - timedelta(hours=1)).timestamp())},
            end_time={"seconds": int((now + timedelta(hours=1)).timestamp())},
        )
    )
    stub = api.stub(analytics_pb2_grpc, "AnalyticsService")
    assert (await stub.GetOverview(req, metadata=api.auth(merchant))).conversations.total == 0
    stop = asyncio.Event()

    async def run() -> None:
        while not stop.is_set():
            await loop(api.app.deps)

    task = asyncio.create_task(run())
    try:
        acct = await world.account()
        c = await world.contact(acct, now)
        conv = await world.conversation(acct, c, now)
        await world.message(conv, now)
        for _ in range(600):  # up to a minute on a loaded box; not a timing assertion
            out = await stub.GetOverview(req, metadata=api.auth(merchant))
            # Each of the four writes commits on its own, so a pass may take the
            # conversation before the message: wait for both.
            if out.conversations.total == 1 and out.contacts.active == 1:
                break
            await asyncio.sleep(0.1)
        assert out.conversations.total == 1 and out.contacts.active == 1
    finally:
        stop.set()
        await task


async def test_a_business_hours_change_applies_at_the_next_recompute_or_rebuild(
    world: World, pool: Any, merchant: uuid.UUID
) -> None:
    """What analytics.proto states: an episode's business-hours figures use the
    account's schedule when the episode was last recomputed; a schedule change leaves
    unchanged conversations as they were until a rebuild, and a conversation that
    changes afterwards is recomputed under the new schedule."""
    friday = datetime(2026, 3, 6, 22, tzinfo=UTC)  # 23:00 in Berlin; Monday 09:05 is below
    acct = await world.account(business_hours("Europe/Berlin"))
    convs = []
    for _ in range(2):
        contact = await world.contact(acct, friday)
        conv = await world.conversation(acct, contact, friday)
        await world.message(conv, friday)
        await world.message(conv, friday + timedelta(hours=58, minutes=5), "AGENT")
        convs.append(conv)
    await settle(pool)

    async def bh() -> dict[uuid.UUID, float]:
        rows = (await dump(pool, merchant))["episodes"]
        return {r["conversation_id"]: r["first_response_bh_s"] for r in rows}

    assert await bh() == {convs[0]: 300.0, convs[1]: 300.0}
    # Always open from now on (no schedule): 58 h 5 min of business time.
    await world.db.execute("UPDATE accounts SET settings = '{}' WHERE id = %s", (acct,))
    assert await bh() == {convs[0]: 300.0, convs[1]: 300.0}
    # A later change to one conversation recomputes it under the new schedule.
    await world.message(convs[1], friday + timedelta(hours=60))
    await settle(pool)
    whole = timedelta(hours=58, minutes=5).total_seconds()
    assert await bh() == {convs[0]: 300.0, convs[1]: whole}
    await rebuild(pool, merchant_id=merchant)
    assert await bh() == {convs[0]: whole, convs[1]: whole}


def _path_count(path: str) -> float:
    from mktx_grpc.core import metrics as core_metrics

    value = core_metrics.get().registry.get_sample_value(
        "mktx_analytics_conversations_total", {"path": path}
    )
    return value or 0.0


async def test_new_messages_extend_the_live_episode_without_recomputing(
    world: World, pool: Any, merchant: uuid.UUID
) -> None:
    """A conversation named only by new messages has its live episode extended (the
    counter says which path each took); a duplicated event naming a counted message,
    a person's reply after the bot's and a status change recompute; after every pass
    the rows equal what the rebuild computes."""
    acct = await world.account(business_hours("Europe/Berlin"))
    contact = await world.contact(acct, T0)
    conv = await world.conversation(acct, contact, T0)
    first = await world.message(conv, T0)
    await settle(pool)

    async def step(expect: str) -> None:
        ext, rec = _path_count("extended"), _path_count("recomputed")
        await settle(pool)
        assert (_path_count("extended") - ext, _path_count("recomputed") - rec) == (
            (1.0, 0.0) if expect == "extended" else (0.0, 1.0)
        )
        rows = await dump(pool, merchant)
        await rebuild(pool, merchant_id=merchant)
        assert await dump(pool, merchant) == rows

    at = T0
    for origin, bot in (("CONTACT", False), ("AI", True), ("CONTACT", False), ("CONTACT", False)):
        at += timedelta(minutes=7)
        await world.message(conv, at, origin, is_from_bot=bot)
        await step("extended")
    (ep,) = (await dump(pool, merchant))["episodes"]
    assert ep["bot_replied"] and ep["last_message_at"] == at
    assert ep["contact_after_bot_at"] == T0 + timedelta(minutes=21)
    # Two new messages of one pass: one extension.
    await world.message(conv, at + timedelta(minutes=1))
    await world.message(conv, at + timedelta(minutes=2))
    await step("extended")
    # Delivery receipts change nothing and recompute nothing.
    ext, rec = _path_count("extended"), _path_count("recomputed")
    await world.event("message.delivered", conv, at, conversation_id=conv, message_id=first)
    await settle(pool)
    assert (_path_count("extended"), _path_count("recomputed")) == (ext, rec)
    # A duplicated event naming a counted message: recomputed, not counted twice.
    await world.event("message.created", conv, at, conversation_id=conv, message_id=first)
    await step("recomputed")
    # A person's reply after the bot's: the hand-off needs the history.
    await world.message(conv, at + timedelta(hours=1), "AGENT")
    await step("recomputed")
    (ep,) = (await dump(pool, merchant))["episodes"]
    assert ep["escalated"] and ep["handoff_at"] == T0 + timedelta(minutes=21)
    # After it, contact messages are extensions again.
    await world.message(conv, at + timedelta(hours=2))
    await step("extended")
    # A status change the batch's events do not name (the row disagrees): recomputed.
    await world.db.execute("UPDATE conversations SET status = 'PENDING' WHERE id = %s", (conv,))
    await world.message(conv, at + timedelta(hours=3))
    await step("recomputed")
