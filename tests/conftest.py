"""Shared fixtures: a real PostgreSQL, a migrated template database cloned per test,
and the production gRPC composition started in-process on port 0.

PostgreSQL comes from ``TEST_DATABASE_URL`` when set (CI points it at the local
server); otherwise the same embedded server that ``serve`` uses is started in
``.data/test-pg``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
import uvicorn
from psycopg import sql
from psycopg.conninfo import make_conninfo

from mktx_grpc.core import logs
from mktx_grpc.core.auth import mint_token
from mktx_grpc.core.config import Settings
from mktx_grpc.core.db import load_migrations, make_pool, migrate
from mktx_grpc.deps import close_deps, make_deps
from mktx_grpc.sandbox import SandboxConfig, SandboxServer
from mktx_grpc.server import GrpcApp
from mktx_grpc.webhooks.app import create_webhook_app
from mktx_grpc.webhooks.server import sidecar_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _process_logging_restored() -> Iterator[None]:
    """Undo what a test's in-process CLI command (``cli.main``: ``logs.configure``)
    does to the process's logging: the per-RPC line's writer and the root logger's
    handlers and level. Left in place, the later tests of the same xdist worker log
    their RPC lines past ``caplog`` (seen: test_one_structured_log_line_per_rpc after
    the analytics rebuild command's test)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    writer = logs.set_writer(None)
    logs.set_writer(writer)
    yield
    replaced = logs.set_writer(writer)
    if replaced is not None and replaced is not writer:
        replaced.close()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if url:
        yield url
        return
    from mktx_grpc.core.db import embedded_database_url

    yield embedded_database_url(ROOT / ".data" / "test")


def _db_url(admin_url: str, dbname: str) -> str:
    return make_conninfo(admin_url, dbname=dbname)


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> str:
    """A database migrated once per migration set, used as the clone source.

    Its name carries a hash of the migrations, so a changed migration gets a fresh
    template and an unchanged one is reused across runs.
    """
    digest = hashlib.sha256("".join(m.checksum for m in load_migrations()).encode())
    name = f"mktx_tmpl_{digest.hexdigest()[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(727002)")
        try:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                building = f"{name}_build_{os.getpid()}"
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
                migrate(_db_url(pg_admin_url, building))
                conn.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(building), sql.Identifier(name)
                    )
                )
        finally:
            conn.execute("SELECT pg_advisory_unlock(727002)")
    return name


@pytest.fixture
def database_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh clone of the migrated template for this test, dropped afterwards."""
    name = f"mktx_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
    yield _db_url(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """One X sandbox for the session, over real loopback HTTP. Tests keep out of each
    other's way by creating their own fake X users."""
    with SandboxServer(SandboxConfig()) as server:
        yield server


@pytest.fixture
def settings(database_url: str, tmp_path: Path, sandbox: SandboxServer) -> Settings:
    cfg = sandbox.config
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        jwt_secret=b"test-jwt-secret-0123456789abcdef",
        encryption_key=bytes(range(32)),
        page_token_key=b"test-page-token-key",
        x_consumer_key=cfg.consumer_key,
        x_consumer_secret=cfg.consumer_secret,
        x_client_id=cfg.oauth2_client_id,
        x_client_secret=cfg.oauth2_client_secret,
        x_bearer_token=cfg.app_bearer_token,
        x_api_base=sandbox.base_url,
        x_authorize_base=sandbox.base_url,
        x_backoff_base=0.01,
        x_default_deadline=5.0,
        x_sandbox=True,
    )


@dataclass
class Api:
    """A running in-process server and helpers to call it."""

    app: GrpcApp
    channel: grpc.aio.Channel
    settings: Settings

    def token(self, merchant_id: uuid.UUID, user_id: str = "tester") -> str:
        return mint_token(self.settings, merchant_id, user_id=user_id)

    def auth(self, merchant_id: uuid.UUID, user_id: str = "tester") -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token(merchant_id, user_id)}")]

    def stub(self, module: Any, service: str) -> Any:
        return getattr(module, f"{service}Stub")(self.channel)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async with start_api(settings) as running:
        yield running


@pytest.fixture
def start_server(settings: Settings) -> Callable[..., AbstractAsyncContextManager[Api]]:
    """``async with start_server(pool_size=N) as api:`` a second server, on its own pool."""
    return partial(start_api, settings)


@asynccontextmanager
async def start_api(settings: Settings, *, pool_size: int = 4) -> AsyncIterator[Api]:
    """An in-process server over a pool of its own (at most ``pool_size`` connections)."""
    pool = make_pool(settings.database_url, min_size=1, max_size=pool_size)
    await pool.open(wait=True)
    deps = make_deps(settings, pool)
    app = GrpcApp(deps, host="127.0.0.1", port=0)
    await app.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
    try:
        yield Api(app, channel, settings)
    finally:
        await channel.close()
        await app.stop(0)
        await close_deps(deps)
        await pool.close()


@pytest.fixture
def merchant() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def other_merchant() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A direct autocommit connection to the test's database, for setup and checks."""
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        yield conn
    finally:
        await conn.close()


@dataclass
class RunningSidecar:
    """A webhook sidecar serving on a loopback port."""

    base_url: str
    app: Any

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/webhooks/twitter"


ServeSidecar = Callable[..., Awaitable[RunningSidecar]]


@pytest.fixture
async def serve_sidecar(settings: Settings) -> AsyncIterator[ServeSidecar]:
    """Start the production webhook sidecar (``create_webhook_app``) under uvicorn on
    loopback ports, in the test's event loop: ``await serve_sidecar()``. Keyword
    arguments: ``deps`` (default: a pool and deps of its own, closed afterwards),
    ``lifespan`` ("on" starts the in-process event processors), and anything
    ``create_webhook_app`` takes (``options``, ``metrics``)."""
    async with AsyncExitStack() as stack:

        async def serve(
            *, deps: Any = None, lifespan: str = "on", **app_kwargs: Any
        ) -> RunningSidecar:
            if deps is None:
                pool = make_pool(settings.database_url, min_size=1, max_size=4)
                await pool.open(wait=True)
                stack.push_async_callback(pool.close)
                deps = make_deps(settings, pool)
                stack.push_async_callback(close_deps, deps)
            app = create_webhook_app(deps, settings.x_consumer_secret, **app_kwargs)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            stack.callback(sock.close)
            # The production configuration (receive deadlines, connection limit).
            server = uvicorn.Server(sidecar_config(app, app.state.options, lifespan=lifespan))
            task = asyncio.create_task(server.serve(sockets=[sock]))

            async def stop() -> None:
                server.should_exit = True
                await asyncio.wait_for(task, timeout=10)

            stack.push_async_callback(stop)
            give_up = time.monotonic() + 10
            while not server.started:
                if task.done() or time.monotonic() > give_up:
                    raise RuntimeError("sidecar did not start")
                await asyncio.sleep(0.01)
            return RunningSidecar(f"http://127.0.0.1:{sock.getsockname()[1]}", app)

        yield serve
