"""The rules checked before anything is sent (INVALID_ARGUMENT naming the part), X's
weighted counting through ValidatePost, the account's own limit, and hostile input
that must never become INTERNAL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from helpers import expect_error
from media_server import GIF, JPEG, MP4, body
from publishing_helpers import P, connect_account, stub, text_post, ts, x_posts

from mktx.v1 import accounts_pb2 as A
from mktx.v1 import accounts_pb2_grpc
from mktx_grpc.domain.post_rules import MAX_GIF_BYTES, MAX_IMAGE_BYTES

INVALID = grpc.StatusCode.INVALID_ARGUMENT
URL = "https://shop.example.com/collections/spring-2025/products/very-long-product-handle-{}?utm_source=x&utm_campaign=spring"


@pytest.fixture
def pub(api):
    return stub(api)


@pytest.fixture
async def account(api, merchant, sandbox):
    return await connect_account(api, merchant, sandbox)


async def _invalid(pub, md, post) -> dict[str, str]:
    err = await expect_error(
        pub.CreatePost(P.CreatePostRequest(post=post), metadata=md), INVALID, "VALIDATION_ERROR"
    )
    return err.bad_fields


async def test_every_rule_is_checked_before_anything_is_sent(
    api, pub, merchant, account, sandbox, media_server
):
    acct, owner = account
    md = api.auth(merchant)
    img = media_server.add(f"/r-{uuid.uuid4().hex}.jpg", body(JPEG, 1000))
    vid = media_server.add(f"/r-{uuid.uuid4().hex}.mp4", body(MP4, 1000))

    # 281 weighted characters: the violation says how long and how far over; ErrorInfo
    # carries the weighted length and the remaining count of every part.
    err = await expect_error(
        pub.CreatePost(P.CreatePostRequest(post=text_post(acct.id, "ok", "a" * 281)), metadata=md),
        INVALID,
        "VALIDATION_ERROR",
    )
    assert err.bad_fields == {
        "post.parts[1].text": "is 281 characters as X counts them, 1 over the limit of 280"
    }
    assert err.info.metadata["post.parts[1].text.weighted_length"] == "281"
    assert err.info.metadata["post.parts[1].text.remaining"] == "-1"
    assert "post.parts[0].text.remaining" not in err.info.metadata  # only for bad texts
    # Emoji and CJK count 2 each.
    assert "post.parts[0].text" in await _invalid(pub, md, text_post(acct.id, "😀" * 141))
    assert "post.parts[0].text" in await _invalid(pub, md, text_post(acct.id, "漢" * 141))
    # Five images; an image and a video (declared, and only known once sniffed); a
    # plain http URL; a poll with media; a poll out of bounds; a schedule in the past.
    five = P.Post(
        account_id=acct.id, parts=[P.PostPart(text="x", media=[P.PostMedia(url=img)] * 5)]
    )
    assert (await _invalid(pub, md, five)) == {
        "post.parts[0].media[4]": "a post has at most 4 images"
    }
    declared = P.Post(
        account_id=acct.id,
        parts=[
            P.PostPart(
                text="x",
                media=[P.PostMedia(url=img), P.PostMedia(url=vid, type=P.POST_MEDIA_TYPE_VIDEO)],
            )
        ],
    )
    assert "post.parts[0].media[1]" in await _invalid(pub, md, declared)
    sniffed = P.Post(
        account_id=acct.id,
        parts=[P.PostPart(text="x", media=[P.PostMedia(url=img), P.PostMedia(url=vid)])],
    )
    assert (await _invalid(pub, md, sniffed)) == {
        "post.parts[0].media[1]": "a video must be the only media of a post, which has 2"
    }
    plain = P.Post(
        account_id=acct.id,
        parts=[P.PostPart(text="x", media=[P.PostMedia(url=img.replace("https", "http"))])],
    )
    assert (await _invalid(pub, md, plain)) == {
        "post.parts[0].media[0].url": "must be an https URL"
    }
    poll_media = P.Post(
        account_id=acct.id,
        parts=[
            P.PostPart(
                text="vote",
                media=[P.PostMedia(url=img)],
                poll=P.PostPoll(options=["a", "b"], duration_minutes=60),
            )
        ],
    )
    assert "post.parts[0].poll" in await _invalid(pub, md, poll_media)
    bad_poll = P.Post(
        account_id=acct.id,
        parts=[
            P.PostPart(text="vote", poll=P.PostPoll(options=["a", "b" * 26], duration_minutes=4))
        ],
    )
    assert set(await _invalid(pub, md, bad_poll)) == {
        "post.parts[0].poll.options[1]",
        "post.parts[0].poll.duration_minutes",
    }
    past = text_post(acct.id, "late", publish_time=ts(datetime.now(UTC) - timedelta(hours=1)))
    assert set(await _invalid(pub, md, past)) == {"post.publish_time"}
    # Media that is not media, and media that cannot be fetched.
    junk = media_server.add(f"/r-{uuid.uuid4().hex}.bin", b"not an image at all" * 10)
    missing = media_server.base_url + f"/nothing-{uuid.uuid4().hex}.jpg"
    odd = P.Post(
        account_id=acct.id,
        parts=[
            P.PostPart(text="x", media=[P.PostMedia(url=junk)]),
            P.PostPart(text="y", media=[P.PostMedia(url=missing)]),
        ],
    )
    assert await _invalid(pub, md, odd) == {
        "post.parts[0].media[0]": "is not a JPEG, PNG, WEBP, GIF, MP4 or MOV file (by its content)",
        "post.parts[1].media[0].url": "fetching the media returned HTTP 404",
    }
    # URLs no fetch should ever choke on, and a thread too long to bother fetching for.
    weird = P.Post(
        account_id=acct.id,
        parts=[
            P.PostPart(text="x", media=[P.PostMedia(url="https://[::1/x.jpg")]),
            P.PostPart(text="y", media=[P.PostMedia(url="https://bücher.example/x.jpg")]),
        ],
    )
    assert await _invalid(pub, md, weird) == {
        "post.parts[0].media[0].url": "is not a valid URL",
        "post.parts[1].media[0].url": "the media URL is not a valid URL (use its ASCII form)",
    }
    assert await _invalid(pub, md, text_post(acct.id, *["t"] * 30)) == {
        "post.parts": "a thread has at most 25 parts, not 30"
    }
    # Every violation of a request comes in one answer.
    many = P.Post(
        account_id=acct.id,
        parts=[P.PostPart(text=""), P.PostPart(text="b" * 300)],
        quote_post_id="abc",
    )
    assert set(await _invalid(pub, md, many)) == {
        "post.parts[0].text",
        "post.parts[1].text",
        "post.quote_post_id",
    }
    assert x_posts(sandbox, owner.id) == []


async def test_media_over_xs_size_for_their_kind_are_refused_by_create(
    api, pub, merchant, account, sandbox, media_server
):
    """Sizes are checked against the sniffed kind (image 5 MiB, GIF 15 MiB) before
    anything reaches X; at exactly the limit an image goes through."""
    acct, owner = account
    md = api.auth(merchant)
    tag = uuid.uuid4().hex
    big_img = media_server.add(f"/big-{tag}.jpg", body(JPEG, MAX_IMAGE_BYTES + 1))
    big_gif = media_server.add(f"/big-{tag}.gif", body(GIF, MAX_GIF_BYTES + 1))
    post = P.Post(
        account_id=acct.id,
        parts=[
            P.PostPart(text="img", media=[P.PostMedia(url=big_img)]),
            P.PostPart(text="gif", media=[P.PostMedia(url=big_gif)]),
        ],
    )
    # The fetch's cap is the sniffed kind's limit, so it stops reading past it.
    assert await _invalid(pub, md, post) == {
        "post.parts[0].media[0].url": "the media is larger than 5,242,880 bytes",
        "post.parts[1].media[0].url": "the media is larger than 15,728,640 bytes",
    }
    assert x_posts(sandbox, owner.id) == []
    assert not [m for m in sandbox.state.media.values() if m.owner_id == owner.id]
    at_limit = media_server.add(f"/limit-{tag}.jpg", body(JPEG, MAX_IMAGE_BYTES))
    ok = await pub.CreatePost(
        P.CreatePostRequest(
            post=P.Post(
                account_id=acct.id,
                parts=[P.PostPart(text="5 MiB", media=[P.PostMedia(url=at_limit)])],
            )
        ),
        metadata=md,
    )
    assert ok.status == P.POST_STATUS_PUBLISHED, ok.status_reason
    assert ok.parts[0].media[0].size_bytes == MAX_IMAGE_BYTES


async def test_url_heavy_text_passes_because_urls_count_23(api, pub, merchant, account, sandbox):
    acct, owner = account
    text = " ".join(URL.format(i) for i in range(11))  # 11 x 23 + 10 spaces = 263
    assert len(text) > 1000
    post = await pub.CreatePost(
        P.CreatePostRequest(post=text_post(acct.id, text)), metadata=api.auth(merchant)
    )
    assert post.status == P.POST_STATUS_PUBLISHED and post.parts[0].weighted_length == 263
    assert x_posts(sandbox, owner.id)[0].text == text


async def test_validate_post_counts_as_x_does(api, pub, merchant, account):
    acct, _ = account
    md = api.auth(merchant)
    got = await pub.ValidatePost(
        P.ValidatePostRequest(
            parts=[
                P.PostPart(text="😀" * 140),
                P.PostPart(text="漢字" * 71),
                P.PostPart(text="see " + URL.format(1)),
                P.PostPart(text="👨‍👩‍👧‍👦"),
                P.PostPart(text="", media=[P.PostMedia(url="https://m.example.com/a.jpg")]),
            ]
        ),
        metadata=md,
    )
    counts = [(c.weighted_length, c.remaining, c.valid) for c in got.parts]
    assert counts == [
        (280, 0, True),
        (284, -4, False),
        (27, 253, True),
        (2, 278, True),
        (0, 280, True),
    ]
    assert got.parts[1].permillage == 1014 and got.parts[1].valid_range_end == 139
    assert not got.valid
    assert [(v.field, v.description) for v in got.violations] == [
        ("parts[1].text", "is 284 characters as X counts them, 4 over the limit of 280")
    ]
    ok = await pub.ValidatePost(
        P.ValidatePostRequest(account_id=acct.id, parts=[P.PostPart(text="fine")]), metadata=md
    )
    assert ok.valid and list(ok.violations) == []
    mixed = await pub.ValidatePost(
        P.ValidatePostRequest(
            parts=[P.PostPart(text="x", poll=P.PostPoll(options=["a"], duration_minutes=60))],
            quote_post_id="12",
        ),
        metadata=md,
    )
    assert {v.field for v in mixed.violations} == {
        "parts[0].poll.options",
        "parts[0].quote_post_id",
    }


async def test_long_post_accounts_get_their_own_limit(api, pub, merchant, sandbox):
    acct, owner = await connect_account(api, merchant, sandbox, long_post=True)
    md = api.auth(merchant)
    text = "long " * 100  # 500
    assert "post.parts[0].text" in await _invalid(pub, md, text_post(acct.id, text))
    accounts = accounts_pb2_grpc.AccountsServiceStub(api.channel)
    await accounts.UpdateAccountSettings(
        A.UpdateAccountSettingsRequest(
            account_id=acct.id,
            settings=A.AccountSettings(max_post_length=25_000),
            update_mask=FieldMask(paths=["max_post_length"]),
        ),
        metadata=md,
    )
    counted = await pub.ValidatePost(
        P.ValidatePostRequest(account_id=acct.id, parts=[P.PostPart(text=text)]), metadata=md
    )
    assert (counted.parts[0].max_weighted_length, counted.parts[0].remaining) == (25_000, 24_500)
    post = await pub.CreatePost(P.CreatePostRequest(post=text_post(acct.id, text)), metadata=md)
    assert post.status == P.POST_STATUS_PUBLISHED, post.status_reason
    assert x_posts(sandbox, owner.id)[0].text == text
    await expect_error(
        accounts.UpdateAccountSettings(
            A.UpdateAccountSettingsRequest(
                account_id=acct.id,
                settings=A.AccountSettings(max_post_length=25_001),
                update_mask=FieldMask(paths=["max_post_length"]),
            ),
            metadata=md,
        ),
        INVALID,
        "VALIDATION_ERROR",
    )


def _huge_ts() -> Timestamp:
    return Timestamp(seconds=10**15)


HOSTILE = [
    P.CreatePostRequest(
        post=P.Post(account_id=str(uuid.uuid4()), parts=[P.PostPart(text="nul\x00")])
    ),
    P.CreatePostRequest(post=P.Post(account_id="not-a-uuid", parts=[P.PostPart(text="x")])),
    P.CreatePostRequest(
        post=P.Post(
            account_id=str(uuid.uuid4()), parts=[P.PostPart(text="x")], publish_time=_huge_ts()
        )
    ),
    P.CreatePostRequest(
        post=P.Post(account_id=str(uuid.uuid4()), parts=[P.PostPart(text="x")] * 101)
    ),
    P.CreatePostRequest(
        post=P.Post(account_id=str(uuid.uuid4()), parts=[P.PostPart(text="x" * 60_000)])
    ),
    P.CreatePostRequest(
        post=P.Post(account_id=str(uuid.uuid4()), parts=[P.PostPart(text="x")], reply_settings=99)
    ),
    P.CreatePostRequest(
        post=P.Post(
            account_id=str(uuid.uuid4()),
            parts=[
                P.PostPart(text="x", media=[P.PostMedia(url="https://a.example.com/\x00", type=7)])
            ],
        )
    ),
    P.CreatePostRequest(
        post=P.Post(
            account_id=str(uuid.uuid4()),
            parts=[P.PostPart(text="x", poll=P.PostPoll(options=["a"] * 50, duration_minutes=-1))],
        )
    ),
    P.CreatePostRequest(
        post=P.Post(account_id=str(uuid.uuid4()), parts=[P.PostPart(text="x")]),
        request_id="bad id!",
    ),
    P.CreatePostRequest(),
    P.ListPostsRequest(start_time=_huge_ts()),
    P.ListPostsRequest(status=42, page_size=-1),
    P.ListPostsRequest(start_time=Timestamp(seconds=100), end_time=Timestamp(seconds=50)),
    P.UpdatePostRequest(post=P.Post(id=str(uuid.uuid4())), update_mask=FieldMask(paths=["status"])),
    P.UpdatePostRequest(
        post=P.Post(id=str(uuid.uuid4()), publish_time=Timestamp(seconds=1, nanos=-5)),
        update_mask=FieldMask(paths=["publish_time"]),
    ),
    P.DeletePostRequest(id="x"),
    P.RetryPostRequest(id=str(uuid.uuid4()), etag="\x00" * 10),
    P.ValidatePostRequest(parts=[P.PostPart(text="\x00")]),
    P.GetPostMetricsRequest(id=str(uuid.uuid4()), end_time=Timestamp(seconds=-(10**14))),
    P.GetPostRequest(id="not-a-uuid"),
    P.GetPostRequest(),
    P.CancelScheduledPostRequest(id="\x00"),
    P.RefreshPostMetricsRequest(id="123"),
    P.GetPostMetricsRequest(id=""),
    P.UpdatePostRequest(post=P.Post(id=str(uuid.uuid4()))),
    P.DeletePostRequest(id=str(uuid.uuid4()), etag="\x00"),
    P.ValidatePostRequest(account_id="not-a-uuid", parts=[P.PostPart(text="x")]),
    P.ListPostsRequest(account_id="not-a-uuid"),
    P.ListPostsRequest(page_token="not-a-token"),
]


async def test_hostile_input_is_invalid_argument(api, pub, merchant):
    methods = {
        P.CreatePostRequest: pub.CreatePost,
        P.GetPostRequest: pub.GetPost,
        P.CancelScheduledPostRequest: pub.CancelScheduledPost,
        P.RefreshPostMetricsRequest: pub.RefreshPostMetrics,
        P.ListPostsRequest: pub.ListPosts,
        P.UpdatePostRequest: pub.UpdatePost,
        P.DeletePostRequest: pub.DeletePost,
        P.RetryPostRequest: pub.RetryPost,
        P.ValidatePostRequest: pub.ValidatePost,
        P.GetPostMetricsRequest: pub.GetPostMetrics,
    }
    for request in HOSTILE:
        call = methods[type(request)](request, metadata=api.auth(merchant))
        await expect_error(call, INVALID, "VALIDATION_ERROR")
