"""The deterministic token counter behind ``usage``."""

from __future__ import annotations

import pytest

from mktx_grpc.ai_standin.tokens import count_message_tokens, count_tokens, tokenize


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("", 0),
        ("order", 1),
        ("international", 3),
        ("12345", 2),
        ("Hello, world!", 4),
        ("snake_case", 3),
        ("  trailing  ", 3),  # trailing whitespace is a token of its own
        ("café ☕", 2),
    ],
)
def test_counts(text: str, n: int) -> None:
    assert count_tokens(text) == n


@pytest.mark.parametrize("text", ["", "a b  c\n\td", "Ünïcödé — ok?", "x" * 50, "  "])
def test_pieces_rebuild_the_text(text: str) -> None:
    assert "".join(tokenize(text)) == text


def test_message_framing_is_counted() -> None:
    one = count_message_tokens([{"role": "user", "content": "hi"}])
    two = count_message_tokens([{"role": "user", "content": "hi"}] * 2)
    assert one == 3 + 3 + 1 + 1  # priming + framing + role + content
    assert two - one == 3 + 1 + 1
    with_parts = count_message_tokens(
        [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    )
    assert with_parts == one
    assert (
        count_message_tokens([{"role": "user", "content": "hi"}], tools=[{"type": "function"}])
        > one
    )
