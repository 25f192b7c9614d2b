"""The one-off DM ledger (store/outbound.py, worker/outbound.py) against real
PostgreSQL and the X sandbox over HTTP: enqueue idempotency, sends stored in the
conversation with their events, budget and account waits, opt-out, X's refusals,
interrupted and ambiguous sends resolved at X (exactly one DM each), cancel, order."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import xhelpers as xh
from campaign_helpers import add_contacts, connect_account, lift_budget, sandbox_limits_lifted
from psycopg.rows import dict_row

from mktx_grpc.core.db import use_connection
from mktx_grpc.store import outbound as store
from mktx_grpc.store.contacts import erase
from mktx_grpc.store.live import dispatcher_for
from mktx_grpc.store.outbound import OutboundDm, enqueue_dm
from mktx_grpc.worker import outbound as worker
from mktx_grpc.worker.outbound import (
    OutboundOptions,
    dispatch_outbound,
    outbound_sender_loop,
    recover_outbound,
    stop_outbound_senders,
)

DM_ROUTE = "POST /2/dm_conversations/with/:participant_id/messages"


@pytest.fixture
async def account(api, merchant, sandbox, db):
    row, owner = await connect_account(api, merchant, sandbox, db)
    await lift_budget(db, row["id"])
    return row, owner


@pytest.fixture
def rules(sandbox):
    """Per-route sandbox faults for the test, removed afterwards."""
    with contextlib.ExitStack() as stack:
        yield lambda **fields: stack.enter_context(xh.fault_rule(sandbox, **fields))


def _dm(account_row, contact_id, text="Welcome aboard!", ref=None, **kw) -> OutboundDm:
    return OutboundDm(
        account_id=account_row["id"],
        contact_id=contact_id,
        text=text,
        source=kw.pop("source", "flow"),
        source_ref=f"exec-{uuid.uuid4().hex[:8]}:1" if ref is None else ref,
        origin=kw.pop("origin", "AUTOMATION"),
        **kw,
    )


async def _enqueue(api, merchant, *dms: OutboundDm) -> list[int]:
    async with use_connection(api.app.deps.pool, transaction=True):
        return [await enqueue_dm(merchant, dm) for dm in dms]


async def _row(db, outbound_id: int) -> dict[str, Any]:
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM outbound_dms WHERE id = %s", (outbound_id,))
        row = await cur.fetchone()
    assert row is not None
    return row


async def _events(db, merchant, *types: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await (
        await db.execute(
            "SELECT type, payload FROM domain_events WHERE merchant_id = %s AND type = ANY(%s)"
            " ORDER BY id",
            (merchant, list(types)),
        )
    ).fetchall()
    return [(t, p) for t, p in rows]


def _texts_to(sandbox, owner, recipient) -> list[str]:
    return [d.text for d in sandbox.state.sent_dms(owner.id) if d.recipient_id == recipient.id]


async def _expire_leases(db) -> None:
    await db.execute(
        "UPDATE outbound_dms SET lease_until = now() - interval '1 second' WHERE state = 'SENDING'"
    )


async def test_enqueue_is_idempotent_atomic_and_checked(api, merchant, account, sandbox, db):
    row, _ = account
    ((cid, _),) = await add_contacts(db, sandbox, merchant, row["id"], 1)
    first = await _enqueue(api, merchant, _dm(row, cid, ref="e1:1"))
    again = await _enqueue(api, merchant, _dm(row, cid, text="different", ref="e1:1"))
    assert first == again
    other_source = await _enqueue(api, merchant, _dm(row, cid, ref="e1:1", source="ai"))
    assert other_source != first
    assert (await _row(db, first[0]))["text"] == "Welcome aboard!"
    # The row commits with the caller's transaction, or not at all.
    with pytest.raises(RuntimeError):
        async with use_connection(api.app.deps.pool, transaction=True):
            await enqueue_dm(merchant, _dm(row, cid, ref="rolled-back"))
            raise RuntimeError("the caller's decision failed")
    (n,) = await (
        await db.execute("SELECT count(*) FROM outbound_dms WHERE source_ref = 'rolled-back'")
    ).fetchone()
    assert n == 0
    for bad, why in [
        (_dm(row, cid, text="   "), "needs text or media"),
        (_dm(row, cid, text="x" * 10_001), "longer than"),
        (_dm(row, cid, text="nul\x00"), "NUL"),
        (_dm(row, cid, ref=""), "source_ref"),
        (_dm(row, cid, origin="CONTACT"), "origin"),
        (_dm(row, cid, media_url="http://plain.example/a.png"), "https"),
    ]:
        with pytest.raises(ValueError, match=why):
            await _enqueue(api, merchant, bad)


async def test_enqueue_many_is_idempotent_in_order_and_checked(api, merchant, account, sandbox, db):
    """enqueue_dms (the flow step runner's pass of DMs in one statement): the ids in
    the given order, a key queued already gives its row (nothing new), the rows are
    the ones enqueue_dm makes, and one bad DM queues nothing."""
    row, _ = account
    (c1, _), (c2, _) = await add_contacts(db, sandbox, merchant, row["id"], 2)
    (old,) = await _enqueue(api, merchant, _dm(row, c1, ref="m:1"))
    later = datetime.now(UTC) + timedelta(hours=1)
    many = [
        _dm(row, c2, text="second", ref="m:2", flow_id=uuid.uuid4(), not_before=later),
        _dm(row, c1, text="ignored: queued already", ref="m:1"),
        _dm(
            row,
            c1,
            text="third",
            ref="m:3",
            quick_replies=[{"label": "Yes", "description": "", "metadata": "y"}],
        ),
    ]
    sub = await dispatcher_for(api.app.deps.pool, store.CHANNEL).subscribe(None)
    try:
        sub.clear()
        async with use_connection(api.app.deps.pool, transaction=True):
            ids = await store.enqueue_dms([(merchant, dm) for dm in many])
        assert await sub.wait(10.0)  # the sender is woken
    finally:
        sub.close()
    assert ids[1] == old and len(set(ids)) == 3
    second, first, third = [await _row(db, i) for i in ids]
    assert (first["text"], first["source_ref"]) == ("Welcome aboard!", "m:1")
    assert (second["text"], second["contact_id"], second["flow_id"]) == (
        "second",
        c2,
        many[0].flow_id,
    )
    assert second["state"] == "QUEUED" and second["not_before"] == later
    assert second["ready_at"] == later
    assert third["quick_replies"] == [{"label": "Yes", "description": "", "metadata": "y"}]
    assert third["not_before"] <= datetime.now(UTC) and third["origin"] == "AUTOMATION"
    async with use_connection(api.app.deps.pool, transaction=True):
        assert await store.enqueue_dms([(merchant, dm) for dm in many]) == ids
        assert await store.enqueue_dms([]) == []
    with pytest.raises(ValueError, match=r"dms\[1\]: .*NUL"):
        async with use_connection(api.app.deps.pool, transaction=True):
            await store.enqueue_dms(
                [(merchant, _dm(row, c2, ref="m:4")), (merchant, _dm(row, c2, text="n\x00"))]
            )
    (n,) = await (
        await db.execute("SELECT count(*) FROM outbound_dms WHERE source_ref = 'm:4'")
    ).fetchone()
    assert n == 0


async def test_enqueue_wakes_the_sender_when_it_commits(api, merchant, account, sandbox, db):
    row, _ = account
    ((cid, _),) = await add_contacts(db, sandbox, merchant, row["id"], 1)
    sub = await dispatcher_for(api.app.deps.pool, store.CHANNEL).subscribe(None)
    try:
        sub.clear()
        async with use_connection(api.app.deps.pool, transaction=True):
            await enqueue_dm(merchant, _dm(row, cid))
            assert not await sub.wait(0.2)  # nothing before the commit
        assert await sub.wait(10.0)
    finally:
        sub.close()


async def test_send_stores_the_message_with_its_events(api, merchant, account, sandbox, db):
    row, owner = account
    ((cid, user),) = await add_contacts(db, sandbox, merchant, row["id"], 1)
    flow = uuid.uuid4()
    (oid,) = await _enqueue(
        api,
        merchant,
        _dm(
            row,
            cid,
            text="Pick one",
            ref="exec-9:3",
            origin="AI",
            is_from_bot=True,
            flow_id=flow,
            quick_replies=[{"label": "Yes", "description": "", "metadata": "y"}],
        ),
    )
    await dispatch_outbound(api.app.deps)
    sent = sandbox.state.sent_dms(owner.id)
    assert [(d.text, d.recipient_id) for d in sent] == [("Pick one", user.id)]
    r = await _row(db, oid)
    assert (r["state"], r["x_event_id"], r["attempts"], r["reason"]) == (
        "SENT",
        sent[0].id,
        1,
        "",
    )
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM messages WHERE id = %s", (r["message_id"],))
        msg = await cur.fetchone()
        await cur.execute("SELECT * FROM conversations WHERE id = %s", (msg["conversation_id"],))
        conv = await cur.fetchone()
    assert msg["origin"] == "AI" and msg["is_from_bot"] and msg["flow_id"] == flow
    assert (msg["delivery_state"], msg["x_event_id"], msg["type"]) == (
        "SENT",
        sent[0].id,
        "QUICK_REPLY",
    )
    assert msg["quick_replies"] == [{"label": "Yes", "description": "", "metadata": "y"}]
    assert conv["contact_id"] == cid and conv["status"] == "OPEN"
    assert conv["last_message_preview"] == "Pick one" and conv["message_count"] == 1
    assert conv["x_conversation_id"] == sent[0].conversation_id
    (n,) = await (
        await db.execute(
            "SELECT count(*) FROM contact_interactions WHERE contact_id = %s AND kind ="
            " 'MESSAGE_OUT' AND ref = %s",
            (cid, sent[0].id),
        )
    ).fetchone()
    assert n == 1
    events = await _events(db, merchant, "conversation.opened", "message.created", "message.sent")
    assert [t for t, _ in events] == ["conversation.opened", "message.created", "message.sent"]
    assert events[2][1] == {
        "message_id": str(msg["id"]),
        "conversation_id": str(conv["id"]),
        "contact_id": str(cid),
        "account_id": str(row["id"]),
        "direction": "OUTBOUND",
        "origin": "AI",
        "x_event_id": sent[0].id,
        "outbound_id": oid,
        "source": "flow",
        "source_ref": "exec-9:3",
    }
    got = await _get(api, merchant, oid)
    assert got is not None and got["state"] == "SENT"
    assert await _get(api, uuid.uuid4(), oid) is None  # another merchant's row
    # Sending again changes nothing: the row is settled.
    await dispatch_outbound(api.app.deps)
    assert len(sandbox.state.sent_dms(owner.id)) == 1


async def _get(api, merchant, oid):
    async with use_connection(api.app.deps.pool):
        return await store.get_outbound(merchant, oid)


async def test_into_a_given_conversation_and_with_media(api, merchant, account, sandbox, db):
    from test_conversations import media_server

    row, owner = account
    ((cid, user),) = await add_contacts(db, sandbox, merchant, row["id"], 1)
    conv = uuid.uuid4()
    await db.execute(
        "INSERT INTO conversations (id, merchant_id, account_id, contact_id, status, closed_at)"
        " VALUES (%s, %s, %s, %s, 'CLOSED', now())",
        (conv, merchant, row["id"], cid),
    )
    api.app.deps.xaccess._media_http = media_server()
    ok, bad = await _enqueue(
        api,
        merchant,
        _dm(row, cid, text="See this", conversation_id=conv, media_url="https://m.example/a.png"),
        _dm(row, cid, text="and this", media_url="https://m.example/missing.png"),
    )
    await dispatch_outbound(api.app.deps)
    await dispatch_outbound(api.app.deps)  # the second DM waits for the first
    sent = sandbox.state.sent_dms(owner.id)
    assert [d.text for d in sent] == ["See this"] and sent[0].media_id
    r = await _row(db, ok)
    msg = await (
        await db.execute(
            "SELECT conversation_id, type, attachments FROM messages WHERE id = %s",
            (r["message_id"],),
        )
    ).fetchone()
    assert msg[0] == conv and msg[1] == "IMAGE"
    assert msg[2][0]["url"] == "https://m.example/a.png" and msg[2][0]["x_media_id"]
    failed = await _row(db, bad)
    assert failed["state"] == "FAILED" and failed["reason"].startswith("media: ")
    assert user.id == sent[0].recipient_id


async def test_budget_spent_waits_then_sends(api, merchant, account, sandbox, db):
    row, owner = account
    await lift_budget(db, row["id"], per_15=1)
    (a, _), (b, _) = await add_contacts(db, sandbox, merchant, row["id"], 2)
    first, second = await _enqueue(api, merchant, _dm(row, a), _dm(row, b))
    await dispatch_outbound(api.app.deps)
    await dispatch_outbound(api.app.deps)
    assert len(sandbox.state.sent_dms(owner.id)) == 1
    states = {r["id"]: r for r in [await _row(db, first), await _row(db, second)]}
    waiting = next(r for r in states.values() if r["state"] == "QUEUED")
    assert waiting["reason"].startswith("waiting for DM budget until ")
    assert waiting["attempts"] == 0 and waiting["ready_at"] > waiting["created_at"]
    # The budget's window ends: the row goes by itself once it is due.
    await db.execute(
        "UPDATE account_dm_budget SET w15_start = now() - interval '16 minutes'"
        " WHERE account_id = %s",
        (row["id"],),
    )
    await db.execute("UPDATE outbound_dms SET ready_at = now() WHERE id = %s", (waiting["id"],))
    await dispatch_outbound(api.app.deps)
    assert (await _row(db, waiting["id"]))["state"] == "SENT"
    assert len(sandbox.state.sent_dms(owner.id)) == 2


async def test_x_rate_limit_waits_the_account(api, merchant, account, sandbox, db, rules):
    row, owner = account
    contacts = await add_contacts(db, sandbox, merchant, row["id"], 3)
    ids = await _enqueue(api, merchant, *(_dm(row, c) for c, _ in contacts))
    rules(route=DM_ROUTE, kind="rate_limit", reset_after=600, count=1)
    opts = OutboundOptions(concurrency=1)
    await dispatch_outbound(api.app.deps, opts)
    rows = [await _row(db, i) for i in ids]
    sent = [r for r in rows if r["state"] == "SENT"]
    waiting = [r for r in rows if r["state"] == "QUEUED"]
    assert len(sent) + len(waiting) == 3 and waiting
    assert all(r["reason"].startswith("X rate limit until ") for r in waiting)
    assert len(sandbox.state.sent_dms(owner.id)) == len(sent)


async def test_disconnected_account_waits_and_resumes_on_reconnect(
    api, merchant, account, sandbox, db
):
    row, owner = account
    ((cid, _),) = await add_contacts(db, sandbox, merchant, row["id"], 1)
    await db.execute("UPDATE accounts SET status = 'DISCONNECTED' WHERE id = %s", (row["id"],))
    (oid,) = await _enqueue(api, merchant, _dm(row, cid))
    await dispatch_outbound(api.app.deps)
    r = await _row(db, oid)
    assert (r["state"], r["reason"], r["waiting_for"]) == (
        "QUEUED",
        "account disconnected: reconnect it to send",
        "account",
    )
    assert r["ready_at"] > r["created_at"] and r["attempts"] == 0
    await dispatch_outbound(api.app.deps)
    assert sandbox.state.sent_dms(owner.id) == []
    # Reconnected: claimable at once, whatever ready_at says.
    await db.execute(
        "UPDATE accounts SET status = 'ACTIVE', updated_at = now() WHERE id = %s", (row["id"],)
    )
    await dispatch_outbound(api.app.deps)
    r = await _row(db, oid)
    assert (r["state"], r["waiting_for"]) == ("SENT", "")
    assert len(sandbox.state.sent_dms(owner.id)) == 1


async def test_revoked_during_send_waits_for_the_account(api, merchant, account, sandbox, db):
    row, owner = account
    ((cid, _),) = await add_contacts(db, sandbox, merchant, row["id"], 1)
    (oid,) = await _enqueue(api, merchant, _dm(row, cid))
    await asyncio.to_thread(
        httpx.post, f"{sandbox.base_url}/_sandbox/users/{owner.id}/revoke", json={}
    )
    await dispatch_outbound(api.app.deps)
    r = await _row(db, oid)
    assert r["state"] == "QUEUED" and r["waiting_for"] == "account"
    assert r["reason"].startswith("account cannot send: ")
    assert sandbox.state.sent_dms(owner.id) == []


async def test_opted_out_is_skipped_unless_it_answers_the_contact(
    api, merchant, account, sandbox, db
):
    row, owner = account
    (a, _), (b, user_b) = await add_contacts(db, sandbox, merchant, row["id"], 2)
    await db.execute("UPDATE contacts SET opted_out = true WHERE id = ANY(%s)", ([a, b],))
    skipped, answered = await _enqueue(
        api, merchant, _dm(row, a, ref="m:1"), _dm(row, b, ref="r:1", bypass_opt_out=True)
    )
    await dispatch_outbound(api.app.deps)
    s = await _row(db, skipped)
    assert (s["state"], s["reason"]) == ("SKIPPED", "opted_out")
    assert (await _row(db, answered))["state"] == "SENT"
    assert [d.recipient_id for d in sandbox.state.sent_dms(owner.id)] == [user_b.id]
    assert await _events(db, merchant, "outbound.skipped") == [
        (
            "outbound.skipped",
            {
                "outbound_id": skipped,
                "source": "flow",
                "source_ref": "m:1",
                "contact_id": str(a),
                "account_id": str(row["id"]),
                "reason": "opted_out",
            },
        )
    ]


async def test_x_refusal_fails_the_row(api, merchant, account, sandbox, db):
    row, owner = account
    ((cid, _),) = await add_contacts(db, sandbox, merchant, row["id"], 1, accepts_dms=False)
    (oid,) = await _enqueue(api, merchant, _dm(row, cid, ref="x:1"))
    await dispatch_outbound(api.app.deps)
    r = await _row(db, oid)
    assert r["state"] == "FAILED" and r["reason"].startswith("TWITTER_FORBIDDEN: ")
    ((kind, payload),) = await _events(db, merchant, "outbound.failed")
    assert payload["outbound_id"] == oid and payload["reason"] == r["reason"]
    assert sandbox.state.sent_dms(owner.id) == []


async def test_a_sender_killed_between_arm_and_record(api, merchant, account, sandbox, db):
    """Armed rows abandoned by a sender that died: one whose DM reached X is found at
    X and recorded SENT, never resent; one whose DM never left is sent once."""
    row, owner = account
    (a, user_a), (b, user_b) = await add_contacts(db, sandbox, merchant, row["id"], 2)
    reached, lost = await _enqueue(
        api, merchant, _dm(row, a, text="Your code: 7"), _dm(row, b, text="Your code: 8")
    )
    opts = OutboundOptions()
    armed = await worker._claim(api.app.deps, opts)  # armed, committed, then the crash
    assert sorted(i.id for _, items in armed for i in items) == sorted([reached, lost])
    xa = api.app.deps.xaccess
    at_x = await xa.send_dm(row, user_a.id, text="Your code: 7")
    assert await recover_outbound(api.app.deps) == 5.0  # leases still running: nothing
    assert (await _row(db, reached))["state"] == "SENDING"
    await _expire_leases(db)
    await recover_outbound(api.app.deps)
    r = await _row(db, reached)
    assert (r["state"], r["x_event_id"]) == ("SENT", at_x.dm_event_id)
    assert r["message_id"] is not None
    q = await _row(db, lost)
    assert (q["state"], q["reason"]) == ("QUEUED", "resending: X did not have it")
    await dispatch_outbound(api.app.deps)
    assert (await _row(db, lost))["state"] == "SENT"
    received = Counter(d.recipient_id for d in sandbox.state.sent_dms(owner.id))
    assert received == {user_a.id: 1, user_b.id: 1}


@pytest.mark.parametrize("fault", ["accept_then_drop", "accept_then_error"])
async def test_x_accepts_then_the_answer_is_lost(api, merchant, account, sandbox, db, rules, fault):
    row, owner = account
    ((cid, user),) = await add_contacts(db, sandbox, merchant, row["id"], 1)
    (oid,) = await _enqueue(api, merchant, _dm(row, cid, text="Only once"))
    rules(route=DM_ROUTE, kind=fault, count=1)
    await dispatch_outbound(api.app.deps)
    r = await _row(db, oid)
    assert (r["state"], r["reason"]) == ("SENDING", worker.RESOLVING)
    await dispatch_outbound(api.app.deps)  # armed rows are never sent again
    await _expire_leases(db)
    await recover_outbound(api.app.deps)
    r = await _row(db, oid)
    dms = _texts_to(sandbox, owner, user)
    assert dms == ["Only once"]
    assert r["state"] == "SENT" and r["x_event_id"] == sandbox.state.sent_dms(owner.id)[0].id


async def test_open_breaker_requeues_at_once_without_a_lookup(api, merchant, account, sandbox, db):
    row, owner = account
    (a, _), (b, _) = await add_contacts(db, sandbox, merchant, row["id"], 2)
    ids = await _enqueue(api, merchant, _dm(row, a), _dm(row, b))
    breaker = api.app.deps.xaccess.x.breaker(sandbox.base_url.removeprefix("http://"))
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    try:
        await dispatch_outbound(api.app.deps)
        rows = [await _row(db, i) for i in ids]
    finally:
        breaker.record_success()
    for r in rows:
        assert (r["state"], r["attempts"]) == ("QUEUED", 0)  # X never saw it
        assert r["reason"].startswith("breaker open until ")
        assert r["ready_at"] > r["updated_at"] - timedelta(seconds=1)
    assert sandbox.state.sent_dms(owner.id) == []
    await db.execute("UPDATE outbound_dms SET ready_at = now()")
    await dispatch_outbound(api.app.deps)
    assert {(await _row(db, i))["state"] for i in ids} == {"SENT"}


async def test_unclear_rows_of_one_recipient_share_one_lookup(api, merchant, account, sandbox, db):
    row, owner = account
    ((cid, user),) = await add_contacts(db, sandbox, merchant, row["id"], 1)
    ids = await _enqueue(api, merchant, *(_dm(row, cid, text="Same text") for _ in range(3)))
    await db.execute(
        "UPDATE outbound_dms SET state = 'SENDING', attempts = 1, sending_at = now(),"
        " lease_until = now() - interval '1 second' WHERE id = ANY(%s)",
        (ids,),
    )
    xa = api.app.deps.xaccess
    first = await xa.send_dm(row, user.id, text="Same text")
    second = await xa.send_dm(row, user.id, text="Same text")
    path = f"/2/dm_conversations/with/{user.id}/dm_events"
    with sandbox.state.lock:
        before = sum(1 for _, p in sandbox.state.request_log if p == path)
    await recover_outbound(api.app.deps)
    with sandbox.state.lock:
        assert sum(1 for _, p in sandbox.state.request_log if p == path) == before + 1
    rows = [await _row(db, i) for i in ids]
    assert sorted(r["state"] for r in rows) == ["QUEUED", "SENT", "SENT"]
    assert {r["x_event_id"] for r in rows if r["state"] == "SENT"} == {
        first.dm_event_id,
        second.dm_event_id,
    }
    # Both found DMs are stored in the one conversation, counted once each.
    convs = await (
        await db.execute(
            "SELECT v.id, v.message_count, count(m.id) FROM conversations v"
            " JOIN messages m ON m.conversation_id = v.id WHERE v.contact_id = %s GROUP BY v.id",
            (cid,),
        )
    ).fetchall()
    assert [(n, k) for _, n, k in convs] == [(2, 2)]
    for _ in range(3):
        await dispatch_outbound(api.app.deps)
    assert _texts_to(sandbox, owner, user) == ["Same text"] * 3


async def test_lookup_rate_limit_backs_off(api, merchant, account, sandbox, db, rules):
    """X's DM-lookup limit: the rows wait for its reset (not the usual retry), and
    once X said no, the pass asks nothing more for that account."""
    row, owner = account
    contacts = await add_contacts(db, sandbox, merchant, row["id"], 3)
    ids = await _enqueue(api, merchant, *(_dm(row, c) for c, _ in contacts))
    await db.execute(
        "UPDATE outbound_dms SET state = 'SENDING', attempts = 1, sending_at = now(),"
        " lease_until = now() - interval '1 second' WHERE id = ANY(%s)",
        (ids,),
    )
    glob = "/2/dm_conversations/with/*/dm_events"
    rules(path=glob, kind="rate_limit", reset_after=600, count=None)
    with sandbox.state.lock:
        before = sum(1 for _, p in sandbox.state.request_log if p.endswith("/dm_events"))
    await recover_outbound(api.app.deps)
    with sandbox.state.lock:
        after = sum(1 for _, p in sandbox.state.request_log if p.endswith("/dm_events"))
    assert after - before == 1
    for r in [await _row(db, i) for i in ids]:
        assert r["state"] == "SENDING" and "rate-limited by X until" in r["reason"]
        left = (r["lease_until"] - r["updated_at"]).total_seconds()
        assert left > 300  # until X's reset, not the usual retry
    assert sandbox.state.sent_dms(owner.id) == []


async def test_cancel_skips_queued_rows_of_the_prefix(api, merchant, account, sandbox, db):
    row, owner = account
    (a, _), (b, _) = await add_contacts(db, sandbox, merchant, row["id"], 2)
    armed_id, e1_2, e2_1 = await _enqueue(
        api,
        merchant,
        _dm(row, a, ref="e1:1"),
        _dm(row, b, ref="e1:2", not_before=None),
        _dm(row, b, ref="e2:1"),
    )
    await db.execute(
        "UPDATE outbound_dms SET state = 'SENDING', sending_at = now(),"
        " lease_until = now() + interval '1 minute' WHERE id = %s",
        (armed_id,),
    )
    async with use_connection(api.app.deps.pool, transaction=True):
        assert await store.cancel_outbound(merchant, "flow", "e1:") == 1
        assert await store.cancel_outbound(merchant, "ai", "e2:") == 0
        assert await store.cancel_outbound(uuid.uuid4(), "flow", "e2:") == 0
    assert (await _row(db, armed_id))["state"] == "SENDING"
    c = await _row(db, e1_2)
    assert (c["state"], c["reason"]) == ("SKIPPED", "cancelled")
    assert (await _row(db, e2_1))["state"] == "QUEUED"
    ((_, payload),) = await _events(db, merchant, "outbound.skipped")
    assert (payload["source_ref"], payload["reason"]) == ("e1:2", "cancelled")


async def test_a_contacts_dms_go_one_at_a_time_in_order(api, merchant, account, sandbox, db):
    row, owner = account
    ((cid, user),) = await add_contacts(db, sandbox, merchant, row["id"], 1)
    await _enqueue(api, merchant, *(_dm(row, cid, text=f"part {i}") for i in range(3)))
    passes = 0
    while len(_texts_to(sandbox, owner, user)) < 3:
        passes += 1
        assert passes <= 3
        await dispatch_outbound(api.app.deps)
    assert _texts_to(sandbox, owner, user) == ["part 0", "part 1", "part 2"]


async def test_gdpr_erase_deletes_the_contacts_rows(api, merchant, account, sandbox, db):
    row, _ = account
    (a, _), (b, _) = await add_contacts(db, sandbox, merchant, row["id"], 2)
    await _enqueue(api, merchant, _dm(row, a), _dm(row, b))
    await db.execute("UPDATE contacts SET opted_out = true WHERE id = %s", (a,))
    await dispatch_outbound(api.app.deps)  # a: skipped, with an event naming it
    async with use_connection(api.app.deps.pool, transaction=True):
        await erase(merchant, a, erased_by="test")
    (n,) = await (
        await db.execute("SELECT count(*) FROM outbound_dms WHERE contact_id = %s", (a,))
    ).fetchone()
    assert n == 0
    leftover = await (
        await db.execute(
            "SELECT count(*) FROM domain_events WHERE payload::text LIKE %s", (f"%{a}%",)
        )
    ).fetchone()
    assert leftover == (0,)
    (n,) = await (
        await db.execute("SELECT count(*) FROM outbound_dms WHERE contact_id = %s", (b,))
    ).fetchone()
    assert n == 1


async def test_the_worker_loop_sends_on_its_own(api, merchant, account, sandbox, db):
    """The loop as the worker runs it: woken by the enqueue, each account in a task of
    its own; stopping waits for the sends in flight."""
    row, owner = account
    contacts = await add_contacts(db, sandbox, merchant, row["id"], 5)
    stop = asyncio.Event()

    async def run() -> None:
        while not stop.is_set():
            await outbound_sender_loop(api.app.deps)

    task = asyncio.create_task(run())
    try:
        with sandbox_limits_lifted(sandbox):
            await _enqueue(
                api, merchant, *(_dm(row, c, text=f"hi {i}") for i, (c, _) in enumerate(contacts))
            )
            deadline = time.monotonic() + 30
            while len(sandbox.state.sent_dms(owner.id)) < 5:
                assert time.monotonic() < deadline, "the loop did not send"
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await stop_outbound_senders(api.app.deps)
    states = await (
        await db.execute("SELECT state, count(*) FROM outbound_dms GROUP BY state")
    ).fetchall()
    deadline = time.monotonic() + 10
    while dict(states) != {"SENT": 5}:
        assert time.monotonic() < deadline, states
        await asyncio.sleep(0.05)
        states = await (
            await db.execute("SELECT state, count(*) FROM outbound_dms GROUP BY state")
        ).fetchall()
    assert Counter(d.recipient_id for d in sandbox.state.sent_dms(owner.id)) == Counter(
        u.id for _, u in contacts
    )


def _grouped(events: list[tuple[str, dict[str, Any]]]) -> dict[str, list[tuple[str, dict]]]:
    """The events of each message (by message id; a conversation.opened goes with the
    message that follows it), checking that each row's events are contiguous."""
    groups: dict[str, list[tuple[str, dict]]] = {}
    pending: list[tuple[str, dict]] = []
    last = None
    for t, p in events:
        if t == "conversation.opened":
            pending.append((t, p))
            continue
        mid = p["message_id"]
        if mid != last:
            assert mid not in groups, f"the events of {mid} are not together"
            groups[mid], pending, last = pending, [], mid
        groups[mid].append((t, p))
    assert not pending
    return groups


async def test_a_flush_records_each_dm_as_one_send_does(api, merchant, account, sandbox, db):
    """Six DMs of different kinds recorded in one transaction (one flush): each is
    stored exactly as a DM recorded on its own: the message row (origin, bot flag,
    flow, type, quick replies), the conversation (opened with conversation.opened when
    the contact had none, the live one joined, the one asked for kept even CLOSED),
    its preview (the domain rule, cut at 200), count and X conversation id, the
    contact's interaction, the ledger row, and per DM its events in order."""
    row, owner = account
    contacts = await add_contacts(db, sandbox, merchant, row["id"], 6)
    (new, _), (live, _), (asked, _), (bot, _), (long, _), (other, _) = contacts
    live_conv, asked_conv = uuid.uuid4(), uuid.uuid4()
    await db.execute(
        "INSERT INTO conversations (id, merchant_id, account_id, contact_id, status,"
        " last_message_preview, message_count) VALUES (%s, %s, %s, %s, 'OPEN', 'old', 3)",
        (live_conv, merchant, row["id"], live),
    )
    await db.execute(
        "INSERT INTO conversations (id, merchant_id, account_id, contact_id, status, closed_at,"
        " x_conversation_id) VALUES (%s, %s, %s, %s, 'CLOSED', now(), 'kept-1')",
        (asked_conv, merchant, row["id"], asked),
    )
    flow = uuid.uuid4()
    qr = [{"label": "Yes", "description": "", "metadata": "y"}]
    dms = {
        new: _dm(row, new, text="Welcome!", ref="b:new", flow_id=flow),
        live: _dm(row, live, text="Back again", ref="b:live"),
        asked: _dm(row, asked, text="Into the thread", ref="b:asked", conversation_id=asked_conv),
        bot: _dm(
            row, bot, text="Pick", ref="b:bot", origin="AI", is_from_bot=True, quick_replies=qr
        ),
        long: _dm(row, long, text="L" * 250, ref="b:long"),
        # Asks for another contact's conversation: goes to its own contact's, opened.
        other: _dm(row, other, text="Mine", ref="b:other", conversation_id=live_conv),
    }
    ids = dict(zip(dms, await _enqueue(api, merchant, *dms.values()), strict=True))
    await dispatch_outbound(api.app.deps)
    sent = {d.recipient_id: d for d in sandbox.state.sent_dms(owner.id)}
    assert len(sent) == 6
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT o.contact_id, o.state, o.attempts, o.reason, o.x_event_id, o.message_id,"
            " m.origin, m.is_from_bot, m.flow_id, m.type, m.text, m.quick_replies,"
            " m.delivery_state, m.x_event_id AS m_x_event_id, m.direction, m.created_at,"
            " m.sent_at IS NOT NULL AS has_sent_at, v.id AS conv_id, v.status,"
            " v.last_message_preview, v.message_count, v.x_conversation_id,"
            " c.last_interaction_at IS NOT NULL AS touched,"
            " (SELECT count(*) FROM contact_interactions i WHERE i.contact_id = o.contact_id"
            "   AND i.kind = 'MESSAGE_OUT' AND i.ref = o.x_event_id) AS interactions"
            " FROM outbound_dms o JOIN messages m ON m.id = o.message_id"
            " JOIN conversations v ON v.id = m.conversation_id"
            " JOIN contacts c ON c.id = o.contact_id WHERE o.merchant_id = %s",
            (merchant,),
        )
        got = {r["contact_id"]: r for r in await cur.fetchall()}
    assert len(got) == 6
    assert len({r["created_at"] for r in got.values()}) == 1  # one recording transaction
    users = dict(contacts)
    for cid, r in got.items():
        dm = dms[cid]
        at_x = sent[users[cid].id]
        assert (r["state"], r["attempts"], r["reason"], r["x_event_id"]) == (
            "SENT",
            1,
            "",
            at_x.id,
        )
        assert (r["m_x_event_id"], r["delivery_state"], r["direction"]) == (
            at_x.id,
            "SENT",
            "OUTBOUND",
        )
        assert (r["origin"], r["is_from_bot"], r["flow_id"], r["text"]) == (
            dm.origin,
            dm.is_from_bot,
            dm.flow_id,
            dm.text,
        )
        assert r["type"] == ("QUICK_REPLY" if dm.quick_replies else "TEXT")
        assert r["quick_replies"] == dm.quick_replies
        assert r["has_sent_at"] and r["touched"] and r["interactions"] == 1
    assert got[new]["status"] == "OPEN" and got[new]["message_count"] == 1
    assert got[new]["x_conversation_id"] == sent[users[new].id].conversation_id
    assert (got[live]["conv_id"], got[live]["message_count"]) == (live_conv, 4)
    assert got[live]["last_message_preview"] == "Back again"
    assert got[live]["x_conversation_id"] == sent[users[live].id].conversation_id
    assert (got[asked]["conv_id"], got[asked]["status"]) == (asked_conv, "CLOSED")
    assert (got[asked]["x_conversation_id"], got[asked]["message_count"]) == ("kept-1", 1)
    assert got[long]["last_message_preview"] == "L" * 199 + "…"
    assert got[other]["conv_id"] != live_conv and got[other]["status"] == "OPEN"
    events = await _events(db, merchant, "conversation.opened", "message.created", "message.sent")
    groups = _grouped(events)
    assert len(groups) == 6
    opened = {new, bot, long, other}
    for cid, r in got.items():
        conv = {
            "conversation_id": str(r["conv_id"]),
            "account_id": str(row["id"]),
            "contact_id": str(cid),
        }
        want = [("conversation.opened", conv)] if cid in opened else []
        want += [
            (
                "message.created",
                {**conv, "message_id": str(r["message_id"]), "direction": "OUTBOUND"},
            ),
            (
                "message.sent",
                {
                    "message_id": str(r["message_id"]),
                    "conversation_id": str(r["conv_id"]),
                    "contact_id": str(cid),
                    "account_id": str(row["id"]),
                    "direction": "OUTBOUND",
                    "origin": dms[cid].origin,
                    "x_event_id": sent[users[cid].id].id,
                    "outbound_id": ids[cid],
                    "source": "flow",
                    "source_ref": dms[cid].source_ref,
                },
            ),
        ]
        assert groups[str(r["message_id"])] == want


async def test_a_flush_with_a_refusal_an_unknown_outcome_and_a_settled_row(
    api, merchant, account, sandbox, db, rules
):
    """One flush: a DM X refuses is FAILED (outbound.failed, no message); one whose
    answer is lost stays armed and is found at X by recovery, then stored like the
    others (conversation opened, events), never sent twice; one settled meanwhile
    (recovery got there first) gets nothing stored; the rest are recorded."""
    row, owner = account
    ok = await add_contacts(db, sandbox, merchant, row["id"], 3)
    ((refused, _),) = await add_contacts(db, sandbox, merchant, row["id"], 1, accepts_dms=False)
    (lost, lost_user), (settled, _) = await add_contacts(db, sandbox, merchant, row["id"], 2)
    everyone = [c for c, _ in ok] + [refused, lost, settled]
    ids = dict(
        zip(
            everyone,
            await _enqueue(
                api, merchant, *(_dm(row, c, text=f"hi {i}") for i, c in enumerate(everyone))
            ),
            strict=True,
        )
    )
    rules(
        path=f"/2/dm_conversations/with/{lost_user.id}/messages", kind="accept_then_drop", count=1
    )
    opts = OutboundOptions()
    ((acct, items),) = await worker._claim(api.app.deps, opts)
    assert sorted(i.id for i in items) == sorted(ids.values())
    # Recovery settled this one after its lease ran out, before the sender recorded it.
    await db.execute("UPDATE outbound_dms SET state = 'FAILED' WHERE id = %s", (ids[settled],))
    await worker._send_account(api.app.deps, opts, acct, items)
    rows = {c: await _row(db, ids[c]) for c in everyone}
    assert {c for c in everyone if rows[c]["state"] == "SENT"} == {c for c, _ in ok}
    assert all(rows[c]["message_id"] is not None for c, _ in ok)
    assert rows[refused]["state"] == "FAILED" and rows[refused]["message_id"] is None
    assert rows[refused]["reason"].startswith("TWITTER_FORBIDDEN: ")
    assert (rows[lost]["state"], rows[lost]["reason"]) == ("SENDING", worker.RESOLVING)
    assert (rows[settled]["state"], rows[settled]["message_id"]) == ("FAILED", None)
    (n,) = await (
        await db.execute(
            "SELECT count(*) FROM conversations WHERE contact_id = ANY(%s)",
            ([refused, lost, settled],),
        )
    ).fetchone()
    assert n == 0
    failed = await _events(db, merchant, "outbound.failed")
    assert [p["outbound_id"] for _, p in failed] == [ids[refused]]
    assert (
        len(
            _grouped(
                await _events(
                    db, merchant, "conversation.opened", "message.created", "message.sent"
                )
            )
        )
        == 3
    )
    # The lost answer: found at X, stored, and not sent again.
    await dispatch_outbound(api.app.deps)
    await _expire_leases(db)
    await recover_outbound(api.app.deps)
    r = await _row(db, ids[lost])
    assert r["state"] == "SENT" and r["message_id"] is not None
    assert _texts_to(sandbox, owner, lost_user) == [f"hi {everyone.index(lost)}"]
    events = await _events(db, merchant, "conversation.opened", "message.created", "message.sent")
    groups = _grouped(events)
    assert len(groups) == 4
    assert [t for t, _ in groups[str(r["message_id"])]] == [
        "conversation.opened",
        "message.created",
        "message.sent",
    ]
    received = Counter(d.recipient_id for d in sandbox.state.sent_dms(owner.id))
    assert set(received.values()) == {1} and len(received) == 5  # all but the refused one
