"""Processing: what each X event does to contacts, conversations, messages,
interactions, accounts and the domain event outbox; failures and retries."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

from webhook_helpers import (
    FAST,
    Account,
    ConnectAccount,
    Db,
    Sidecar,
    StartSidecar,
    dm_delivery,
    dm_event,
    new_x_id,
    now_ms,
    user_obj,
    wait_for,
)

from mktx_grpc.deps import Deps
from mktx_grpc.webhooks.batch import make_inbox_retry_loop, process_due
from mktx_grpc.webhooks.metrics import WebhookMetrics


async def settled(q: Db, sidecar: Sidecar, n: int) -> list[dict[str, Any]]:
    """Wait until ``n`` inbox rows are finished; return them in id order."""
    await wait_for(
        lambda: q.value(
            "SELECT count(*) >= %s FROM webhook_inbox WHERE processed_at IS NOT NULL", n
        ),
        what=f"{n} processed inbox rows",
    )
    await sidecar.processor.wait_idle()
    return await q.all("SELECT * FROM webhook_inbox ORDER BY id")


async def events_of(q: Db, *types: str) -> list[dict[str, Any]]:
    return await q.all(
        "SELECT type, aggregate_id, payload, merchant_id FROM domain_events"
        " WHERE type = ANY(%s) ORDER BY id",
        list(types),
    )


# ------------------------------------------------------------------ inbound DMs


async def test_inbound_dm_creates_contact_conversation_message_interaction_events(
    dm_sidecar: Sidecar, account: Account, q: Db
) -> None:
    sidecar = dm_sidecar
    customer = new_x_id()
    media = {
        "id": 1234,
        "id_str": "1234",
        "media_url_https": "https://ton.twitter.com/1.1/ton/data/dm/1/1234.jpg",
        "type": "photo",
    }
    qr = {"type": "options", "metadata": "size_m"}
    ev = dm_event(customer, account.x_user_id, "where is my order?", media=media, quick_reply=qr)
    resp = await sidecar.post(dm_delivery(account.x_user_id, ev))
    assert resp.status_code == 200
    [row] = await settled(q, sidecar, 1)
    assert row["outcome"] == "PROCESSED" and row["attempts"] == 1 and row["last_error"] == ""

    contact = await q.one("SELECT * FROM contacts")
    assert contact is not None
    assert contact["merchant_id"] == account.merchant_id
    assert contact["account_id"] == account.id
    assert contact["x_user_id"] == customer
    assert contact["source"] == "INBOUND_MESSAGE"
    assert contact["username"] == f"user{customer[-6:]}"
    assert contact["display_name"] == f"User{customer[-6:]}"
    assert contact["profile_image_url"].endswith(f"{customer}/normal.jpg")
    sent_at = int(ev["created_timestamp"]) / 1000
    assert abs(contact["first_interaction_at"].timestamp() - sent_at) < 0.01
    assert contact["last_interaction_at"] == contact["first_interaction_at"]

    conv = await q.one("SELECT * FROM conversations")
    assert conv is not None
    assert conv["status"] == "OPEN" and conv["contact_id"] == contact["id"]
    assert conv["unread_count"] == 1 and conv["message_count"] == 1
    assert conv["last_message_preview"] == "where is my order?"
    assert conv["last_message_at"] == contact["first_interaction_at"]
    assert conv["last_inbound_at"] == conv["last_message_at"]
    lo, hi = sorted((customer, account.x_user_id), key=int)
    assert conv["x_conversation_id"] == f"{lo}-{hi}"

    msg = await q.one("SELECT * FROM messages")
    assert msg is not None
    assert msg["conversation_id"] == conv["id"] and msg["direction"] == "INBOUND"
    assert msg["type"] == "IMAGE" and msg["text"] == "where is my order?"
    assert msg["x_event_id"] == ev["id"] and msg["sender_user_id"] == customer
    assert msg["origin"] == "CONTACT" and msg["delivery_state"] == "DELIVERED"
    assert msg["delivered_at"] is not None
    assert msg["attachments"] == [
        {
            "type": "media",
            "media_id": "1234",
            "media_type": "photo",
            "url": media["media_url_https"],
        }
    ]
    assert msg["quick_reply_metadata"] == "size_m"

    [inter] = await q.all("SELECT * FROM contact_interactions")
    assert inter["kind"] == "MESSAGE_IN" and inter["contact_id"] == contact["id"]
    assert inter["ref"] == ev["id"]

    evs = await q.all(
        "SELECT type, aggregate_id, payload, merchant_id FROM domain_events ORDER BY id"
    )
    assert [e["type"] for e in evs] == [
        "contact.created",
        "conversation.opened",
        "message.received",
    ]
    assert all(e["merchant_id"] == account.merchant_id for e in evs)
    received = evs[2]["payload"]
    assert received["message_id"] == str(msg["id"])
    assert received["conversation_id"] == str(conv["id"])
    assert received["contact_id"] == str(contact["id"])
    assert received["account_id"] == str(account.id)
    assert evs[2]["aggregate_id"] == conv["id"]
    assert evs[1]["payload"]["conversation_id"] == str(conv["id"])
    set_based = sidecar.app.state.options.set_based_dms
    assert sidecar.metrics.dm_runs == ({"set_based": 1} if set_based else {})


async def test_second_dm_joins_the_conversation_and_keeps_first_source(
    dm_sidecar: Sidecar, account: Account, q: Db
) -> None:
    sidecar = dm_sidecar
    customer = new_x_id()
    # The customer first followed (source NEW_FOLLOWER), then writes twice.
    follow = {
        "for_user_id": account.x_user_id,
        "follow_events": [
            {
                "type": "follow",
                "created_timestamp": now_ms(),
                "source": user_obj(customer),
                "target": user_obj(account.x_user_id),
            }
        ],
    }
    assert (await sidecar.post(follow)).status_code == 200
    await settled(q, sidecar, 1)
    t0 = int(now_ms())
    e1 = dm_event(customer, account.x_user_id, "one", ts_ms=str(t0))
    e2 = dm_event(customer, account.x_user_id, "two", ts_ms=str(t0 + 5))
    assert (await sidecar.post(dm_delivery(account.x_user_id, e1, e2))).status_code == 200
    await settled(q, sidecar, 3)
    assert await q.value("SELECT source FROM contacts") == "NEW_FOLLOWER"
    conv = await q.one("SELECT * FROM conversations")
    assert conv is not None
    assert conv["unread_count"] == 2 and conv["message_count"] == 2
    assert conv["last_message_preview"] == "two"
    assert await q.value("SELECT count(*) FROM conversations") == 1
    assert [r["text"] for r in await q.all("SELECT text FROM messages ORDER BY created_at")] == [
        "one",
        "two",
    ]
    assert [e["type"] for e in await events_of(q, "contact.created", "conversation.opened")] == [
        "contact.created",
        "conversation.opened",
    ]
    # A late retry of an older message does not replace the newer preview.
    e0 = dm_event(customer, account.x_user_id, "zero", ts_ms=str(t0 - 1000))
    assert (await sidecar.post(dm_delivery(account.x_user_id, e0))).status_code == 200
    await settled(q, sidecar, 4)
    conv = await q.one("SELECT * FROM conversations")
    assert conv is not None and conv["last_message_preview"] == "two"
    assert conv["message_count"] == 3


async def test_dm_between_two_connected_accounts_is_recorded_for_each(
    sidecar: Sidecar, connect_account: ConnectAccount, other_merchant: Any, q: Db
) -> None:
    shop_a = await connect_account()
    shop_b = await connect_account(merchant_id=other_merchant)
    ev = dm_event(shop_a.x_user_id, shop_b.x_user_id, "hello neighbour")
    # X delivers the same event once per subscribed user.
    assert (await sidecar.post(dm_delivery(shop_b.x_user_id, ev))).status_code == 200
    assert (await sidecar.post(dm_delivery(shop_a.x_user_id, ev))).status_code == 200
    rows = await settled(q, sidecar, 2)
    assert len(rows) == 2
    # For B it is inbound; for A it is an echo of a DM sent outside mktx.
    inbound = await q.one("SELECT * FROM messages WHERE merchant_id = %s", shop_b.merchant_id)
    echo = await q.one("SELECT * FROM messages WHERE merchant_id = %s", shop_a.merchant_id)
    assert inbound is not None and inbound["direction"] == "INBOUND"
    assert echo is not None and echo["direction"] == "OUTBOUND" and echo["origin"] == "EXTERNAL"


async def test_a_run_with_an_already_stored_message_falls_back_per_event(
    dm_sidecar: Sidecar, account: Account, q: Db
) -> None:
    """A DM whose X event id is already stored (e.g. its inbox row was purged and X
    replayed it) is a DUPLICATE; the rest of its run is applied normally."""
    sidecar = dm_sidecar
    customer = new_x_id()
    t0 = int(now_ms())
    e1, e2, e3 = (
        dm_event(customer, account.x_user_id, f"m{i}", ts_ms=str(t0 + i)) for i in range(3)
    )
    assert (await sidecar.post(dm_delivery(account.x_user_id, e2))).status_code == 200
    await settled(q, sidecar, 1)
    await q.conn.execute("DELETE FROM webhook_inbox")  # as a retention purge would
    assert (await sidecar.post(dm_delivery(account.x_user_id, e1, e2, e3))).status_code == 200
    rows = await settled(q, sidecar, 3)
    assert [r["outcome"] for r in rows] == ["PROCESSED", "DUPLICATE", "PROCESSED"]
    assert await q.value("SELECT count(*) FROM messages") == 3
    conv = await q.one("SELECT * FROM conversations")
    assert conv is not None and conv["message_count"] == 3 and conv["unread_count"] == 3
    assert conv["last_message_preview"] == "m2"
    assert len(await events_of(q, "message.received")) == 3
    assert len(await events_of(q, "contact.created", "conversation.opened")) == 2
    if sidecar.app.state.options.set_based_dms:
        assert sidecar.metrics.dm_runs == {"set_based": 1, "fallback": 1}


# ------------------------------------------------------------------ failures


async def test_unknown_account_is_recorded_and_ignored(
    dm_sidecar: Sidecar, connect_account: ConnectAccount, q: Db
) -> None:
    sidecar = dm_sidecar
    gone = await connect_account(status="DISCONNECTED")
    stranger = new_x_id()
    for for_user in (stranger, gone.x_user_id):
        ev = dm_event(new_x_id(), for_user, "anyone there?")
        assert (await sidecar.post(dm_delivery(for_user, ev))).status_code == 200
    rows = await settled(q, sidecar, 2)
    assert [r["outcome"] for r in rows] == ["IGNORED", "IGNORED"]
    assert all(r["attempts"] == 1 for r in rows)
    assert rows[0]["last_error"] == "no connected account for for_user_id"
    for table in ("contacts", "conversations", "messages", "domain_events"):
        assert await q.value(f"SELECT count(*) FROM {table}") == 0
    # Ignored rows are finished: the retry loop does not take them again.
    assert await q.value("SELECT count(*) FROM webhook_inbox WHERE processed_at IS NULL") == 0


FAIL_MESSAGES = """
CREATE FUNCTION refuse_messages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'messages are refused for this test'; END $$;
CREATE TRIGGER refuse_messages BEFORE INSERT ON messages
  FOR EACH ROW EXECUTE FUNCTION refuse_messages();
"""


async def test_processing_failure_is_retried_from_the_inbox_table(
    start_sidecar: StartSidecar, deps: Deps, account: Account, q: Db
) -> None:
    # Only the table-driven retry loop may retry, not the sidecar's in-memory path.
    sidecar = await start_sidecar(inline_retries=False)
    await q.conn.execute(FAIL_MESSAGES)
    ev = dm_event(new_x_id(), account.x_user_id, "please work")
    assert (await sidecar.post(dm_delivery(account.x_user_id, ev))).status_code == 200
    row = await wait_for(
        lambda: q.one("SELECT * FROM webhook_inbox WHERE attempts = 1"), what="failed attempt"
    )
    assert row["processed_at"] is None and row["outcome"] == ""
    assert "messages are refused for this test" in row["last_error"]
    assert row["next_attempt_at"] > row["received_at"]
    # The event was rolled back as a whole: no contact, no conversation, no events.
    for table in ("contacts", "conversations", "messages", "contact_interactions", "domain_events"):
        assert await q.value(f"SELECT count(*) FROM {table}") == 0
    assert sidecar.metrics.failed == 1

    # Still failing: the retry loop counts another attempt.
    loop_metrics = WebhookMetrics()
    retry = make_inbox_retry_loop(FAST, loop_metrics)
    await wait_for(
        lambda: q.value("SELECT next_attempt_at <= now() FROM webhook_inbox"), what="backoff"
    )
    assert await retry(deps) == FAST.retry_poll
    assert await q.value("SELECT attempts FROM webhook_inbox") == 2

    # Fixed: the next retry applies it, exactly once.
    await q.conn.execute("DROP TRIGGER refuse_messages ON messages")

    async def retried() -> bool:
        await retry(deps)
        return bool(await q.value("SELECT processed_at IS NOT NULL FROM webhook_inbox"))

    await wait_for(retried, what="retry")
    row = await q.one("SELECT * FROM webhook_inbox")
    assert row is not None and row["outcome"] == "PROCESSED" and row["attempts"] == 3
    assert await q.value("SELECT count(*) FROM messages") == 1
    assert await q.value("SELECT count(*) FROM contacts") == 1
    assert loop_metrics.processed["PROCESSED"] == 1 and loop_metrics.failed == 1


async def test_inline_retry_recovers_after_a_transient_failure(
    sidecar: Sidecar, account: Account, q: Db
) -> None:
    await q.conn.execute(FAIL_MESSAGES)
    ev = dm_event(new_x_id(), account.x_user_id, "second time lucky")
    assert (await sidecar.post(dm_delivery(account.x_user_id, ev))).status_code == 200
    await wait_for(lambda: q.one("SELECT 1 FROM webhook_inbox WHERE attempts >= 1"), what="fail")
    await q.conn.execute("DROP TRIGGER refuse_messages ON messages")
    [row] = await settled(q, sidecar, 1)
    assert row["outcome"] == "PROCESSED" and row["attempts"] >= 2
    assert await q.value("SELECT count(*) FROM messages") == 1


async def test_persistent_failure_goes_dead_after_max_attempts(
    start_sidecar: StartSidecar, account: Account, q: Db
) -> None:
    sidecar = await start_sidecar(max_attempts=3)
    await q.conn.execute(FAIL_MESSAGES)
    ev = dm_event(new_x_id(), account.x_user_id, "doomed")
    assert (await sidecar.post(dm_delivery(account.x_user_id, ev))).status_code == 200
    [row] = await settled(q, sidecar, 1)
    assert row["outcome"] == "DEAD" and row["attempts"] == 3
    assert row["last_error"].startswith("gave up after 3 attempts")
    assert await q.value("SELECT count(*) FROM contacts") == 0
    assert sidecar.metrics.processed["DEAD"] == 1 and sidecar.metrics.failed == 2


async def test_malformed_event_is_dead_at_once(sidecar: Sidecar, account: Account, q: Db) -> None:
    payload = {
        "for_user_id": account.x_user_id,
        "direct_message_events": [{"type": "message_create", "id": new_x_id()}],
        "follow_events": [{"type": "follow"}],  # no source/target: hashed key
    }
    assert (await sidecar.post(payload)).status_code == 200
    rows = await settled(q, sidecar, 2)
    assert [r["outcome"] for r in rows] == ["DEAD", "DEAD"]
    assert all(r["attempts"] == 1 and r["last_error"].startswith("malformed") for r in rows)
    assert ":follow_events:h:" in rows[1]["event_key"]
    # Redelivering the unkeyable event still deduplicates.
    assert (await sidecar.post(payload)).json()["new"] == 0


async def test_retry_loops_in_parallel_process_each_row_once(
    deps: Deps, connect_account: ConnectAccount, q: Db
) -> None:
    acct = await connect_account()
    n = 60
    # Rows as a crashed sidecar would leave them: recorded, never processed, due.
    for i in range(n):
        ev = dm_event(new_x_id(), acct.x_user_id, f"m{i}")
        payload = {
            "for_user_id": acct.x_user_id,
            "type": "direct_message_events",
            "event": ev,
            "users": {},
        }
        await q.conn.execute(
            "INSERT INTO webhook_inbox (event_key, for_user_id, event_type, payload,"
            " next_attempt_at) VALUES (%s, %s, 'direct_message_events', %s, now())",
            (f"{acct.x_user_id}:dm:{ev['id']}", acct.x_user_id, json.dumps(payload)),
        )
    opts = replace(FAST, batch_size=7)
    metrics = [WebhookMetrics() for _ in range(3)]

    async def drain(m: WebhookMetrics) -> None:
        while True:
            result = await process_due(deps.pool, opts, m)
            if result.count == 0:
                return

    await asyncio.gather(*(drain(m) for m in metrics))
    assert sum(m.processed["PROCESSED"] for m in metrics) == n
    assert sum(sum(m.processed.values()) for m in metrics) == n
    assert await q.value("SELECT count(*) FROM messages") == n
    assert await q.value("SELECT count(DISTINCT outcome) FROM webhook_inbox") == 1
    assert await q.value("SELECT max(attempts) FROM webhook_inbox") == 1


# ------------------------------------------------------------------ echo and reads


async def _outbound(
    q: Db, account: Account, customer: str, x_event_ids: list[str]
) -> tuple[Any, list[Any]]:
    """A conversation with messages we sent (as the send path stores them)."""
    contact = await q.one(
        "INSERT INTO contacts (merchant_id, account_id, x_user_id, source)"
        " VALUES (%s, %s, %s, 'MANUAL') RETURNING id",
        account.merchant_id,
        account.id,
        customer,
    )
    assert contact is not None
    conv = await q.one(
        "INSERT INTO conversations (merchant_id, account_id, contact_id)"
        " VALUES (%s, %s, %s) RETURNING id",
        account.merchant_id,
        account.id,
        contact["id"],
    )
    assert conv is not None
    ids = []
    for xid in x_event_ids:
        m = await q.one(
            "INSERT INTO messages (merchant_id, conversation_id, direction, origin, text,"
            " x_event_id, delivery_state, sent_at)"
            " VALUES (%s, %s, 'OUTBOUND', 'AGENT', 'reply', %s, 'SENT', now())"
            " RETURNING id",
            account.merchant_id,
            conv["id"],
            xid,
        )
        assert m is not None
        ids.append(m["id"])
    return conv["id"], ids


async def test_echo_marks_our_message_delivered_without_duplicating(
    sidecar: Sidecar, account: Account, q: Db
) -> None:
    customer = new_x_id()
    xid = new_x_id()
    conv_id, [msg_id] = await _outbound(q, account, customer, [xid])
    echo = dm_event(account.x_user_id, customer, "reply", event_id=xid)
    assert (await sidecar.post(dm_delivery(account.x_user_id, echo))).status_code == 200
    [row] = await settled(q, sidecar, 1)
    assert row["outcome"] == "PROCESSED"
    assert await q.value("SELECT count(*) FROM messages") == 1
    msg = await q.one("SELECT * FROM messages")
    assert msg is not None and msg["delivery_state"] == "DELIVERED"
    assert msg["delivered_at"] is not None
    [ev] = await events_of(q, "message.delivered")
    assert ev["payload"]["message_id"] == str(msg_id)
    assert ev["payload"]["conversation_id"] == str(conv_id)
    assert ev["payload"]["status"] == "DELIVERED"
    # Counters are not touched by an echo of our own message.
    assert await q.value("SELECT message_count FROM conversations") == 0


async def test_echo_before_the_send_path_committed_waits_for_it(
    start_sidecar: StartSidecar, account: Account, q: Db
) -> None:
    sidecar = await start_sidecar(echo_grace=30.0, echo_retry_delay=0.05)
    customer = new_x_id()
    xid = new_x_id()
    echo = dm_event(account.x_user_id, customer, "reply", event_id=xid)
    assert (await sidecar.post(dm_delivery(account.x_user_id, echo))).status_code == 200
    await wait_for(lambda: q.one("SELECT 1 FROM webhook_inbox WHERE attempts >= 2"), what="wait")
    assert await q.value("SELECT count(*) FROM messages") == 0
    # Now the send path stores the message with X's event id.
    await _outbound(q, account, customer, [xid])
    [row] = await settled(q, sidecar, 1)
    assert row["outcome"] == "PROCESSED"
    msg = await q.one("SELECT * FROM messages")
    assert msg is not None and msg["delivery_state"] == "DELIVERED" and msg["origin"] == "AGENT"
    assert await q.value("SELECT count(*) FROM messages") == 1


async def test_echo_of_a_dm_sent_from_another_client_is_stored_once(
    sidecar: Sidecar, account: Account, q: Db
) -> None:
    customer = new_x_id()
    echo = dm_event(account.x_user_id, customer, "typed on my phone")
    assert (await sidecar.post(dm_delivery(account.x_user_id, echo))).status_code == 200
    await settled(q, sidecar, 1)
    msg = await q.one("SELECT * FROM messages")
    assert msg is not None
    assert msg["direction"] == "OUTBOUND" and msg["origin"] == "EXTERNAL"
    assert msg["delivery_state"] == "DELIVERED" and msg["x_event_id"] == echo["id"]
    conv = await q.one("SELECT * FROM conversations")
    assert conv is not None and conv["message_count"] == 1 and conv["unread_count"] == 0
    assert conv["last_message_preview"] == "typed on my phone"
    assert await q.value("SELECT kind FROM contact_interactions") == "MESSAGE_OUT"
    [ev] = await events_of(q, "message.sent")
    assert ev["payload"]["origin"] == "EXTERNAL" and ev["payload"]["message_id"] == str(msg["id"])


async def test_read_receipt_marks_outbound_messages_read_up_to_the_event(
    sidecar: Sidecar, account: Account, q: Db
) -> None:
    customer = new_x_id()
    x1, x2, x3 = new_x_id(), new_x_id(), new_x_id()
    conv_id, (m1, m2, m3) = await _outbound(q, account, customer, [x1, x2, x3])
    receipt = {
        "for_user_id": account.x_user_id,
        "direct_message_mark_read_events": [
            {
                "created_timestamp": now_ms(),
                "sender_id": customer,
                "target": {"recipient_id": account.x_user_id},
                "last_read_event_id": x2,
            }
        ],
        "users": {customer: user_obj(customer)},
    }
    assert (await sidecar.post(receipt)).status_code == 200
    [row] = await settled(q, sidecar, 1)
    assert row["event_key"] == f"{account.x_user_id}:read:{customer}:{x2}"
    states = {r["id"]: r for r in await q.all("SELECT id, delivery_state, read_at FROM messages")}
    assert states[m1]["delivery_state"] == "READ" and states[m1]["read_at"] is not None
    assert states[m2]["delivery_state"] == "READ"
    assert states[m3]["delivery_state"] == "SENT" and states[m3]["read_at"] is None
    evs = await events_of(q, "message.read")
    assert sorted(e["payload"]["message_id"] for e in evs) == sorted([str(m1), str(m2)])
    assert all(e["payload"]["conversation_id"] == str(conv_id) for e in evs)


async def test_read_by_the_account_clears_unread(sidecar: Sidecar, account: Account, q: Db) -> None:
    customer = new_x_id()
    ev = dm_event(customer, account.x_user_id, "hi")
    await sidecar.post(dm_delivery(account.x_user_id, ev))
    await settled(q, sidecar, 1)
    assert await q.value("SELECT unread_count FROM conversations") == 1
    receipt = {
        "for_user_id": account.x_user_id,
        "direct_message_mark_read_events": [
            {
                "created_timestamp": now_ms(),
                "sender_id": account.x_user_id,
                "target": {"recipient_id": customer},
                "last_read_event_id": ev["id"],
            }
        ],
    }
    await sidecar.post(receipt)
    await settled(q, sidecar, 2)
    assert await q.value("SELECT unread_count FROM conversations") == 0
    assert len(await events_of(q, "conversation.read")) == 1


# ------------------------------------------------------------------ follows, mentions, revoke


def follow_delivery(account: Account, who: str, kind: str, ts_ms: str) -> dict[str, Any]:
    return {
        "for_user_id": account.x_user_id,
        "follow_events": [
            {
                "type": kind,
                "created_timestamp": ts_ms,
                "source": user_obj(who, "fan"),
                "target": user_obj(account.x_user_id, "shop"),
            }
        ],
    }


async def test_follow_and_unfollow(sidecar: Sidecar, account: Account, q: Db) -> None:
    fan = new_x_id()
    t0 = int(time.time() * 1000)
    await sidecar.post(follow_delivery(account, fan, "follow", str(t0)))
    await settled(q, sidecar, 1)
    c = await q.one("SELECT * FROM contacts")
    assert c is not None
    assert c["source"] == "NEW_FOLLOWER" and c["follows_account"] is True
    assert c["username"] == "fan" and c["follow_time"] is not None

    await sidecar.post(follow_delivery(account, fan, "unfollow", str(t0 + 1000)))
    await settled(q, sidecar, 2)
    c = await q.one("SELECT * FROM contacts")
    assert c is not None and c["follows_account"] is False and c["unfollowed_at"] is not None
    assert c["source"] == "NEW_FOLLOWER"

    # A late redelivery of an older follow does not override the newer unfollow.
    await sidecar.post(follow_delivery(account, fan, "follow", str(t0 + 500)))
    await settled(q, sidecar, 3)
    assert await q.value("SELECT follows_account FROM contacts") is False

    kinds = [
        r["kind"] for r in await q.all("SELECT kind FROM contact_interactions ORDER BY occurred_at")
    ]
    assert kinds == ["FOLLOW", "FOLLOW", "UNFOLLOW"]
    evs = await events_of(q, "contact.followed", "contact.unfollowed")
    assert [(e["type"], e["payload"]["applied"]) for e in evs] == [
        ("contact.followed", True),
        ("contact.unfollowed", True),
        ("contact.followed", False),
    ]
    assert evs[0]["payload"]["contact_id"] == str(c["id"])


async def test_the_accounts_own_follow_is_ignored(
    sidecar: Sidecar, account: Account, q: Db
) -> None:
    other = new_x_id()
    payload = {
        "for_user_id": account.x_user_id,
        "follow_events": [
            {
                "type": "follow",
                "created_timestamp": now_ms(),
                "source": user_obj(account.x_user_id),
                "target": user_obj(other),
            }
        ],
    }
    await sidecar.post(payload)
    [row] = await settled(q, sidecar, 1)
    assert row["outcome"] == "IGNORED"
    assert await q.value("SELECT count(*) FROM contacts") == 0


def tweet(author: str, text: str, mentions: list[str], tid: str | None = None) -> dict[str, Any]:
    return {
        "id_str": tid or new_x_id(),
        "text": text,
        "user": user_obj(author, "author"),
        "timestamp_ms": now_ms(),
        "in_reply_to_user_id_str": None,
        "entities": {"user_mentions": [{"id_str": m, "screen_name": "x"} for m in mentions]},
    }


async def test_mention_records_an_interaction(sidecar: Sidecar, account: Account, q: Db) -> None:
    author = new_x_id()
    mention = tweet(author, "@shop love it", [account.x_user_id])
    unrelated = tweet(new_x_id(), "hello world", [new_x_id()])
    own = tweet(account.x_user_id, "our sale starts today", [])
    payload = {"for_user_id": account.x_user_id, "tweet_create_events": [mention, unrelated, own]}
    assert (await sidecar.post(payload)).json()["new"] == 3
    rows = await settled(q, sidecar, 3)
    assert [r["outcome"] for r in rows] == ["PROCESSED", "IGNORED", "IGNORED"]
    c = await q.one("SELECT * FROM contacts")
    assert c is not None and c["source"] == "MENTION" and c["x_user_id"] == author
    inter = await q.one("SELECT * FROM contact_interactions")
    assert inter is not None and inter["kind"] == "MENTION" and inter["ref"] == mention["id_str"]
    [ev] = await events_of(q, "contact.mentioned")
    assert ev["payload"]["tweet_id"] == mention["id_str"]
    assert ev["payload"]["contact_id"] == str(c["id"])
    assert await q.value("SELECT count(*) FROM conversations") == 0


async def test_revoke_puts_the_account_in_error(sidecar: Sidecar, account: Account, q: Db) -> None:
    payload = {
        "for_user_id": account.x_user_id,
        "user_event": {
            "revoke": {
                "date_time": "2024-05-01T10:00:00+00:00",
                "target": {"app_id": "29000001"},
                "source": {"user_id": account.x_user_id},
            }
        },
    }
    assert (await sidecar.post(payload)).json()["new"] == 1
    assert (await sidecar.post(payload)).json()["new"] == 0  # same revoke, same key
    [row] = await settled(q, sidecar, 1)
    assert row["outcome"] == "PROCESSED" and ":revoke:" in row["event_key"]
    acct = await q.one("SELECT * FROM accounts WHERE id = %s", account.id)
    assert acct is not None and acct["status"] == "ERROR"
    assert "revoked" in acct["status_reason"] and "2024-05-01" in acct["status_reason"]
    assert acct["version"] == 2
    [ev] = await events_of(q, "account.revoked")
    assert ev["payload"] == {
        "account_id": str(account.id),
        "status": "ERROR",
        "reason": acct["status_reason"],
    }


# ------------------------------------------------------------------ conversation lifecycle


async def _conversation_for(
    q: Db, account: Account, customer: str, status: str, **cols: Any
) -> Any:
    contact = await q.one(
        "INSERT INTO contacts (merchant_id, account_id, x_user_id, source)"
        " VALUES (%s, %s, %s, 'IMPORT') RETURNING id",
        account.merchant_id,
        account.id,
        customer,
    )
    assert contact is not None
    conv = await q.one(
        "INSERT INTO conversations (merchant_id, account_id, contact_id, status, closed_at,"
        " close_reason, snooze_until) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        account.merchant_id,
        account.id,
        contact["id"],
        status,
        cols.get("closed_at"),
        cols.get("close_reason", ""),
        cols.get("snooze_until"),
    )
    assert conv is not None
    return conv["id"]


async def test_closed_conversation_reopens_within_the_quiet_period(
    dm_sidecar: Sidecar, account: Account, q: Db
) -> None:
    sidecar = dm_sidecar
    customer = new_x_id()
    now = await q.value("SELECT now()")
    conv_id = await _conversation_for(
        q, account, customer, "CLOSED", closed_at=now - timedelta(hours=2), close_reason="done"
    )
    await sidecar.post(dm_delivery(account.x_user_id, dm_event(customer, account.x_user_id)))
    await settled(q, sidecar, 1)
    [conv] = await q.all("SELECT * FROM conversations")
    assert conv["id"] == conv_id and conv["status"] == "OPEN"
    assert conv["closed_at"] is None and conv["close_reason"] == ""
    assert conv["message_count"] == 1
    [ev] = await events_of(q, "conversation.reopened")
    assert ev["payload"]["conversation_id"] == str(conv_id)
    assert ev["payload"]["previous_status"] == "CLOSED"
    # The contact's first source (IMPORT) is kept.
    assert await q.value("SELECT source FROM contacts") == "IMPORT"


async def test_closed_conversation_after_the_quiet_period_starts_a_new_one(
    start_sidecar: StartSidecar, dm_path: dict[str, Any], account: Account, q: Db
) -> None:
    sidecar = await start_sidecar(reopen_window=3600.0, **dm_path)
    customer = new_x_id()
    now = await q.value("SELECT now()")
    old_id = await _conversation_for(
        q, account, customer, "CLOSED", closed_at=now - timedelta(hours=2)
    )
    await sidecar.post(dm_delivery(account.x_user_id, dm_event(customer, account.x_user_id)))
    await settled(q, sidecar, 1)
    convs = {r["id"]: r for r in await q.all("SELECT * FROM conversations")}
    assert len(convs) == 2
    assert convs[old_id]["status"] == "CLOSED"
    [new_id] = [i for i in convs if i != old_id]
    assert convs[new_id]["status"] == "OPEN" and convs[new_id]["message_count"] == 1
    assert await q.value("SELECT conversation_id FROM messages") == new_id
    [ev] = await events_of(q, "conversation.opened")
    assert ev["payload"]["conversation_id"] == str(new_id)
    assert await events_of(q, "conversation.reopened") == []


async def test_snoozed_conversation_is_woken_early(
    dm_sidecar: Sidecar, account: Account, q: Db
) -> None:
    sidecar = dm_sidecar
    customer = new_x_id()
    now = await q.value("SELECT now()")
    conv_id = await _conversation_for(
        q, account, customer, "SNOOZED", snooze_until=now + timedelta(days=1)
    )
    await sidecar.post(dm_delivery(account.x_user_id, dm_event(customer, account.x_user_id)))
    await settled(q, sidecar, 1)
    [conv] = await q.all("SELECT * FROM conversations")
    assert conv["id"] == conv_id and conv["status"] == "OPEN" and conv["snooze_until"] is None
    assert conv["unread_count"] == 1 and conv["version"] == 2
    [ev] = await events_of(q, "conversation.woken")
    assert ev["payload"]["previous_status"] == "SNOOZED"
    assert ev["payload"]["conversation_id"] == str(conv_id)


async def test_pending_conversation_is_woken(dm_sidecar: Sidecar, account: Account, q: Db) -> None:
    sidecar = dm_sidecar
    customer = new_x_id()
    conv_id = await _conversation_for(q, account, customer, "PENDING")
    await sidecar.post(dm_delivery(account.x_user_id, dm_event(customer, account.x_user_id)))
    await settled(q, sidecar, 1)
    [conv] = await q.all("SELECT * FROM conversations")
    assert conv["id"] == conv_id and conv["status"] == "OPEN" and conv["unread_count"] == 1
    [ev] = await events_of(q, "conversation.woken")
    assert ev["payload"]["previous_status"] == "PENDING"
    assert ev["payload"]["status"] == "OPEN"
    assert ev["payload"]["conversation_id"] == str(conv_id)
    assert await events_of(q, "conversation.opened", "conversation.reopened") == []


async def test_live_open_conversation_is_joined_without_a_status_event(
    dm_sidecar: Sidecar, account: Account, q: Db
) -> None:
    sidecar = dm_sidecar
    customer = new_x_id()
    conv_id = await _conversation_for(q, account, customer, "OPEN")
    await sidecar.post(dm_delivery(account.x_user_id, dm_event(customer, account.x_user_id)))
    await settled(q, sidecar, 1)
    [conv] = await q.all("SELECT * FROM conversations")
    assert conv["id"] == conv_id and conv["status"] == "OPEN" and conv["message_count"] == 1
    assert await events_of(q, "conversation.opened", "conversation.reopened") == []
    assert await events_of(q, "conversation.woken") == []
    assert len(await events_of(q, "message.received")) == 1


# ------------------------------------------------------------------ previews


def _media(kind: str) -> dict[str, Any]:
    mid = new_x_id()
    return {
        "id_str": mid,
        "media_url_https": f"https://ton.twitter.com/1.1/ton/data/dm/1/{mid}",
        "type": kind,
    }


async def test_preview_marks_cut_text_and_names_the_media_kind(
    dm_sidecar: Sidecar, account: Account, q: Db
) -> None:
    """The inbox preview of a received message is what the send path shows for the
    same content: text cut to 200 characters ending in "…", or the media kind."""
    sidecar = dm_sidecar
    me = account.x_user_id
    long_text = "".join(chr(ord("a") + i % 26) for i in range(260))
    sent = {
        new_x_id(): (long_text, None),
        new_x_id(): ("", _media("photo")),
        new_x_id(): ("", _media("video")),
        new_x_id(): ("", _media("animated_gif")),
        new_x_id(): ("", _media("sticker")),  # a kind we do not know
        new_x_id(): ("short with a picture", _media("photo")),
    }
    events = [dm_event(c, me, text, media=media) for c, (text, media) in sent.items()]
    # One from the account itself, typed in another X client (the echo path).
    other = new_x_id()
    events.append(dm_event(me, other, "", media=_media("animated_gif")))
    assert (await sidecar.post(dm_delivery(me, *events))).status_code == 200
    rows = await settled(q, sidecar, len(events))
    assert {r["outcome"] for r in rows} == {"PROCESSED"}
    previews = {
        r["x_user_id"]: r["last_message_preview"]
        for r in await q.all(
            "SELECT c.x_user_id, v.last_message_preview FROM conversations v"
            " JOIN contacts c ON c.id = v.contact_id"
        )
    }
    assert previews == {
        **dict(
            zip(
                sent,
                [
                    long_text[:199] + "…",
                    "[image]",
                    "[video]",
                    "[gif]",
                    "[media]",
                    "short with a picture",
                ],
                strict=True,
            )
        ),
        other: "[gif]",
    }
    assert len(previews[next(iter(sent))]) == 200
