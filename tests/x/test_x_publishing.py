"""The X client's publishing calls against the sandbox: threads with reply settings,
polls and quotes, the user timeline, alt text, chunked uploads from a file, batched
lookups with metrics, and X's duplicate-content refusal."""

from __future__ import annotations

import io
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mktx_grpc.sandbox import SandboxServer
from mktx_grpc.x import OAuth1Credentials, XClient, XForbidden
from mktx_grpc.x.models import Post
from mktx_grpc.x.posts import is_duplicate_refusal

Connect = Callable[[str], Awaitable[OAuth1Credentials]]


async def test_thread_poll_quote_and_timeline(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    uid = make_user("pub")
    user = x.as_user(await connect_oauth1(uid))
    first = await user.create_post("one", reply_settings="following")
    second = await user.create_post("two", reply_to=first.id)
    poll = await user.create_post(
        "which?", poll_options=["red", "blue"], poll_duration_minutes=30, reply_to=second.id
    )
    quote = await user.create_post("look", quote_tweet_id=first.id)
    stored = {p.id: p for p in sandbox.state.iter_posts(uid)}
    assert stored[first.id].reply_settings == "following"
    assert stored[poll.id].poll is not None and stored[poll.id].poll["duration_minutes"] == 30
    page = await user.user_posts(uid, max_results=5)
    assert [p.id for p in page.posts] == [quote.id, poll.id, second.id, first.id]
    by_id = {p.id: p for p in page.posts}
    assert by_id[second.id].reply_to == first.id and by_id[poll.id].reply_to == second.id
    assert by_id[quote.id].quote_of == first.id and by_id[quote.id].reply_to is None
    assert by_id[first.id].created_at is not None
    newer = await user.user_posts(uid, since_id=second.id)
    assert {p.id for p in newer.posts} == {poll.id, quote.id}
    with pytest.raises(ValueError):
        await user.user_posts(uid, max_results=101)
    with pytest.raises(ValueError):
        await user.create_post("x", reply_settings="nobody")


async def test_duplicate_text_is_refused_and_recognised(
    x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    user = x.as_user(await connect_oauth1(make_user("dup")))
    await user.create_post("same words")
    with pytest.raises(XForbidden) as info:
        await user.create_post("same words")
    assert is_duplicate_refusal(info.value)
    assert not is_duplicate_refusal(XForbidden("X API 403", detail="not allowed"))


async def test_media_from_a_file_in_chunks_with_alt_text(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    uid = make_user("media")
    user = x.as_user(await connect_oauth1(uid))
    data = os.urandom(2_500_000)
    media = await user.upload_media(
        io.BytesIO(data), media_type="video/mp4", media_category="tweet_video", chunk_size=1_000_000
    )
    assert media.state == "succeeded"
    rec = sandbox.state.media[media.id]
    assert rec.size == len(data) and sorted(rec.chunks) == [0, 1, 2]
    image = await user.upload_media(
        io.BytesIO(b"\xff\xd8\xff" + os.urandom(1000)),
        media_type="image/jpeg",
        media_category="tweet_image",
    )
    await user.set_alt_text(image.id, "A red bicycle")
    assert sandbox.state.media[image.id].alt_text == "A red bicycle"
    with pytest.raises(ValueError):
        await user.set_alt_text(image.id, "")
    post = await user.create_post("ride", media_ids=[image.id])
    (got,) = (await user.user_posts(uid)).posts
    assert got.id == post.id and got.has_media


async def test_batched_lookup_with_private_metrics_for_own_posts(
    sandbox: SandboxServer,
    x: XClient,
    make_user: Callable[..., str],
    connect_oauth1: Connect,
    admin: Any,
) -> None:
    me, other = make_user("me"), make_user("other")
    mine = x.as_user(await connect_oauth1(me))
    theirs = x.as_user(await connect_oauth1(other))
    own = [await mine.create_post(f"post {i}") for i in range(3)]
    foreign = await theirs.create_post("not yours")
    admin("POST", f"/posts/{own[0].id}/metrics", {"add": {"likes": 4, "url_clicks": 2}})
    got = await mine.get_posts([*(p.id for p in own), foreign.id, "1"], non_public_metrics=True)
    by_id = {p.id: p for p in got}
    assert set(by_id) == {*(p.id for p in own), foreign.id}  # the unknown id is left out
    assert by_id[own[0].id].public_metrics["like_count"] == 4
    assert by_id[own[0].id].non_public_metrics == {
        "impression_count": 0,
        "url_link_clicks": 2,
        "user_profile_clicks": 0,
        "engagements": 6,
    }
    assert by_id[foreign.id].non_public_metrics is None  # not the caller's post
    with pytest.raises(ValueError):
        await mine.get_posts([str(i) for i in range(101)])


def test_post_from_json_takes_the_long_text_and_references() -> None:
    p = Post.from_json(
        {
            "id": "9",
            "text": "start…",
            "note_tweet": {"text": "start and the rest"},
            "referenced_tweets": [{"type": "replied_to", "id": "7"}, {"type": "quoted", "id": "5"}],
            "attachments": {"media_keys": ["3_1"]},
        }
    )
    assert (p.text, p.reply_to, p.quote_of, p.has_media) == ("start and the rest", "7", "5", True)
    plain = Post.from_json({"id": "1", "text": "hi"})
    assert (plain.reply_to, plain.quote_of, plain.has_media) == (None, None, False)
