"""WatchConversations: live inbox events fed by LISTEN/NOTIFY from committed outbox
rows, resumable from a cursor, with slow consumers cut off."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from helpers import expect_error, parse_error

from mktx.v1 import conversations_pb2, conversations_pb2_grpc
from mktx_grpc.operations import watch as conversations_service
from mktx_grpc.store import live

C = conversations_pb2
E = C.ConversationEventType


@pytest.fixture
def stub(api):
    return conversations_pb2_grpc.ConversationsServiceStub(api.channel)


async def setup_inbox(db, merchant, n=1):
    acc = uuid.uuid4()
    await db.execute(
        "INSERT INTO accounts (id, merchant_id, x_user_id, auth_method) VALUES (%s, %s, %s,"
        " 'OAUTH2')",
        (acc, merchant, str(uuid.uuid4().int % 10**15)),
    )
    convs = []
    for i in range(n):
        contact = uuid.uuid4()
        await db.execute(
            "INSERT INTO contacts (id, merchant_id, account_id, x_user_id, username)"
            " VALUES (%s, %s, %s, %s, %s)",
            (contact, merchant, acc, str(1000 + i), f"c{i}"),
        )
        conv = uuid.uuid4()
        await db.execute(
            "INSERT INTO conversations (id, merchant_id, account_id, contact_id,"
            " last_message_preview) VALUES (%s, %s, %s, %s, %s)",
            (conv, merchant, acc, contact, "p" * 200),
        )
        convs.append(str(conv))
    return str(acc), convs


async def ingest_message(db, merchant, conv, text="hello"):
    """What the webhook sidecar does, from another connection: a message and its
    outbox event, committed together with the NOTIFY."""
    mid = uuid.uuid4()
    async with db.transaction():
        await db.execute(
            "INSERT INTO messages (id, merchant_id, conversation_id, direction, text,"
            " delivery_state) VALUES (%s, %s, %s, 'INBOUND', %s, 'DELIVERED')",
            (mid, merchant, conv, text),
        )
        await db.execute(
            "WITH ev AS (INSERT INTO domain_events (merchant_id, type, aggregate_id, payload)"
            " VALUES (%s, 'message.received', %s, jsonb_build_object('conversation_id', %s::text,"
            " 'message_id', %s::text)) RETURNING id, merchant_id)"
            " SELECT pg_notify('mktx_events', merchant_id::text || ':' || id::text) FROM ev",
            (merchant, conv, conv, mid),
        )
    return str(mid)


async def next_event(call, timeout=5.0):
    return await asyncio.wait_for(call.read(), timeout)


async def open_watch(stub, md, **kw):
    call = stub.WatchConversations(C.WatchConversationsRequest(**kw), metadata=md)
    return call


async def wait_live(*calls):
    """The server sends initial metadata once the stream is live (subscribed, and its
    starting position fixed), so every event committed afterwards reaches it."""
    for call in calls:
        await asyncio.wait_for(call.initial_metadata(), 5.0)


async def test_events_from_another_connection_and_own_changes(api, stub, merchant, db):
    md = api.auth(merchant, user_id="agent-1")
    acc, (conv,) = await setup_inbox(db, merchant)
    call = await open_watch(stub, md)
    await wait_live(call)
    mid = await ingest_message(db, merchant, conv, "first!")
    ev = await next_event(call)
    assert ev.type == E.Value("CONVERSATION_EVENT_TYPE_NEW_MESSAGE")
    assert ev.message.id == mid and ev.message.text == "first!"
    assert ev.conversation.id == conv and ev.conversation.account_id == acc and ev.cursor
    await stub.AssignConversation(
        C.AssignConversationRequest(id=conv, assignee_user_id="bob"), metadata=md
    )
    ev = await next_event(call)
    assert ev.type == E.Value("CONVERSATION_EVENT_TYPE_ASSIGNED")
    assert ev.conversation.assignee_user_id == "bob" and ev.actor_user_id == "agent-1"
    await stub.CloseConversation(C.CloseConversationRequest(id=conv), metadata=md)
    ev = await next_event(call)
    assert ev.type == E.Value("CONVERSATION_EVENT_TYPE_STATUS_CHANGED")
    assert ev.previous_status == C.CONVERSATION_STATUS_OPEN
    assert ev.conversation.status == C.CONVERSATION_STATUS_CLOSED
    call.cancel()


async def test_filters_and_tenant_isolation(api, stub, merchant, other_merchant, db):
    md = api.auth(merchant)
    acc, (c1, c2) = await setup_inbox(db, merchant, 2)
    _, (theirs,) = await setup_inbox(db, other_merchant)
    only_c2 = await open_watch(stub, md, conversation_id=c2)
    only_assign = await open_watch(
        stub, md, event_types=[E.Value("CONVERSATION_EVENT_TYPE_ASSIGNED")]
    )
    other = await open_watch(stub, api.auth(other_merchant))
    await wait_live(only_c2, only_assign, other)
    await ingest_message(db, merchant, c1)
    await ingest_message(db, merchant, c2)
    await stub.AssignConversation(
        C.AssignConversationRequest(id=c1, assignee_user_id="x"), metadata=md
    )
    ev = await next_event(only_c2)
    assert ev.conversation.id == c2 and ev.type == E.Value("CONVERSATION_EVENT_TYPE_NEW_MESSAGE")
    ev = await next_event(only_assign)
    assert ev.conversation.id == c1 and ev.type == E.Value("CONVERSATION_EVENT_TYPE_ASSIGNED")
    mine = await ingest_message(db, other_merchant, theirs)
    ev = await next_event(other)
    assert ev.message.id == mine  # the other merchant sees only its own event
    for call in (only_c2, only_assign, other):
        call.cancel()


async def test_resume_from_cursor_without_gaps_or_duplicates(api, stub, merchant, db):
    md = api.auth(merchant)
    _, (conv,) = await setup_inbox(db, merchant)
    call = await open_watch(stub, md)
    await wait_live(call)
    sent = [await ingest_message(db, merchant, conv, f"m{i}") for i in range(3)]
    got = [await next_event(call) for _ in range(3)]
    assert [e.message.id for e in got] == sent
    call.cancel()
    # While disconnected: more events, from another connection.
    sent += [await ingest_message(db, merchant, conv, f"m{i}") for i in range(3, 6)]
    resumed = await open_watch(stub, md, cursor=got[1].cursor)
    replay = [await next_event(resumed) for _ in range(4)]
    assert [e.message.id for e in replay] == sent[2:]
    sent.append(await ingest_message(db, merchant, conv, "live"))
    assert (await next_event(resumed)).message.id == sent[-1]
    resumed.cancel()
    # Cursors are opaque and bound to the merchant.
    err = await expect_error(
        open_watch_read(stub, md, cursor="garbage"), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert set(err.bad_fields) == {"cursor"}
    await expect_error(
        open_watch_read(stub, api.auth(uuid.uuid4()), cursor=got[0].cursor),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


def open_watch_read(stub, md, **kw):
    return stub.WatchConversations(C.WatchConversationsRequest(**kw), metadata=md).read()


async def test_expired_cursor_and_bad_filters(api, stub, merchant):
    md = api.auth(merchant)
    tokens = api.app.deps.page_tokens
    old = tokens.encode([5, 0.0], ["watch", str(merchant)])
    await expect_error(
        open_watch_read(stub, md, cursor=old), grpc.StatusCode.OUT_OF_RANGE, "CURSOR_EXPIRED"
    )
    err = await expect_error(
        open_watch_read(stub, md, account_id="x", conversation_id="y", event_types=[99]),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert set(err.bad_fields) == {"account_id", "conversation_id", "event_types[0]"}
    await expect_error(
        open_watch_read(stub, md, conversation_id=str(uuid.uuid4())),
        grpc.StatusCode.NOT_FOUND,
        "RESOURCE_NOT_FOUND",
    )


async def test_heartbeat_after_silence(api, stub, merchant, db, monkeypatch):
    monkeypatch.setattr(conversations_service, "HEARTBEAT_SECONDS", 0.2)
    md = api.auth(merchant)
    _, (conv,) = await setup_inbox(db, merchant)
    call = await open_watch(stub, md)
    hb = await next_event(call)
    assert hb.type == E.Value("CONVERSATION_EVENT_TYPE_HEARTBEAT") and hb.cursor
    assert not hb.HasField("conversation")
    mid = await ingest_message(db, merchant, conv)
    call.cancel()
    resumed = await open_watch(stub, md, cursor=hb.cursor)  # heartbeat cursors resume too
    ev = await next_event(resumed)
    assert ev.message.id == mid
    resumed.cancel()


async def test_contact_erasure_streams_deleted(api, stub, merchant, db):
    from mktx.v1 import contacts_pb2, contacts_pb2_grpc

    md = api.auth(merchant)
    _, (conv,) = await setup_inbox(db, merchant)
    (contact,) = await (
        await db.execute("SELECT contact_id FROM conversations WHERE id = %s", (conv,))
    ).fetchone()
    call = await open_watch(stub, md)
    await wait_live(call)
    await contacts_pb2_grpc.ContactsServiceStub(api.channel).DeleteContact(
        contacts_pb2.DeleteContactRequest(id=str(contact)), metadata=md
    )
    ev = await next_event(call)
    assert ev.type == E.Value("CONVERSATION_EVENT_TYPE_DELETED")
    assert ev.conversation.id == conv and not ev.conversation.contact_id
    call.cancel()


async def test_slow_consumer_is_cut_off_and_resumes(api, stub, merchant, db, monkeypatch):
    monkeypatch.setattr(live, "MAX_PENDING", 50)
    monkeypatch.setattr(live, "HARD_LIMIT_FACTOR", 1000)  # cut for slowness, not size
    monkeypatch.setattr(conversations_service, "SLOW_WRITE_SECONDS", 0.005)
    md = api.auth(merchant)
    _, (conv,) = await setup_inbox(db, merchant)
    call = await open_watch(stub, md)
    await wait_live(call)
    await ingest_message(db, merchant, conv)
    first = await next_event(call)
    # A burst far beyond what the client reads: 4,000 assignment events in one commit.
    await db.execute(
        "WITH ev AS (INSERT INTO domain_events (merchant_id, type, aggregate_id, payload)"
        " SELECT %s, 'conversation.assigned', %s, jsonb_build_object('conversation_id', %s::text,"
        " 'actor_user_id', repeat('a', 8000)) FROM generate_series(1, 4000)"
        " RETURNING id, merchant_id)"
        " SELECT count(pg_notify('mktx_events', merchant_id::text || ':' || id::text)) FROM ev",
        (merchant, conv, conv),
    )
    received, last_cursor = 0, first.cursor
    with pytest.raises(grpc.aio.AioRpcError) as info:
        while True:
            ev = await next_event(call, timeout=10)
            received += 1
            last_cursor = ev.cursor
            await asyncio.sleep(0.002)  # the slow client
    err = parse_error(info.value)
    assert err.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.info.reason == "SLOW_CONSUMER" and err.retry_delay_s is not None
    assert received < 4000
    # The server kept going for everyone else; the client resumes where it was.
    monkeypatch.setattr(conversations_service, "SLOW_WRITE_SECONDS", 60)
    resumed = await open_watch(stub, md, cursor=last_cursor)
    rest = 0
    while rest < 4000 - received:
        await next_event(resumed)
        rest += 1
    assert rest == 4000 - received
    resumed.cancel()


async def test_fast_consumer_survives_a_burst_larger_than_the_limit(
    api, stub, merchant, db, monkeypatch
):
    monkeypatch.setattr(live, "MAX_PENDING", 50)
    monkeypatch.setattr(live, "HARD_LIMIT_FACTOR", 1000)
    md = api.auth(merchant)
    _, (conv,) = await setup_inbox(db, merchant)
    call = await open_watch(stub, md)
    await wait_live(call)
    await db.execute(
        "WITH ev AS (INSERT INTO domain_events (merchant_id, type, aggregate_id, payload)"
        " SELECT %s, 'conversation.unassigned', %s, jsonb_build_object('conversation_id',"
        " %s::text) FROM generate_series(1, 1500) RETURNING id, merchant_id)"
        " SELECT count(pg_notify('mktx_events', merchant_id::text || ':' || id::text)) FROM ev",
        (merchant, conv, conv),
    )
    cursors = [(await next_event(call)).cursor for _ in range(1500)]
    assert len(set(cursors)) == 1500
    call.cancel()
