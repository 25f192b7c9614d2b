"""An account's webhook state is the truth at X (issue 15 §1.4, §1.5): RegisterWebhook
defaults to the sidecar's own URL when X is the sandbox, an account connecting in
sandbox mode is registered at once, and a webhook or subscription X no longer has
(or tokens X refuses) shows as ``subscribed: false``."""

from __future__ import annotations

from urllib.parse import urlsplit

import grpc
import pytest
import xhelpers as xh
from helpers import expect_error

from mktx.v1 import accounts_pb2 as A
from mktx.v1 import accounts_pb2_grpc
from mktx_grpc.worker.webhook_checks import WebhookChecks


@pytest.fixture
def stub(api):
    return accounts_pb2_grpc.AccountsServiceStub(api.channel)


@pytest.fixture
async def sidecar_port(api, serve_sidecar):
    """The real sidecar on a loopback port, and the server's settings saying so (as
    `serve` has them: the sidecar's port is MKTX_WEBHOOK_PORT)."""
    running = await serve_sidecar(lifespan="off")
    port = int(urlsplit(running.base_url).port or 0)
    api.app.deps.settings = api.settings.replace(webhook_port=port)
    return port


@pytest.fixture
async def cleanup_webhooks(api):
    """Webhooks are app-wide in the session's sandbox (at most 5): delete ours."""
    created: list[str] = []
    yield created
    app = api.app.deps.xaccess.x.as_app()
    for hook in set(created):
        await app.delete_webhook(hook)


async def test_register_webhook_defaults_to_the_sidecar_in_sandbox_mode(
    api, stub, merchant, sandbox, sidecar_port, cleanup_webhooks
):
    md = api.auth(merchant)
    account = await xh.connect(stub, md, xh.new_x_user(sandbox))
    assert not account.webhook.subscribed  # auto-registration is off here
    out = await stub.RegisterWebhook(A.RegisterWebhookRequest(id=account.id), metadata=md)
    cleanup_webhooks.append(out.webhook.webhook_id)
    assert out.webhook.url == f"http://127.0.0.1:{sidecar_port}/webhooks/twitter"
    assert out.webhook.subscribed and out.webhook.validate_time.seconds > 0


async def test_connecting_in_sandbox_mode_registers_the_webhook(
    api, stub, merchant, sandbox, sidecar_port, cleanup_webhooks
):
    api.app.deps.settings = api.app.deps.settings.replace(auto_register_webhook=True)
    md = api.auth(merchant)
    user = xh.new_x_user(sandbox)
    account = await xh.connect(stub, md, user)
    cleanup_webhooks.append(account.webhook.webhook_id)
    assert account.status == A.ACCOUNT_STATUS_ACTIVE
    assert account.webhook.subscribed
    assert account.webhook.url == f"http://127.0.0.1:{sidecar_port}/webhooks/twitter"
    with sandbox.state.lock:
        assert user.id in sandbox.state.subscriptions[account.webhook.webhook_id]


async def test_connect_succeeds_when_automatic_registration_fails(
    api, stub, merchant, sandbox, caplog
):
    # Nothing answers X's CRC on this port: registration fails, the connect does not.
    api.app.deps.settings = api.settings.replace(auto_register_webhook=True, webhook_port=9)
    md = api.auth(merchant)
    account = await xh.connect(stub, md, xh.new_x_user(sandbox))
    assert account.status == A.ACCOUNT_STATUS_ACTIVE and not account.webhook.subscribed
    assert "automatic webhook registration failed" in caplog.text


async def registered(api, stub, merchant, sandbox, cleanup):
    md = api.auth(merchant)
    user = xh.new_x_user(sandbox)
    account = await xh.connect(stub, md, user)
    out = await stub.RegisterWebhook(A.RegisterWebhookRequest(id=account.id), metadata=md)
    cleanup.append(out.webhook.webhook_id)
    assert out.webhook.subscribed
    return out, user, md


async def test_refused_tokens_mark_error_and_unsubscribed(
    api, stub, merchant, sandbox, sidecar_port, cleanup_webhooks
):
    account, user, md = await registered(api, stub, merchant, sandbox, cleanup_webhooks)
    sandbox.state.revoke_user_tokens(user.id)
    await expect_error(
        stub.RefreshAccountTokens(A.RefreshAccountTokensRequest(id=account.id), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "ACCOUNT_AUTH_REVOKED",
    )
    got = await stub.GetAccount(A.GetAccountRequest(id=account.id), metadata=md)
    assert got.status == A.ACCOUNT_STATUS_ERROR
    assert not got.webhook.subscribed  # no longer claims events that cannot arrive


async def test_check_finds_a_deleted_webhook_and_a_removed_subscription(
    api, stub, merchant, sandbox, sidecar_port, cleanup_webhooks
):
    kept, _, md = await registered(api, stub, merchant, sandbox, cleanup_webhooks)
    dropped, dropped_user, _ = await registered(api, stub, merchant, sandbox, cleanup_webhooks)
    assert dropped.webhook.webhook_id == kept.webhook.webhook_id  # one URL, one webhook
    deps = api.app.deps
    checks = WebhookChecks()
    # Everything as claimed: nothing changes.
    await checks.run(deps)
    for acc in (kept, dropped):
        got = await stub.GetAccount(A.GetAccountRequest(id=acc.id), metadata=md)
        assert got.webhook.subscribed
    # X drops one user's subscription.
    app = deps.xaccess.x.as_app()
    assert await app.unsubscribe(dropped.webhook.webhook_id, dropped_user.id)
    await checks.run(deps)
    got = await stub.GetAccount(A.GetAccountRequest(id=dropped.id), metadata=md)
    assert not got.webhook.subscribed and got.status == A.ACCOUNT_STATUS_ACTIVE
    assert (await stub.GetAccount(A.GetAccountRequest(id=kept.id), metadata=md)).webhook.subscribed
    # The webhook itself disappears at X.
    assert await app.delete_webhook(kept.webhook.webhook_id)
    cleanup_webhooks.clear()
    await checks.run(deps)
    got = await stub.GetAccount(A.GetAccountRequest(id=kept.id), metadata=md)
    assert not got.webhook.subscribed
    # RegisterWebhook subscribes it again.
    again = await stub.RegisterWebhook(A.RegisterWebhookRequest(id=kept.id), metadata=md)
    cleanup_webhooks.append(again.webhook.webhook_id)
    assert again.webhook.subscribed


async def test_check_is_off_with_a_zero_interval(
    api, stub, merchant, sandbox, sidecar_port, cleanup_webhooks
):
    account, _, md = await registered(api, stub, merchant, sandbox, cleanup_webhooks)
    api.app.deps.settings = api.app.deps.settings.replace(webhook_check_interval=0)
    assert await api.app.deps.xaccess.x.as_app().delete_webhook(account.webhook.webhook_id)
    cleanup_webhooks.clear()
    assert await WebhookChecks().run(api.app.deps) == 3600.0
    got = await stub.GetAccount(A.GetAccountRequest(id=account.id), metadata=md)
    assert got.webhook.subscribed  # not looked at
