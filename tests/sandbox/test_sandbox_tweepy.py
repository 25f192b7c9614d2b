"""Fidelity check: tweepy (a widely used X client) against the sandbox.

tweepy hard-codes https://api.twitter.com, so a requests transport adapter
forwards its calls to the sandbox, keeping the Host and scheme it signed (the
way a reverse proxy would). The sandbox itself is not bent to tweepy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import tweepy
from sandbox_helpers import tweepy_client

from mktx_grpc.sandbox import SandboxServer
from mktx_grpc.x import OAuth1Credentials


def _tweepy(sandbox: SandboxServer, **auth: str) -> tweepy.Client:
    return tweepy_client(sandbox, **auth)


async def test_tweepy_oauth1_user_calls(
    sandbox: SandboxServer,
    make_user: Callable[..., str],
    connect_oauth1: Callable[[str], Awaitable[OAuth1Credentials]],
) -> None:
    me_id, other = make_user("tw"), make_user("other")
    creds = await connect_oauth1(me_id)
    client = _tweepy(
        sandbox,
        consumer_key=sandbox.config.consumer_key,
        consumer_secret=sandbox.config.consumer_secret,
        access_token=creds.token,
        access_token_secret=creds.token_secret,
    )
    me = client.get_me(user_auth=True)
    assert me.data.id == int(me_id)
    dm = client.create_direct_message(
        participant_id=other, text="hello from tweepy", user_auth=True
    )
    assert dm.data["dm_event_id"].isdigit()
    assert sandbox.state.sent_dms(me_id)[0].text == "hello from tweepy"
    events = client.get_direct_message_events(participant_id=other, user_auth=True)
    assert events.data[0].text == "hello from tweepy"
    post = client.create_tweet(text="tweepy post", user_auth=True)
    assert post.data["text"] == "tweepy post"
    assert client.delete_tweet(post.data["id"], user_auth=True).data["deleted"] is True
    # tweepy's own error mapping sees X-shaped errors
    with pytest.raises(tweepy.Forbidden):
        client.create_tweet(text="x" * 300, user_auth=True)
    bad = _tweepy(
        sandbox,
        consumer_key=sandbox.config.consumer_key,
        consumer_secret="wrong",
        access_token=creds.token,
        access_token_secret=creds.token_secret,
    )
    with pytest.raises(tweepy.Unauthorized):
        bad.get_me(user_auth=True)


async def test_tweepy_oauth2_bearer_user_token(
    sandbox: SandboxServer,
    make_user: Callable[..., str],
    connect_oauth2: Callable[..., Awaitable[Any]],
) -> None:
    uid = make_user("tw2")
    token = await connect_oauth2(uid)
    client = _tweepy(sandbox, bearer_token=token.access_token)
    assert client.get_me(user_auth=False).data.id == int(uid)


async def test_tweepy_publishing_and_group_dms(
    sandbox: SandboxServer,
    make_user: Callable[..., str],
    connect_oauth1: Callable[[str], Awaitable[OAuth1Credentials]],
) -> None:
    me_id, a, b = make_user("tw_pub"), make_user("tw_a"), make_user("tw_b")
    creds = await connect_oauth1(me_id)
    client = _tweepy(
        sandbox,
        consumer_key=sandbox.config.consumer_key,
        consumer_secret=sandbox.config.consumer_secret,
        access_token=creds.token,
        access_token_secret=creds.token_secret,
    )
    first = client.create_tweet(text="tweepy thread 1/2", user_auth=True)
    second = client.create_tweet(
        text="tweepy thread 2/2",
        in_reply_to_tweet_id=first.data["id"],
        reply_settings="mentionedUsers",
        user_auth=True,
    )
    polled = client.create_tweet(
        text="tweepy poll", poll_options=["yes", "no"], poll_duration_minutes=30, user_auth=True
    )
    got = client.get_tweet(
        second.data["id"],
        tweet_fields=["created_at", "conversation_id", "in_reply_to_user_id", "reply_settings"],
        expansions=["author_id"],
        user_auth=True,
    )
    assert got.data.conversation_id == int(first.data["id"])
    assert got.data.in_reply_to_user_id == int(me_id)
    assert got.data.reply_settings == "mentionedUsers"
    assert got.includes["users"][0].id == int(me_id)
    timeline = client.get_users_tweets(me_id, max_results=5, user_auth=True)
    assert [t.id for t in timeline.data] == [
        int(polled.data["id"]),
        int(second.data["id"]),
        int(first.data["id"]),
    ]
    assert timeline.meta["result_count"] == 3
    assert timeline.meta["newest_id"] == polled.data["id"]
    many = client.get_tweets([first.data["id"], "1"], user_auth=True)
    assert [t.id for t in many.data] == [int(first.data["id"])]
    assert many.errors[0]["resource_id"] == "1"
    with pytest.raises(tweepy.Forbidden, match="duplicate content"):
        client.create_tweet(text="tweepy thread 1/2", user_auth=True)
    group = client.create_direct_message_conversation(
        participant_ids=[a, b], text="hello group", user_auth=True
    )
    cid = group.data["dm_conversation_id"]
    events = client.get_direct_message_events(
        dm_conversation_id=cid,
        expansions=["sender_id"],
        dm_event_fields=["sender_id", "created_at"],
        user_auth=True,
    )
    assert events.data[0].text == "hello group"
    assert events.data[0].sender_id == int(me_id)
    assert events.includes["users"][0].id == int(me_id)
