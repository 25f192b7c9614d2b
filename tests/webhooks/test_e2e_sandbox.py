"""End to end through real HTTP: the X sandbox registers the sidecar (CRC), the
merchant's X user subscribes through OAuth 1.0a, and the sandbox delivers signed
Account Activity for an inbound DM, a follow, a mention, the echo of our reply, a
read receipt, a replay of all of it, and finally a revoke."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from webhook_helpers import ConnectAccount, Db, StartSidecar, wait_for

from mktx_grpc.core.config import Settings
from mktx_grpc.sandbox import SandboxConfig, SandboxServer
from mktx_grpc.x import OAuth1Credentials, XClient


@pytest.fixture
def sandbox(settings: Settings) -> Iterator[SandboxServer]:
    # The sandbox signs with the app's consumer secret, which the sidecar checks.
    with SandboxServer(SandboxConfig(consumer_secret=settings.x_consumer_secret)) as server:
        yield server


@pytest.fixture
async def x(sandbox: SandboxServer) -> AsyncIterator[XClient]:
    async with XClient(sandbox.x_config(backoff_base=0.01, default_deadline=10.0)) as client:
        yield client


@pytest.fixture
async def admin(sandbox: SandboxServer) -> AsyncIterator[Any]:
    async with httpx.AsyncClient(base_url=f"{sandbox.base_url}/_sandbox") as http:

        async def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
            resp = await http.request(method, path, json=body)
            assert resp.status_code < 400, resp.text
            return resp.json()

        yield call


async def connect_oauth1(x: XClient, user_id: str) -> OAuth1Credentials:
    rt = await x.oauth1_request_token("https://merchant.example/cb")
    url = x.oauth1_authorize_url(rt) + f"&sandbox_user_id={user_id}"
    async with httpx.AsyncClient() as browser:
        resp = await browser.get(url)
    assert resp.status_code == 302, resp.text
    params = {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["location"]).query).items()}
    at = await x.oauth1_access_token(rt, params["oauth_verifier"])
    return OAuth1Credentials(at.token, at.token_secret)


async def test_sandbox_activity_flows_into_the_inbox(
    sandbox: SandboxServer,
    x: XClient,
    admin: Any,
    start_sidecar: StartSidecar,
    connect_account: ConnectAccount,
    q: Db,
) -> None:
    # The echo of our reply may overtake the send path's commit: let it wait.
    sidecar = await start_sidecar(echo_grace=10.0, echo_retry_delay=0.05)
    shop = (await admin("POST", "/users", {"username": "e2e_shop", "name": "E2E Shop"}))["id"]
    customer = (await admin("POST", "/users", {"username": "e2e_cust", "name": "Customer"}))["id"]
    account = await connect_account(shop)
    user = x.as_user(await connect_oauth1(x, shop))
    hook = await x.as_app().register_webhook(sidecar.webhook_url)  # CRC over real HTTP
    assert hook.valid
    assert await user.subscribe(hook.id)

    # 1. An inbound DM from a new X user.
    dm = await admin(
        "POST",
        "/dms/inbound",
        {"sender_id": customer, "recipient_id": shop, "text": "is the blue one in stock?"},
    )
    msg = await wait_for(
        lambda: q.one("SELECT * FROM messages WHERE x_event_id = %s", dm["dm_event_id"]),
        what="inbound message",
    )
    assert msg["direction"] == "INBOUND" and msg["text"] == "is the blue one in stock?"
    contact = await q.one("SELECT * FROM contacts WHERE x_user_id = %s", customer)
    assert contact is not None
    assert contact["username"] == "e2e_cust" and contact["display_name"] == "Customer"
    assert contact["source"] == "INBOUND_MESSAGE" and contact["merchant_id"] == account.merchant_id
    conv = await q.one("SELECT * FROM conversations WHERE contact_id = %s", contact["id"])
    assert conv is not None and conv["status"] == "OPEN" and conv["unread_count"] == 1
    assert conv["x_conversation_id"] == dm["dm_conversation_id"]
    assert conv["last_message_preview"] == "is the blue one in stock?"

    # 2. The customer follows the shop and mentions it.
    await admin("POST", "/follows", {"source_user_id": customer, "target_user_id": shop})
    post = await admin(
        "POST", "/mentions", {"author_id": customer, "mentioned_user_id": shop, "text": "great"}
    )
    await wait_for(lambda: q.value("SELECT follows_account FROM contacts"), what="follow")
    await wait_for(
        lambda: q.one(
            "SELECT 1 FROM contact_interactions WHERE kind = 'MENTION' AND ref = %s", post["id"]
        ),
        what="mention",
    )

    # 3. We reply; the send path stores the message with X's event id.
    sent = await user.send_dm(customer, text="yes, ships today")
    await q.conn.execute(
        "INSERT INTO messages (merchant_id, conversation_id, direction, origin, text,"
        " x_event_id, delivery_state, sent_at)"
        " VALUES (%s, %s, 'OUTBOUND', 'AGENT', 'yes, ships today', %s, 'SENT', now())",
        (account.merchant_id, conv["id"], sent.dm_event_id),
    )
    # 4. The sandbox echoes it to the shop's webhook: delivered, not duplicated.
    await wait_for(
        lambda: q.value(
            "SELECT delivery_state = 'DELIVERED' FROM messages WHERE x_event_id = %s",
            sent.dm_event_id,
        ),
        what="delivered",
    )
    # 5. The customer reads it.
    await admin(
        "POST",
        "/read_receipts",
        {"reader_id": customer, "for_user_id": shop, "last_read_event_id": sent.dm_event_id},
    )
    await wait_for(
        lambda: q.value(
            "SELECT delivery_state = 'READ' FROM messages WHERE x_event_id = %s",
            sent.dm_event_id,
        ),
        what="read",
    )

    # 6. X replays the last hour: every delivery is accepted and nothing changes.
    before = await q.all("SELECT id, delivery_state FROM messages ORDER BY id")
    now = datetime.now(UTC)
    await x.as_app().replay(hook.id, now - timedelta(hours=1), now + timedelta(minutes=1))
    await wait_for(
        lambda: _all_replays_answered(sandbox),
        what="replayed deliveries answered",
    )
    await sidecar.processor.wait_idle()
    assert await q.all("SELECT id, delivery_state FROM messages ORDER BY id") == before
    assert await q.value("SELECT count(*) FROM contacts") == 1
    assert await q.value("SELECT count(*) FROM conversations") == 1
    assert sidecar.metrics.duplicates >= 5

    # 7. The shop revokes the app on X.
    await admin("POST", f"/users/{shop}/revoke", {})
    await wait_for(
        lambda: q.value("SELECT status = 'ERROR' FROM accounts WHERE id = %s", account.id),
        what="account error",
    )

    # Every delivery was signed as the sidecar expects and answered 200.
    async def answered() -> list[Any]:
        ds = sandbox.state.deliveries_for(shop)
        return ds if all(d.status_code is not None or d.error for d in ds) else []

    deliveries = await wait_for(answered, what="every delivery answered")
    assert [d.status_code for d in deliveries] == [200] * len(deliveries)
    assert len(deliveries) == 11  # six events, the first five replayed
    inbox = await q.all("SELECT event_type, outcome FROM webhook_inbox ORDER BY id")
    assert [r["event_type"] for r in inbox] == [
        "direct_message_events",
        "follow_events",
        "tweet_create_events",
        "direct_message_events",
        "direct_message_mark_read_events",
        "user_event",
    ]
    assert all(r["outcome"] == "PROCESSED" for r in inbox)
    types = [r["type"] for r in await q.all("SELECT type FROM domain_events ORDER BY id")]
    assert types == [
        "contact.created",
        "conversation.opened",
        "message.received",
        "contact.followed",
        "contact.mentioned",
        "message.delivered",
        "message.read",
        "account.revoked",
    ]


async def _all_replays_answered(sandbox: SandboxServer) -> bool:
    replays = [d for d in sandbox.state.deliveries if d.replay]
    return bool(replays) and all(d.status_code == 200 for d in replays)
