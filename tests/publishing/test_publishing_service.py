"""PublishingService end to end: the real gRPC server, PostgreSQL, the X sandbox over
HTTP and media from a local HTTPS server. Text, images with alt text, video and GIF
through processing, polls, threads that fail part-way and are retried, deletes at X,
idempotent creates, edits and cancels of scheduled posts, and tenant isolation."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from helpers import expect_error
from media_server import GIF, JPEG, MP4, PNG, body
from publishing_helpers import (
    P,
    connect_account,
    events,
    run_until,
    scalar,
    status_is,
    stub,
    text_post,
    ts,
    x_posts,
)

from mktx.v1 import accounts_pb2 as A

INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
def pub(api):
    return stub(api)


@pytest.fixture
async def account(api, merchant, sandbox):
    return await connect_account(api, merchant, sandbox)


async def test_text_post_published_now_with_reply_settings(
    api, pub, merchant, account, sandbox, db
):
    acct, owner = account
    md = api.auth(merchant)
    post = await pub.CreatePost(
        P.CreatePostRequest(
            post=text_post(acct.id, "Spring sale 🌸", reply_settings=P.REPLY_SETTINGS_FOLLOWING)
        ),
        metadata=md,
    )
    assert post.status == P.POST_STATUS_PUBLISHED, post.status_reason
    (part,) = post.parts
    (at_x,) = x_posts(sandbox, owner.id)
    assert (part.x_post_id, part.state) == (at_x.id, P.POST_PART_STATE_PUBLISHED)
    assert part.url == f"https://x.com/{owner.username}/status/{at_x.id}"
    assert part.weighted_length == 14 and part.attempt_count == 1
    assert (at_x.text, at_x.reply_settings) == ("Spring sale 🌸", "following")
    assert at_x.principal.kind == "oauth2"
    assert post.published_time.seconds > 0
    got = await pub.GetPost(P.GetPostRequest(id=post.id), metadata=md)
    assert got == post
    listed = await pub.ListPosts(P.ListPostsRequest(account_id=acct.id), metadata=md)
    assert [p.id for p in listed.posts] == [post.id]
    (published,) = [p for t, p in await events(db, post.id) if t == "post.published"]
    assert published == {
        "post_id": post.id,
        "account_id": acct.id,
        "part_count": 1,
        "x_post_ids": [at_x.id],
        "published_at": published["published_at"],
    }
    # Metrics are read on a schedule from now on.
    assert await scalar(db, "SELECT metrics_next_at > now() FROM posts WHERE id = %s", post.id)


async def test_four_images_with_alt_text(api, pub, merchant, account, sandbox, media_server):
    acct, owner = account
    urls = [
        media_server.add(f"/img{i}-{uuid.uuid4().hex}.jpg", body(JPEG, 20_000 + i))
        for i in range(3)
    ]
    urls.append(media_server.add(f"/img-{uuid.uuid4().hex}.png", body(PNG, 30_000)))
    media = [P.PostMedia(url=u, alt_text=f"Photo {i}") for i, u in enumerate(urls)]
    log_from = len(sandbox.state.request_log)
    post = await pub.CreatePost(
        P.CreatePostRequest(
            post=P.Post(account_id=acct.id, parts=[P.PostPart(text="New in", media=media)])
        ),
        metadata=api.auth(merchant),
    )
    assert post.status == P.POST_STATUS_PUBLISHED, post.status_reason
    (at_x,) = x_posts(sandbox, owner.id)
    assert len(at_x.media_ids) == 4
    # Every media went through the chunked upload (INITIALIZE, APPEND, FINALIZE).
    calls = Counter(sandbox.state.request_log[log_from:])
    assert calls[("POST", "/2/media/upload/initialize")] == 4
    assert calls[("POST", "/2/media/upload")] == 0  # no one-shot upload
    assert calls[("POST", "/2/media/metadata")] == 4  # alt text
    assert [sandbox.state.media[m].alt_text for m in at_x.media_ids] == [
        f"Photo {i}" for i in range(4)
    ]
    assert [m.x_media_id for m in post.parts[0].media] == at_x.media_ids
    assert {m.type for m in post.parts[0].media} == {P.POST_MEDIA_TYPE_IMAGE}
    assert post.parts[0].media[3].size_bytes == 30_000


async def test_video_through_processing_and_a_gif(
    api, pub, merchant, account, sandbox, media_server
):
    acct, owner = account
    md = api.auth(merchant)
    video = media_server.add(f"/v-{uuid.uuid4().hex}.mp4", body(MP4, 300_000))
    post = await pub.CreatePost(
        P.CreatePostRequest(
            post=P.Post(account_id=acct.id, parts=[P.PostPart(media=[P.PostMedia(url=video)])])
        ),
        metadata=md,
    )
    assert post.status == P.POST_STATUS_PUBLISHED, post.status_reason
    (at_x,) = x_posts(sandbox, owner.id)
    rec = sandbox.state.media[at_x.media_ids[0]]
    assert (rec.category, rec.state, rec.media_type) == ("tweet_video", "succeeded", "video/mp4")
    assert len(rec.status_polls) >= 2  # pending -> in_progress -> succeeded
    assert post.parts[0].media[0].type == P.POST_MEDIA_TYPE_VIDEO and at_x.text == ""
    gif = media_server.add(f"/g-{uuid.uuid4().hex}.gif", body(GIF, 50_000))
    post = await pub.CreatePost(
        P.CreatePostRequest(
            post=P.Post(
                account_id=acct.id, parts=[P.PostPart(text="loop", media=[P.PostMedia(url=gif)])]
            )
        ),
        metadata=md,
    )
    assert post.status == P.POST_STATUS_PUBLISHED, post.status_reason
    assert sandbox.state.media[x_posts(sandbox, owner.id)[-1].media_ids[0]].category == "tweet_gif"


async def test_publishing_outlives_a_short_deadline(
    api, pub, merchant, account, sandbox, db, media_server
):
    acct, owner = account
    video = media_server.add(f"/slow-{uuid.uuid4().hex}.mp4", body(MP4, 50_000))
    post = await pub.CreatePost(
        P.CreatePostRequest(
            post=P.Post(
                account_id=acct.id,
                parts=[P.PostPart(text="long clip", media=[P.PostMedia(url=video)])],
            )
        ),
        metadata=api.auth(merchant),
        timeout=1.5,  # X's video processing takes longer
    )
    assert post.status == P.POST_STATUS_PUBLISHING
    # The service finishes it after answering.
    await run_until(api.app.deps, status_is(db, post.id, "PUBLISHED"))
    assert [p.text for p in x_posts(sandbox, owner.id)] == ["long clip"]


async def test_video_processing_failure_fails_the_part_with_xs_reason(
    api, pub, merchant, account, sandbox, media_server, db
):
    acct, owner = account
    video = media_server.add(f"/bad-{uuid.uuid4().hex}.mp4", body(MP4, 10_000))
    with sandbox.state.lock:
        sandbox.state.media_fail_next += 1
    post = await pub.CreatePost(
        P.CreatePostRequest(
            post=P.Post(
                account_id=acct.id, parts=[P.PostPart(text="clip", media=[P.PostMedia(url=video)])]
            )
        ),
        metadata=api.auth(merchant),
    )
    assert post.status == P.POST_STATUS_FAILED
    assert post.parts[0].state == P.POST_PART_STATE_FAILED
    assert "Unsupported video format" in post.parts[0].error
    assert post.status_reason == post.parts[0].error
    assert x_posts(sandbox, owner.id) == []
    assert [t for t, _ in await events(db, post.id)] == ["post.failed"]
    (_, failed) = (await events(db, post.id))[0]
    assert failed["failed_part"] == 0 and "Unsupported video format" in failed["reason"]
    # Retried, the media is fetched and processed again (X's failure was for that upload).
    retried = await pub.RetryPost(P.RetryPostRequest(id=post.id), metadata=api.auth(merchant))
    assert retried.status == P.POST_STATUS_PUBLISHED, retried.status_reason
    assert len(x_posts(sandbox, owner.id)) == 1


async def test_poll(api, pub, merchant, account, sandbox):
    acct, owner = account
    post = await pub.CreatePost(
        P.CreatePostRequest(
            post=P.Post(
                account_id=acct.id,
                parts=[
                    P.PostPart(
                        text="Which colour?",
                        poll=P.PostPoll(options=["Red", "Blue", "Green"], duration_minutes=90),
                    )
                ],
            )
        ),
        metadata=api.auth(merchant),
    )
    assert post.status == P.POST_STATUS_PUBLISHED
    (at_x,) = x_posts(sandbox, owner.id)
    assert [o["label"] for o in at_x.poll["options"]] == ["Red", "Blue", "Green"]
    assert at_x.poll["duration_minutes"] == 90
    assert list(post.parts[0].poll.options) == ["Red", "Blue", "Green"]


async def test_thread_of_five_fails_at_part_three_then_retry_continues(
    api, pub, merchant, account, sandbox, db
):
    acct, owner = account
    md = api.auth(merchant)
    # X refuses a text the account posted recently: part 3 repeats an earlier post.
    blocker = (
        (
            await pub.CreatePost(
                P.CreatePostRequest(post=text_post(acct.id, "3/ the middle")), metadata=md
            )
        )
        .parts[0]
        .x_post_id
    )
    texts = [f"{i}/ thread" for i in (1, 2)] + ["3/ the middle"] + [f"{i}/ thread" for i in (4, 5)]
    post = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(acct.id, *texts, reply_to_post_id=blocker)), metadata=md
    )
    assert post.status == P.POST_STATUS_PARTIALLY_PUBLISHED
    states = [p.state for p in post.parts]
    assert (
        states
        == [P.POST_PART_STATE_PUBLISHED] * 2
        + [P.POST_PART_STATE_FAILED]
        + [P.POST_PART_STATE_PENDING] * 2
    )
    assert "duplicate content" in post.parts[2].error
    assert post.status_reason.startswith("part 3 of 5: ")
    first, second = (post.parts[0].x_post_id, post.parts[1].x_post_id)
    by_id = {p.id: p for p in x_posts(sandbox, owner.id)}
    assert by_id[first].reply_to == blocker and by_id[second].reply_to == first
    kinds = [t for t, _ in await events(db, post.id)]
    assert kinds == ["post.partially_published"]
    (_, partial) = (await events(db, post.id))[0]
    assert partial["failed_part"] == 2
    # Editing is only for scheduled posts.
    await expect_error(
        pub.UpdatePost(
            P.UpdatePostRequest(
                post=P.Post(id=post.id), update_mask=FieldMask(paths=["reply_settings"])
            ),
            metadata=md,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )
    # The blocker goes away; the retry continues from part 3 and reposts nothing.
    sandbox.state.posts[blocker].deleted = True
    await expect_error(
        pub.RetryPost(P.RetryPostRequest(id=post.id, etag='"stale"'), metadata=md),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    done = await pub.RetryPost(P.RetryPostRequest(id=post.id, etag=post.etag), metadata=md)
    assert done.status == P.POST_STATUS_PUBLISHED, done.status_reason
    assert [p.x_post_id for p in done.parts[:2]] == [first, second]
    assert [p.attempt_count for p in done.parts] == [1, 1, 2, 1, 1]
    chain = [p.x_post_id for p in done.parts]
    thread = [p for p in x_posts(sandbox, owner.id) if p.id in chain]
    assert len(thread) == 5 and len({p.text for p in thread}) == 5
    by_id = {p.id: p for p in thread}
    for prev, cur in itertools.pairwise(chain):
        assert by_id[cur].reply_to == prev
    assert [t for t, _ in await events(db, post.id)] == [
        "post.partially_published",
        "post.published",
    ]
    await expect_error(
        pub.RetryPost(P.RetryPostRequest(id=post.id), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )


async def test_delete_post_removes_every_part_at_x(api, pub, merchant, account, sandbox, db):
    acct, owner = account
    md = api.auth(merchant)
    post = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(acct.id, "one", "two")), metadata=md
    )
    assert post.status == P.POST_STATUS_PUBLISHED
    await expect_error(
        pub.DeletePost(P.DeletePostRequest(id=post.id, etag='"old"'), metadata=md),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    await pub.DeletePost(P.DeletePostRequest(id=post.id, etag=post.etag), metadata=md)
    assert x_posts(sandbox, owner.id) == []
    assert {p.deleted for p in x_posts(sandbox, owner.id, include_deleted=True)} == {True}
    got = await pub.GetPost(P.GetPostRequest(id=post.id), metadata=md)
    assert got.status == P.POST_STATUS_DELETED
    assert {p.state for p in got.parts} == {P.POST_PART_STATE_DELETED}
    await pub.DeletePost(P.DeletePostRequest(id=post.id), metadata=md)  # nothing more to do
    assert [t for t, _ in await events(db, post.id)] == ["post.published", "post.deleted"]
    # One audit row, written with the DELETED status (the no-op repeat writes none).
    audited = await (
        await db.execute(
            "SELECT method, resource_id, user_id FROM audit_log WHERE merchant_id = %s",
            (merchant,),
        )
    ).fetchall()
    assert [tuple(r) for r in audited] == [
        ("/mktx.v1.PublishingService/DeletePost", post.id, "tester")
    ]
    listed = await pub.ListPosts(P.ListPostsRequest(), metadata=md)
    assert post.id not in [p.id for p in listed.posts]
    listed = await pub.ListPosts(P.ListPostsRequest(show_deleted=True), metadata=md)
    assert post.id in [p.id for p in listed.posts]
    await expect_error(
        pub.RefreshPostMetrics(P.RefreshPostMetricsRequest(id=post.id), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )


async def test_request_id_makes_create_idempotent(api, pub, merchant, account, sandbox):
    acct, owner = account
    md = api.auth(merchant)
    req = P.CreatePostRequest(post=text_post(acct.id, "only once"), request_id="post-1")
    first = await pub.CreatePost(req, metadata=md)
    again = await pub.CreatePost(req, metadata=md)
    assert again.id == first.id and again.status == P.POST_STATUS_PUBLISHED
    assert len(x_posts(sandbox, owner.id)) == 1


async def test_scheduled_post_edit_cancel_and_publish(api, pub, merchant, account, sandbox, db):
    acct, owner = account
    md = api.auth(merchant)
    at = datetime.now(UTC) + timedelta(hours=1)
    post = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(acct.id, "later", publish_time=ts(at))), metadata=md
    )
    assert (
        post.status == P.POST_STATUS_SCHEDULED and post.parts[0].state == P.POST_PART_STATE_PENDING
    )
    assert post.publish_time.seconds == int(at.timestamp())
    (kind, scheduled) = (await events(db, post.id))[0]
    assert kind == "post.scheduled" and scheduled["publish_time"].startswith(at.isoformat()[:19])
    updated = await pub.UpdatePost(
        P.UpdatePostRequest(
            post=P.Post(
                id=post.id, parts=[P.PostPart(text="later, edited"), P.PostPart(text="and more")]
            ),
            update_mask=FieldMask(paths=["parts"]),
            etag=post.etag,
        ),
        metadata=md,
    )
    assert [p.text for p in updated.parts] == ["later, edited", "and more"]
    assert updated.etag != post.etag
    # The etag the first edit replaced is stale now: edit and cancel are ABORTED.
    await expect_error(
        pub.UpdatePost(
            P.UpdatePostRequest(
                post=P.Post(id=post.id, reply_settings=P.REPLY_SETTINGS_FOLLOWING),
                update_mask=FieldMask(paths=["reply_settings"]),
                etag=post.etag,
            ),
            metadata=md,
        ),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    await expect_error(
        pub.CancelScheduledPost(
            P.CancelScheduledPostRequest(id=post.id, etag=post.etag), metadata=md
        ),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    unchanged = await pub.GetPost(P.GetPostRequest(id=post.id), metadata=md)
    assert (unchanged.status, unchanged.reply_settings, unchanged.etag) == (
        P.POST_STATUS_SCHEDULED,
        post.reply_settings,
        updated.etag,
    )
    await expect_error(
        pub.UpdatePost(
            P.UpdatePostRequest(
                post=P.Post(id=post.id, parts=[P.PostPart(text="x" * 281)]),
                update_mask=FieldMask(paths=["parts"]),
            ),
            metadata=md,
        ),
        INVALID,
        "VALIDATION_ERROR",
    )
    # Brought forward to now, the worker publishes it.
    now_post = await pub.UpdatePost(
        P.UpdatePostRequest(post=P.Post(id=post.id), update_mask=FieldMask(paths=["publish_time"])),
        metadata=md,
    )
    assert now_post.status == P.POST_STATUS_SCHEDULED
    await run_until(api.app.deps, status_is(db, post.id, "PUBLISHED"))
    assert [p.text for p in x_posts(sandbox, owner.id)] == ["later, edited", "and more"]
    # Cancel: only while scheduled.
    other = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(acct.id, "never", publish_time=ts(at))), metadata=md
    )
    cancelled = await pub.CancelScheduledPost(
        P.CancelScheduledPostRequest(id=other.id, etag=other.etag), metadata=md
    )
    assert cancelled.status == P.POST_STATUS_CANCELLED
    await expect_error(
        pub.CancelScheduledPost(P.CancelScheduledPostRequest(id=other.id), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_STATE_TRANSITION",
    )
    assert [t for t, _ in await events(db, other.id)] == ["post.scheduled", "post.cancelled"]
    await run_until(api.app.deps, status_is(db, other.id, "CANCELLED"))
    assert "never" not in [p.text for p in x_posts(sandbox, owner.id)]
    listed = await pub.ListPosts(P.ListPostsRequest(status=P.POST_STATUS_CANCELLED), metadata=md)
    assert [p.id for p in listed.posts] == [other.id]


async def test_list_posts_pages_and_time_range(api, pub, merchant, account, db):
    acct, _ = account
    md = api.auth(merchant)
    base = datetime.now(UTC) + timedelta(days=1)
    ids = []
    for i in range(5):
        p = await pub.CreatePost(
            P.CreatePostRequest(
                post=text_post(acct.id, f"p{i}", publish_time=ts(base + timedelta(hours=i)))
            ),
            metadata=md,
        )
        ids.append(p.id)
    seen, token = [], ""
    while True:
        page = await pub.ListPosts(P.ListPostsRequest(page_size=2, page_token=token), metadata=md)
        seen += [p.id for p in page.posts]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids[::-1]
    ranged = await pub.ListPosts(
        P.ListPostsRequest(
            start_time=ts(base + timedelta(hours=1)), end_time=ts(base + timedelta(hours=3))
        ),
        metadata=md,
    )
    assert [p.id for p in ranged.posts] == [ids[2], ids[1]]
    await expect_error(
        pub.ListPosts(
            P.ListPostsRequest(page_size=2, page_token=page.next_page_token or "junk"), metadata=md
        ),
        INVALID,
        "VALIDATION_ERROR",
    )


async def test_list_posts_by_account_and_status_with_tokens_bound_to_the_filters(
    api, pub, merchant, account, sandbox
):
    acct, _ = account
    other, _ = await connect_account(api, merchant, sandbox)
    md = api.auth(merchant)
    base = datetime.now(UTC) + timedelta(days=2)
    mine, theirs = [], []
    for i in range(3):
        for a, ids in ((acct, mine), (other, theirs)):
            p = await pub.CreatePost(
                P.CreatePostRequest(
                    post=text_post(a.id, f"{a.id} {i}", publish_time=ts(base + timedelta(hours=i)))
                ),
                metadata=md,
            )
            ids.append(p.id)
    cancelled = await pub.CancelScheduledPost(
        P.CancelScheduledPostRequest(id=theirs[0]), metadata=md
    )
    assert cancelled.status == P.POST_STATUS_CANCELLED
    first = await pub.ListPosts(P.ListPostsRequest(account_id=acct.id, page_size=2), metadata=md)
    assert [p.id for p in first.posts] == mine[:0:-1] and first.next_page_token
    rest = await pub.ListPosts(
        P.ListPostsRequest(account_id=acct.id, page_size=2, page_token=first.next_page_token),
        metadata=md,
    )
    assert [p.id for p in rest.posts] == [mine[0]] and rest.next_page_token == ""
    scheduled = await pub.ListPosts(
        P.ListPostsRequest(account_id=other.id, status=P.POST_STATUS_SCHEDULED), metadata=md
    )
    assert [p.id for p in scheduled.posts] == theirs[:0:-1]
    # A token is good only for the filters it was issued for.
    for changed in (
        P.ListPostsRequest(account_id=other.id, page_size=2, page_token=first.next_page_token),
        P.ListPostsRequest(page_size=2, page_token=first.next_page_token),
        P.ListPostsRequest(
            account_id=acct.id,
            status=P.POST_STATUS_SCHEDULED,
            page_size=2,
            page_token=first.next_page_token,
        ),
    ):
        await expect_error(pub.ListPosts(changed, metadata=md), INVALID, "VALIDATION_ERROR")


async def test_oauth1_account_posts_with_oauth1(api, pub, merchant, sandbox):
    acct, owner = await connect_account(api, merchant, sandbox, method=A.AUTH_METHOD_OAUTH1)
    post = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(acct.id, "signed")), metadata=api.auth(merchant)
    )
    assert post.status == P.POST_STATUS_PUBLISHED
    assert x_posts(sandbox, owner.id)[0].principal.kind == "oauth1"


async def test_token_is_refreshed_before_expiry(api, pub, merchant, account, db):
    acct, _ = account
    await db.execute(
        "UPDATE accounts SET token_expires_at = now() + interval '1 minute' WHERE id = %s",
        (acct.id,),
    )
    post = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(acct.id, "fresh token")), metadata=api.auth(merchant)
    )
    assert post.status == P.POST_STATUS_PUBLISHED
    assert await scalar(
        db,
        "SELECT token_expires_at > now() + interval '1 hour' FROM accounts WHERE id = %s",
        acct.id,
    )


async def test_revoked_token_marks_the_account_error_and_fails_the_post(
    api, pub, merchant, account, sandbox, db
):
    acct, owner = account
    sandbox.state.revoke_user_tokens(owner.id)
    post = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(acct.id, "too late")), metadata=api.auth(merchant)
    )
    assert post.status == P.POST_STATUS_FAILED
    assert "reconnect" in post.status_reason
    assert await scalar(db, "SELECT status FROM accounts WHERE id = %s", acct.id) == "ERROR"
    await expect_error(
        pub.CreatePost(
            P.CreatePostRequest(post=text_post(acct.id, "again")), metadata=api.auth(merchant)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "ACCOUNT_NOT_ACTIVE",
    )


async def test_another_merchants_post_and_account_are_not_found(
    api, pub, merchant, other_merchant, account
):
    acct, _ = account
    post = await pub.CreatePost(
        P.CreatePostRequest(
            post=text_post(acct.id, "mine", publish_time=ts(datetime.now(UTC) + timedelta(hours=2)))
        ),
        metadata=api.auth(merchant),
    )
    md = api.auth(other_merchant)
    calls = [
        pub.GetPost(P.GetPostRequest(id=post.id), metadata=md),
        pub.UpdatePost(
            P.UpdatePostRequest(
                post=P.Post(id=post.id), update_mask=FieldMask(paths=["reply_settings"])
            ),
            metadata=md,
        ),
        pub.DeletePost(P.DeletePostRequest(id=post.id), metadata=md),
        pub.CancelScheduledPost(P.CancelScheduledPostRequest(id=post.id), metadata=md),
        pub.RetryPost(P.RetryPostRequest(id=post.id), metadata=md),
        pub.RefreshPostMetrics(P.RefreshPostMetricsRequest(id=post.id), metadata=md),
        pub.GetPostMetrics(P.GetPostMetricsRequest(id=post.id), metadata=md),
        pub.CreatePost(P.CreatePostRequest(post=text_post(acct.id, "theirs")), metadata=md),
        pub.ValidatePost(
            P.ValidatePostRequest(account_id=acct.id, parts=[P.PostPart(text="x")]), metadata=md
        ),
    ]
    for call in calls:
        await expect_error(call, grpc.StatusCode.NOT_FOUND, "RESOURCE_NOT_FOUND")
    listed = await pub.ListPosts(P.ListPostsRequest(), metadata=md)
    assert list(listed.posts) == []
    assert (
        await pub.GetPost(P.GetPostRequest(id=post.id), metadata=api.auth(merchant))
    ).status == P.POST_STATUS_SCHEDULED
