"""The customer's first real path, end to end through real HTTP and real gRPC:

1. the sandbox (as X) delivers an inbound DM from a new X user;
2. the sidecar accepts it, signed;
3. ListConversations shows it, and GetConversation has the message;
4. SendMessage replies;
5. the sandbox has received exactly that DM, properly signed;
6. the echo event marks it delivered;
7. a read event marks it read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
import xhelpers as xh

from mktx.v1 import accounts_pb2 as A
from mktx.v1 import accounts_pb2_grpc, conversations_pb2_grpc
from mktx.v1 import conversations_pb2 as C

T = TypeVar("T")


async def eventually(
    fetch: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 15.0
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def sidecar_url(serve_sidecar):
    """The production sidecar (with its event processors) on a loopback port."""
    return (await serve_sidecar()).webhook_url


async def test_inbound_dm_to_answered_and_read(api, merchant, sandbox, sidecar_url):
    md = api.auth(merchant)
    accounts = accounts_pb2_grpc.AccountsServiceStub(api.channel)
    inbox = conversations_pb2_grpc.ConversationsServiceStub(api.channel)
    shop = xh.new_x_user(sandbox)
    account = await xh.connect(accounts, md, shop, A.AUTH_METHOD_OAUTH1)
    registered = await accounts.RegisterWebhook(
        A.RegisterWebhookRequest(id=account.id, url=sidecar_url), metadata=md
    )
    assert registered.webhook.subscribed

    # 1-2. A new X user DMs the shop; X (the sandbox) delivers it signed to the sidecar.
    customer = xh.new_x_user(sandbox)
    async with httpx.AsyncClient(base_url=sandbox.base_url) as admin:
        resp = await admin.post(
            "/_sandbox/dms/inbound",
            json={
                "sender_id": customer.id,
                "recipient_id": shop.id,
                "text": "Do you ship to Lisbon?",
            },
        )
        assert resp.status_code in (200, 201), resp.text
    deliveries = [
        d for d in sandbox.state.deliveries_for(shop.id) if d.kind == "direct_message_events"
    ]
    assert deliveries, "the sandbox delivered nothing to the webhook"

    # 3. The conversation shows up, with the inbound message and the new contact.
    async def listed() -> Any:
        return await inbox.ListConversations(
            C.ListConversationsRequest(account_id=account.id), metadata=md
        )

    page = await eventually(listed, lambda r: len(r.conversations) == 1)
    conv = page.conversations[0]
    assert conv.status == C.CONVERSATION_STATUS_OPEN
    assert conv.contact.x_user_id == customer.id and conv.contact.username == customer.username
    assert conv.last_message_preview.startswith("Do you ship")
    got = await inbox.GetConversation(C.GetConversationRequest(id=conv.id), metadata=md)
    assert [(m.direction, m.text) for m in got.messages] == [
        (C.MESSAGE_DIRECTION_INBOUND, "Do you ship to Lisbon?")
    ]

    # 4. An agent replies through gRPC.
    sent = await inbox.SendMessage(
        C.SendMessageRequest(
            conversation_id=conv.id, text="Yes, in 2-3 days!", request_id="reply-1"
        ),
        metadata=md,
    )
    assert len(sent.messages) == 1
    reply = sent.messages[0]
    assert reply.direction == C.MESSAGE_DIRECTION_OUTBOUND and reply.x_message_id

    # 5. X received exactly that DM, from the shop's OAuth 1.0a credentials.
    dms = sandbox.state.sent_dms(shop.id)
    api_dms = [d for d in dms if d.source == "api"]
    assert [(d.recipient_id, d.text, d.id) for d in api_dms] == [
        (customer.id, "Yes, in 2-3 days!", reply.x_message_id)
    ]
    # The sandbox verified the OAuth 1.0a signature (it refuses bad ones with 401).
    assert api_dms[0].principal is not None
    assert (api_dms[0].principal.kind, api_dms[0].principal.user_id) == ("oauth1", shop.id)

    # 6. X echoes our own DM to the webhook: the reply becomes DELIVERED, not duplicated.
    async def reply_state() -> Any:
        c = await inbox.GetConversation(C.GetConversationRequest(id=conv.id), metadata=md)
        return [m for m in c.messages if m.direction == C.MESSAGE_DIRECTION_OUTBOUND]

    outbound = await eventually(
        reply_state,
        lambda ms: len(ms) == 1 and ms[0].delivery_state == C.MESSAGE_DELIVERY_STATE_DELIVERED,
    )
    assert outbound[0].id == reply.id

    # 7. The customer reads it.
    sandbox.state.inject_read_receipt(customer.id, shop.id, reply.x_message_id)
    outbound = await eventually(
        reply_state, lambda ms: ms[0].delivery_state == C.MESSAGE_DELIVERY_STATE_READ
    )
    assert len(outbound) == 1

    # The whole exchange is two messages, once each.
    final = await inbox.GetConversation(C.GetConversationRequest(id=conv.id), metadata=md)
    assert len(final.messages) == 2
