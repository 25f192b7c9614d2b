"""The real path into the rollups: a DM delivered by the sandbox (as X) to the
production sidecar, an agent's reply over gRPC, a close, the contact writing again
(the conversation reopens), another reply and close; the analytics-rollups
consumer then reports two episodes, each answered by a person."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import xhelpers as xh
from analytics_helpers import dump, settle
from google.protobuf.timestamp_pb2 import Timestamp

from mktx.v1 import accounts_pb2 as AC
from mktx.v1 import accounts_pb2_grpc, analytics_pb2_grpc, conversations_pb2_grpc
from mktx.v1 import analytics_pb2 as A
from mktx.v1 import conversations_pb2 as C


async def until(fetch: Any, ok: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if ok(value):
            return value
        assert time.monotonic() < deadline, f"condition not met; last value {value!r}"
        await asyncio.sleep(0.05)


async def test_ingested_dms_and_agent_replies_reach_the_report(
    api: Any, merchant: Any, sandbox: Any, serve_sidecar: Any, pool: Any
) -> None:
    md = api.auth(merchant)
    accounts = accounts_pb2_grpc.AccountsServiceStub(api.channel)
    inbox = conversations_pb2_grpc.ConversationsServiceStub(api.channel)
    shop = xh.new_x_user(sandbox)
    account = await xh.connect(accounts, md, shop, AC.AUTH_METHOD_OAUTH1)
    sidecar = await serve_sidecar()
    await accounts.RegisterWebhook(
        AC.RegisterWebhookRequest(id=account.id, url=sidecar.webhook_url), metadata=md
    )
    customer = xh.new_x_user(sandbox)
    started = datetime.now(UTC)

    async def dm(text: str) -> None:
        async with httpx.AsyncClient(base_url=sandbox.base_url) as admin:
            resp = await admin.post(
                "/_sandbox/dms/inbound",
                json={"sender_id": customer.id, "recipient_id": shop.id, "text": text},
            )
            assert resp.status_code in (200, 201), resp.text

    async def conversation() -> Any:
        page = await inbox.ListConversations(
            C.ListConversationsRequest(account_id=account.id), metadata=md
        )
        return page.conversations[0] if page.conversations else None

    await dm("Do you ship to Lisbon?")
    conv = await until(conversation, lambda c: c is not None)
    for n, text in enumerate(("Yes!", "Tomorrow.")):
        await inbox.SendMessage(
            C.SendMessageRequest(conversation_id=conv.id, text=text, request_id=f"r{n}"),
            metadata=md,
        )
        await inbox.CloseConversation(C.CloseConversationRequest(id=conv.id), metadata=md)
        if n == 0:
            await dm("And when?")
            await until(conversation, lambda c: c.status == C.CONVERSATION_STATUS_OPEN)
    await settle(pool)
    rows = (await dump(pool, merchant))["episodes"]
    assert [r["episode"] for r in rows] == [0, 1]
    assert all(r["human_replied"] and r["resolved_at"] is not None for r in rows)
    req = A.GetConversationAnalyticsRequest(
        period=A.ReportPeriod(
            start_time=Timestamp(seconds=int((started - timedelta(hours=1)).timestamp())),
            end_time=Timestamp(seconds=int((started + timedelta(hours=1)).timestamp())),
        )
    )
    out = await analytics_pb2_grpc.AnalyticsServiceStub(api.channel).GetConversationAnalytics(
        req, metadata=md
    )
    assert (out.opened, out.resolved, out.first_response.count) == (2, 2, 2)
    assert out.first_response.mean_seconds >= 0 and out.bot.conversations == 0
    overview = await analytics_pb2_grpc.AnalyticsServiceStub(api.channel).GetOverview(
        A.GetOverviewRequest(period=req.period), metadata=md
    )
    assert overview.contacts.new_contacts == 1 and overview.contacts.active == 1
    assert overview.conversations.closed == 2
