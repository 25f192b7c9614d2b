"""GetAutomationAnalytics over a real flow: a flow created and activated through
AutomationService, followers arriving from the X sandbox through the webhook sidecar,
the automation worker's trigger consumer, step runner and DM ledger run as
tests/automation runs them; the report must agree with what the engine did."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import xhelpers as xh
from campaign_helpers import lift_budget, scalar
from google.protobuf.timestamp_pb2 import Timestamp

from mktx.v1 import accounts_pb2, accounts_pb2_grpc, analytics_pb2_grpc
from mktx.v1 import analytics_pb2 as A
from mktx_grpc.core.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "automation"))
from flow_helpers import (
    Shop,
    chain,
    create_active,
    executions,
    fast_forward,
    flow,
    n,
    run_until,
    steps,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(rate_limit_per_minute=1_000_000, rate_limit_burst=100_000)


@pytest.fixture
async def shop(api, merchant, sandbox, db, serve_sidecar):
    """As tests/automation's: a connected account whose webhooks reach the sidecar."""
    sidecar = await serve_sidecar()
    accounts = accounts_pb2_grpc.AccountsServiceStub(api.channel)
    md = api.auth(merchant)
    owner = xh.new_x_user(sandbox)
    account = await xh.connect(accounts, md, owner, accounts_pb2.AUTH_METHOD_OAUTH1)
    registered = await accounts.RegisterWebhook(
        accounts_pb2.RegisterWebhookRequest(id=account.id, url=sidecar.webhook_url), metadata=md
    )
    assert registered.webhook.subscribed
    await lift_budget(db, account.id)
    yield Shop(api, merchant, sandbox, owner, account.id)
    with sandbox.state.lock:
        for wid in [w.id for w in sandbox.state.webhooks.values() if w.url == sidecar.webhook_url]:
            sandbox.state.webhooks.pop(wid, None)
            sandbox.state.subscriptions.pop(wid, None)


def ts(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


async def test_automation_report_follows_a_real_flow(api, merchant, shop, db) -> None:
    deps = api.app.deps
    welcome = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "NEW_FOLLOWER",
            [
                n("hello", "SEND_MESSAGE", text="Hi {{first_name|there}}!"),
                n("wait", "WAIT", duration="86400s"),
                n("bye", "SEND_MESSAGE", text="Still there, {{first_name|friend}}?"),
                n("done", "END"),
            ],
            chain("hello", "wait", "bye", "done"),
            name="welcome",
        ),
    )
    alice, bob = shop.customer("Alice Smith"), shop.customer("Bob Jones")
    await shop.follow(alice)

    async def texts(customer: Any, k: int) -> bool:
        return len(shop.texts_to(customer)) >= k

    await run_until(deps, lambda: texts(alice, 1))
    await fast_forward(db, welcome.id)  # Alice's wait is over: she runs to the end
    await run_until(deps, lambda: texts(alice, 2))
    await shop.follow(bob)
    await run_until(deps, lambda: texts(bob, 1))  # Bob waits

    by_status = sorted(ex["status"] for ex in await executions(db, welcome.id))
    assert by_status == ["COMPLETED", "WAITING"]
    # The engine's own record of the nodes, which the funnel must match.
    entered: dict[str, int] = {}
    completed: dict[str, int] = {}
    for ex in await executions(db, welcome.id):
        for node, status, _branch in await steps(db, ex["id"]):
            entered[node] = entered.get(node, 0) + 1
            completed[node] = completed.get(node, 0) + (status == "COMPLETED")
    assert entered == {"hello": 2, "wait": 2, "bye": 1, "done": 1}

    now = datetime.now(UTC)
    p = A.ReportPeriod(
        start_time=ts(now - timedelta(days=1)), end_time=ts(now + timedelta(hours=1))
    )
    md = api.auth(merchant)
    report = await analytics_pb2_grpc.AnalyticsServiceStub(api.channel).GetAutomationAnalytics(
        A.GetAutomationAnalyticsRequest(period=p, granularity=A.REPORT_GRANULARITY_DAY),
        metadata=md,
    )
    assert (report.active_flows, report.started, report.completed, report.failed) == (1, 2, 1, 0)
    (fa,) = report.flows
    assert fa.flow_id == welcome.id and fa.name == "welcome"
    assert (fa.started, fa.completed, fa.failed) == (2, 1, 0)
    assert sum(b.started for b in fa.series) == 2
    funnel = {x.node_id: (x.entered, x.completed, x.failed) for x in fa.funnel}
    assert funnel == {node: (entered[node], completed[node], 0) for node in entered}
    assert funnel["hello"] == (2, 2, 0) and funnel["done"] == (1, 1, 0)

    overview = await analytics_pb2_grpc.AnalyticsServiceStub(api.channel).GetOverview(
        A.GetOverviewRequest(period=p), metadata=md
    )
    assert overview.automation.active_flows == 1
    assert overview.automation.executions_started == 2
    assert overview.automation.executions_completed == 1
    # The flow's DMs went through the one ledger.
    sent = "SELECT count(*) FROM outbound_dms WHERE flow_id = %s AND state = 'SENT'"
    assert await scalar(db, sent, welcome.id) == 3

    # A period before the flow ran reports nothing for it.
    early = A.ReportPeriod(
        start_time=ts(now - timedelta(days=3)), end_time=ts(now - timedelta(days=2))
    )
    none = await analytics_pb2_grpc.AnalyticsServiceStub(api.channel).GetAutomationAnalytics(
        A.GetAutomationAnalyticsRequest(period=early), metadata=md
    )
    assert (none.started, none.completed, list(none.flows)) == (0, 0, [])
