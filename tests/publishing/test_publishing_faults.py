"""Exactly once through X's failures, with the sandbox's faults: an answer lost after X
accepted the post (5xx, dropped connection, stall), a post that shows up only after
the call timed out, a timeline X cannot read for a while, a thread hit part-way,
rate limits waited out or deferred to the reset, the grace for late scheduled posts,
and two publishers racing for the same posts."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from publishing_helpers import (
    FAST,
    P,
    connect_account,
    events,
    make_due,
    run_until,
    scalar,
    status_is,
    stub,
    text_post,
    ts,
    x_posts,
)

from mktx_grpc.deps import close_deps, make_deps
from mktx_grpc.sandbox.faults import FaultRule
from mktx_grpc.worker.publishing import publish_due_posts

_rules = iter(range(1_000_000))


def fault(sandbox, kind: str, route: str = "POST /2/tweets", **kw) -> FaultRule:
    return sandbox.state.add_fault_rule(
        FaultRule(id=f"t{next(_rules)}", kind=kind, route=route, **kw)
    )


@pytest.fixture(autouse=True)
def no_faults_left(sandbox):
    yield
    sandbox.state.clear_faults()


@pytest.fixture
def pub(api):
    return stub(api)


@pytest.fixture
async def account(api, merchant, sandbox):
    return await connect_account(api, merchant, sandbox)


@pytest.fixture
async def quick_deps(api):
    """Deps whose X calls time out after 0.3 s (the test's faults outlast them)."""
    settings = api.settings.replace(x_request_timeout=0.3, x_default_deadline=2.0)
    deps = make_deps(settings, api.app.deps.pool)
    yield deps
    await close_deps(deps)


async def _scheduled(pub, md, account_id, *texts) -> str:
    """A post scheduled a moment ahead (the tests make it due themselves)."""
    at = datetime.now(UTC) + timedelta(minutes=5)
    post = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(account_id, *texts, publish_time=ts(at))), metadata=md
    )
    return post.id


async def test_an_answer_lost_after_x_accepted_publishes_exactly_once(
    api, pub, merchant, account, sandbox, db
):
    acct, owner = account
    md = api.auth(merchant)
    for i, kind in enumerate(("accept_then_error", "accept_then_drop")):
        fault(sandbox, kind)
        post = await pub.CreatePost(
            P.CreatePostRequest(post=text_post(acct.id, f"exactly once {i}")), metadata=md
        )
        assert post.status == P.POST_STATUS_PUBLISHED, (kind, post.status_reason)
        matching = [p for p in x_posts(sandbox, owner.id) if p.text == f"exactly once {i}"]
        assert len(matching) == 1, kind
        assert post.parts[0].x_post_id == matching[0].id
        assert [t for t, _ in await events(db, post.id)] == ["post.published"]


async def test_a_stalled_answer_is_resolved_in_the_timeline(
    api, pub, merchant, account, sandbox, db, quick_deps
):
    acct, owner = account
    post_id = await _scheduled(pub, api.auth(merchant), acct.id, "stalled")
    await make_due(db, post_id)
    fault(sandbox, "accept_then_stall", seconds=1.0)
    await publish_due_posts(quick_deps, FAST)
    assert await scalar(db, "SELECT status FROM posts WHERE id = %s", post_id) == "PUBLISHED"
    (at_x,) = x_posts(sandbox, owner.id)
    assert (
        await scalar(db, "SELECT x_post_id FROM post_parts WHERE post_id = %s", post_id) == at_x.id
    )


async def test_a_post_x_shows_only_later_is_looked_up_again_before_any_resend(
    api, pub, merchant, account, sandbox, db, quick_deps
):
    acct, owner = account
    post_id = await _scheduled(pub, api.auth(merchant), acct.id, "slow to appear")
    await make_due(db, post_id)
    # X takes 1 s before it stores the post; the call has given up after 0.3 s.
    fault(sandbox, "timeout", seconds=1.0)
    await publish_due_posts(quick_deps, FAST)
    part = await (
        await db.execute("SELECT state, attempts FROM post_parts WHERE post_id = %s", (post_id,))
    ).fetchone()
    assert part == ("PUBLISHING", 1)  # armed, outcome unknown: not sent again yet
    reason = await scalar(db, "SELECT status_reason FROM posts WHERE id = %s", post_id)
    assert "checking X before anything is sent again" in reason
    deadline = time.monotonic() + 10
    while not x_posts(sandbox, owner.id):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await run_until(quick_deps, status_is(db, post_id, "PUBLISHED"))
    assert len(x_posts(sandbox, owner.id)) == 1
    assert await scalar(db, "SELECT attempts FROM post_parts WHERE post_id = %s", post_id) == 1


async def test_a_timeline_x_cannot_read_keeps_the_part_armed_until_it_can(
    api, pub, merchant, account, sandbox, db
):
    acct, owner = account
    post_id = await _scheduled(pub, api.auth(merchant), acct.id, "look it up later")
    await make_due(db, post_id)
    fault(sandbox, "accept_then_drop")
    # Every attempt of the lookup right after fails (fewer than open the breaker).
    fault(sandbox, "error", route="GET /2/users/:id/tweets", count=3)
    await publish_due_posts(api.app.deps, FAST)
    part = await (
        await db.execute("SELECT state, attempts FROM post_parts WHERE post_id = %s", (post_id,))
    ).fetchone()
    assert part == ("PUBLISHING", 1)  # armed, never resent blindly
    reason = await scalar(db, "SELECT status_reason FROM posts WHERE id = %s", post_id)
    assert "is unknown" in reason and "checking X before anything is sent again" in reason
    await make_due(db, post_id)
    await run_until(api.app.deps, status_is(db, post_id, "PUBLISHED"))
    assert [p.text for p in x_posts(sandbox, owner.id)] == ["look it up later"]
    assert await scalar(db, "SELECT attempts FROM post_parts WHERE post_id = %s", post_id) == 1


async def test_a_thread_hit_at_part_three_goes_on_exactly_once(
    api, pub, merchant, account, sandbox, db
):
    acct, owner = account
    fault(sandbox, "accept_then_error", after=2)
    post = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(acct.id, "a1", "a2", "a3", "a4")),
        metadata=api.auth(merchant),
    )
    assert post.status == P.POST_STATUS_PUBLISHED, post.status_reason
    assert Counter(p.text for p in x_posts(sandbox, owner.id)) == {
        "a1": 1,
        "a2": 1,
        "a3": 1,
        "a4": 1,
    }
    chain = [p.x_post_id for p in post.parts]
    by_id = {p.id: p for p in x_posts(sandbox, owner.id)}
    assert [by_id[c].reply_to for c in chain[1:]] == chain[:-1]


async def test_rate_limits_are_waited_out_or_deferred_to_the_reset(
    api, pub, merchant, account, sandbox, db
):
    acct, owner = account
    md = api.auth(merchant)
    # A reset within the call's deadline is waited for.
    fault(sandbox, "rate_limit", reset_after=0.5)
    post = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(acct.id, "after a short wait")), metadata=md
    )
    assert post.status == P.POST_STATUS_PUBLISHED
    # Beyond it, the post is SCHEDULED again until the reset; nothing was sent.
    fault(sandbox, "rate_limit", reset_after=60)
    post = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(acct.id, "after the reset")), metadata=md
    )
    assert post.status == P.POST_STATUS_SCHEDULED
    assert post.status_reason.startswith("X rate limit reached; waiting until")
    assert post.parts[0].state == P.POST_PART_STATE_PENDING
    due = await scalar(db, "SELECT due_at - now() FROM posts WHERE id = %s", post.id)
    assert timedelta(seconds=50) < due < timedelta(seconds=65)
    assert "after the reset" not in [p.text for p in x_posts(sandbox, owner.id)]
    await publish_due_posts(api.app.deps, FAST)  # not due yet
    assert await scalar(db, "SELECT status FROM posts WHERE id = %s", post.id) == "SCHEDULED"
    await make_due(db, post.id)  # the reset has come
    await run_until(api.app.deps, status_is(db, post.id, "PUBLISHED"))
    assert [p.text for p in x_posts(sandbox, owner.id)].count("after the reset") == 1
    assert [t for t, _ in await events(db, post.id)] == ["post.published"]


async def test_xs_own_per_user_post_limit_defers_the_post_to_its_reset(
    api, pub, merchant, account, sandbox, db
):
    """Not an injected fault: the sandbox's per-user window for POST /2/tweets (two
    posts per 15 minutes here) answers the third post with X's 429 and its
    x-rate-limit-reset; the post waits for that reset, nothing is sent meanwhile, and
    it goes out once when it is due."""
    acct, owner = account
    md = api.auth(merchant)
    cfg = sandbox.state.config
    saved = cfg.post_limit_15min
    cfg.post_limit_15min = 2
    try:
        for text in ("within 1", "within 2"):
            got = await pub.CreatePost(
                P.CreatePostRequest(post=text_post(acct.id, text)), metadata=md
            )
            assert got.status == P.POST_STATUS_PUBLISHED, got.status_reason
        over = await pub.CreatePost(
            P.CreatePostRequest(post=text_post(acct.id, "over the limit")), metadata=md
        )
        assert over.status == P.POST_STATUS_SCHEDULED
        assert over.status_reason.startswith("X rate limit reached; waiting until")
        assert over.parts[0].state == P.POST_PART_STATE_PENDING
        due = await scalar(db, "SELECT due_at - now() FROM posts WHERE id = %s", over.id)
        assert timedelta(minutes=14) < due <= timedelta(minutes=15, seconds=5)
        await publish_due_posts(api.app.deps, FAST)  # not due yet: nothing is sent
        assert [p.text for p in x_posts(sandbox, owner.id)] == ["within 1", "within 2"]
    finally:
        cfg.post_limit_15min = saved  # the tier's 100 per 15 minutes again
    await make_due(db, over.id)
    await run_until(api.app.deps, status_is(db, over.id, "PUBLISHED"))
    assert [p.text for p in x_posts(sandbox, owner.id)] == [
        "within 1",
        "within 2",
        "over the limit",
    ]
    assert [t for t, _ in await events(db, over.id)] == ["post.published"]


async def test_delete_stopped_by_x_part_way_goes_on_with_the_rest(
    api, pub, merchant, account, sandbox, db
):
    """DeletePost deletes the last part first; when X fails on the second DELETE, the
    part already deleted stays recorded as deleted, the post is not DELETED yet, and
    calling again deletes the rest. A post that never reached X is DELETED without
    calling X."""
    acct, owner = account
    md = api.auth(merchant)
    post = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(acct.id, "del 1/3", "del 2/3", "del 3/3")), metadata=md
    )
    assert post.status == P.POST_STATUS_PUBLISHED
    fault(sandbox, "error", route="DELETE /2/tweets/:id", after=1, count=None)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await pub.DeletePost(P.DeletePostRequest(id=post.id), metadata=md)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    sandbox.state.clear_faults()
    assert [p.text for p in x_posts(sandbox, owner.id)] == ["del 1/3", "del 2/3"]
    half = await pub.GetPost(P.GetPostRequest(id=post.id), metadata=md)
    assert half.status == P.POST_STATUS_PUBLISHED
    assert [p.state for p in half.parts] == [P.POST_PART_STATE_PUBLISHED] * 2 + [
        P.POST_PART_STATE_DELETED
    ]
    await pub.DeletePost(P.DeletePostRequest(id=post.id), metadata=md)
    assert x_posts(sandbox, owner.id) == []
    done = await pub.GetPost(P.GetPostRequest(id=post.id), metadata=md)
    assert done.status == P.POST_STATUS_DELETED
    assert {p.state for p in done.parts} == {P.POST_PART_STATE_DELETED}
    assert [t for t, _ in await events(db, post.id)] == ["post.published", "post.deleted"]
    # Never at X: deleted here only.
    later = await _scheduled(pub, md, acct.id, "never sent")
    before = len(sandbox.state.request_log)
    await pub.DeletePost(P.DeletePostRequest(id=later), metadata=md)
    assert [r for r in sandbox.state.request_log[before:] if r[0] == "DELETE"] == []
    gone = await pub.GetPost(P.GetPostRequest(id=later), metadata=md)
    assert gone.status == P.POST_STATUS_DELETED
    assert [t for t, _ in await events(db, later)] == ["post.scheduled", "post.deleted"]


async def test_a_post_late_by_more_than_the_grace_fails_with_the_reason(
    api, pub, merchant, account, sandbox, db
):
    acct, owner = account
    md = api.auth(merchant)
    late = await _scheduled(pub, md, acct.id, "two hours late")
    on_time = await _scheduled(pub, md, acct.id, "ten minutes late")
    # The service was down at their times.
    await db.execute(
        "UPDATE posts SET due_at = now() - interval '2 hours 5 minutes', ready_at = now() - interval '2 hours 5 minutes' WHERE id = %s",
        (late,),
    )
    await db.execute(
        "UPDATE posts SET due_at = now() - interval '10 minutes', ready_at = now() - interval '10 minutes' WHERE id = %s",
        (on_time,),
    )
    await run_until(api.app.deps, status_is(db, late, "FAILED"))
    await run_until(api.app.deps, status_is(db, on_time, "PUBLISHED"))
    got = await pub.GetPost(P.GetPostRequest(id=late), metadata=md)
    assert got.status_reason.startswith(
        "missed its publish time by 2 h 5 min, more than the grace of 1 h"
    )
    (kind, payload) = (await events(db, late))[-1]
    assert (kind, payload["failed_part"]) == ("post.failed", 0)
    assert [p.text for p in x_posts(sandbox, owner.id)] == ["ten minutes late"]
    retried = await pub.RetryPost(P.RetryPostRequest(id=late), metadata=md)
    assert retried.status == P.POST_STATUS_PUBLISHED


async def test_two_publishers_racing_publish_each_post_once(
    api, pub, merchant, account, sandbox, db
):
    acct, owner = account
    md = api.auth(merchant)
    ids = [await _scheduled(pub, md, acct.id, f"race {i}", f"race {i} b") for i in range(12)]
    await db.execute(
        "UPDATE posts SET ready_at = now(), due_at = now() WHERE id = ANY(%s::uuid[])", (ids,)
    )
    other = make_deps(api.settings, api.app.deps.pool)
    try:
        opts = FAST
        await asyncio.gather(publish_due_posts(api.app.deps, opts), publish_due_posts(other, opts))
    finally:
        await close_deps(other)
    assert (
        await scalar(
            db,
            "SELECT count(*) FROM posts WHERE id = ANY(%s::uuid[]) AND status = 'PUBLISHED'",
            ids,
        )
        == 12
    )
    texts = Counter(p.text for p in x_posts(sandbox, owner.id))
    assert len(texts) == 24 and set(texts.values()) == {1}
