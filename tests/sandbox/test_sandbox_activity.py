"""Admin API, rate-limit headers and Account Activity payloads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from mktx_grpc.sandbox import SandboxServer
from mktx_grpc.sandbox.receiver import WebhookReceiver
from mktx_grpc.x import OAuth1Credentials, XClient


async def _subscribed(x: XClient, receiver: WebhookReceiver, creds: OAuth1Credentials) -> str:
    hook = await x.as_app().register_webhook(receiver.url)
    assert await x.as_user(creds).subscribe(hook.id)
    return hook.id


async def test_admin_injections_reach_the_webhook(
    sandbox: SandboxServer,
    x: XClient,
    receiver: WebhookReceiver,
    admin: Callable[..., Any],
    connect_oauth1: Callable[[str], Awaitable[OAuth1Credentials]],
) -> None:
    merchant = admin("POST", "/users", {"username": "shop_adm", "name": "Shop"})["id"]
    customer = admin("POST", "/users", {"id": "42", "username": "cust_adm"})["id"]
    assert customer == "42"
    await _subscribed(x, receiver, await connect_oauth1(merchant))
    dm = admin(
        "POST", "/dms/inbound", {"sender_id": customer, "recipient_id": merchant, "text": "hi"}
    )
    admin("POST", "/follows", {"source_user_id": customer, "target_user_id": merchant})
    admin(
        "POST",
        "/follows",
        {"source_user_id": customer, "target_user_id": merchant, "type": "unfollow"},
    )
    mention = admin(
        "POST",
        "/mentions",
        {"author_id": customer, "mentioned_user_id": merchant, "text": "love it"},
    )
    admin(
        "POST",
        "/read_receipts",
        {"reader_id": customer, "for_user_id": merchant, "last_read_event_id": dm["dm_event_id"]},
    )
    admin("POST", f"/users/{merchant}/revoke", {})
    got = [d.json() for d in receiver.wait_for(lambda ds: len(ds) >= 6)]
    assert all(p["for_user_id"] == merchant for p in got)
    assert got[0]["direct_message_events"][0]["id"] == dm["dm_event_id"]
    assert [p["follow_events"][0]["type"] for p in got[1:3]] == ["follow", "unfollow"]
    tweet = got[3]["tweet_create_events"][0]
    assert tweet["id_str"] == mention["id"]
    assert tweet["entities"]["user_mentions"][0]["id_str"] == merchant
    assert tweet["text"].startswith("@shop_adm")
    assert got[4]["direct_message_mark_read_events"][0]["last_read_event_id"] == dm["dm_event_id"]
    assert got[5]["user_event"]["revoke"]["source"]["user_id"] == merchant
    # deliveries are also readable from the admin API
    recorded = admin("GET", f"/deliveries?for_user_id={merchant}")["data"]
    assert [d["kind"] for d in recorded][:2] == ["direct_message_events", "follow_events"]
    assert all(d["status_code"] == 200 for d in recorded)


async def test_dm_rate_limit_headers_and_admin_lift(
    sandbox: SandboxServer,
    x: XClient,
    admin: Callable[..., Any],
    make_user: Callable[..., str],
    connect_oauth1: Callable[[str], Awaitable[OAuth1Credentials]],
) -> None:
    a, b = make_user(), make_user()
    creds = await connect_oauth1(a)
    url = f"{sandbox.base_url}/2/dm_conversations/with/{b}/messages"
    statuses = []
    resp: httpx.Response | None = None
    for _ in range(15):
        resp = await x.request(
            "POST", f"/2/dm_conversations/with/{b}/messages", auth=creds, json={"text": "hi"}
        )
        statuses.append(resp.status_code)
    assert statuses == [201] * 15
    assert resp is not None
    assert resp.headers["x-rate-limit-limit"] == "15"
    assert resp.headers["x-rate-limit-remaining"] == "0"
    assert resp.headers["x-user-limit-24hour-limit"] == "1440"
    assert resp.headers["x-user-limit-24hour-remaining"] == "1425"
    header = x._authorization("POST", url, creds, None)
    async with httpx.AsyncClient() as http:
        limited = await http.post(url, json={"text": "16th"}, headers={"Authorization": header})
    assert limited.status_code == 429
    assert limited.json()["title"] == "Too Many Requests"
    assert int(limited.headers["x-rate-limit-reset"]) > 0
    admin("POST", "/limits", {"enabled": False})
    assert (await x.as_user(creds).send_dm(b, text="lifted")).dm_event_id
    admin("POST", "/limits", {"enabled": True})
    admin("POST", "/limits/reset")
    assert (await x.as_user(creds).send_dm(b, text="reset")).dm_event_id
    sent = admin("GET", f"/dms?sender_id={a}")["data"]
    assert len(sent) == 17 and sent[-1]["auth"]["kind"] == "oauth1"


def test_fault_injection_via_admin(sandbox: SandboxServer, admin: Callable[..., Any]) -> None:
    admin("POST", "/faults", {"error_next": 1, "error_status": 500})
    assert httpx.get(f"{sandbox.base_url}/2/users/me").status_code == 500
    assert httpx.get(f"{sandbox.base_url}/2/users/me").status_code == 401
    admin("POST", "/faults", {"rate_limit_next": 2, "rate_limit_reset_after": 1})
    admin("DELETE", "/faults")
    assert httpx.get(f"{sandbox.base_url}/2/users/me").status_code == 401
