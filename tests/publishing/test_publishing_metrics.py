"""Post metrics over time: read from X on demand and by the worker's schedule, stored
as a history, summed over a thread, non-public counters only for the account's own
posts of the last 30 days, lookups of up to 100 ids, and X's 429 deferring them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from publishing_helpers import P, connect_account, events, scalar, stub, text_post, ts

from mktx_grpc.sandbox.faults import FaultRule
from mktx_grpc.worker.publishing import PublishOptions, refresh_due_metrics


@pytest.fixture
def pub(api):
    return stub(api)


@pytest.fixture
async def account(api, merchant, sandbox):
    return await connect_account(api, merchant, sandbox)


def grow(sandbox, x_post_id: str, **add: int) -> None:
    post = sandbox.state.posts[x_post_id]
    names = {
        "impressions": [
            ("public_metrics", "impression_count"),
            ("non_public_metrics", "impression_count"),
        ],
        "likes": [("public_metrics", "like_count")],
        "reposts": [("public_metrics", "retweet_count")],
        "bookmarks": [("public_metrics", "bookmark_count")],
        "url_clicks": [("non_public_metrics", "url_link_clicks")],
        "profile_clicks": [("non_public_metrics", "user_profile_clicks")],
    }
    with sandbox.state.lock:
        for name, n in add.items():
            for group, key in names[name]:
                getattr(post, group)[key] = getattr(post, group).get(key, 0) + n


async def _due_now(db, *post_ids) -> None:
    await db.execute(
        "UPDATE posts SET metrics_next_at = now() WHERE id = ANY(%s::uuid[])", (list(post_ids),)
    )


async def test_metrics_are_refreshed_into_a_history(api, pub, merchant, account, sandbox, db):
    acct, _ = account
    md = api.auth(merchant)
    post = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(acct.id, "first", "second")), metadata=md
    )
    first, second = (p.x_post_id for p in post.parts)
    empty = await pub.GetPostMetrics(P.GetPostMetricsRequest(id=post.id), metadata=md)
    assert not empty.HasField("total") and list(empty.history) == []
    grow(sandbox, first, impressions=100, likes=3, url_clicks=2, profile_clicks=1)
    grow(sandbox, second, impressions=40, likes=1, reposts=2)
    one = await pub.RefreshPostMetrics(P.RefreshPostMetricsRequest(id=post.id), metadata=md)
    assert (one.total.impressions, one.total.likes, one.total.reposts) == (140, 4, 2)
    assert (one.total.url_clicks, one.total.profile_clicks) == (2, 1)
    assert [(p.part_index, p.x_post_id, p.values.likes) for p in one.parts] == [
        (0, first, 3),
        (1, second, 1),
    ]
    assert len(one.history) == 1 and one.history[0].values == one.total
    soon = datetime.now(UTC) + timedelta(minutes=15)
    assert abs(one.next_refresh_time.ToDatetime(tzinfo=UTC) - soon) < timedelta(minutes=1)
    # The worker reads it again when it is due.
    grow(sandbox, first, likes=5, bookmarks=1)
    await _due_now(db, post.id)
    await refresh_due_metrics(api.app.deps)
    two = await pub.GetPostMetrics(P.GetPostMetricsRequest(id=post.id), metadata=md)
    assert [h.values.likes for h in two.history] == [4, 9]
    assert (
        two.total.bookmarks == 1
        and two.history[0].observe_time.ToDatetime() < two.history[1].observe_time.ToDatetime()
    )
    got = await pub.GetPost(P.GetPostRequest(id=post.id), metadata=md)
    assert got.metrics == two.total and got.metrics_time == two.observe_time
    since = await pub.GetPostMetrics(
        P.GetPostMetricsRequest(id=post.id, start_time=two.history[1].observe_time), metadata=md
    )
    assert [h.values.likes for h in since.history] == [9]
    refreshed = [p for t, p in await events(db, post.id) if t == "post.metrics_refreshed"]
    assert [p["likes"] for p in refreshed] == [4, 9]
    assert set(refreshed[0]) == {
        "post_id",
        "account_id",
        "impressions",
        "likes",
        "reposts",
        "replies",
        "quotes",
        "bookmarks",
        "url_clicks",
        "profile_clicks",
        "observed_at",
    }
    # Not due again yet: nothing more is read.
    await refresh_due_metrics(api.app.deps)
    assert (
        len((await pub.GetPostMetrics(P.GetPostMetricsRequest(id=post.id), metadata=md)).history)
        == 2
    )


async def test_lookups_are_batched_and_private_metrics_stop_after_30_days(
    api, pub, merchant, account, sandbox, db
):
    acct, _ = account
    md = api.auth(merchant)
    ids = [
        (
            await pub.CreatePost(
                P.CreatePostRequest(post=text_post(acct.id, f"batch {i}")), metadata=md
            )
        ).id
        for i in range(4)
    ]
    old = ids[-1]
    # One of them is 31 days old: X gives its public metrics only.
    await db.execute(
        "UPDATE post_parts SET published_at = now() - interval '31 days' WHERE post_id = %s", (old,)
    )
    await _due_now(db, *ids)
    before = len(sandbox.state.request_log)
    await refresh_due_metrics(api.app.deps, PublishOptions(metrics_batch=100))
    lookups = [r for r in sandbox.state.request_log[before:] if r == ("GET", "/2/tweets")]
    assert len(lookups) == 2  # the three recent posts in one lookup, the old one in another
    for pid in ids[:-1]:
        m = await pub.GetPostMetrics(P.GetPostMetricsRequest(id=pid), metadata=md)
        assert m.total.HasField("url_clicks") and m.next_refresh_time.seconds > 0
    aged = await pub.GetPostMetrics(P.GetPostMetricsRequest(id=old), metadata=md)
    assert len(aged.history) == 1 and not aged.total.HasField("url_clicks")
    assert not aged.HasField("next_refresh_time")  # past 30 days: no longer read
    assert await scalar(db, "SELECT metrics_next_at FROM posts WHERE id = %s", old) is None


async def test_xs_rate_limit_defers_the_accounts_readings_to_the_reset(
    api, pub, merchant, account, sandbox, db
):
    acct, _ = account
    md = api.auth(merchant)
    post = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(acct.id, "popular")), metadata=md
    )
    await _due_now(db, post.id)
    sandbox.state.add_fault_rule(
        FaultRule(id="metrics-429", kind="rate_limit", route="GET /2/tweets", reset_after=120)
    )
    try:
        await refresh_due_metrics(api.app.deps)
    finally:
        sandbox.state.clear_faults()
    wait = await scalar(db, "SELECT metrics_next_at - now() FROM posts WHERE id = %s", post.id)
    assert timedelta(seconds=100) < wait < timedelta(seconds=130)
    assert (
        list((await pub.GetPostMetrics(P.GetPostMetricsRequest(id=post.id), metadata=md)).history)
        == []
    )
    # A scheduled post has no metrics to read.
    later = await pub.CreatePost(
        P.CreatePostRequest(
            post=text_post(
                acct.id, "not yet", publish_time=ts(datetime.now(UTC) + timedelta(hours=1))
            )
        ),
        metadata=md,
    )
    assert await scalar(db, "SELECT metrics_next_at FROM posts WHERE id = %s", later.id) is None
