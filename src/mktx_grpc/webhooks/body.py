"""Parsing a delivery body, and telling what PostgreSQL could not store (no I/O).

:func:`parse_body` raises :class:`BadBody` for what is not JSON at all (bad syntax,
bad encoding) or is nested deeper than :data:`MAX_DEPTH` (X's payloads are a handful
of levels deep; the C decoder's own recursion limit must never be what stops a
body, since ``RecursionError`` is not a ``ValueError``). Everything else parses,
and :attr:`ParsedBody.unstorable` names what jsonb cannot hold, if anything: a NUL
character, a lone UTF-16 surrogate (``"\\ud800"``), ``NaN``/``Infinity`` or a number
that overflows to one. The sidecar records such a delivery as received (bytes) as a
DEAD row with that reason rather than failing its insert for ever.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_DEPTH", "BadBody", "ParsedBody", "parse_body", "storable_text"]

#: Deepest nesting of arrays and objects accepted.
MAX_DEPTH = 64

# Characters PostgreSQL text and jsonb reject: NUL, and surrogates (which have no
# UTF-8 encoding).
_UNSTORABLE_CHAR = re.compile("[\x00\ud800-\udfff]")


class BadBody(ValueError):
    """The body is not JSON we accept; ``reason`` is the metrics label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ParsedBody:
    #: The parsed JSON (NaN, Infinity and overflowing numbers read as None).
    value: Any
    #: Why the value cannot be stored as jsonb; "" when it can.
    unstorable: str


def parse_body(body: bytes) -> ParsedBody:
    """Parse a delivery body; raises :class:`BadBody` (see the module docstring)."""
    non_finite: list[str] = []

    def constant(name: str) -> None:
        non_finite.append(name)
        return None

    def number(text: str) -> float | None:
        value = float(text)
        if value - value != 0.0:  # inf or nan
            non_finite.append(text)
            return None
        return value

    try:
        value = json.loads(body, parse_constant=constant, parse_float=number)
    except RecursionError:
        raise BadBody("too_deep", "body is nested too deeply") from None
    except ValueError:  # includes UnicodeDecodeError and over-long integers
        raise BadBody("bad_json", "body is not JSON") from None
    problem = _scan(value)
    if non_finite and not problem:
        problem = "NaN or Infinity, which jsonb cannot store"
    return ParsedBody(value, problem)


def _scan(value: Any) -> str:
    """Check depth (raising BadBody) and look for unstorable characters, without
    recursion. Returns the first problem found, or ""."""
    problem = ""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not problem:
                problem = _char_problem(item)
        elif isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise BadBody("too_deep", "body is nested too deeply")
            for k, v in item.items():
                if not problem:
                    problem = _char_problem(k)
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise BadBody("too_deep", "body is nested too deeply")
            stack.extend((v, depth + 1) for v in item)
    return problem


def _char_problem(text: str) -> str:
    m = _UNSTORABLE_CHAR.search(text)
    if m is None:
        return ""
    if m.group() == "\x00":
        return "a NUL character, which PostgreSQL cannot store"
    return "a lone UTF-16 surrogate, which has no UTF-8 encoding"


def storable_text(text: str) -> bool:
    """Whether PostgreSQL text can hold ``text`` (no NUL, no lone surrogate)."""
    return _UNSTORABLE_CHAR.search(text) is None
