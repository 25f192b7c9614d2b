"""The outbox-consumer mechanism (worker/consumer.py) against real PostgreSQL: id
order, type filters, independent cursors, held unsettled events, a pass killed mid-
batch, one pass at a time across processes, handler failures (retry, back-off,
dead letters), the NOTIFY-driven loop, and the campaign consumer under redelivery."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest
from campaign_helpers import (
    add_contacts,
    add_segment,
    add_template,
    connect_account,
    lift_budget,
    run_until,
    sandbox_limits_lifted,
    scalar,
    tag_condition,
)
from google.protobuf.duration_pb2 import Duration
from psycopg_pool import AsyncConnectionPool

from mktx.v1 import campaigns_pb2, campaigns_pb2_grpc
from mktx_grpc.core.context import current_connection
from mktx_grpc.core.db import make_pool, use_connection
from mktx_grpc.store import events as events_store
from mktx_grpc.store.events import OutboxEvent
from mktx_grpc.store.live import dispatcher_for
from mktx_grpc.worker import CONSUMERS, LOOPS
from mktx_grpc.worker.consumer import (
    Consumer,
    consume_once,
    consumer_loop,
    consumer_loops,
    drain,
    stats,
)
from mktx_grpc.worker.dispatch import (
    CAMPAIGN_EVENTS,
    CONSUMER,
    consume_campaign_events,
    dispatch_due_recipients,
)

C = campaigns_pb2


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    p = make_pool(database_url, min_size=1, max_size=4)
    await p.open(wait=True)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def effects(db) -> None:
    """A table the test handlers write their effects to (in the claiming transaction)."""
    await db.execute(
        "CREATE TABLE consumer_effects (seq bigserial PRIMARY KEY, consumer text NOT NULL,"
        " event_id bigint NOT NULL, UNIQUE (consumer, event_id))"
    )


async def add_events(db, n: int, type_: str = "test.happened", merchant=None) -> list[int]:
    rows = await (
        await db.execute(
            "INSERT INTO domain_events (merchant_id, type, payload)"
            " SELECT %s, %s, jsonb_build_object('i', g) FROM generate_series(1, %s) g"
            " RETURNING id",
            (merchant or uuid.uuid4(), type_, n),
        )
    ).fetchall()
    return [r[0] for r in rows]


async def effect_ids(db, consumer: str) -> list[int]:
    rows = await (
        await db.execute(
            "SELECT event_id FROM consumer_effects WHERE consumer = %s ORDER BY seq", (consumer,)
        )
    ).fetchall()
    return [r[0] for r in rows]


async def record(name: str, ev: OutboxEvent) -> None:
    """The effect of one event: idempotent (a redelivery changes nothing)."""
    await current_connection().execute(
        "INSERT INTO consumer_effects (consumer, event_id) VALUES (%s, %s)"
        " ON CONFLICT (consumer, event_id) DO NOTHING",
        (name, ev.id),
    )


def recorder(name: str) -> Callable[[OutboxEvent], Awaitable[None]]:
    async def handle(ev: OutboxEvent) -> None:
        await record(name, ev)

    return handle


async def position(pool, name: str) -> int | None:
    async with use_connection(pool):
        return await events_store.cursor_position(name)


async def until_delivered(pool, consumer: Consumer, done: Callable[[], Awaitable[bool]]) -> None:
    """Run passes until ``done()``; a deadline only guards against hanging."""
    deadline = time.monotonic() + 60
    while not await done():
        assert time.monotonic() < deadline, "the consumer did not deliver"
        await drain(pool, consumer)
        await asyncio.sleep(0.01)


async def test_delivers_every_event_once_in_id_order_across_batches(pool, db, effects):
    ids = []
    for _ in range(3):  # several merchants, interleaved writes
        ids += await add_events(db, 400)
    c = Consumer("order", handle=recorder("order"), batch_size=500)
    last = await drain(pool, c)
    assert await effect_ids(db, "order") == sorted(ids)
    assert await position(pool, "order") == max(ids)
    assert last.claimed and last.held_event_id is None and last.lag_seconds == 0.0
    assert stats(pool)["order"].position == max(ids)
    # Nothing new: a pass delivers nothing and keeps its place.
    again = await consume_once(pool, c)
    assert (again.delivered, again.position) == (0, max(ids))


async def test_type_filter_delivers_only_its_types_and_still_moves_on(pool, db, effects):
    wanted = await add_events(db, 3, "a.happened")
    other = await add_events(db, 5, "b.happened")
    wanted += await add_events(db, 2, "a.happened")
    seen: list[OutboxEvent] = []

    async def handle_batch(events):
        seen.extend(events)
        for ev in events:
            await record("only-a", ev)

    c = Consumer("only-a", handle_batch=handle_batch, types=("a.happened",))
    await drain(pool, c)
    assert await effect_ids(db, "only-a") == wanted
    assert {e.type for e in seen} == {"a.happened"}
    assert [e.payload["i"] for e in seen] == [1, 2, 3, 1, 2]
    # The cursor passes the other types too, so later passes do not rescan them.
    assert await position(pool, "only-a") == max(other + wanted)


async def test_two_consumers_have_independent_cursors(pool, db, effects):
    first = await add_events(db, 10)
    a = Consumer("alpha", handle=recorder("alpha"))
    b = Consumer("beta", handle=recorder("beta"))
    await drain(pool, a)
    assert await effect_ids(db, "alpha") == first
    assert await position(pool, "beta") is None  # beta has not run: no cursor yet
    more = await add_events(db, 5)
    await drain(pool, b)
    assert await effect_ids(db, "beta") == first + more  # beta starts from the beginning
    assert await position(pool, "alpha") == max(first)  # alpha is where it was
    await drain(pool, a)
    assert await effect_ids(db, "alpha") == first + more
    with pytest.raises(ValueError):
        consumer_loops([a, Consumer("alpha", handle=recorder("x"))])


async def test_an_event_committed_late_below_a_consumed_id_is_held_not_skipped(
    pool, db, database_url, effects
):
    """The race a transaction-id check alone misses: transaction B takes its id after
    A, but its event takes a lower event id than A's; A commits first. While B is
    open, A's event must be held (B's could still commit below it), and once B
    commits both are delivered in id order."""
    c = Consumer("held", handle=recorder("held"))
    await drain(pool, c)  # the cursor exists, at the current end
    merchant = uuid.uuid4()
    async with (
        await psycopg.AsyncConnection.connect(database_url) as a,
        await psycopg.AsyncConnection.connect(database_url) as b,
    ):
        await a.execute("SELECT pg_current_xact_id()")  # A takes its transaction id first
        await b.execute("SELECT pg_current_xact_id()")
        ins = "INSERT INTO domain_events (merchant_id, type) VALUES (%s, 'x') RETURNING id"
        (low,) = await (await b.execute(ins, (merchant,))).fetchone()
        (high,) = await (await a.execute(ins, (merchant,))).fetchone()
        assert low < high
        await a.commit()
        for _ in range(5):
            r = await drain(pool, c, settle_within=0.2)
            assert r.held_event_id == high and r.delivered == 0
        assert await effect_ids(db, "held") == []
        assert stats(pool)["held"].held_event_id == high
        await b.commit()
    await until_delivered(pool, c, lambda: _has(db, "held", 2))
    assert await effect_ids(db, "held") == [low, high]


async def _has(db, consumer: str, n: int) -> bool:
    return len(await effect_ids(db, consumer)) >= n


async def test_a_pass_killed_mid_batch_resumes_where_it_stopped(pool, db, database_url, effects):
    ids = await add_events(db, 50)
    reached, never = asyncio.Event(), asyncio.Event()

    async def stuck(ev: OutboxEvent) -> None:
        await record("crash", ev)
        if ev.id == ids[30]:
            reached.set()
            await never.wait()  # the process dies here, mid-batch, transaction open

    task = asyncio.create_task(drain(pool, Consumer("crash", handle=stuck)))
    await asyncio.wait_for(reached.wait(), 30)
    # Another process meanwhile: the cursor is busy, so its pass does nothing.
    other = make_pool(database_url, min_size=1, max_size=2)
    await other.open(wait=True)
    try:
        busy = await consume_once(other, Consumer("crash", handle=recorder("crash")))
        assert not busy.claimed and busy.delivered == 0
    finally:
        await other.close()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # Nothing of the killed pass was committed: no effects, the cursor did not move.
    assert await effect_ids(db, "crash") == []
    assert await position(pool, "crash") == 0
    # Restarted, it delivers every event once, in order, from where it stopped.
    r = await drain(pool, Consumer("crash", handle=recorder("crash")))
    assert r.claimed
    assert await effect_ids(db, "crash") == ids
    assert await position(pool, "crash") == max(ids)


async def test_failing_event_is_retried_then_parked_and_the_stream_moves_on(pool, db, effects):
    before = await add_events(db, 3)
    poison = await add_events(db, 1, "poison")
    after = await add_events(db, 2)
    calls: list[int] = []

    async def handle(ev: OutboxEvent) -> None:
        calls.append(ev.id)
        await record("dlq", ev)  # rolled back with the failure below
        if ev.type == "poison":
            raise RuntimeError("cannot handle this one")

    c = Consumer("dlq", handle=handle, max_attempts=3, retry_base=0.0)
    first = await drain(pool, c)
    # Delivered up to the failing event, held there (in order), not past it.
    assert await effect_ids(db, "dlq") == before
    assert first.backoff_seconds == 0.0 and first.position == poison[0] - 1
    for _ in range(2):
        await consume_once(pool, c)
    assert await effect_ids(db, "dlq") == before + after  # parked, then moved on
    assert calls.count(poison[0]) == 3
    assert await position(pool, "dlq") == max(after)
    async with use_connection(pool):
        parked = await events_store.parked_events("dlq")
    assert [(p["event_id"], p["attempts"], p["event_type"]) for p in parked] == [
        (poison[0], 3, "poison")
    ]
    assert parked[0]["reason"] == "RuntimeError: cannot handle this one"
    # Another consumer is not affected by this one's dead letters.
    async with use_connection(pool):
        assert await events_store.parked_events("someone-else") == []


async def test_transient_failure_is_retried_after_its_back_off_and_delivered_once(
    pool, db, effects
):
    (flaky,) = await add_events(db, 1)
    later = await add_events(db, 1)
    failures = {"left": 2}

    async def handle(ev: OutboxEvent) -> None:
        await record("flaky", ev)
        if ev.id == flaky and failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("the database of record is restarting")

    patient = Consumer("flaky", handle=handle, retry_base=3600.0)
    r = await drain(pool, patient)
    assert r.backoff_seconds is not None and r.backoff_seconds > 3000
    # Within the back-off the event is not tried again.
    await consume_once(pool, patient)
    assert failures["left"] == 1 and await effect_ids(db, "flaky") == []
    await db.execute(
        "UPDATE event_consumer_failures SET retry_at = now() WHERE consumer = 'flaky'"
    )  # the hour passes
    eager = Consumer("flaky", handle=handle, retry_base=0.0)
    await consume_once(pool, eager)  # attempt 2 fails, attempt 3 (next pass) succeeds
    await consume_once(pool, eager)
    assert await effect_ids(db, "flaky") == [flaky, *later]
    assert failures["left"] == 0
    assert await scalar(db, "SELECT count(*) FROM event_consumer_failures") == 0


async def test_failing_batch_is_split_to_find_the_bad_event(pool, db, effects):
    good = await add_events(db, 4)
    (bad,) = await add_events(db, 1, "poison")
    good2 = await add_events(db, 4)
    batches: list[int] = []

    async def handle_batch(events):
        batches.append(len(events))
        for ev in events:
            await record("batchy", ev)
            if ev.type == "poison":
                raise ValueError("bad payload")

    c = Consumer("batchy", handle_batch=handle_batch, max_attempts=1)
    await drain(pool, c)
    assert await effect_ids(db, "batchy") == good + good2
    assert batches[0] == 9 and set(batches[1:]) == {1}  # one batch, then one at a time
    assert (
        await scalar(db, "SELECT attempts FROM event_consumer_failures WHERE event_id = %s", bad)
        == 1
    )


async def test_loop_wakes_on_the_outbox_notify(api, db, effects):
    deps = api.app.deps
    c = Consumer("live", handle=recorder("live"))
    await drain(deps.pool, c)  # the cursor exists
    loop = consumer_loop(c)
    assert loop.__name__ == "consume_live"
    task = asyncio.create_task(loop(deps))
    try:
        async with use_connection(deps.pool, transaction=True):
            eid = await events_store.append_event(uuid.uuid4(), "live.happened", None, {})
        deadline = time.monotonic() + 30
        while await effect_ids(db, "live") != [eid]:
            assert time.monotonic() < deadline, "the loop did not deliver the event"
            await asyncio.sleep(0.01)
        assert await task == 0.0  # one iteration, then back to run_loops
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_lingering_consumer_takes_a_trickle_of_commits_in_one_pass(api, db, effects):
    """Events committed one by one within the linger reach the handler together; the
    first of them waited at least the linger, and nothing is lost."""
    deps = api.app.deps
    batches: list[list[int]] = []

    async def handle_batch(events):
        batches.append([e.id for e in events])
        for ev in events:
            await record("lingering", ev)

    c = Consumer("lingering", handle_batch=handle_batch, linger=1.0)
    await drain(deps.pool, c)  # the cursor exists
    loop = consumer_loop(c)

    async def forever() -> None:  # as worker.run_loops runs it, iteration after iteration
        while True:
            await loop(deps)

    task = asyncio.create_task(forever())
    try:
        await asyncio.sleep(0.3)  # the loop has made its first pass and waits for the NOTIFY
        ids, first_at = [], time.monotonic()
        for _ in range(3):
            async with use_connection(deps.pool, transaction=True):
                ids.append(await events_store.append_event(uuid.uuid4(), "t.x", None, {}))
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 30
        while await effect_ids(db, "lingering") != ids:
            assert time.monotonic() < deadline, "the loop did not deliver the events"
            await asyncio.sleep(0.01)
        assert time.monotonic() - first_at >= 1.0
        assert batches == [ids]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    with pytest.raises(ValueError, match="linger"):
        Consumer("bad", handle=recorder("bad"), linger=-1)


async def test_a_typed_subscription_is_woken_by_its_types_only(api, db):
    """A consumer of some types is not woken by every other event's NOTIFY (the
    payload names the type); a notification without a type still wakes it."""
    deps = api.app.deps
    dispatcher = dispatcher_for(deps.pool)
    typed = await dispatcher.subscribe(None, types=("wanted.happened",))
    every = await dispatcher.subscribe(None)
    try:
        for sub in (typed, every):
            sub.clear()
        async with use_connection(deps.pool, transaction=True):
            await events_store.append_events(
                [
                    {
                        "merchant_id": uuid.uuid4(),
                        "type": "other.happened",
                        "aggregate_id": None,
                        "payload": {},
                    }
                ]
            )
        assert await every.wait(10)
        assert not await typed.wait(0.3)
        every.clear()
        async with use_connection(deps.pool, transaction=True):
            eid = await events_store.append_event(uuid.uuid4(), "wanted.happened", None, {})
        assert await typed.wait(10) and await every.wait(10)
        assert typed.lag == 1 and typed._ids == [eid]
        typed.clear()
        # The payload's old form (no type), as a hand-made NOTIFY sends it: wakes all.
        await db.execute("SELECT pg_notify('mktx_events', %s)", (f"{uuid.uuid4()}:{eid + 1}",))
        assert await typed.wait(10)
    finally:
        typed.close()
        every.close()


async def test_only_a_derived_consumer_commits_without_waiting_for_the_flush(pool, db, effects):
    """A derived consumer's pass runs with synchronous_commit off (its effects and its
    cursor still commit together); every other pass, and the rest of the
    connection's life, keep the server's durable default."""
    await add_events(db, 3)
    seen: dict[str, list[str]] = {"derived": [], "durable": []}

    def handler(name: str):
        async def handle_batch(events):
            cur = await current_connection().execute("SHOW synchronous_commit")
            seen[name].append((await cur.fetchone())[0])
            for ev in events:
                await record(name, ev)

        return handle_batch

    derived = Consumer("derived", handle_batch=handler("derived"), derived=True)
    durable = Consumer("durable", handle_batch=handler("durable"))
    await drain(pool, derived)
    await drain(pool, durable)
    assert seen == {"derived": ["off"], "durable": ["on"]}
    assert len(await effect_ids(db, "derived")) == 3
    async with pool.connection() as conn:  # SET LOCAL ended with the pass
        cur = await conn.execute("SHOW synchronous_commit")
        assert (await cur.fetchone())[0] == "on"


def test_only_the_rollups_consumer_is_derived():
    """A lost commit of a consumer whose writes lead to sends (triggers, auto-reply,
    campaigns) could send twice after a crash: only analytics rollups may skip the
    flush."""
    assert {c.name for c in CONSUMERS if c.derived} == {"analytics-rollups"}


def test_the_campaign_consumer_is_registered_as_a_loop():
    assert CAMPAIGN_EVENTS in CONSUMERS and CAMPAIGN_EVENTS.name == CONSUMER
    assert "consume_campaigns" in {loop.__name__ for loop in LOOPS}
    with pytest.raises(ValueError):
        Consumer("neither")


async def test_campaign_consumer_is_idempotent_under_redelivery(api, merchant, sandbox, db):
    row, _owner = await connect_account(api, merchant, sandbox, db)
    await lift_budget(db, row["id"])
    stub = campaigns_pb2_grpc.CampaignsServiceStub(api.channel)
    md = api.auth(merchant)
    (a_id, _), (b_id, _) = await add_contacts(db, sandbox, merchant, row["id"], 2, tags=["i"])
    seg = await add_segment(db, merchant, tag_condition("i"))
    t1 = await add_template(api, merchant, "One")
    t2 = await add_template(api, merchant, "Two")
    welcome_tpl = await add_template(api, merchant, "Welcome")
    with sandbox_limits_lifted(sandbox):
        drip = await stub.CreateCampaign(
            C.CreateCampaignRequest(
                campaign=C.Campaign(
                    name="drip",
                    account_id=str(row["id"]),
                    type=C.CAMPAIGN_TYPE_DRIP,
                    segment_ids=[seg],
                    steps=[
                        C.CampaignStep(template_id=t1),
                        C.CampaignStep(template_id=t2, delay=Duration(seconds=3600)),
                    ],
                )
            ),
            metadata=md,
        )
        await stub.StartCampaign(C.StartCampaignRequest(id=drip.id), metadata=md)
        welcome = await stub.CreateCampaign(
            C.CreateCampaignRequest(
                campaign=C.Campaign(
                    name="welcome",
                    account_id=str(row["id"]),
                    type=C.CAMPAIGN_TYPE_WELCOME,
                    template_id=welcome_tpl,
                )
            ),
            metadata=md,
        )
        await stub.StartCampaign(C.StartCampaignRequest(id=welcome.id), metadata=md)

        async def first_steps_sent() -> bool:
            return (
                await scalar(
                    db,
                    "SELECT count(*) FROM campaign_recipients WHERE campaign_id = %s"
                    " AND step = 0 AND state = 'SENT'",
                    drip.id,
                )
                == 2
            )

        await run_until(api.app.deps, first_steps_sent, loops=(dispatch_due_recipients,))
    msgs = dict(
        await (
            await db.execute(
                "SELECT contact_id, message_id FROM campaign_recipients"
                " WHERE campaign_id = %s AND step = 0",
                (drip.id,),
            )
        ).fetchall()
    )
    ((new_id, _),) = await add_contacts(db, sandbox, merchant, row["id"], 1)
    for type_, payload in [
        ("message.delivered", {"message_id": msgs[a_id]}),
        ("message.read", {"message_id": msgs[b_id]}),
        ("message.received", {"contact_id": a_id}),
        ("contact.followed", {"contact_id": new_id, "account_id": row["id"]}),
        ("message.delivered", {"message_id": "not-a-uuid"}),  # malformed: skipped
    ]:
        await db.execute(
            "INSERT INTO domain_events (merchant_id, type, payload) VALUES (%s, %s, %s)",
            (merchant, type_, json.dumps({k: str(v) for k, v in payload.items()})),
        )

    async def snapshot() -> Any:
        ledger = await (
            await db.execute(
                "SELECT campaign_id, contact_id, step, state, reason FROM campaign_recipients"
                " ORDER BY campaign_id, contact_id, step"
            )
        ).fetchall()
        counters = await (
            await db.execute(
                "SELECT id, recipients_total, sent_count, delivered_count, read_count,"
                " replied_count, skipped_count FROM campaigns ORDER BY id"
            )
        ).fetchall()
        return ledger, counters

    async def applied() -> bool:
        return (
            await scalar(
                db, "SELECT count(*) FROM campaign_recipients WHERE campaign_id = %s", welcome.id
            )
            == 1
        )

    deadline = time.monotonic() + 60
    while not await applied():
        assert time.monotonic() < deadline
        await consume_campaign_events(api.app.deps)
    once = await snapshot()
    got = await stub.GetCampaign(C.GetCampaignRequest(id=drip.id), metadata=md)
    assert (got.counts.delivered, got.counts.read, got.counts.replied, got.counts.skipped) == (
        2,
        1,
        1,
        1,
    )
    # An operator rewinds the cursor: every event is delivered again, nothing changes.
    await db.execute(
        "UPDATE event_consumer_cursors SET last_event_id = 0 WHERE consumer = %s", (CONSUMER,)
    )
    await consume_campaign_events(api.app.deps)
    # Through every event (and any id a rolled-back transaction used up).
    assert await position(api.app.deps.pool, CONSUMER) >= await scalar(
        db, "SELECT max(id) FROM domain_events"
    )
    assert await snapshot() == once
