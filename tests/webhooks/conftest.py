"""Fixtures: the webhook sidecar served by uvicorn on a loopback port (in the test's
event loop, so it shares the pool), a database helper and connected accounts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from webhook_helpers import (
    FAST,
    Account,
    ConnectAccount,
    Db,
    Sidecar,
    StartSidecar,
    new_x_id,
)

from mktx_grpc.core.config import Settings
from mktx_grpc.core.db import make_pool
from mktx_grpc.deps import Deps, make_deps
from mktx_grpc.webhooks.metrics import WebhookMetrics


@pytest.fixture
def q(db: psycopg.AsyncConnection[Any]) -> Db:
    return Db(db)


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[AsyncConnectionPool]:
    p = make_pool(settings.database_url, min_size=1, max_size=6)
    await p.open(wait=True)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def deps(settings: Settings, pool: AsyncConnectionPool) -> Deps:
    return make_deps(settings, pool)


@pytest.fixture
async def start_sidecar(
    deps: Deps, settings: Settings, serve_sidecar: Callable[..., Awaitable[Any]]
) -> AsyncIterator[StartSidecar]:
    """Start sidecars on loopback ports: ``await start_sidecar(max_attempts=2)``
    (keyword arguments override :data:`FAST`)."""
    clients: list[httpx.AsyncClient] = []

    async def start(*, lifespan: str = "on", **overrides: Any) -> Sidecar:
        running = await serve_sidecar(
            deps=deps,
            lifespan=lifespan,
            options=replace(FAST, **overrides),
            metrics=WebhookMetrics(),
        )
        http = httpx.AsyncClient(timeout=10.0)
        clients.append(http)
        return Sidecar(running.base_url, running.app, settings.x_consumer_secret, http)

    yield start
    for http in clients:
        await http.aclose()


@pytest.fixture(params=["set_based", "per_event"])
def dm_path(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Run a test over both ways of applying inbound DMs."""
    return {"set_based_dms": request.param == "set_based"}


@pytest.fixture
async def sidecar(start_sidecar: StartSidecar) -> Sidecar:
    return await start_sidecar()


@pytest.fixture
async def dm_sidecar(start_sidecar: StartSidecar, dm_path: dict[str, Any]) -> Sidecar:
    """A sidecar applying inbound DMs set-based or one at a time (parametrized)."""
    return await start_sidecar(**dm_path)


@pytest.fixture
def connect_account(db: psycopg.AsyncConnection[Any], merchant: uuid.UUID) -> ConnectAccount:
    """Insert a connected account: ``await connect_account(x_user_id=..., status=...)``."""

    async def make(
        x_user_id: str | None = None,
        *,
        merchant_id: uuid.UUID | None = None,
        status: str = "ACTIVE",
    ) -> Account:
        xid = x_user_id or new_x_id()
        mid = merchant_id or merchant
        cur = await db.execute(
            "INSERT INTO accounts (merchant_id, x_user_id, username, auth_method, status)"
            " VALUES (%s, %s, %s, 'OAUTH1', %s) RETURNING id",
            (mid, xid, f"shop{xid[-5:]}", status),
        )
        row = await cur.fetchone()
        assert row is not None
        return Account(row[0], mid, xid)

    return make


@pytest.fixture
async def account(connect_account: ConnectAccount) -> Account:
    return await connect_account()
