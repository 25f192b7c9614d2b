"""The pure conversation rules (domain/conversations.py): which conversation an
inbound message joins, the inbox preview, media kinds and X's conversation id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mktx_grpc.domain.conversations import (
    CLOSED,
    OPEN,
    PENDING,
    PREVIEW_CHARS,
    SNOOZED,
    ConversationChoice,
    Route,
    choose_conversation,
    media_kind,
    preview,
    x_conversation_id,
)

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)

# ------------------------------------------------------------------ choose_conversation


def test_a_live_open_conversation_is_joined_as_it_is() -> None:
    choice = choose_conversation(OPEN, None, AT, DAY)
    assert choice == ConversationChoice(Route.JOIN)
    assert choice.event_type is None


@pytest.mark.parametrize("status", [SNOOZED, PENDING])
def test_a_live_snoozed_or_pending_conversation_is_woken(status: str) -> None:
    choice = choose_conversation(status, None, AT, DAY)
    assert choice.route is Route.WAKE and choice.previous_status == status
    assert choice.event_type == "conversation.woken"
    assert choice.event_fields() == {"previous_status": status, "status": OPEN}


def test_the_live_conversation_wins_over_a_recently_closed_one() -> None:
    choice = choose_conversation(OPEN, AT - timedelta(minutes=1), AT, DAY)
    assert choice.route is Route.JOIN


def test_closed_within_the_window_reopens() -> None:
    choice = choose_conversation(None, AT - timedelta(hours=23), AT, DAY)
    assert choice == ConversationChoice(Route.REOPEN, CLOSED)
    assert choice.event_type == "conversation.reopened"
    assert choice.event_fields() == {"previous_status": CLOSED, "status": OPEN}


def test_a_message_sent_before_the_close_reopens() -> None:
    # Delivered late: the customer wrote while the conversation was still live.
    assert choose_conversation(None, AT + timedelta(minutes=5), AT, DAY).route is Route.REOPEN


@pytest.mark.parametrize(
    "closed_before", [DAY, DAY + timedelta(microseconds=1), timedelta(days=30)]
)
def test_closed_at_or_beyond_the_window_opens_a_new_one(closed_before: timedelta) -> None:
    choice = choose_conversation(None, AT - closed_before, AT, DAY)
    assert choice == ConversationChoice(Route.OPEN_NEW)
    assert choice.event_type == "conversation.opened"
    assert choice.event_fields() == {"status": OPEN}


def test_the_window_is_the_callers() -> None:
    closed_at = AT - timedelta(hours=2)
    assert choose_conversation(None, closed_at, AT, timedelta(hours=3)).route is Route.REOPEN
    assert choose_conversation(None, closed_at, AT, timedelta(hours=1)).route is Route.OPEN_NEW


def test_no_conversation_at_all_opens_a_new_one() -> None:
    assert choose_conversation(None, None, AT, DAY).route is Route.OPEN_NEW


@pytest.mark.parametrize("status", [CLOSED, "ARCHIVED", ""])
def test_a_live_status_that_cannot_be_live_is_refused(status: str) -> None:
    with pytest.raises(ValueError, match="live conversation"):
        choose_conversation(status, None, AT, DAY)


# ------------------------------------------------------------------ preview


def test_short_text_is_its_own_preview() -> None:
    assert preview("where is my order?", []) == "where is my order?"
    assert preview("look", ["IMAGE"]) == "look"  # text wins over media


def test_text_of_exactly_the_limit_is_not_cut() -> None:
    text = "a" * PREVIEW_CHARS
    assert preview(text, []) == text


def test_longer_text_is_cut_with_a_marker_within_the_limit() -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(PREVIEW_CHARS + 50))
    out = preview(text, [])
    assert len(out) == PREVIEW_CHARS == 200
    assert out == text[:199] + "…"


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        (["photo"], "[image]"),
        (["IMAGE"], "[image]"),
        (["animated_gif"], "[gif]"),
        (["GIF"], "[gif]"),
        (["video"], "[video]"),
        (["VIDEO"], "[video]"),
        ([""], "[media]"),
        (["sticker"], "[media]"),
        (["video", "photo"], "[video]"),
    ],
)
def test_media_without_text_is_labelled_by_its_kind(kinds: list[str], expected: str) -> None:
    assert preview("", kinds) == expected
    assert preview("  \n", kinds) == expected  # blank text is no text


def test_nothing_to_show_is_empty() -> None:
    assert preview("", []) == ""
    assert preview("   ", []) == ""


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("photo", "IMAGE"),
        ("animated_gif", "GIF"),
        ("video", "VIDEO"),
        ("IMAGE", "IMAGE"),
        ("gif", "GIF"),
        ("Video", "VIDEO"),
        ("", None),
        ("audio", None),
    ],
)
def test_media_kind(name: str, kind: str | None) -> None:
    assert media_kind(name) == kind


# ------------------------------------------------------------------ X conversation id


def test_x_conversation_id_is_smaller_then_larger_user_id_either_way() -> None:
    shop, customer = "1500000000000000001", "987654321"
    assert x_conversation_id(shop, customer) == "987654321-1500000000000000001"
    assert x_conversation_id(customer, shop) == "987654321-1500000000000000001"


def test_x_conversation_id_orders_numerically_not_as_text() -> None:
    assert x_conversation_id("10", "9") == "9-10"
    assert x_conversation_id("1800000000000000002", "1800000000000000010") == (
        "1800000000000000002-1800000000000000010"
    )
