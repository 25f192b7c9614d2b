"""Shared set-up for the campaign tests: a connected account, contacts that are real
sandbox users, segments stored by SQL, templates, and running the engine's loops
until a condition holds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import xhelpers as xh
from psycopg.rows import dict_row

from mktx.v1 import accounts_pb2_grpc, campaigns_pb2, templates_pb2, templates_pb2_grpc
from mktx_grpc.worker.dispatch import (
    consume_campaign_events,
    dispatch_due_recipients,
    recover_stale_sends,
    run_campaign_schedules,
)

C = campaigns_pb2
ALL_LOOPS = (
    dispatch_due_recipients,
    recover_stale_sends,
    run_campaign_schedules,
    consume_campaign_events,
)


async def connect_account(api, merchant, sandbox, db) -> tuple[dict[str, Any], Any]:
    """A connected OAuth 2.0 account (database row) and its sandbox user."""
    stub = accounts_pb2_grpc.AccountsServiceStub(api.channel)
    owner = xh.new_x_user(sandbox)
    connected = await xh.connect(stub, api.auth(merchant), owner)
    return await account_row(db, connected.id), owner


async def account_row(db, account_id) -> dict[str, Any]:
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM accounts WHERE id = %s", (account_id,))
        row = await cur.fetchone()
    assert row is not None
    return row


async def lift_budget(db, account_id, per_15: int = 1_000_000, per_24: int = 10_000_000) -> None:
    budget = json.dumps({"per_15_minutes": per_15, "per_24_hours": per_24})
    await db.execute(
        "UPDATE accounts SET settings = jsonb_set(settings, '{dm_budget}', %s::jsonb)"
        " WHERE id = %s",
        (budget, account_id),
    )


@contextlib.contextmanager
def sandbox_limits_lifted(sandbox) -> Iterator[None]:
    """The session sandbox without per-user limits, restored afterwards."""
    cfg = sandbox.state.config
    with sandbox.state.lock:
        before = cfg.rate_limits_enabled
        cfg.rate_limits_enabled = False
    try:
        yield
    finally:
        with sandbox.state.lock:
            cfg.rate_limits_enabled = before


async def add_contacts(
    db,
    sandbox,
    merchant,
    account_id,
    n: int,
    *,
    tags: list[str] | None = None,
    attributes: dict[str, Any] | None = None,
    time_zone: str = "",
    accepts_dms: bool = True,
) -> list[tuple[uuid.UUID, Any]]:
    """``n`` contacts, each a fresh sandbox user. Returns (contact id, sandbox user)."""
    users = []
    for _ in range(n):
        uid = str(1_700_000_000_000_000_000 + secrets.randbelow(10**17))
        users.append(
            sandbox.state.add_user(
                uid, f"c{uid[-8:]}", f"Customer {uid[-4:]}", accepts_dms=accepts_dms
            )
        )
    ids = [uuid.uuid4() for _ in users]
    async with db.cursor() as cur:
        await cur.executemany(
            "INSERT INTO contacts (id, merchant_id, account_id, x_user_id, username, display_name,"
            " tags, attributes, time_zone) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)",
            [
                (
                    cid,
                    merchant,
                    account_id,
                    u.id,
                    u.username,
                    u.name,
                    tags or [],
                    json.dumps(attributes or {}),
                    time_zone,
                )
                for cid, u in zip(ids, users, strict=True)
            ],
        )
    return list(zip(ids, users, strict=True))


def tag_condition(tag: str) -> dict[str, Any]:
    return {
        "operator": "CONDITION_GROUP_OPERATOR_AND",
        "nodes": [
            {
                "condition": {
                    "field": "tags",
                    "operator": "CONDITION_OPERATOR_CONTAINS",
                    "string_value": tag,
                }
            }
        ],
    }


async def add_segment(db, merchant, conditions: dict[str, Any], name: str | None = None) -> str:
    sid = uuid.uuid4()
    await db.execute(
        "INSERT INTO segments (id, merchant_id, name, conditions) VALUES (%s, %s, %s, %s::jsonb)",
        (sid, merchant, name or f"seg-{sid.hex[:8]}", json.dumps(conditions)),
    )
    return str(sid)


async def add_template(api, merchant, content: str, name: str | None = None) -> str:
    stub = templates_pb2_grpc.TemplatesServiceStub(api.channel)
    t = await stub.CreateTemplate(
        templates_pb2.CreateTemplateRequest(
            template=templates_pb2.Template(
                name=name or f"t-{uuid.uuid4().hex[:8]}",
                type=templates_pb2.TEMPLATE_TYPE_TEXT,
                content=content,
            )
        ),
        metadata=api.auth(merchant),
    )
    return t.id


async def run_until(
    deps, done: Callable[[], Awaitable[bool]], *, loops=ALL_LOOPS, timeout: float = 30.0
) -> None:
    """Run the engine's loop functions in turn until ``done()`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        for loop in loops:
            await loop(deps)
        if await done():
            return
        if time.monotonic() > deadline:
            raise AssertionError("the campaign did not settle in time")
        await asyncio.sleep(0.02)


async def scalar(db, query: str, *args: Any) -> Any:
    row = await (await db.execute(query, args)).fetchone()
    return None if row is None else row[0]


async def states(db, campaign_id: str) -> dict[str, int]:
    rows = await (
        await db.execute(
            "SELECT state, count(*) FROM campaign_recipients WHERE campaign_id = %s GROUP BY state",
            (campaign_id,),
        )
    ).fetchall()
    return {s: n for s, n in rows}
