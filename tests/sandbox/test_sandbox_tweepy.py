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
