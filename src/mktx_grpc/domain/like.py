"""LIKE patterns built from user text, whose wildcards must match literally."""

from __future__ import annotations


def like_escape(value: str) -> str:
    """Escape LIKE wildcards (``%``, ``_``) and the escape character itself."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_pattern(text: str) -> str | None:
    """The (I)LIKE pattern matching ``text`` anywhere, or None for empty text."""
    return f"%{like_escape(text)}%" if text else None
