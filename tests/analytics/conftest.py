"""Fixtures of the analytics tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from analytics_helpers import World
from psycopg_pool import AsyncConnectionPool

from mktx_grpc.core.db import make_pool


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    p = make_pool(database_url, min_size=1, max_size=4)
    await p.open(wait=True)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def world(db: psycopg.AsyncConnection[Any], merchant: uuid.UUID) -> World:
    return World(db, merchant)


@pytest.fixture
def other_world(db: psycopg.AsyncConnection[Any], other_merchant: uuid.UUID) -> World:
    return World(db, other_merchant)
