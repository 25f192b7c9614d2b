"""Reading X payload fields (webhooks/payload.py): whatever X sends, the helpers
return empty values instead of raising."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mktx_grpc.webhooks.payload import (
    MessageContent,
    as_str,
    message_content,
    ms_time,
    profile,
    recipient_id,
    user_id,
)

DEFAULT = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("abc", "abc"), (123, "123"), (None, ""), (True, ""), ({"a": 1}, ""), ([1], "")],
)
def test_as_str(value: Any, expected: str) -> None:
    assert as_str(value) == expected


def test_user_id_prefers_id_str_and_falls_back_to_id() -> None:
    assert user_id({"id_str": "42", "id": 41}) == "42"
    assert user_id({"id": 1800000000000000001}) == "1800000000000000001"
    assert user_id({"id_str": None}) == ""
    assert user_id("42") == ""


def test_recipient_id() -> None:
    assert recipient_id({"recipient_id": "7"}) == "7"
    assert recipient_id({}) == ""
    assert recipient_id(None) == ""


def test_profile_from_a_user_object() -> None:
    assert profile(
        {"screen_name": "ann", "name": "Ann", "profile_image_url_https": "https://i/a.jpg"}
    ) == {"username": "ann", "display_name": "Ann", "profile_image_url": "https://i/a.jpg"}
    # v2-style names and missing fields
    assert profile({"username": "bob", "profile_image_url": "http://i/b.jpg"}) == {
        "username": "bob",
        "display_name": "",
        "profile_image_url": "http://i/b.jpg",
    }
    assert profile(None) == {}


def test_ms_time() -> None:
    assert ms_time("1714564800000", DEFAULT) == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert ms_time(1714564800123, DEFAULT).microsecond == 123_000
    for bad in (None, "", "soon", "1e3", str(10**30), {"ms": 1}):
        assert ms_time(bad, DEFAULT) == DEFAULT


def test_message_content_with_media_and_quick_reply() -> None:
    content = message_content(
        {
            "text": "this one",
            "attachment": {
                "type": "media",
                "media": {"id": 9, "type": "animated_gif", "media_url": "http://m/9.mp4"},
            },
            "quick_reply_response": {"type": "options", "metadata": "pick_9"},
        }
    )
    assert content == MessageContent(
        type="IMAGE",
        text="this one",
        attachments=[
            {
                "type": "media",
                "media_id": "9",
                "media_type": "animated_gif",
                "url": "http://m/9.mp4",
            }
        ],
        quick_reply_metadata="pick_9",
    )
    assert content.media_kinds == ["animated_gif"]


@pytest.mark.parametrize(
    "data",
    [
        {"text": "plain"},
        {"text": "plain", "attachment": {"type": "media"}},  # no media object
        {"text": "plain", "quick_reply_response": "size_m"},  # not an object
    ],
)
def test_message_content_without_media(data: dict[str, Any]) -> None:
    content = message_content(data)
    assert content == MessageContent("TEXT", "plain", [], "")
    assert content.media_kinds == []


def test_message_content_of_something_that_is_not_message_data() -> None:
    assert message_content(None) == MessageContent("TEXT", "", [], "")
    assert message_content(["text"]) == MessageContent("TEXT", "", [], "")
