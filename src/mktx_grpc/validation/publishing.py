"""Validation rules for PublishingService requests (run by the validation interceptor;
every violation of a request is reported together).

These are the **shape** rules (any value a client can send): every string bounded and
free of NUL characters, repeated fields bounded, enums known, UUIDs and timestamps
checked before anything converts them. The **post rules** (what X would refuse:
``domain.publishing.check_post``) need the account's length limit and the media's
sniffed type and size, so ``operations/publishing.py`` checks them all in one pass once
it has those; both answers are INVALID_ARGUMENT with one BadRequest.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from mktx.v1 import publishing_pb2

from ..core import prototime
from ..core.errors import FieldViolation
from ..mapping.publishing import UPDATABLE
from . import rules

P = publishing_pb2

#: Hard bounds on what is even looked at (the post rules are stricter).
MAX_PARTS_READ = 100
MAX_MEDIA_READ = 10
MAX_POLL_OPTIONS_READ = 10
MAX_TEXT_CHARS = 50_000
MAX_OPTION_CHARS = 200
MAX_URL_CHARS = 2048
MAX_ALT_TEXT = 1000
MAX_X_ID_CHARS = 32
MAX_ETAG_CHARS = 64


def _string(value: str, field: str, max_len: int) -> list[FieldViolation]:
    if "\x00" in value:
        return [FieldViolation(field, "must not contain NUL characters")]
    if len(value) > max_len:
        return [FieldViolation(field, f"must be at most {max_len:,} characters")]
    return []


def timestamp_field(ts: Timestamp, field: str) -> list[FieldViolation]:
    """A Timestamp that converts to a datetime: seconds within years 1 to 9999, nanos
    within 0 to 999,999,999."""
    if prototime.timestamp_problem(ts.seconds, ts.nanos):
        return [FieldViolation(field, "is not a valid timestamp (years 1 to 9999)")]
    return []


def checked_time(ts: Timestamp, field: str) -> datetime:
    return prototime.to_datetime(ts, field)


def _etag(value: str) -> list[FieldViolation]:
    return _string(value, "etag", MAX_ETAG_CHARS)


def _parts_shape(parts: Iterable[P.PostPart], path: str) -> list[FieldViolation]:
    v: list[FieldViolation] = []
    parts = list(parts)
    if len(parts) > MAX_PARTS_READ:
        return [FieldViolation(path, f"at most {MAX_PARTS_READ} parts are read, not {len(parts)}")]
    for i, p in enumerate(parts):
        at = f"{path}[{i}]"
        v += _string(p.text, f"{at}.text", MAX_TEXT_CHARS)
        if len(p.media) > MAX_MEDIA_READ:
            v.append(
                FieldViolation(f"{at}.media", f"a post has at most 4 images, not {len(p.media)}")
            )
        for j, m in enumerate(p.media[:MAX_MEDIA_READ]):
            mat = f"{at}.media[{j}]"
            v += _string(m.url, f"{mat}.url", MAX_URL_CHARS)
            if not m.url:
                v.append(FieldViolation(f"{mat}.url", "is required"))
            v += _string(m.alt_text, f"{mat}.alt_text", MAX_ALT_TEXT)
            v += rules.enum_field(m.type, f"{mat}.type", P.PostMediaType, required=False)
        if p.HasField("poll"):
            options = p.poll.options
            if len(options) > MAX_POLL_OPTIONS_READ:
                v.append(
                    FieldViolation(
                        f"{at}.poll.options", f"needs 2 to 4 options, not {len(options)}"
                    )
                )
            for k, option in enumerate(options[:MAX_POLL_OPTIONS_READ]):
                v += _string(option, f"{at}.poll.options[{k}]", MAX_OPTION_CHARS)
    return v


def post_shape(post: P.Post, path: str = "post") -> list[FieldViolation]:
    """The shape rules of a post as a client sends it (output-only fields ignored)."""
    v = _parts_shape(post.parts, f"{path}.parts")
    v += rules.enum_field(
        post.reply_settings, f"{path}.reply_settings", P.ReplySettings, required=False
    )
    v += _string(post.quote_post_id, f"{path}.quote_post_id", MAX_X_ID_CHARS)
    v += _string(post.reply_to_post_id, f"{path}.reply_to_post_id", MAX_X_ID_CHARS)
    if post.HasField("publish_time"):
        v += timestamp_field(post.publish_time, f"{path}.publish_time")
    return v


def create_post(req: P.CreatePostRequest) -> list[FieldViolation]:
    v = rules.request_id(req.request_id)
    if not req.HasField("post"):
        return [*v, FieldViolation("post", "is required")]
    v += rules.uuid_field(req.post.account_id, "post.account_id")
    return v + post_shape(req.post)


def update_post(req: P.UpdatePostRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.post.id, "post.id")
    v += rules.mask_paths(req.update_mask, UPDATABLE, required=True)
    v += _etag(req.etag)
    v += post_shape(req.post)
    return v


def list_posts(req: P.ListPostsRequest) -> list[FieldViolation]:
    v = rules.page(req)
    v += rules.uuid_field(req.account_id, "account_id", required=False)
    v += rules.enum_field(req.status, "status", P.PostStatus, required=False)
    v += _time_range(req)
    return v


def _time_range(req: P.ListPostsRequest | P.GetPostMetricsRequest) -> list[FieldViolation]:
    v: list[FieldViolation] = []
    for name in ("start_time", "end_time"):
        if req.HasField(name):
            v += timestamp_field(getattr(req, name), name)
    if not v and req.HasField("start_time") and req.HasField("end_time"):
        if checked_time(req.end_time, "end_time") <= checked_time(req.start_time, "start_time"):
            v.append(FieldViolation("end_time", "must be after start_time"))
    return v


def id_and_etag(
    req: P.DeletePostRequest | P.CancelScheduledPostRequest | P.RetryPostRequest,
) -> list[FieldViolation]:
    return rules.uuid_field(req.id, "id") + _etag(req.etag)


def validate_post(req: P.ValidatePostRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.account_id, "account_id", required=False)
    v += _parts_shape(req.parts, "parts")
    v += _string(req.quote_post_id, "quote_post_id", MAX_X_ID_CHARS)
    return v


def get_post_metrics(req: P.GetPostMetricsRequest) -> list[FieldViolation]:
    return rules.uuid_field(req.id, "id") + _time_range(req)
