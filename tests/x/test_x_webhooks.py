from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from mktx_grpc.sandbox import SandboxServer
from mktx_grpc.sandbox.receiver import WebhookReceiver
from mktx_grpc.x import (
    OAuth1Credentials,
    XBadRequest,
    XClient,
    XForbidden,
    verify_webhook_signature,
)

Connect = Callable[[str], Awaitable[OAuth1Credentials]]


async def test_register_runs_crc_and_manages_webhooks(
    sandbox: SandboxServer, x: XClient, receiver: WebhookReceiver
) -> None:
    app = x.as_app()
    hook = await app.register_webhook(receiver.url)
    assert hook.valid and hook.url == receiver.url
    assert len(receiver.crc_tokens) == 1
    assert [w.id for w in await app.list_webhooks()] == [hook.id]
    assert await app.revalidate_webhook(hook.id)
    assert len(receiver.crc_tokens) == 2
    receiver.crc_mode = "wrong"
    with pytest.raises(XBadRequest) as err:
        await app.revalidate_webhook(hook.id)
    assert err.value.reason == "CrcValidationFailed"
    assert await app.delete_webhook(hook.id)
    assert await app.list_webhooks() == []


@pytest.mark.parametrize("mode", ["wrong", "error"])
async def test_register_with_failing_crc_is_refused(
    sandbox: SandboxServer, x: XClient, mode: str
) -> None:
    r = WebhookReceiver(sandbox.config.consumer_secret, crc_mode=mode).start()
    try:
        with pytest.raises(XBadRequest) as err:
            await x.as_app().register_webhook(r.url)
        assert err.value.reason == "CrcValidationFailed"
        assert sandbox.state.webhooks == {}
    finally:
        r.stop()


async def test_webhook_management_needs_app_auth(
    x: XClient, receiver: WebhookReceiver, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    user = x.as_user(await connect_oauth1(make_user()))
    with pytest.raises(XForbidden):
        await user._call("GET", "/2/webhooks")


async def test_fetch_app_bearer_with_consumer_keys(x: XClient) -> None:
    bearer = await x.fetch_app_bearer()
    assert await x.as_app(bearer).list_webhooks() == []


async def test_inbound_dm_and_echo_delivered_with_valid_signature(
    sandbox: SandboxServer,
    x: XClient,
    receiver: WebhookReceiver,
    make_user: Callable[..., str],
    connect_oauth1: Connect,
) -> None:
    merchant, customer = make_user("shop"), make_user("cust")
    user = x.as_user(await connect_oauth1(merchant))
    hook = await x.as_app().register_webhook(receiver.url)
    assert await user.subscribe(hook.id)
    assert await user.is_subscribed(hook.id)
    sandbox.state.add_dm(
        customer, merchant, "where is my order?", None, source="inbound", principal=None
    )
    sent = await user.send_dm(customer, text="on its way")
    got = receiver.wait_for(lambda ds: len(ds) >= 2)
    assert all(d.signature_valid for d in got)
    assert all(
        verify_webhook_signature(sandbox.config.consumer_secret, d.body, d.signature) for d in got
    )
    inbound, echo = (d.json() for d in got)
    assert inbound["for_user_id"] == merchant
    ev = inbound["direct_message_events"][0]
    assert ev["type"] == "message_create"
    assert ev["message_create"]["sender_id"] == customer
    assert ev["message_create"]["target"]["recipient_id"] == merchant
    assert ev["message_create"]["message_data"]["text"] == "where is my order?"
    assert set(inbound["users"]) == {merchant, customer}
    assert echo["direct_message_events"][0]["id"] == sent.dm_event_id
    assert echo["direct_message_events"][0]["message_create"]["sender_id"] == merchant
    # a tampered body no longer verifies
    assert not verify_webhook_signature(
        sandbox.config.consumer_secret, got[0].body + b" ", got[0].signature
    )


async def test_echo_can_be_switched_off(
    sandbox: SandboxServer,
    x: XClient,
    receiver: WebhookReceiver,
    make_user: Callable[..., str],
    connect_oauth1: Connect,
) -> None:
    sandbox.config.echo_dm_to_webhook = False
    merchant, customer = make_user(), make_user()
    user = x.as_user(await connect_oauth1(merchant))
    hook = await x.as_app().register_webhook(receiver.url)
    await user.subscribe(hook.id)
    await user.send_dm(customer, text="quiet")
    sandbox.state.add_dm(customer, merchant, "marker", None, source="inbound", principal=None)
    got = receiver.wait_for(lambda ds: len(ds) >= 1)
    assert [
        json.loads(d.body)["direct_message_events"][0]["message_create"]["message_data"]["text"]
        for d in got
    ] == ["marker"]


async def test_unsubscribe_stops_delivery_and_replay_redelivers(
    sandbox: SandboxServer,
    x: XClient,
    receiver: WebhookReceiver,
    make_user: Callable[..., str],
    connect_oauth1: Connect,
) -> None:
    merchant, customer = make_user(), make_user()
    user = x.as_user(await connect_oauth1(merchant))
    app = x.as_app()
    hook = await app.register_webhook(receiver.url)
    await user.subscribe(hook.id)
    sandbox.state.inject_follow(customer, merchant)
    receiver.wait_for(lambda ds: len(ds) == 1)
    now = datetime.now(tz=UTC)
    job = await app.replay(hook.id, now - timedelta(minutes=5), now + timedelta(minutes=1))
    assert job.job_id
    got = receiver.wait_for(lambda ds: len(ds) == 2)
    assert got[0].body == got[1].body
    assert json.loads(got[1].body)["follow_events"][0]["source"]["id"] == customer
    assert await app.unsubscribe(hook.id, merchant)
    assert not await user.is_subscribed(hook.id)
    with pytest.raises(XBadRequest):
        await app.replay(hook.id, now - timedelta(days=3), now)
