"""domain/publishing.py: the status machine, post rules with the account's limit and
probed media, the schedule and grace rules, outcome classification, recognising our
post in X's answer, and the metrics schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mktx_grpc.core.errors import (
    FailedPrecondition,
    QuotaExceeded,
    UpstreamError,
)
from mktx_grpc.domain import publishing as d
from mktx_grpc.domain.post_rules import MediaKind, Poll

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
JPEG = b"\xff\xd8\xff" + bytes(61)
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(40)


def _post(*parts: d.PartDraft, **kw) -> d.PostDraft:
    return d.PostDraft(account_id="a", parts=parts, **kw)


def _fields(violations) -> dict[str, str]:
    return {v.field: v.description for v in violations}


# ------------------------------------------------------------------ status machine


@pytest.mark.parametrize(
    ("status", "action", "ok"),
    [
        ("SCHEDULED", "update", True),
        ("PUBLISHING", "update", False),
        ("PUBLISHED", "update", False),
        ("SCHEDULED", "cancel", True),
        ("FAILED", "cancel", False),
        ("FAILED", "retry", True),
        ("PARTIALLY_PUBLISHED", "retry", True),
        ("PUBLISHED", "retry", False),
        ("SCHEDULED", "retry", False),
        ("PUBLISHING", "delete", False),
        ("PUBLISHED", "delete", True),
        ("DELETED", "delete", True),
        ("CANCELLED", "delete", True),
        ("SCHEDULED", "refresh_metrics", False),
        ("PARTIALLY_PUBLISHED", "refresh_metrics", True),
    ],
)
def test_transitions(status, action, ok):
    if ok:
        d.check_transition(status, action)
    else:
        with pytest.raises(FailedPrecondition) as info:
            d.check_transition(status, action)
        assert info.value.reason == "INVALID_STATE_TRANSITION"


def test_status_after_failure_depends_on_what_is_at_x():
    assert d.status_after_failure(0) == d.FAILED
    assert d.status_after_failure(2) == d.PARTIALLY_PUBLISHED


# ------------------------------------------------------------------ rules


def test_check_post_names_each_part_and_uses_the_accounts_limit():
    long = "a" * 281
    post = _post(d.PartDraft("fine"), d.PartDraft(long), d.PartDraft(""))
    got = _fields(d.check_post(post))
    assert got == {
        "post.parts[1].text": "is 281 characters as X counts them, 1 over the limit of 280",
        "post.parts[2].text": "is required",
    }
    assert "post.parts[1].text" not in _fields(d.check_post(post, max_weighted_length=500))
    assert d.too_long_only(d.check_post(post))[0].field == "post.parts[1].text"


def test_check_post_uses_declared_kinds_then_probed_content():
    image, video = d.MediaDraft("https://m.example/a"), d.MediaDraft("https://m.example/v")
    mixed = _post(
        d.PartDraft(
            "x", media=(image, d.MediaDraft("https://m.example/v", declared=MediaKind.VIDEO))
        )
    )
    assert "post.parts[0].media[1]" in _fields(d.check_post(mixed))
    # Undeclared: only known once fetched.
    undeclared = _post(d.PartDraft("x", media=(image, video)))
    assert d.check_post(undeclared) == []
    probes = {(0, 0): d.Probe(JPEG, 1000), (0, 1): d.Probe(MP4, 1000)}
    assert "post.parts[0].media[1]" in _fields(d.check_post(undeclared, probes=probes))
    # Content other than declared, and an image over 5 MiB.
    lying = _post(
        d.PartDraft("x", media=(d.MediaDraft("https://m.example/a", declared=MediaKind.VIDEO),))
    )
    got = _fields(d.check_post(lying, probes={(0, 0): d.Probe(JPEG, 6 * 1024 * 1024)}))
    assert got["post.parts[0].media[0]"].startswith(("is an image by its content", "is 6,291,456"))


def test_check_post_quote_and_reply_ids_and_schedule():
    post = _post(
        d.PartDraft("x", poll=Poll(["a", "b"], 60)),
        quote_post_id="12x",
        reply_to_post_id="99",
        publish_at=NOW - timedelta(minutes=5),
    )
    got = _fields(d.check_post(post, now=NOW))
    assert got["post.quote_post_id"] == "must be an X post id (digits)"
    assert "post.parts[0].quote_post_id" in got  # a quote excludes a poll
    assert got["post.publish_time"].startswith("must not be in the past")
    assert "post.reply_to_post_id" not in got
    ahead = _post(d.PartDraft("x"), publish_at=NOW + timedelta(days=366))
    assert (
        _fields(d.check_post(ahead, now=NOW))["post.publish_time"] == "must be at most a year ahead"
    )
    # Clocks differ: up to a minute in the past still means now.
    assert (
        d.check_post(_post(d.PartDraft("x"), publish_at=NOW - timedelta(seconds=30)), now=NOW) == []
    )


def test_publishes_now_and_account_limit():
    assert d.publishes_now(None, NOW) and d.publishes_now(NOW - timedelta(seconds=1), NOW)
    assert not d.publishes_now(NOW + timedelta(seconds=1), NOW)
    assert d.account_limit({}) == 280
    assert d.account_limit({"max_post_length": 4000}) == 4000
    assert d.account_limit({"max_post_length": 0}) == 280
    assert d.account_limit({"max_post_length": 99999}) == 280
    assert d.account_limit({"max_post_length": "junk"}) == 280


def test_missed_publish_time_after_the_grace():
    grace = timedelta(hours=1)
    assert d.missed_publish_time(NOW - timedelta(minutes=59), NOW, grace) is None
    reason = d.missed_publish_time(NOW - timedelta(hours=2, minutes=5), NOW, grace)
    assert reason == (
        "missed its publish time by 2 h 5 min, more than the grace of 1 h 0 min;"
        " RetryPost publishes it now"
    )


def test_reply_targets_chain_a_thread():
    assert d.reply_target(0, "", None) is None
    assert d.reply_target(0, "42", None) == "42"
    assert d.reply_target(3, "42", "777") == "777"
    with pytest.raises(ValueError):
        d.reply_target(1, "", None)


# ------------------------------------------------------------------ outcomes


def test_classify_publish_errors():
    reset = NOW + timedelta(minutes=7)
    wait = d.classify_publish_error(QuotaExceeded("x", retry_at=reset), NOW)
    assert (wait.kind, wait.retry_at) == (d.Outcome.WAIT, reset)
    assert "until 2025-03-01T12:07:00+00:00" in wait.reason
    unknown_reset = d.classify_publish_error(QuotaExceeded("x"), NOW)
    assert unknown_reset.retry_at == NOW + d.DEFAULT_WAIT
    refused = d.classify_publish_error(
        FailedPrecondition("X rejected the request: bad media", reason="TWITTER_REJECTED"), NOW
    )
    assert (refused.kind, refused.reason) == (d.Outcome.FAILED, "X rejected the request: bad media")
    revoked = d.classify_publish_error(
        FailedPrecondition("tokens refused", reason="ACCOUNT_AUTH_REVOKED"), NOW
    )
    assert revoked.kind is d.Outcome.FAILED and "RetryPost" in revoked.reason
    assert d.classify_publish_error(UpstreamError("X is down"), NOW).kind is d.Outcome.UNCLEAR
    not_sent = UpstreamError("X is unavailable", metadata={"x_outcome": "not_sent"})
    not_sent.retry_at = NOW + timedelta(seconds=40)  # type: ignore[attr-defined]
    waited = d.classify_publish_error(not_sent, NOW)
    assert (waited.kind, waited.retry_at) == (d.Outcome.WAIT, NOW + timedelta(seconds=40))
    soon = d.classify_publish_error(
        UpstreamError("X is unavailable", metadata={"x_outcome": "not_sent"}), NOW
    )
    assert soon.retry_at == NOW + d.NOT_SENT_WAIT
    assert d.classify_publish_error(RuntimeError("boom"), NOW).kind is d.Outcome.UNCLEAR


def test_unclear_backoff_doubles_up_to_a_cap():
    assert [d.unclear_backoff(n, 2.0, 30.0).total_seconds() for n in (1, 2, 3, 5, 9)] == [
        2,
        4,
        8,
        30,
        30,
    ]


@pytest.mark.parametrize(
    ("ours", "theirs", "has_media", "same"),
    [
        ("Spring sale", "Spring sale", False, True),
        ("Spring  sale\n", "Spring sale", False, True),
        ("Sale", "Sale!", False, False),
        ("Tom & Jerry <3", "Tom &amp; Jerry &lt;3", False, True),
        ("See https://shop.com/spring?x=1", "See https://t.co/abc123", False, True),
        # Not a URL to X (no such TLD), so X leaves it alone.
        ("See https://shop.example/x", "See https://t.co/abc123", False, False),
        ("See shop.com now", "See https://t.co/abc123 now", False, True),
        ("Photo", "Photo https://t.co/media1", True, True),
        ("Photo", "Photo https://t.co/media1", False, False),
        ("", "https://t.co/media1", True, True),
        ("Caf\u00e9", "Cafe\u0301", False, True),  # NFC
    ],
)
def test_same_post_text(ours, theirs, has_media, same):
    assert d.same_post_text(ours, theirs, has_media=has_media) is same


# ------------------------------------------------------------------ metrics


@pytest.mark.parametrize(
    ("age", "every"),
    [
        (timedelta(minutes=1), timedelta(minutes=15)),
        (timedelta(hours=23), timedelta(minutes=15)),
        (timedelta(days=2), timedelta(hours=1)),
        (timedelta(days=8), timedelta(days=1)),
    ],
)
def test_metrics_schedule_thins_out_with_age(age, every):
    published = NOW - age
    assert d.next_metrics_refresh(published, NOW) == NOW + every


def test_metrics_schedule_meets_tier_boundaries_and_stops_after_30_days():
    published = NOW - timedelta(hours=23, minutes=55)
    assert d.next_metrics_refresh(published, NOW) == published + timedelta(days=1)
    assert d.next_metrics_refresh(NOW - timedelta(days=29, hours=12), NOW) == NOW - timedelta(
        days=29, hours=12
    ) + timedelta(days=30)
    assert d.next_metrics_refresh(NOW - timedelta(days=30), NOW) is None
    assert d.private_metrics_allowed(NOW - timedelta(days=29), NOW)
    assert not d.private_metrics_allowed(NOW - timedelta(days=30), NOW)


def test_metrics_from_x_and_sums():
    public = {
        "like_count": 3,
        "retweet_count": 1,
        "reply_count": 2,
        "quote_count": 0,
        "bookmark_count": 5,
        "impression_count": 40,
    }
    only_public = d.MetricsValues.from_x(public)
    assert only_public == d.MetricsValues(40, 3, 1, 2, 0, 5, None, None)
    private = {"impression_count": 55, "url_link_clicks": 7, "user_profile_clicks": 1}
    full = d.MetricsValues.from_x(public, private, None)
    assert (full.impressions, full.url_clicks, full.profile_clicks) == (55, 7, 1)
    assert d.MetricsValues.from_dict(full.as_dict()) == full
    total = d.sum_metrics([full, full])
    assert (total.likes, total.url_clicks) == (6, 14)
    assert d.sum_metrics([full, only_public]).url_clicks is None
    assert d.sum_metrics([]) == d.MetricsValues()
    assert d.MetricsValues.from_x({"like_count": "junk", "reply_count": -3}).likes == 0


def test_lookup_batches_never_split_a_post():
    posts = [(i, [f"{i}-{j}" for j in range(n)]) for i, n in enumerate([60, 30, 20, 100, 1])]
    batches = d.batch_for_lookup(posts)
    assert [[k for k, _ in b] for b in batches] == [[0, 1], [2], [3], [4]]
    assert all(sum(len(ids) for _, ids in b) <= 100 for b in batches)
