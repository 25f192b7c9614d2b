"""Shared set-up for the publishing tests: a connected account whose X user is a
fresh sandbox user, the PublishingService stub, posts as the sandbox holds them, and
running the publisher's loops until a condition holds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import xhelpers as xh
from google.protobuf.timestamp_pb2 import Timestamp
from psycopg.rows import dict_row

from mktx.v1 import accounts_pb2 as A
from mktx.v1 import accounts_pb2_grpc, publishing_pb2, publishing_pb2_grpc
from mktx_grpc.worker.publishing import PublishOptions, publish_due_posts

P = publishing_pb2

#: Fast retries for tests (the defaults wait seconds to minutes).
FAST = PublishOptions(unclear_base=0.05, unclear_max=0.2, idle_sleep=0.05, pass_seconds=2.0)


def stub(api: Any) -> Any:
    return publishing_pb2_grpc.PublishingServiceStub(api.channel)


async def connect_account(
    api: Any, merchant: Any, sandbox: Any, *, method: int = A.AUTH_METHOD_OAUTH2, **extra: Any
) -> tuple[Any, Any]:
    """A connected account (the proto) and its sandbox user."""
    owner = xh.new_x_user(sandbox, **extra)
    accounts = accounts_pb2_grpc.AccountsServiceStub(api.channel)
    connected = await xh.connect(accounts, api.auth(merchant), owner, method=method)
    return connected, owner


def ts(at: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(at.astimezone(UTC))
    return out


def text_post(account_id: str, *texts: str, **kw: Any) -> Any:
    return P.Post(account_id=account_id, parts=[P.PostPart(text=t) for t in texts], **kw)


def x_posts(sandbox: Any, user_id: str, *, include_deleted: bool = False) -> list[Any]:
    """The user's posts at the sandbox, oldest first."""
    posts = [p for p in sandbox.state.iter_posts(user_id) if include_deleted or not p.deleted]
    return sorted(posts, key=lambda p: int(p.id))


async def row(db: Any, query: str, *args: Any) -> dict[str, Any] | None:
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, args)
        return await cur.fetchone()


async def scalar(db: Any, query: str, *args: Any) -> Any:
    got = await (await db.execute(query, args)).fetchone()
    return None if got is None else got[0]


async def events(db: Any, post_id: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await (
        await db.execute(
            "SELECT type, payload FROM domain_events WHERE aggregate_id = %s ORDER BY id",
            (post_id,),
        )
    ).fetchall()
    return [(t, p if isinstance(p, dict) else json.loads(p)) for t, p in rows]


async def make_due(db: Any, post_id: str) -> None:
    """The post's time (or back-off) has come."""
    await db.execute(
        "UPDATE posts SET ready_at = now() - interval '1 second',"
        " due_at = LEAST(due_at, now()), lease_until = NULL WHERE id = %s"
        " AND status IN ('SCHEDULED', 'PUBLISHING')",
        (post_id,),
    )


async def run_until(
    deps: Any,
    done: Callable[[], Awaitable[bool]],
    *,
    options: PublishOptions = FAST,
    timeout: float = 30.0,
) -> None:
    """Run the publisher's loop until ``done()`` holds."""
    deadline = time.monotonic() + timeout
    while not await done():
        if time.monotonic() > deadline:
            raise AssertionError("the post did not settle in time")
        await publish_due_posts(deps, options)
        await asyncio.sleep(0.02)


def status_is(db: Any, post_id: str, *statuses: str) -> Callable[[], Awaitable[bool]]:
    async def done() -> bool:
        return await scalar(db, "SELECT status FROM posts WHERE id = %s", post_id) in statuses

    return done


# ------------------------------------------------------------------ a real worker process


def worker_env(settings: Any, sandbox: Any, data_dir: Any) -> dict[str, str]:
    """The environment of a ``mktx-grpc worker`` against the test's database and the
    session sandbox."""
    import base64
    import os

    cfg = sandbox.config
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MKTX_", "X_"))}
    env.update(
        {
            "DATABASE_URL": settings.database_url,
            "MKTX_DATA_DIR": str(data_dir),
            "MKTX_ENCRYPTION_KEY": base64.b64encode(settings.encryption_key).decode(),
            "MKTX_JWT_SECRET": settings.jwt_secret.decode(),
            "X_CONSUMER_KEY": cfg.consumer_key,
            "X_CONSUMER_SECRET": cfg.consumer_secret,
            "X_CLIENT_ID": cfg.oauth2_client_id,
            "X_CLIENT_SECRET": cfg.oauth2_client_secret,
            "X_BEARER_TOKEN": cfg.app_bearer_token,
            "X_API_BASE": sandbox.base_url,
            "X_AUTHORIZE_BASE": sandbox.base_url,
            "MKTX_X_SANDBOX": "true",
            "MKTX_MEDIA_CA_FILE": settings.media_ca_file,
            "MKTX_LOG_LEVEL": "WARNING",
            # No /metrics listener: parallel tests would contend for the default port.
            "MKTX_WORKER_METRICS_PORT": "0",
        }
    )
    return env
