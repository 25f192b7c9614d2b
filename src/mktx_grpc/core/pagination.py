"""Opaque, signed keyset page tokens and page-size rules shared by every List RPC.

A token holds the sort key of the last row returned and a fingerprint of the
list's filters, HMAC-signed so clients cannot forge or edit it. A token used with
different filters, or tampered with, is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from .errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def check_page_size(page_size: int, field: str = "page_size") -> list[FieldViolation]:
    if page_size < 0:
        return [FieldViolation(field, "must not be negative")]
    return []


def effective_page_size(
    page_size: int, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    """0 means the default; larger than the maximum is coerced down."""
    if page_size <= 0:
        return default
    return min(page_size, maximum)


class PageTokens:
    """Encodes and decodes keyset cursors bound to a filter fingerprint."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:16]

    def encode(self, keys: Sequence[Any], filters: Sequence[Any]) -> str:
        body = json.dumps([list(keys), _fingerprint(filters)], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(self._mac(body) + body).decode().rstrip("=")

    def decode(self, token: str, filters: Sequence[Any]) -> list[Any] | None:
        """Return the cursor keys, or None when the token is invalid for these filters."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            return None
        mac, body = raw[:16], raw[16:]
        if len(mac) != 16 or not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            keys, fingerprint = json.loads(body)
        except (ValueError, TypeError):
            return None
        if fingerprint != _fingerprint(filters) or not isinstance(keys, list):
            return None
        return keys


def _fingerprint(filters: Sequence[Any]) -> str:
    return hashlib.sha256(json.dumps(list(filters), default=str).encode()).hexdigest()[:16]


def decode_time_cursor(
    tokens: PageTokens, token: str, filters: Sequence[Any]
) -> tuple[datetime, UUID] | None:
    """Decode a (timestamp, id) keyset cursor; None for the first page.

    Raises InvalidArgument naming ``page_token`` when it is forged, corrupted, or
    was issued for other filters.
    """
    if not token:
        return None
    keys = tokens.decode(token, filters)
    try:
        if keys is None:
            raise ValueError
        return datetime.fromisoformat(keys[0]), UUID(keys[1])
    except (ValueError, IndexError, TypeError):
        raise InvalidArgument.single(
            "page_token", "is not a valid page token for this query"
        ) from None


def time_page(
    tokens: PageTokens,
    rows: list[dict[str, Any]],
    page_size: int,
    filters: Sequence[Any],
    time_key: str = "created_at",
) -> tuple[list[dict[str, Any]], str]:
    """Split rows fetched with ``LIMIT page_size + 1`` into the page and its next token."""
    if len(rows) <= page_size:
        return rows, ""
    rows = rows[:page_size]
    last = rows[-1]
    return rows, tokens.encode([last[time_key].isoformat(), str(last["id"])], filters)
