"""ConversationsService end to end: the inbox workflow on conversations inserted
directly, and SendMessage through XAccess to the X sandbox over real HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import httpx
import pytest
import xhelpers as xh
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from helpers import expect_error

from mktx.v1 import (
    accounts_pb2_grpc,
    common_pb2,
    conversations_pb2,
    conversations_pb2_grpc,
    templates_pb2,
    templates_pb2_grpc,
)
from mktx_grpc.worker.conversations import wake_snoozed_conversations
from mktx_grpc.worker.outbound import recover_outbound

C = conversations_pb2
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
OPEN, PENDING, SNOOZED, CLOSED = (
    C.CONVERSATION_STATUS_OPEN,
    C.CONVERSATION_STATUS_PENDING,
    C.CONVERSATION_STATUS_SNOOZED,
    C.CONVERSATION_STATUS_CLOSED,
)


@pytest.fixture
def stub(api):
    return conversations_pb2_grpc.ConversationsServiceStub(api.channel)


async def insert_account(db, merchant, x_user_id=None):
    account_id = uuid.uuid4()
    x_user_id = x_user_id or str(uuid.uuid4().int % 10**15)
    await db.execute(
        "INSERT INTO accounts (id, merchant_id, x_user_id, username, auth_method,"
        " access_token_enc) VALUES (%s, %s, %s, 'shop', 'OAUTH2', %s)",
        (account_id, merchant, x_user_id, b"\x01enc"),
    )
    return str(account_id)


async def insert_contact(db, merchant, account_id, x_user_id=None, username="cust"):
    cid = uuid.uuid4()
    await db.execute(
        "INSERT INTO contacts (id, merchant_id, account_id, x_user_id, username, display_name)"
        " VALUES (%s, %s, %s, %s, %s, 'Customer Name')",
        (cid, merchant, account_id, x_user_id or str(uuid.uuid4().int % 10**15), username),
    )
    return str(cid)


async def insert_conversation(
    db, merchant, account_id, contact_id, status="OPEN", last_message_at=None, assignee="", unread=0
):
    conv = uuid.uuid4()
    await db.execute(
        "INSERT INTO conversations (id, merchant_id, account_id, contact_id, status,"
        " last_message_at, assignee_user_id, unread_count, closed_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, CASE WHEN %s = 'CLOSED' THEN now() END)",
        (conv, merchant, account_id, contact_id, status, last_message_at, assignee, unread, status),
    )
    return str(conv)


async def insert_message(
    db, merchant, conv, direction="INBOUND", text="hello", at=None, state="DELIVERED"
):
    mid = uuid.uuid4()
    at = at or datetime.now(UTC)
    await db.execute(
        "INSERT INTO messages (id, merchant_id, conversation_id, direction, text, delivery_state,"
        " origin, sent_at, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            mid,
            merchant,
            conv,
            direction,
            text,
            state,
            "CONTACT" if direction == "INBOUND" else "AGENT",
            at,
            at,
        ),
    )
    return str(mid)


@pytest.fixture
async def inbox(db, merchant):
    """An account, a contact and an OPEN conversation with one unread inbound message."""
    acc = await insert_account(db, merchant)
    contact = await insert_contact(db, merchant, acc)
    conv = await insert_conversation(
        db, merchant, acc, contact, unread=1, last_message_at=datetime.now(UTC)
    )
    await insert_message(db, merchant, conv)
    return acc, contact, conv


async def event_types(db):
    rows = await (await db.execute("SELECT type FROM domain_events ORDER BY id")).fetchall()
    return [r[0] for r in rows]


async def test_list_filters_order_and_pages(api, stub, merchant, db):
    md = api.auth(merchant)
    acc = await insert_account(db, merchant)
    acc2 = await insert_account(db, merchant)
    now = datetime.now(UTC)
    convs = []
    for i in range(6):
        contact = await insert_contact(db, merchant, acc if i < 5 else acc2)
        convs.append(
            await insert_conversation(
                db,
                merchant,
                acc if i < 5 else acc2,
                contact,
                status=["OPEN", "PENDING", "CLOSED"][i % 3],
                last_message_at=now - timedelta(hours=i),
                assignee="agent-1" if i % 2 == 0 else "",
            )
        )

    async def ids(**kw):
        out, token = [], ""
        while True:
            page = await stub.ListConversations(
                C.ListConversationsRequest(page_size=2, page_token=token, **kw), metadata=md
            )
            out += [c.id for c in page.conversations]
            token = page.next_page_token
            if not token:
                return out

    assert await ids() == convs
    assert await ids(account_id=acc2) == [convs[5]]
    assert await ids(status=PENDING) == [convs[1], convs[4]]
    assert await ids(assignee_user_id="agent-1") == [convs[0], convs[2], convs[4]]
    assert await ids(unassigned=True) == [convs[1], convs[3], convs[5]]
    await db.execute(
        "UPDATE conversations SET updated_at = now() - interval '2 days' WHERE id <> %s",
        (convs[3],),
    )
    since = Timestamp()
    since.FromDatetime(now - timedelta(days=1))
    assert await ids(update_time_after=since) == [convs[3]]
    first = (await stub.ListConversations(C.ListConversationsRequest(), metadata=md)).conversations[
        0
    ]
    assert first.contact.username == "cust" and first.contact.display_name == "Customer Name"
    assert first.etag and first.status == OPEN
    err = await expect_error(
        stub.ListConversations(
            C.ListConversationsRequest(
                account_id="x", contact_id="y", assignee_user_id="a", unassigned=True, page_size=-1
            ),
            metadata=md,
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {"account_id", "contact_id", "unassigned", "page_size"}
    page = await stub.ListConversations(C.ListConversationsRequest(page_size=1), metadata=md)
    err = await expect_error(
        stub.ListConversations(
            C.ListConversationsRequest(page_size=1, status=OPEN, page_token=page.next_page_token),
            metadata=md,
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {"page_token"}


async def test_get_with_message_pages(api, stub, merchant, db, inbox):
    md = api.auth(merchant)
    acc, contact, conv = inbox
    base = datetime.now(UTC)
    later = [
        await insert_message(
            db,
            merchant,
            conv,
            "OUTBOUND" if i % 2 else "INBOUND",
            f"m{i}",
            at=base + timedelta(seconds=i + 1),
        )
        for i in range(4)
    ]
    got = await stub.GetConversation(
        C.GetConversationRequest(id=conv, message_page_size=3), metadata=md
    )
    assert [m.id for m in got.messages] == later[::-1][:3]
    assert got.messages[0].direction == C.MESSAGE_DIRECTION_OUTBOUND
    assert got.messages[0].origin == C.MESSAGE_ORIGIN_AGENT
    assert got.messages[1].origin == C.MESSAGE_ORIGIN_CONTACT
    rest = await stub.GetConversation(
        C.GetConversationRequest(
            id=conv, message_page_size=3, message_page_token=got.next_message_page_token
        ),
        metadata=md,
    )
    assert len(rest.messages) == 2 and not rest.next_message_page_token
    assert rest.conversation.id == conv
    err = await expect_error(
        stub.GetConversation(C.GetConversationRequest(id="bad", message_page_size=-1), metadata=md),
        INVALID,
    )
    assert set(err.bad_fields) == {"id", "message_page_size"}
    await expect_error(
        stub.GetConversation(C.GetConversationRequest(id=str(uuid.uuid4())), metadata=md),
        NOT_FOUND,
        "RESOURCE_NOT_FOUND",
    )


async def test_state_machine_through_every_rpc(api, stub, merchant, db, inbox):
    md = api.auth(merchant, user_id="agent-9")
    _, _, conv = inbox
    pending = await stub.MarkConversationPending(
        C.MarkConversationPendingRequest(id=conv), metadata=md
    )
    assert pending.status == PENDING
    await expect_error(
        stub.MarkConversationPending(C.MarkConversationPendingRequest(id=conv), metadata=md),
        PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )
    snoozed = await stub.SnoozeConversation(
        C.SnoozeConversationRequest(
            id=conv, snooze_duration=Duration(seconds=3600), etag=pending.etag
        ),
        metadata=md,
    )
    assert snoozed.status == SNOOZED
    until = snoozed.snooze_until_time.ToDatetime(tzinfo=UTC)
    assert timedelta(minutes=59) < until - datetime.now(UTC) <= timedelta(hours=1)
    await expect_error(
        stub.CloseConversation(C.CloseConversationRequest(id=conv, etag=pending.etag), metadata=md),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    moved = await stub.SnoozeConversation(
        C.SnoozeConversationRequest(id=conv, snooze_duration=Duration(seconds=7200)), metadata=md
    )
    assert moved.snooze_until_time.ToDatetime(tzinfo=UTC) > until
    closed = await stub.CloseConversation(
        C.CloseConversationRequest(id=conv, reason="resolved"), metadata=md
    )
    assert closed.status == CLOSED and closed.close_reason == "resolved"
    assert closed.HasField("close_time") and not closed.HasField("snooze_until_time")
    for call in (
        stub.CloseConversation(C.CloseConversationRequest(id=conv), metadata=md),
        stub.MarkConversationPending(C.MarkConversationPendingRequest(id=conv), metadata=md),
        stub.SnoozeConversation(
            C.SnoozeConversationRequest(id=conv, snooze_duration=Duration(seconds=60)), metadata=md
        ),
        stub.AssignConversation(
            C.AssignConversationRequest(id=conv, assignee_user_id="a"), metadata=md
        ),
    ):
        err = await expect_error(call, PRECONDITION, "INVALID_STATE_TRANSITION")
        assert err.info.metadata["current_status"] == "CLOSED"
    reopened = await stub.ReopenConversation(
        C.ReopenConversationRequest(id=conv, etag=closed.etag), metadata=md
    )
    assert (
        reopened.status == OPEN
        and reopened.close_reason == ""
        and not reopened.HasField("close_time")
    )
    await expect_error(
        stub.ReopenConversation(C.ReopenConversationRequest(id=conv), metadata=md),
        PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )
    assigned = await stub.AssignConversation(
        C.AssignConversationRequest(id=conv, assignee_user_id="agent-2"), metadata=md
    )
    assert assigned.assignee_user_id == "agent-2"
    same = await stub.AssignConversation(
        C.AssignConversationRequest(id=conv, assignee_user_id="agent-2"), metadata=md
    )
    assert same.etag == assigned.etag  # no-op
    unassigned = await stub.UnassignConversation(
        C.UnassignConversationRequest(id=conv), metadata=md
    )
    assert unassigned.assignee_user_id == ""
    again = await stub.UnassignConversation(C.UnassignConversationRequest(id=conv), metadata=md)
    assert again.etag == unassigned.etag
    read = await stub.MarkConversationRead(C.MarkConversationReadRequest(id=conv), metadata=md)
    assert read.unread_count == 0
    read2 = await stub.MarkConversationRead(C.MarkConversationReadRequest(id=conv), metadata=md)
    assert read2.etag == read.etag
    states = await (
        await db.execute(
            "SELECT delivery_state, read_at IS NOT NULL FROM messages WHERE conversation_id = %s",
            (conv,),
        )
    ).fetchall()
    assert states == [("READ", True)]
    assert await event_types(db) == [
        "conversation.pending",
        "conversation.snoozed",
        "conversation.snoozed",
        "conversation.closed",
        "conversation.reopened",
        "conversation.assigned",
        "conversation.unassigned",
        "conversation.read",
    ]
    payloads = await (await db.execute("SELECT payload FROM domain_events ORDER BY id")).fetchall()
    assert all(
        p[0]["conversation_id"] == conv and p[0]["actor_user_id"] == "agent-9" for p in payloads
    )
    assert payloads[3][0]["previous_status"] == "SNOOZED"


async def test_validation_of_status_rpcs(api, stub, merchant, inbox):
    md = api.auth(merchant)
    _, _, conv = inbox
    err = await expect_error(
        stub.CloseConversation(C.CloseConversationRequest(id=conv, reason="r" * 501), metadata=md),
        INVALID,
    )
    assert set(err.bad_fields) == {"reason"}
    err = await expect_error(
        stub.AssignConversation(
            C.AssignConversationRequest(id="nope", assignee_user_id="u" * 129), metadata=md
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {"id", "assignee_user_id"}
    err = await expect_error(
        stub.AssignConversation(C.AssignConversationRequest(id=conv), metadata=md), INVALID
    )
    assert set(err.bad_fields) == {"assignee_user_id"}
    past = Timestamp()
    past.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
    far = Timestamp()
    far.FromDatetime(datetime.now(UTC) + timedelta(days=366))
    for req, field in [
        (C.SnoozeConversationRequest(id=conv), "until"),
        (C.SnoozeConversationRequest(id=conv, snooze_until_time=past), "snooze_until_time"),
        (C.SnoozeConversationRequest(id=conv, snooze_until_time=far), "snooze_until_time"),
        (
            C.SnoozeConversationRequest(id=conv, snooze_duration=Duration(seconds=-5)),
            "snooze_duration",
        ),
        (
            C.SnoozeConversationRequest(id=conv, snooze_duration=Duration(seconds=366 * 86400)),
            "snooze_duration",
        ),
    ]:
        err = await expect_error(stub.SnoozeConversation(req, metadata=md), INVALID)
        assert set(err.bad_fields) == {field}
    for rpc, req in [
        (stub.ReopenConversation, C.ReopenConversationRequest(id="x")),
        (stub.UnassignConversation, C.UnassignConversationRequest(id="")),
        (stub.MarkConversationPending, C.MarkConversationPendingRequest(id="1")),
        (stub.MarkConversationRead, C.MarkConversationReadRequest(id="z")),
    ]:
        err = await expect_error(rpc(req, metadata=md), INVALID)
        assert set(err.bad_fields) == {"id"}


async def test_reopen_refused_while_another_conversation_is_live(api, stub, merchant, db, inbox):
    md = api.auth(merchant)
    acc, contact, live = inbox
    old = await insert_conversation(db, merchant, acc, contact, status="CLOSED")
    err = await expect_error(
        stub.ReopenConversation(C.ReopenConversationRequest(id=old), metadata=md),
        PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )
    assert "another conversation" in err.message
    await stub.CloseConversation(C.CloseConversationRequest(id=live), metadata=md)
    reopened = await stub.ReopenConversation(C.ReopenConversationRequest(id=old), metadata=md)
    assert reopened.status == OPEN


async def test_snooze_wakes_by_itself(api, stub, merchant, db, inbox):
    md = api.auth(merchant)
    _, _, conv = inbox
    await stub.SnoozeConversation(
        C.SnoozeConversationRequest(id=conv, snooze_duration=Duration(seconds=600)), metadata=md
    )
    delay = await wake_snoozed_conversations(api.app.deps)
    assert 500 < delay <= 30 or delay == 30.0
    got = await stub.GetConversation(C.GetConversationRequest(id=conv), metadata=md)
    assert got.conversation.status == SNOOZED
    await db.execute(
        "UPDATE conversations SET snooze_until = now() - interval '1 second' WHERE id = %s", (conv,)
    )
    assert await wake_snoozed_conversations(api.app.deps) == 30.0
    got = await stub.GetConversation(C.GetConversationRequest(id=conv), metadata=md)
    assert got.conversation.status == OPEN and not got.conversation.HasField("snooze_until_time")
    (payload,) = await (
        await db.execute("SELECT payload FROM domain_events WHERE type = 'conversation.reopened'")
    ).fetchone()
    assert payload["previous_status"] == "SNOOZED" and payload["cause"] == "snooze_expired"


async def test_other_merchants_conversation_is_not_found_on_every_rpc(
    api, stub, merchant, other_merchant, db, inbox
):
    acc, contact, conv = inbox
    md = api.auth(other_merchant)
    calls = [
        stub.GetConversation(C.GetConversationRequest(id=conv), metadata=md),
        stub.SendMessage(C.SendMessageRequest(conversation_id=conv, text="hi"), metadata=md),
        stub.SendMessage(C.SendMessageRequest(contact_id=contact, text="hi"), metadata=md),
        stub.CloseConversation(C.CloseConversationRequest(id=conv), metadata=md),
        stub.ReopenConversation(C.ReopenConversationRequest(id=conv), metadata=md),
        stub.AssignConversation(
            C.AssignConversationRequest(id=conv, assignee_user_id="x"), metadata=md
        ),
        stub.UnassignConversation(C.UnassignConversationRequest(id=conv), metadata=md),
        stub.MarkConversationPending(C.MarkConversationPendingRequest(id=conv), metadata=md),
        stub.SnoozeConversation(
            C.SnoozeConversationRequest(id=conv, snooze_duration=Duration(seconds=60)), metadata=md
        ),
        stub.MarkConversationRead(C.MarkConversationReadRequest(id=conv), metadata=md),
        stub.WatchConversations(
            C.WatchConversationsRequest(conversation_id=conv), metadata=md
        ).read(),
        stub.WatchConversations(C.WatchConversationsRequest(account_id=acc), metadata=md).read(),
    ]
    for call in calls:
        await expect_error(call, NOT_FOUND, "RESOURCE_NOT_FOUND")
    listed = await stub.ListConversations(C.ListConversationsRequest(), metadata=md)
    assert list(listed.conversations) == []
    assert await event_types(db) == []
    (version,) = await (
        await db.execute("SELECT version FROM conversations WHERE id = %s", (conv,))
    ).fetchone()
    assert version == 1


async def test_send_message_validation(api, stub, merchant, inbox):
    md = api.auth(merchant)
    _, _, conv = inbox
    cases = [
        (C.SendMessageRequest(text="hi"), {"target"}),
        (C.SendMessageRequest(conversation_id=conv), {"text"}),
        (C.SendMessageRequest(conversation_id=conv, text="x" * 10_001), {"text"}),
        (
            C.SendMessageRequest(conversation_id="nope", text="hi", request_id="bad id"),
            {"conversation_id", "request_id"},
        ),
        (
            C.SendMessageRequest(
                contact_id=conv,
                attachments=[
                    common_pb2.MediaAttachment(url="http://insecure.example/a.png"),
                    common_pb2.MediaAttachment(url="https://ok.example/b.png"),
                ],
            ),
            {"attachments[0].url"},
        ),
        (
            C.SendMessageRequest(
                conversation_id=conv,
                attachments=[
                    common_pb2.MediaAttachment(url=f"https://m.example/{i}.png") for i in range(5)
                ],
            ),
            {"attachments"},
        ),
        (
            C.SendMessageRequest(conversation_id=conv, text="t", template_id=str(uuid.uuid4())),
            {"text"},
        ),
        (
            C.SendMessageRequest(
                conversation_id=conv,
                text="t",
                quick_replies=[common_pb2.QuickReplyOption(label="")],
            ),
            {"quick_replies[0].label"},
        ),
    ]
    for req, fields in cases:
        err = await expect_error(stub.SendMessage(req, metadata=md), INVALID, "VALIDATION_ERROR")
        assert set(err.bad_fields) == fields, req


# ---------------------------------------------------------------- sending through X


@pytest.fixture
async def connected(api, merchant, sandbox, db):
    """A connected account (through the real OAuth flow against the sandbox), a
    customer X user as a contact, and their OPEN conversation."""
    accounts = accounts_pb2_grpc.AccountsServiceStub(api.channel)
    owner = xh.new_x_user(sandbox)
    account = await xh.connect(accounts, api.auth(merchant), owner)
    customer = xh.new_x_user(sandbox)
    contact = await insert_contact(db, merchant, account.id, customer.id)
    conv = await insert_conversation(db, merchant, account.id, contact)
    return account.id, owner, customer, contact, conv


def media_server():
    """Merchant-hosted media over https, answered in-process by httpx."""

    def handler(request: httpx.Request) -> httpx.Response:
        if "missing" in request.url.path:
            return httpx.Response(404)
        if request.url.path.endswith(".png"):
            return httpx.Response(
                200, content=b"\x89PNG" + bytes(200), headers={"content-type": "image/png"}
            )
        if request.url.path.endswith(".gif"):
            return httpx.Response(
                200, content=b"GIF89a" + bytes(100), headers={"content-type": "image/gif"}
            )
        return httpx.Response(404)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_send_text_stores_sent_message_and_is_idempotent(
    api, stub, merchant, sandbox, db, connected
):
    md = api.auth(merchant, user_id="agent-1")
    _, owner, customer, contact, conv = connected
    req = C.SendMessageRequest(
        conversation_id=conv, text="Thanks for writing!", request_id="send-1"
    )
    out = await stub.SendMessage(req, metadata=md)
    (msg,) = out.messages
    assert msg.delivery_state == C.MESSAGE_DELIVERY_STATE_SENT and msg.x_message_id
    assert msg.origin == C.MESSAGE_ORIGIN_AGENT and msg.sender_user_id == "agent-1"
    assert out.conversation.last_message_preview == "Thanks for writing!"
    assert out.conversation.message_count == 1
    dms = sandbox.state.sent_dms(owner.id)
    assert [(d.id, d.text) for d in dms] == [(msg.x_message_id, "Thanks for writing!")]
    again = await stub.SendMessage(req, metadata=md)
    assert [m.id for m in again.messages] == [msg.id]
    assert len(sandbox.state.sent_dms(owner.id)) == 1
    assert await event_types(db) == ["message.created", "message.sent"]
    (n,) = await (
        await db.execute(
            "SELECT count(*) FROM contact_interactions WHERE contact_id = %s AND kind = 'MESSAGE_OUT'",
            (contact,),
        )
    ).fetchone()
    assert n == 1


async def test_send_by_contact_opens_conversation_and_several_media_go_in_order(
    api, stub, merchant, sandbox, db, connected
):
    md = api.auth(merchant)
    account_id, owner, customer, contact, conv = connected
    await stub.CloseConversation(C.CloseConversationRequest(id=conv), metadata=md)
    await expect_error(
        stub.SendMessage(C.SendMessageRequest(conversation_id=conv, text="x"), metadata=md),
        PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )
    api.app.deps.xaccess._media_http = media_server()
    out = await stub.SendMessage(
        C.SendMessageRequest(
            contact_id=contact,
            text="Here are the pictures",
            attachments=[
                common_pb2.MediaAttachment(url="https://cdn.shop.example/1.png"),
                common_pb2.MediaAttachment(url="https://cdn.shop.example/2.gif"),
            ],
        ),
        metadata=md,
    )
    assert out.conversation.id != conv and out.conversation.status == OPEN
    assert [m.text for m in out.messages] == ["Here are the pictures", ""]
    assert [m.attachments[0].type for m in out.messages] == [
        common_pb2.MEDIA_TYPE_IMAGE,
        common_pb2.MEDIA_TYPE_GIF,
    ]
    dms = sandbox.state.sent_dms(owner.id)
    assert [d.id for d in dms] == [m.x_message_id for m in out.messages]
    assert [bool(d.text) for d in dms] == [True, False]
    assert [d.media_id for d in dms] == [m.attachments[0].x_media_id for m in out.messages]
    assert len({d.media_id for d in dms}) == 2  # each DM carries its own medium
    err = await expect_error(
        stub.SendMessage(
            C.SendMessageRequest(
                contact_id=contact,
                attachments=[
                    common_pb2.MediaAttachment(url="https://cdn.shop.example/missing.png")
                ],
            ),
            metadata=md,
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {"attachments[0].url"}
    assert len(sandbox.state.sent_dms(owner.id)) == 2


async def test_x_refusal_is_stored_as_failed_and_returned(
    api, stub, merchant, sandbox, db, connected
):
    md = api.auth(merchant)
    account_id, owner, _, _, _ = connected
    closed_user = xh.new_x_user(sandbox, accepts_dms=False)
    contact = await insert_contact(db, merchant, account_id, closed_user.id, username="closed")
    err = await expect_error(
        stub.SendMessage(C.SendMessageRequest(contact_id=contact, text="hi"), metadata=md),
        PRECONDITION,
        "TWITTER_FORBIDDEN",
    )
    row = await (
        await db.execute(
            "SELECT m.delivery_state, m.failure_reason FROM messages m JOIN conversations c"
            " ON c.id = m.conversation_id WHERE c.contact_id = %s",
            (contact,),
        )
    ).fetchone()
    assert row[0] == "FAILED" and row[1] == err.message
    assert "message.failed" in await event_types(db)


async def test_quota_refusal_is_resource_exhausted_with_retry_info(
    api, stub, merchant, sandbox, db, connected
):
    md = api.auth(merchant)
    account_id, _, _, _, conv = connected
    await db.execute(
        "INSERT INTO account_dm_budget (merchant_id, account_id, w24_start, w24_count)"
        " VALUES (%s, %s, now() - interval '1 hour', 100000)"
        " ON CONFLICT (account_id) DO UPDATE SET w24_start = EXCLUDED.w24_start,"
        " w24_count = EXCLUDED.w24_count",
        (merchant, account_id),
    )
    err = await expect_error(
        stub.SendMessage(C.SendMessageRequest(conversation_id=conv, text="hi"), metadata=md),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert err.retry_delay_s is not None and err.retry_delay_s > 3600
    (state,) = await (
        await db.execute("SELECT delivery_state FROM messages WHERE conversation_id = %s", (conv,))
    ).fetchone()
    assert state == "FAILED"


DM_ROUTE = "POST /2/dm_conversations/with/:participant_id/messages"


async def _messages(db, conv):
    return await (
        await db.execute(
            "SELECT delivery_state, failure_reason, x_event_id FROM messages"
            " WHERE conversation_id = %s AND direction = 'OUTBOUND' ORDER BY created_at",
            (conv,),
        )
    ).fetchall()


async def test_send_whose_answer_x_lost_is_looked_up_before_answering(
    api, stub, merchant, sandbox, db, connected
):
    """X stores the DM and answers 503 (or drops the connection): SendMessage finds it
    at X and answers SENT, with exactly one DM at X."""
    md = api.auth(merchant)
    _, owner, customer, _, conv = connected
    for i, kind in enumerate(["accept_then_error", "accept_then_drop"]):
        with xh.fault_rule(sandbox, route=DM_ROUTE, kind=kind):
            resp = await stub.SendMessage(
                C.SendMessageRequest(conversation_id=conv, text=f"made it {i}"), metadata=md
            )
        assert resp.messages[0].delivery_state == C.MESSAGE_DELIVERY_STATE_SENT
    sent = [d for d in sandbox.state.sent_dms(owner.id) if d.recipient_id == customer.id]
    assert [d.text for d in sent] == ["made it 0", "made it 1"]
    assert [r[2] for r in await _messages(db, conv)] == [d.id for d in sent]


async def test_send_x_did_not_take_is_failed_not_sent(api, stub, merchant, sandbox, db, connected):
    """A 503 before X stored anything: the lookup finds nothing, so the message is
    FAILED "not sent" and the call UNAVAILABLE with x_outcome not_sent (safe to retry)."""
    md = api.auth(merchant)
    _, owner, _, _, conv = connected
    with xh.fault_rule(sandbox, route=DM_ROUTE, kind="error", status=503):
        err = await expect_error(
            stub.SendMessage(C.SendMessageRequest(conversation_id=conv, text="nope"), metadata=md),
            grpc.StatusCode.UNAVAILABLE,
            "TWITTER_API_ERROR",
        )
    assert err.info is not None and err.info.metadata["x_outcome"] == "not_sent"
    ((state, reason, _),) = await _messages(db, conv)
    assert state == "FAILED" and reason.startswith("not sent: ")
    assert sandbox.state.sent_dms(owner.id) == []


async def test_send_x_cannot_resolve_stays_pending_then_settles(
    api, stub, merchant, sandbox, db, connected
):
    """X took the DM, lost the answer, and cannot answer the lookup now (its DM lookup
    limit): the message stays PENDING with the reason, the call is UNAVAILABLE with
    x_outcome unknown, and the ledger's recovery settles it SENT later, never
    resending it."""
    md = api.auth(merchant)
    _, owner, customer, _, conv = connected
    lookups = f"/2/dm_conversations/with/{customer.id}/dm_events"
    with (
        xh.fault_rule(sandbox, route=DM_ROUTE, kind="accept_then_error"),
        xh.fault_rule(sandbox, path=lookups, kind="rate_limit", reset_after=600),
    ):
        err = await expect_error(
            stub.SendMessage(
                C.SendMessageRequest(conversation_id=conv, text="who knows"), metadata=md
            ),
            grpc.StatusCode.UNAVAILABLE,
            "TWITTER_API_ERROR",
        )
    assert err.info is not None and err.info.metadata["x_outcome"] == "unknown"
    ((state, reason, _),) = await _messages(db, conv)
    assert state == "PENDING" and reason.startswith("resolving an ambiguous send at X")
    got = await stub.GetConversation(C.GetConversationRequest(id=conv), metadata=md)
    assert got.messages[0].failure_reason == reason
    # X's lookup window resets; the ledger's recovery settles the message.
    await db.execute(
        "UPDATE outbound_dms SET lease_until = now() - interval '1 second' WHERE source = 'agent'"
    )
    await recover_outbound(api.app.deps)
    ((state, reason, x_event_id),) = await _messages(db, conv)
    sent = sandbox.state.sent_dms(owner.id)
    assert [d.text for d in sent] == ["who knows"]
    assert (state, reason, x_event_id) == ("SENT", "", sent[0].id)
    assert "message.sent" in await event_types(db)


async def test_send_with_a_template_uses_the_contact_variables(
    api, stub, merchant, sandbox, db, connected
):
    md = api.auth(merchant)
    _, owner, customer, contact, conv = connected
    await db.execute(
        "UPDATE contacts SET display_name = '🌸 Mia Chen', attributes = '{\"city\": \"Oslo\"}'"
        " WHERE id = %s",
        (contact,),
    )
    templates = templates_pb2_grpc.TemplatesServiceStub(api.channel)
    t = await templates.CreateTemplate(
        templates_pb2.CreateTemplateRequest(
            template=templates_pb2.Template(
                name="greet",
                type=templates_pb2.TEMPLATE_TYPE_TEXT,
                content="Hi {{first_name|there}} ({{contact.first_name}}) from"
                " {{attributes.city}}, code {{code}}",
            )
        ),
        metadata=md,
    )
    await stub.SendMessage(
        C.SendMessageRequest(conversation_id=conv, template_id=t.id, variables={"code": "X1"}),
        metadata=md,
    )
    assert [d.text for d in sandbox.state.sent_dms(owner.id)] == ["Hi Mia (Mia) from Oslo, code X1"]
