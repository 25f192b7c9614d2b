from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import pytest

from mktx_grpc.sandbox import SandboxServer
from mktx_grpc.x import OAuth1Credentials, XBadRequest, XClient, XForbidden, XNotFound

Connect = Callable[[str], Awaitable[OAuth1Credentials]]


async def test_user_lookups(
    x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    uid, other = make_user("me"), make_user("them")
    user = x.as_user(await connect_oauth1(uid))
    them = await user.user(other)
    assert them.id == other
    assert (await user.user_by_username(them.username)).id == other
    assert "followers_count" in them.public_metrics
    with pytest.raises(XNotFound):
        await user.user("999")
    with pytest.raises(XNotFound):
        await user.user_by_username("nobody_here")
    with pytest.raises(XBadRequest):
        await user.user_by_username("not-valid!")


async def test_send_dm_and_read_back(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    a, b = make_user("merchant"), make_user("customer")
    user = x.as_user(await connect_oauth1(a))
    first = await user.send_dm(b, text="hello")
    lo, hi = sorted((a, b), key=int)
    assert first.dm_conversation_id == f"{lo}-{hi}"
    assert first.dm_event_id.isdigit()
    second = await user.send_dm(conversation_id=first.dm_conversation_id, text="again")
    assert int(second.dm_event_id) > int(first.dm_event_id)
    sent = sandbox.state.sent_dms(a)
    assert [d.text for d in sent] == ["hello", "again"]
    assert sent[0].principal is not None and sent[0].principal.kind == "oauth1"
    page = await user.dm_events(participant_id=b)
    assert [e.text for e in page.events] == ["again", "hello"]
    assert page.events[0].sender_id == a
    assert page.events[0].created_at is not None
    page1 = await user.dm_events(max_results=1)
    assert page1.result_count == 1 and page1.next_token
    page2 = await user.dm_events(max_results=1, pagination_token=page1.next_token)
    assert page2.events[0].id == first.dm_event_id


async def test_dm_errors(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    a, closed = make_user(), make_user(accepts_dms=False)
    user = x.as_user(await connect_oauth1(a))
    with pytest.raises(XForbidden):
        await user.send_dm(closed, text="hi")
    with pytest.raises(XBadRequest):
        await user.send_dm(a, text="x" * 10001)
    with pytest.raises(XForbidden):
        await user.send_dm(conversation_id="1-2", text="not mine")
    with pytest.raises(ValueError):
        await user.send_dm(closed)


async def test_one_shot_image_then_dm_with_media(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    a, b = make_user(), make_user()
    user = x.as_user(await connect_oauth1(a))
    media = await user.upload_media(
        b"\x89PNG" + os.urandom(2000), media_type="image/png", media_category="dm_image"
    )
    assert media.state == "succeeded" and media.size == 2004
    await user.send_dm(b, text="look", media_id=media.id)
    assert sandbox.state.sent_dms(a)[0].media_id == media.id
    page = await user.dm_events(participant_id=b)
    assert page.events[0].media_keys == (media.media_key,)
    # media belongs to its uploader
    other = x.as_user(await connect_oauth1(b))
    with pytest.raises(XBadRequest):
        await other.send_dm(a, media_id=media.id)


async def test_chunked_video_upload_polls_status_honouring_check_after(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    user = x.as_user(await connect_oauth1(make_user()))
    data = os.urandom(250_000)
    media = await user.upload_media(
        data, media_type="video/mp4", media_category="dm_video", chunk_size=100_000
    )
    assert media.state == "succeeded"
    rec = sandbox.state.media[media.id]
    assert rec.chunks == {0: 100_000, 1: 100_000, 2: 50_000}
    polls = rec.status_polls
    assert len(polls) == sandbox.config.media_processing_steps  # never polled early
    gaps = [b - a for a, b in zip([rec.created_at, *polls], polls, strict=False)][1:]
    assert all(g >= sandbox.config.media_check_after_secs - 0.05 for g in gaps)


async def test_posts_create_lookup_metrics_delete(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    a, b = make_user(), make_user()
    author = x.as_user(await connect_oauth1(a))
    reader = x.as_user(await connect_oauth1(b))
    post = await author.create_post("launch day")
    reply = await author.create_post("thread 2/2", reply_to=post.id)
    sandbox.state.posts[post.id].public_metrics["like_count"] = 7
    sandbox.state.posts[post.id].non_public_metrics["url_link_clicks"] = 3
    got = await author.get_posts([post.id, reply.id], non_public_metrics=True)
    assert [p.id for p in got] == [post.id, reply.id]
    assert got[0].public_metrics["like_count"] == 7
    assert (
        got[0].non_public_metrics is not None and got[0].non_public_metrics["url_link_clicks"] == 3
    )
    theirs = await reader.get_posts([post.id], non_public_metrics=True)
    assert theirs[0].non_public_metrics is None  # not their post
    with pytest.raises(XForbidden):
        await author.create_post("x" * 281)
    with pytest.raises(XForbidden):
        await reader.delete_post(post.id)
    assert await author.delete_post(post.id)
    assert await author.get_posts([post.id]) == []
