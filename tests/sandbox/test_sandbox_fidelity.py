"""Wire fidelity: user.fields, the user and DM routes X has, includes and meta,
content types, location headers and per-tier rate limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import tweepy
from sandbox_helpers import Bearer, tweepy_client

from mktx_grpc.sandbox import SandboxServer
from mktx_grpc.x.users import DEFAULT_USER_FIELDS

INVALID = "https://api.x.com/2/problems/invalid-request"


async def test_user_objects_carry_only_what_user_fields_asks_for(
    http: httpx.AsyncClient, make_user: Callable[..., str], bearer: Bearer
) -> None:
    uid = make_user("me", description="Shoes and more", followers_count=3)
    auth = await bearer(uid)
    bare = (await http.get("/2/users/me", headers=auth)).json()["data"]
    assert set(bare) == {"id", "name", "username"}
    full = (
        await http.get(
            f"/2/users/{uid}",
            params={"user.fields": "created_at,description,public_metrics,verified"},
            headers=auth,
        )
    ).json()["data"]
    assert full["description"] == "Shoes and more"
    assert full["public_metrics"]["followers_count"] == 3
    assert full["created_at"].endswith("Z") and full["verified"] is False
    assert "profile_image_url" not in full
    # What the project's client asks for is what it gets back.
    client_view = (
        await http.get("/2/users/me", params={"user.fields": DEFAULT_USER_FIELDS}, headers=auth)
    ).json()["data"]
    assert set(client_view) == set(DEFAULT_USER_FIELDS.split(","))


async def test_unknown_user_field_is_xs_400(
    http: httpx.AsyncClient, make_user: Callable[..., str], bearer: Bearer
) -> None:
    auth = await bearer(make_user())
    resp = await http.get("/2/users/me", params={"user.fields": "id,shoe_size"}, headers=auth)
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["title"] == "Invalid Request" and body["type"] == INVALID
    assert body["detail"] == "One or more parameters to your request was invalid."
    assert body["errors"][0]["parameters"] == {"user.fields": ["shoe_size"]}
    assert body["errors"][0]["message"].startswith(
        "The `user.fields` query parameter value [shoe_size] is not one of ["
    )


async def test_users_by_usernames_and_by_ids(
    http: httpx.AsyncClient, make_user: Callable[..., str], bearer: Bearer, app_auth: dict[str, str]
) -> None:
    a, b = make_user("alpha"), make_user("beta")
    auth = await bearer(a)
    users = (await http.get("/2/users", params={"ids": a}, headers=auth)).json()["data"]
    name_a = users[0]["username"]
    name_b = (await http.get(f"/2/users/{b}", headers=auth)).json()["data"]["username"]
    by = await http.get(
        "/2/users/by",
        params={"usernames": f"{name_a},{name_b},nobody_here", "user.fields": "created_at"},
        headers=auth,
    )
    assert by.status_code == 200
    body = by.json()
    assert [u["id"] for u in body["data"]] == [a, b]
    assert all("created_at" in u for u in body["data"])
    assert body["errors"] == [
        {
            "value": "nobody_here",
            "detail": "Could not find user with usernames: [nobody_here].",
            "title": "Not Found Error",
            "resource_type": "user",
            "parameter": "usernames",
            "resource_id": "nobody_here",
            "type": "https://api.x.com/2/problems/resource-not-found",
        }
    ]
    # app-only bearer works for lookups too, with the app's own window
    ids = await http.get("/2/users", params={"ids": f"{b},999"}, headers=app_auth)
    assert [u["id"] for u in ids.json()["data"]] == [b]
    assert ids.json()["errors"][0]["detail"] == "Could not find user with ids: [999]."
    assert ids.headers["x-rate-limit-limit"] == "300"  # per app, Pro
    bad = await http.get("/2/users/by", params={"usernames": "not-valid!"}, headers=auth)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["parameters"] == {"usernames": ["not-valid!"]}


async def test_dm_events_expand_senders_and_page_both_ways(
    http: httpx.AsyncClient, make_user: Callable[..., str], bearer: Bearer, admin: Any
) -> None:
    me, them = make_user("shop"), make_user("cust", description="loyal")
    auth = await bearer(me)
    for i in range(3):
        admin("POST", "/dms/inbound", {"sender_id": them, "recipient_id": me, "text": f"in {i}"})
    sent = await http.post(
        f"/2/dm_conversations/with/{them}/messages", json={"text": "out"}, headers=auth
    )
    assert sent.status_code == 201
    assert sent.headers["content-type"] == "application/json; charset=utf-8"
    event_id = sent.json()["data"]["dm_event_id"]
    base = str(http.base_url).rstrip("/")
    assert sent.headers["location"] == f"{base}/2/dm_events/{event_id}"
    one = (await http.get(sent.headers["location"], headers=auth)).json()
    assert one == {"data": {"id": event_id, "event_type": "MessageCreate", "text": "out"}}
    stranger = await bearer(make_user())
    hidden = (await http.get(f"/2/dm_events/{event_id}", headers=stranger)).json()
    assert hidden["errors"][0]["detail"] == f"Could not find dm_event with id: [{event_id}]."
    params = {
        "max_results": "2",
        "expansions": "sender_id",
        "user.fields": "description",
        "dm_event.fields": "sender_id,created_at",
    }
    first = (await http.get("/2/dm_events", params=params, headers=auth)).json()
    assert [e["text"] for e in first["data"]] == ["out", "in 2"]
    assert {u["id"]: u.get("description") for u in first["includes"]["users"]} == {
        me: "",
        them: "loyal",
    }
    assert first["meta"]["result_count"] == 2 and "previous_token" not in first["meta"]
    second = (
        await http.get(
            "/2/dm_events",
            params={**params, "pagination_token": first["meta"]["next_token"]},
            headers=auth,
        )
    ).json()
    assert [e["text"] for e in second["data"]] == ["in 1", "in 0"]
    assert "next_token" not in second["meta"]
    back = (
        await http.get(
            "/2/dm_events",
            params={**params, "pagination_token": second["meta"]["previous_token"]},
            headers=auth,
        )
    ).json()
    assert [e["text"] for e in back["data"]] == ["out", "in 2"]
    assert len(second["meta"]["previous_token"]) >= 16  # X's minLength for these tokens
    bad = await http.get("/2/dm_events", params={"pagination_token": "!!"}, headers=auth)
    assert bad.status_code == 400


async def test_group_conversation_create_send_and_read(
    http: httpx.AsyncClient, make_user: Callable[..., str], bearer: Bearer, admin: Any
) -> None:
    me, a, b, outsider = make_user(), make_user(), make_user(), make_user()
    auth = await bearer(me)
    created = await http.post(
        "/2/dm_conversations",
        json={
            "conversation_type": "Group",
            "participant_ids": [a, b],
            "message": {"text": "welcome, both"},
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    cid = created.json()["data"]["dm_conversation_id"]
    assert cid.isdigit() and "-" not in cid
    more = await http.post(f"/2/dm_conversations/{cid}/messages", json={"text": "2"}, headers=auth)
    assert more.status_code == 201 and more.json()["data"]["dm_conversation_id"] == cid
    member = await bearer(a)
    events = (await http.get(f"/2/dm_conversations/{cid}/dm_events", headers=member)).json()
    assert [e["text"] for e in events["data"]] == ["2", "welcome, both"]
    assert admin("GET", "/conversations")["data"][0]["participant_ids"] == [me, a, b]
    nosy = await bearer(outsider)
    denied = await http.get(f"/2/dm_conversations/{cid}/dm_events", headers=nosy)
    assert denied.status_code == 403
    too_few = await http.post(
        "/2/dm_conversations",
        json={"conversation_type": "Group", "participant_ids": [a], "message": {"text": "x"}},
        headers=auth,
    )
    assert too_few.status_code == 400
    assert too_few.json()["errors"][0]["parameters"] == {"participant_ids": [f'["{a}"]']}
    # 1:1 conversation events by id
    await http.post(f"/2/dm_conversations/with/{a}/messages", json={"text": "1:1"}, headers=auth)
    lo, hi = sorted((me, a), key=int)
    one = (await http.get(f"/2/dm_conversations/{lo}-{hi}/dm_events", headers=auth)).json()
    assert [e["text"] for e in one["data"]] == ["1:1"]


async def test_tier_tables_and_overrides(
    sandbox: SandboxServer,
    http: httpx.AsyncClient,
    make_user: Callable[..., str],
    bearer: Bearer,
    admin: Any,
) -> None:
    uid, other = make_user(), make_user()
    auth = await bearer(uid)
    pro = await http.get("/2/users/me", headers=auth)
    assert pro.headers["x-rate-limit-limit"] == "75"  # Pro: 75 / 15 min per user
    post = await http.post("/2/tweets", json={"text": "tier check"}, headers=auth)
    assert post.headers["x-rate-limit-limit"] == "100"
    assert post.headers["x-app-limit-24hour-limit"] == "10000"
    admin("POST", "/limits", {"tier": "basic"})
    basic = await http.get("/2/users/me", headers=auth)
    # Basic: 250 / 24 h per user is the only window, so it is the x-rate-limit one.
    assert basic.headers["x-rate-limit-limit"] == "250"
    assert int(basic.headers["x-rate-limit-reset"]) - sandbox.state.now() > 80000
    admin("POST", "/limits", {"tier": "free"})
    dm = await http.post(
        f"/2/dm_conversations/with/{other}/messages", json={"text": "hi"}, headers=auth
    )
    assert dm.status_code == 403
    body = dm.json()
    assert body["title"] == "Client Forbidden" and body["reason"] == "client-not-enrolled"
    assert body["type"] == "https://api.x.com/2/problems/client-forbidden"
    assert sandbox.state.sent_dms(uid) == []
    # Free: 17 posts / 24 h per user, and the override wins over the tier.
    assert (await http.post("/2/tweets", json={"text": "free"}, headers=auth)).headers[
        "x-rate-limit-limit"
    ] == "17"
    admin("POST", "/limits", {"tier": "pro", "dm_limit_15min": 1})
    ok = await http.post(
        f"/2/dm_conversations/with/{other}/messages", json={"text": "1"}, headers=auth
    )
    assert ok.status_code == 201 and ok.headers["x-rate-limit-limit"] == "1"
    # The three DM send endpoints count as one bucket.
    lo, hi = sorted((uid, other), key=int)
    again = await http.post(
        f"/2/dm_conversations/{lo}-{hi}/messages", json={"text": "2"}, headers=auth
    )
    assert again.status_code == 429
    assert again.json() == {
        "title": "Too Many Requests",
        "type": "about:blank",
        "status": 429,
        "detail": "Too Many Requests",
    }
    assert again.headers["x-user-limit-24hour-remaining"] == "1439"
    with pytest.raises(ValueError):
        type(sandbox.config)(tier="platinum")


def test_tweepy_reads_the_new_routes(sandbox: SandboxServer, make_user: Callable[..., str]) -> None:
    a, b = make_user("tw_a"), make_user("tw_b")
    client = tweepy_client(sandbox, bearer_token=sandbox.config.app_bearer_token)
    got = client.get_users(ids=[a, b], user_fields=["created_at"])
    assert [u.id for u in got.data] == [int(a), int(b)]
    assert got.data[0].created_at is not None
    name = got.data[1].username
    assert client.get_users(usernames=[name]).data[0].id == int(b)
    with pytest.raises(tweepy.BadRequest):
        client.get_users(ids=["not-a-number"])
