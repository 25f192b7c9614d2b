"""Data access: named SQL queries run on the unit of work's connection.

Store functions take the merchant id explicitly and every query filters on it, so
tenant isolation is visible at each call site.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..core.context import current_connection
from ..core.db import Queries, Row
from ..core.errors import Aborted

__all__ = [
    "Jsonb",
    "Queries",
    "Row",
    "etag_of",
    "execute",
    "fetch_all",
    "fetch_one",
]


async def fetch_one(
    query: str, params: Mapping[str, Any], *, prepare: bool | None = None
) -> Row | None:
    """The first row of ``query``. ``prepare`` as psycopg's: None prepares a query
    once the connection has run it a few times, False never does (see
    ``store.analytics.read``)."""
    async with current_connection().cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params, prepare=prepare)
        return await cur.fetchone()


async def fetch_all(
    query: str, params: Mapping[str, Any], *, prepare: bool | None = None
) -> list[Row]:
    """Every row of ``query``; ``prepare`` as for :func:`fetch_one`."""
    async with current_connection().cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params, prepare=prepare)
        return await cur.fetchall()


async def execute(query: str, params: Mapping[str, Any]) -> int:
    """Run a statement; return the affected row count."""
    async with current_connection().cursor() as cur:
        await cur.execute(query, params)
        return cur.rowcount


def etag_of(resource_id: UUID | str, version: int) -> str:
    """An opaque etag for one version of one resource."""
    digest = hashlib.blake2s(f"{resource_id}:{version}".encode(), digest_size=9).hexdigest()
    return f'"{digest}"'


def check_etag(etag: str, row: Row, resource: str) -> None:
    """Raise Aborted (ETAG_MISMATCH) when the caller's ``etag`` is set and the row
    has changed since; an empty etag means the caller does not ask for the check."""
    if etag and etag != etag_of(row["id"], row["version"]):
        raise Aborted(
            f"the {resource} changed since it was read; re-read it and retry",
            reason="ETAG_MISMATCH",
        )
