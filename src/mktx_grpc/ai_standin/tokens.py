"""Deterministic token counting for the stand-in's ``usage`` figures.

This is not OpenAI's BPE (tiktoken needs its vocabulary files, which the stand-in
must not fetch); it is a fixed rule of roughly the same scale, so budgets and usage
assertions behave sensibly and every run counts the same:

- a run of letters is one token per started 6 letters (``"order"`` 1, ``"international"`` 3);
- a run of digits is one token per started 3 digits (``"12345"`` 2);
- ``_`` and every other character that is neither a word character nor whitespace
  (punctuation, symbols, emoji) is one token each;
- whitespace is free: it rides at the front of the token that follows it, except
  whitespace at the very end of the text, which is one token.

:func:`tokenize` returns the pieces themselves, so ``"".join(tokenize(s)) == s``;
the stand-in uses them to truncate at ``max_tokens`` and to split streamed content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

__all__ = ["count_message_tokens", "count_tokens", "tokenize"]

_TOKEN = re.compile(r"\s*(?:[^\W\d_]{1,6}|\d{1,3}|_|[^\w\s])|\s+$")

# Like OpenAI's chat format accounting: a few tokens frame each message and the reply.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3


def tokenize(text: str) -> list[str]:
    """Split ``text`` into token pieces whose concatenation is ``text`` exactly."""
    return _TOKEN.findall(text)


@lru_cache(maxsize=2048)
def count_tokens(text: str) -> int:
    """The number of tokens in ``text`` by the module's rule (0 for "").

    Cached: a client sends the same system prompt and schema on every request, and
    counting them was the largest share of the stand-in's CPU per request."""
    return len(_TOKEN.findall(text))


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, Mapping):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif isinstance(part.get("refusal"), str):
                    parts.append(part["refusal"])
        return "\n".join(parts)
    return ""


def count_message_tokens(
    messages: Iterable[Mapping[str, Any]], tools: Iterable[Mapping[str, Any]] | None = None
) -> int:
    """Prompt tokens of a chat request: each message's role, name, content and tool
    calls plus a fixed framing, and the tools' JSON definitions."""
    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE + count_tokens(str(message.get("role", "")))
        total += count_tokens(_content_text(message.get("content")))
        if message.get("name"):
            total += TOKENS_PER_NAME + count_tokens(str(message["name"]))
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping):
                total += count_tokens(json.dumps(call.get("function", {}), sort_keys=True))
    for tool in tools or ():
        total += count_tokens(json.dumps(tool, sort_keys=True))
    return total
