"""Publishing fidelity: creating, refusing, deleting and reading posts, timelines,
media processing and alt text, and the admin metrics and post read-back."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from typing import Any

import httpx
from sandbox_helpers import Bearer

from mktx_grpc.sandbox import SandboxServer
from mktx_grpc.sandbox.posts import weighted_length

INVALID = "https://api.x.com/2/problems/invalid-request"


async def _image(http: httpx.AsyncClient, auth: dict[str, str]) -> str:
    resp = await http.post(
        "/2/media/upload",
        json={"media": base64.b64encode(os.urandom(100)).decode(), "media_category": "tweet_image"},
        headers=auth,
    )
    assert resp.status_code == 200, resp.text
    assert "processing_info" not in resp.json()["data"]  # images are done at once
    return str(resp.json()["data"]["id"])


async def _video(http: httpx.AsyncClient, auth: dict[str, str], size: int = 1000) -> str:
    init = await http.post(
        "/2/media/upload/initialize",
        json={"media_type": "video/mp4", "total_bytes": size, "media_category": "tweet_video"},
        headers=auth,
    )
    mid = str(init.json()["data"]["id"])
    await http.post(
        f"/2/media/upload/{mid}/append",
        files={"media": ("c", os.urandom(size), "application/octet-stream")},
        data={"segment_index": "0"},
        headers=auth,
    )
    return mid


def _forbidden(detail: str) -> dict[str, Any]:
    return {"title": "Forbidden", "detail": detail, "type": "about:blank", "status": 403}


async def test_create_post_with_every_option_and_read_it_back(
    sandbox: SandboxServer,
    http: httpx.AsyncClient,
    make_user: Callable[..., str],
    bearer: Bearer,
    admin: Any,
) -> None:
    me, friend = make_user("pub"), make_user("friend")
    auth = await bearer(me)
    mid = await _image(http, auth)
    first = await http.post(
        "/2/tweets",
        json={
            "text": "launch",
            "media": {"media_ids": [mid], "tagged_user_ids": [friend]},
            "reply_settings": "following",
        },
        headers=auth,
    )
    assert first.status_code == 201, first.text
    post_id = first.json()["data"]["id"]
    base = str(http.base_url).rstrip("/")
    assert first.headers["location"] == f"{base}/2/tweets/{post_id}"
    assert first.json()["data"]["edit_history_tweet_ids"] == [post_id]
    poll = await http.post(
        "/2/tweets",
        json={"text": "which?", "poll": {"options": ["red", "blue"], "duration_minutes": 60}},
        headers=auth,
    )
    quote = await http.post(
        "/2/tweets", json={"text": "see this", "quote_tweet_id": post_id}, headers=auth
    )
    reply = await http.post(
        "/2/tweets",
        json={"text": "thread 2", "reply": {"in_reply_to_tweet_id": post_id}},
        headers=auth,
    )
    assert {poll.status_code, quote.status_code, reply.status_code} == {201}
    fields = (
        "created_at,author_id,conversation_id,in_reply_to_user_id,referenced_tweets,"
        "attachments,public_metrics,reply_settings"
    )
    ids = ",".join([post_id, poll.json()["data"]["id"], reply.json()["data"]["id"], "1"])
    got = (
        await http.get(
            "/2/tweets",
            params={
                "ids": ids,
                "tweet.fields": fields,
                "expansions": "author_id,attachments.media_keys",
            },
            headers=auth,
        )
    ).json()
    launch, poll_post, thread = got["data"]
    assert launch["attachments"]["media_keys"] == [f"3_{mid}"]
    assert launch["reply_settings"] == "following" and launch["author_id"] == me
    assert launch["conversation_id"] == post_id and "in_reply_to_user_id" not in launch
    assert poll_post["attachments"]["poll_ids"] and poll_post["reply_settings"] == "everyone"
    assert thread["referenced_tweets"] == [{"type": "replied_to", "id": post_id}]
    assert thread["conversation_id"] == post_id and thread["in_reply_to_user_id"] == me
    assert set(launch["public_metrics"]) >= {"like_count", "impression_count", "bookmark_count"}
    assert [u["id"] for u in got["includes"]["users"]] == [me]
    assert set(got["includes"]["users"][0]) == {"id", "name", "username"}
    assert got["includes"]["media"] == [{"media_key": f"3_{mid}", "type": "photo"}]
    assert got["errors"] == [
        {
            "value": "1",
            "detail": "Could not find tweet with ids: [1].",
            "title": "Not Found Error",
            "resource_type": "tweet",
            "parameter": "ids",
            "resource_id": "1",
            "type": "https://api.x.com/2/problems/resource-not-found",
        }
    ]
    single = (
        await http.get(
            f"/2/tweets/{quote.json()['data']['id']}",
            params={"tweet.fields": "referenced_tweets"},
            headers=auth,
        )
    ).json()
    assert single["data"]["referenced_tweets"] == [{"type": "quoted", "id": post_id}]
    missing = (await http.get("/2/tweets/12345", headers=auth)).json()
    assert missing["errors"][0]["detail"] == "Could not find tweet with id: [12345]."
    # admin read-back per user, newest first, with what was stored
    mine = admin("GET", f"/users/{me}/posts")["data"]
    assert [p["text"] for p in mine] == ["thread 2", "see this", "which?", "launch"]
    assert mine[-1]["tagged_user_ids"] == [friend] and mine[-1]["media_ids"] == [mid]
    assert sandbox.state.users[me].tweet_count == 4


async def test_post_refusals_have_xs_status_and_body(
    http: httpx.AsyncClient, make_user: Callable[..., str], bearer: Bearer, admin: Any
) -> None:
    me, other = make_user("strict"), make_user("other")
    auth, other_auth = await bearer(me), await bearer(other)
    assert (
        await http.post("/2/tweets", json={"text": "same words"}, headers=auth)
    ).status_code == 201
    dup = await http.post("/2/tweets", json={"text": "same words"}, headers=auth)
    assert dup.status_code == 403
    assert dup.headers["content-type"] == "application/problem+json"
    assert dup.json() == _forbidden("You are not allowed to create a Tweet with duplicate content.")
    # Someone else may say the same thing.
    assert (
        await http.post("/2/tweets", json={"text": "same words"}, headers=other_auth)
    ).status_code == 201

    long_text = "a" * 281
    too_long = await http.post("/2/tweets", json={"text": long_text}, headers=auth)
    assert too_long.status_code == 403
    assert too_long.json()["title"] == "Forbidden"
    assert too_long.json()["detail"].startswith("Your Tweet text is too long.")
    # weighted: 140 CJK characters weigh 280, a URL 23 whatever its length
    assert (
        await http.post("/2/tweets", json={"text": "日" * 140}, headers=auth)
    ).status_code == 201
    assert (
        await http.post("/2/tweets", json={"text": "日" * 141}, headers=auth)
    ).status_code == 403
    assert weighted_length("https://example.com/" + "x" * 100) == 23
    assert weighted_length("👩‍👩‍👧‍👦") == 2
    admin("PATCH", f"/users/{me}", {"long_post": True})
    assert (await http.post("/2/tweets", json={"text": long_text}, headers=auth)).status_code == 201

    video = await _video(http, auth)
    await http.post(f"/2/media/upload/{video}/finalize", headers=auth)  # pending: unprocessed
    foreign = await _image(http, other_auth)
    for bad in ("999999", foreign, video):
        resp = await http.post(
            "/2/tweets", json={"text": f"media {bad}", "media": {"media_ids": [bad]}}, headers=auth
        )
        assert resp.status_code == 400, bad
        assert resp.json() == {
            "errors": [
                {"parameters": {"media.media_ids": [bad]}, "message": "Your media IDs are invalid."}
            ],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": INVALID,
        }
    mine = await _image(http, auth)
    both = await http.post(
        "/2/tweets",
        json={
            "text": "poll and pic",
            "media": {"media_ids": [mine]},
            "poll": {"options": ["a", "b"], "duration_minutes": 10},
        },
        headers=auth,
    )
    assert both.status_code == 400 and both.json()["type"] == INVALID
    assert set(both.json()["errors"][0]["parameters"]) == {"media", "poll"}
    for poll in (
        {"options": ["only one"], "duration_minutes": 10},
        {"options": ["a", "b"], "duration_minutes": 4},
        {"options": ["a", "x" * 26], "duration_minutes": 10},
    ):
        assert (
            await http.post("/2/tweets", json={"text": "p", "poll": poll}, headers=auth)
        ).status_code == 400
    reply = await http.post(
        "/2/tweets", json={"text": "hello?", "reply": {"in_reply_to_tweet_id": "42"}}, headers=auth
    )
    assert reply.status_code == 403
    assert reply.json() == _forbidden(
        "You attempted to reply to a Tweet that is deleted or not visible to you."
    )
    quote = await http.post("/2/tweets", json={"text": "q", "quote_tweet_id": "42"}, headers=auth)
    assert quote.status_code == 403 and quote.json()["title"] == "Forbidden"
    settings = await http.post(
        "/2/tweets", json={"text": "s", "reply_settings": "friends"}, headers=auth
    )
    assert settings.status_code == 400
    assert settings.json()["errors"][0]["parameters"] == {"reply_settings": ["friends"]}


async def test_delete_only_by_author_and_deleted_is_gone_everywhere(
    http: httpx.AsyncClient, make_user: Callable[..., str], bearer: Bearer, app_auth: dict[str, str]
) -> None:
    me, other = make_user(), make_user()
    auth, other_auth = await bearer(me), await bearer(other)
    pid = (await http.post("/2/tweets", json={"text": "oops"}, headers=auth)).json()["data"]["id"]
    theirs = await http.delete(f"/2/tweets/{pid}", headers=other_auth)
    assert theirs.status_code == 403 and theirs.json()["title"] == "Forbidden"
    app_only = await http.delete(f"/2/tweets/{pid}", headers=app_auth)
    assert app_only.status_code == 403  # user context only
    gone = await http.delete(f"/2/tweets/{pid}", headers=auth)
    assert gone.status_code == 200 and gone.json() == {"data": {"deleted": True}}
    lookup = (await http.get("/2/tweets", params={"ids": pid}, headers=auth)).json()
    assert "data" not in lookup and lookup["errors"][0]["resource_id"] == pid
    timeline = (await http.get(f"/2/users/{me}/tweets", headers=auth)).json()
    assert timeline == {"meta": {"result_count": 0}}
    # deleting frees the text for reuse (no duplicate refusal)
    assert (await http.post("/2/tweets", json={"text": "oops"}, headers=auth)).status_code == 201


async def test_private_metrics_only_for_the_author_and_only_for_30_days(
    sandbox: SandboxServer,
    http: httpx.AsyncClient,
    make_user: Callable[..., str],
    bearer: Bearer,
    app_auth: dict[str, str],
    admin: Any,
) -> None:
    me, reader = make_user(), make_user()
    auth = await bearer(me)
    pid = (await http.post("/2/tweets", json={"text": "metrics"}, headers=auth)).json()["data"][
        "id"
    ]
    grown = admin(
        "POST",
        f"/posts/{pid}/metrics",
        {
            "add": {
                "impressions": 100,
                "likes": 5,
                "reposts": 2,
                "replies": 1,
                "quotes": 1,
                "bookmarks": 3,
                "url_clicks": 4,
                "profile_clicks": 6,
            }
        },
    )
    assert grown["public_metrics"]["impression_count"] == 100
    assert grown["non_public_metrics"]["url_link_clicks"] == 4
    admin("POST", f"/posts/{pid}/metrics", {"add": {"likes": 2}})
    fields = {"ids": pid, "tweet.fields": "public_metrics,non_public_metrics,organic_metrics"}
    own = (await http.get("/2/tweets", params=fields, headers=auth)).json()
    assert "errors" not in own
    post = own["data"][0]
    assert post["public_metrics"]["like_count"] == 7
    assert post["non_public_metrics"]["user_profile_clicks"] == 6
    assert post["organic_metrics"] == {
        "impression_count": 100,
        "like_count": 7,
        "reply_count": 1,
        "retweet_count": 2,
        "url_link_clicks": 4,
        "user_profile_clicks": 6,
    }
    for headers in (await bearer(reader), app_auth):
        other = (await http.get("/2/tweets", params=fields, headers=headers)).json()
        assert "non_public_metrics" not in other["data"][0]
        assert other["data"][0]["public_metrics"]["like_count"] == 7
        assert [e["field"] for e in other["errors"]] == ["non_public_metrics", "organic_metrics"]
        assert other["errors"][0]["title"] == "Field Authorization Error"
    sandbox.state.advance(31 * 86400)
    auth = await bearer(me)  # the old access token expired meanwhile
    old = (await http.get("/2/tweets", params=fields, headers=auth)).json()
    assert "organic_metrics" not in old["data"][0] and len(old["errors"]) == 2
    bad = await http.post(f"/_sandbox/posts/{pid}/metrics", json={"add": {"hearts": 1}})
    assert bad.status_code == 400


async def test_user_timeline_pages_newest_first(
    sandbox: SandboxServer, http: httpx.AsyncClient, make_user: Callable[..., str], bearer: Bearer
) -> None:
    me = make_user()
    auth = await bearer(me)
    ids = []
    for i in range(7):
        ids.append(
            (await http.post("/2/tweets", json={"text": f"post {i}"}, headers=auth)).json()["data"][
                "id"
            ]
        )
        sandbox.state.advance(60)
    first = (
        await http.get(
            f"/2/users/{me}/tweets",
            params={"max_results": 5, "tweet.fields": "created_at"},
            headers=auth,
        )
    ).json()
    assert [p["id"] for p in first["data"]] == ids[::-1][:5]
    assert first["meta"]["newest_id"] == ids[6] and first["meta"]["oldest_id"] == ids[2]
    assert first["meta"]["result_count"] == 5 and "previous_token" not in first["meta"]
    rest = (
        await http.get(
            f"/2/users/{me}/tweets",
            params={"max_results": 5, "pagination_token": first["meta"]["next_token"]},
            headers=auth,
        )
    ).json()
    assert [p["id"] for p in rest["data"]] == [ids[1], ids[0]]
    assert "next_token" not in rest["meta"] and rest["meta"]["previous_token"]
    since = (
        await http.get(f"/2/users/{me}/tweets", params={"since_id": ids[4]}, headers=auth)
    ).json()
    assert [p["id"] for p in since["data"]] == [ids[6], ids[5]]
    start = first["data"][1]["created_at"]
    window = (
        await http.get(f"/2/users/{me}/tweets", params={"start_time": start}, headers=auth)
    ).json()
    assert [p["id"] for p in window["data"]] == [ids[6], ids[5]]
    small = await http.get(f"/2/users/{me}/tweets", params={"max_results": 4}, headers=auth)
    assert small.status_code == 400
    assert small.json()["errors"][0]["parameters"] == {"max_results": ["4"]}


async def test_video_processing_states_failure_and_alt_text(
    sandbox: SandboxServer,
    http: httpx.AsyncClient,
    make_user: Callable[..., str],
    bearer: Bearer,
    admin: Any,
) -> None:
    sandbox.config.media_processing_steps = 3
    auth = await bearer(make_user())
    mid = await _video(http, auth)
    fin = (await http.post(f"/2/media/upload/{mid}/finalize", headers=auth)).json()["data"]
    assert fin["processing_info"] == {
        "state": "pending",
        "check_after_secs": 1,
        "progress_percent": 0,
    }
    status = {"command": "STATUS", "media_id": mid}
    early = (await http.get("/2/media/upload", params=status, headers=auth)).json()["data"]
    assert early["processing_info"]["state"] == "pending"  # polled before check_after_secs
    seen = []
    for _ in range(3):
        sandbox.state.advance(1)
        info = (await http.get("/2/media/upload", params=status, headers=auth)).json()["data"][
            "processing_info"
        ]
        seen.append((info["state"], info["progress_percent"], info.get("check_after_secs")))
    assert seen == [("in_progress", 33, 1), ("in_progress", 66, 1), ("succeeded", 100, None)]

    broken = await _video(http, auth)
    admin("POST", f"/media/{broken}/fail")
    await http.post(f"/2/media/upload/{broken}/finalize", headers=auth)
    for _ in range(3):
        sandbox.state.advance(1)
        info = (
            await http.get(
                "/2/media/upload", params={"command": "STATUS", "media_id": broken}, headers=auth
            )
        ).json()["data"]["processing_info"]
    assert info["state"] == "failed"
    assert info["error"] == {
        "code": 1,
        "name": "InvalidMedia",
        "message": "Unsupported video format",
    }
    refused = await http.post(
        "/2/tweets", json={"text": "v", "media": {"media_ids": [broken]}}, headers=auth
    )
    assert refused.status_code == 400
    admin("POST", "/media/fail_next", {"count": 1})
    third = await _video(http, auth)
    await http.post(f"/2/media/upload/{third}/finalize", headers=auth)
    assert admin("GET", f"/media/{third}")["fail_processing"] is True

    ok = await http.post(
        "/2/media/metadata",
        json={"id": mid, "metadata": {"alt_text": {"text": "A red shoe"}}},
        headers=auth,
    )
    assert ok.status_code == 200
    assert ok.json() == {
        "data": {"id": mid, "associated_metadata": {"alt_text": {"text": "A red shoe"}}}
    }
    assert admin("GET", f"/media/{mid}")["alt_text"] == "A red shoe"
    too_long = await http.post(
        "/2/media/metadata",
        json={"id": mid, "metadata": {"alt_text": {"text": "x" * 1001}}},
        headers=auth,
    )
    assert too_long.status_code == 400
    stranger = await bearer(make_user())
    foreign = await http.post(
        "/2/media/metadata",
        json={"id": mid, "metadata": {"alt_text": {"text": "mine now"}}},
        headers=stranger,
    )
    assert foreign.status_code == 404
