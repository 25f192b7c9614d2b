"""Issue 13 §1 in process, against the shared PostgreSQL (nothing is stopped): dead
pooled connections are discarded, a query whose connection dies is UNAVAILABLE, the
pool wait is bounded by the call's deadline and by MKTX_DB_WAIT_MAX, and the log line
records what the client got. The real outage is tests/faults/test_db_outage.py."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import grpc
import psycopg
import pytest
from helpers import expect_error
from psycopg_pool import PoolTimeout

from mktx.v1 import templates_pb2, templates_pb2_grpc
from mktx_grpc.core.auth import mint_token
from mktx_grpc.core.db import (
    DatabaseState,
    check_connection,
    is_connection_failure,
    make_pool,
    use_connection,
)
from mktx_grpc.core.logs import JsonFormatter
from mktx_grpc.deps import close_deps, make_deps
from mktx_grpc.server import GrpcApp

T = templates_pb2
WAIT_MAX = 0.5


@pytest.fixture
async def app(settings):
    """A server whose pool (2 connections) can be exhausted and whose wait is short."""
    pool = make_pool(settings.database_url, min_size=2, max_size=2)
    await pool.open(wait=True)
    deps = make_deps(settings.replace(db_wait_max=WAIT_MAX), pool)
    server = GrpcApp(deps, host="127.0.0.1", port=0)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield server, channel, templates_pb2_grpc.TemplatesServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(0)
        await close_deps(deps)
        await pool.close()


def _md(settings, merchant) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {mint_token(settings, merchant)}")]


async def _terminate_others(db) -> int:
    """Kill every other session of the test's database, as a restart would."""
    rows = await (
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    ).fetchall()
    return len(rows)


def test_connection_failures_are_recognised_and_bugs_are_not():
    assert is_connection_failure(psycopg.OperationalError("server closed the connection"))
    assert is_connection_failure(psycopg.errors.AdminShutdown())
    assert is_connection_failure(PoolTimeout("couldn't get a connection"))
    assert is_connection_failure(ConnectionRefusedError())
    try:
        try:
            raise psycopg.OperationalError("lost")
        except psycopg.OperationalError as exc:
            raise RuntimeError("while recording") from exc
    except RuntimeError as wrapped:
        assert is_connection_failure(wrapped)
    assert not is_connection_failure(psycopg.errors.UndefinedTable())
    assert not is_connection_failure(psycopg.DataError("NUL"))
    assert not is_connection_failure(ValueError("bug"))


def test_database_state_shortens_waits_only_when_down():
    state = DatabaseState()
    assert state.wait_for(None) is None and state.wait_for(3.0) == 3.0
    state.reachable = False
    assert state.wait_for(None) == state.wait_for(3.0) == 0.25
    assert state.wait_for(0.1) == 0.1


async def test_dead_pooled_connections_are_discarded_not_handed_out(database_url, db):
    pool = make_pool(database_url, min_size=2, max_size=2, metrics=False)
    await pool.open(wait=True)
    try:
        async with use_connection(pool) as conn:
            await conn.execute("SELECT 1")
        assert await _terminate_others(db) >= 2
        await asyncio.sleep(0.2)  # the goodbye reaches the idle sockets
        # Every connection the pool hands out works: the dead ones were replaced.
        for _ in range(4):
            async with use_connection(pool, wait=5) as conn:
                await check_connection(conn)
                assert (await (await conn.execute("SELECT 1")).fetchone()) == (1,)
    finally:
        await pool.close()


async def test_calls_after_a_restart_of_every_session_succeed(app, settings, merchant, db):
    _, _, templates = app
    md = _md(settings, merchant)
    await templates.ListTemplates(T.ListTemplatesRequest(), metadata=md)
    await _terminate_others(db)
    await asyncio.sleep(0.2)
    for _ in range(3):  # formerly INTERNAL (AdminShutdown on the pooled connection)
        await templates.ListTemplates(T.ListTemplatesRequest(), metadata=md, timeout=5)


async def test_a_query_whose_connection_dies_is_unavailable(app, settings, merchant, db):
    server, _, templates = app
    md = _md(settings, merchant)
    created = await templates.CreateTemplate(
        T.CreateTemplateRequest(
            template=T.Template(name="t", type=T.TEMPLATE_TYPE_TEXT, content="x"),
            request_id=str(uuid.uuid4()),
        ),
        metadata=md,
    )
    locker = await psycopg.AsyncConnection.connect(db.info.dsn, autocommit=False)
    try:
        await locker.execute("SELECT 1 FROM templates WHERE id = %s FOR UPDATE", (created.id,))
        call = asyncio.ensure_future(
            templates.DeleteTemplate(T.DeleteTemplateRequest(id=created.id), metadata=md)
        )
        # The call's backend waits on the lock; kill it there, mid-statement.
        pid = None
        for _ in range(200):
            row = await (
                await db.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND pid <> %s",
                    (locker.info.backend_pid,),
                )
            ).fetchone()
            if row:
                pid = row[0]
                break
            await asyncio.sleep(0.02)
        assert pid is not None, "the call never waited on the lock"
        await db.execute("SELECT pg_terminate_backend(%s)", (pid,))
        err = await expect_error(call, grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE")
        assert "psycopg" not in err.message and "Traceback" not in err.message
    finally:
        await locker.close()
    # Nothing half-written, and the service goes on.
    got = await templates.GetTemplate(T.GetTemplateRequest(id=created.id), metadata=md)
    assert got.id == created.id


async def test_the_pool_wait_is_bounded_by_the_deadline_and_the_maximum(
    app, settings, merchant, caplog
):
    server, _, templates = app
    md = _md(settings, merchant)
    await templates.ListTemplates(T.ListTemplatesRequest(), metadata=md)
    pool = server.deps.pool
    held = [await pool.getconn(), await pool.getconn()]  # the pool is exhausted
    try:
        with caplog.at_level(logging.INFO, logger="mktx_grpc.rpc"):
            # A nearer deadline: the client gives up at it (not after the pool's wait).
            start = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as short:
                await templates.ListTemplates(
                    T.ListTemplatesRequest(),
                    metadata=[*md, ("x-request-id", "short-deadline")],
                    timeout=0.2,
                )
            # (UNAVAILABLE when the server's bounded wait ends a moment before the
            # client's clock does.)
            assert short.value.code() in (
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.UNAVAILABLE,
            )
            # A farther deadline: UNAVAILABLE after MKTX_DB_WAIT_MAX, not 30 s.
            await expect_error(
                templates.ListTemplates(
                    T.ListTemplatesRequest(),
                    metadata=[*md, ("x-request-id", "long-deadline")],
                    timeout=30,
                ),
                grpc.StatusCode.UNAVAILABLE,
                "DATABASE_UNAVAILABLE",
            )
            elapsed = time.monotonic() - start
            await asyncio.sleep(0.5)  # the abandoned call's handler finishes and logs
    finally:
        for conn in held:
            await pool.putconn(conn)
    assert elapsed < 30 / 2
    lines = {
        r["request_id"]: r["code"]
        for r in (
            json.loads(JsonFormatter().format(rec))
            for rec in caplog.records
            if rec.name == "mktx_grpc.rpc"
        )
    }
    # What each client got: neither is logged OK.
    assert lines["long-deadline"] == "UNAVAILABLE"
    assert lines["short-deadline"] in ("DEADLINE_EXCEEDED", "UNAVAILABLE", "CANCELLED")
    await templates.ListTemplates(T.ListTemplatesRequest(), metadata=md)
