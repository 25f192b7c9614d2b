"""Fixtures of the automation tests: a shop whose X webhooks reach the sidecar."""

from __future__ import annotations

import pytest
import xhelpers as xh
from campaign_helpers import lift_budget
from flow_helpers import Shop

from mktx.v1 import accounts_pb2 as A
from mktx.v1 import accounts_pb2_grpc
from mktx_grpc.core.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The root settings with a per-merchant rate limit these tests do not reach
    (they start executions for a hundred and more contacts one RPC at a time)."""
    return settings.replace(rate_limit_per_minute=1_000_000, rate_limit_burst=100_000)


@pytest.fixture
async def shop(api, merchant, sandbox, db, serve_sidecar):
    sidecar = await serve_sidecar()
    accounts = accounts_pb2_grpc.AccountsServiceStub(api.channel)
    md = api.auth(merchant)
    owner = xh.new_x_user(sandbox)
    account = await xh.connect(accounts, md, owner, A.AUTH_METHOD_OAUTH1)
    registered = await accounts.RegisterWebhook(
        A.RegisterWebhookRequest(id=account.id, url=sidecar.webhook_url), metadata=md
    )
    assert registered.webhook.subscribed
    await lift_budget(db, account.id)
    yield Shop(api, merchant, sandbox, owner, account.id)
    # The session's sandbox holds few webhooks: give this one back.
    with sandbox.state.lock:
        for wid in [w.id for w in sandbox.state.webhooks.values() if w.url == sidecar.webhook_url]:
            sandbox.state.webhooks.pop(wid, None)
            sandbox.state.subscriptions.pop(wid, None)
