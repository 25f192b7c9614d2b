"""The bare baseline for the GetTemplate and GetContact benchmark (issues 2 §6, 14 §2).

A grpc.aio server with exactly two handlers, ``mktx.v1.TemplatesService/GetTemplate``
and ``mktx.v1.ContactsService/GetContact``, that do what the service's read path does
at its core and nothing else: take a connection from an autocommit
``AsyncConnectionPool`` (same sizes as the service), run the same SELECTs (from
``sql/queries/*.sql``: ``get_template``; ``get_contact`` then ``contact_engagement``)
with a dict row factory, and build the same message (GetContact through the service's
own ``contact_to_proto``). No interceptors, no JWT, no validation, no health or
reflection; the merchant comes from ``--merchant``. One query per call: the bare
handler cannot coalesce.

    python bench/bare_server.py --database-url URL --merchant UUID --port 50090 \
        [--workers 1] [--loop uvloop|asyncio] [--pool-min 2] [--pool-max 10]

Prints ``READY <port>`` on stdout once every process is listening.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import signal
import sys
from datetime import UTC
from pathlib import Path
from typing import Any
from uuid import UUID

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from mktx.v1 import common_pb2, contacts_pb2, contacts_pb2_grpc, templates_pb2, templates_pb2_grpc
from mktx_grpc.mapping.contacts import contact_to_proto

ROOT = Path(__file__).resolve().parents[1]

TYPE_FROM_DB = {
    "TEXT": templates_pb2.TEMPLATE_TYPE_TEXT,
    "QUICK_REPLY": templates_pb2.TEMPLATE_TYPE_QUICK_REPLY,
    "CARD": templates_pb2.TEMPLATE_TYPE_CARD,
}


def named_sql(domain: str, name: str) -> str:
    """The service's own named query, read from sql/queries/<domain>.sql."""
    text = (ROOT / "sql" / "queries" / f"{domain}.sql").read_text()
    body = text.split(f"-- name: {name}\n", 1)[1].split("-- name:", 1)[0]
    return body.strip().rstrip(";")


def get_template_sql() -> str:
    return named_sql("templates", "get_template")


def _ts(value: Any) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value.astimezone(UTC))
    return out


def _etag(resource_id: Any, version: int) -> str:
    digest = hashlib.blake2s(f"{resource_id}:{version}".encode(), digest_size=9).hexdigest()
    return f'"{digest}"'


class BareTemplates(templates_pb2_grpc.TemplatesServiceServicer):
    def __init__(self, pool: AsyncConnectionPool, merchant: UUID, query: str) -> None:
        self._pool = pool
        self._merchant = merchant
        self._query = query

    async def GetTemplate(
        self, request: templates_pb2.GetTemplateRequest, context: grpc.aio.ServicerContext
    ) -> templates_pb2.Template:
        async with self._pool.connection() as conn:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    self._query, {"merchant_id": self._merchant, "id": UUID(request.id)}
                )
                row = await cur.fetchone()
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "template not found")
        return templates_pb2.Template(
            id=str(row["id"]),
            name=row["name"],
            description=row["description"],
            type=TYPE_FROM_DB[row["type"]],
            content=row["content"],
            quick_replies=[common_pb2.QuickReplyOption(**q) for q in row["quick_replies"]],
            card_media_url=row["card_media_url"],
            card_buttons=[common_pb2.CardButton(**b) for b in row["card_buttons"]],
            variables=row["variables"],
            tags=row["tags"],
            create_time=_ts(row["created_at"]),
            update_time=_ts(row["updated_at"]),
            etag=_etag(row["id"], row["version"]),
        )


class BareContacts(contacts_pb2_grpc.ContactsServiceServicer):
    def __init__(self, pool: AsyncConnectionPool, merchant: UUID) -> None:
        self._pool = pool
        self._merchant = merchant
        self._get = named_sql("contacts", "get_contact")
        self._engagement = named_sql("contacts", "contact_engagement")

    async def GetContact(
        self, request: contacts_pb2.GetContactRequest, context: grpc.aio.ServicerContext
    ) -> contacts_pb2.Contact:
        params = {"merchant_id": self._merchant, "id": UUID(request.id)}
        async with self._pool.connection() as conn:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(self._get, params)
                row = await cur.fetchone()
                if row is None:
                    await context.abort(grpc.StatusCode.NOT_FOUND, "contact not found")
                await cur.execute(self._engagement, params)
                engagement = await cur.fetchone()
        return contact_to_proto(row, engagement)


async def serve(args: argparse.Namespace, ready: Any = None) -> None:
    pool = AsyncConnectionPool(
        args.database_url,
        min_size=args.pool_min,
        max_size=args.pool_max,
        kwargs={"autocommit": True},
        open=False,
        name="bare",
    )
    await pool.open(wait=True, timeout=30)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
    templates_pb2_grpc.add_TemplatesServiceServicer_to_server(
        BareTemplates(pool, UUID(args.merchant), get_template_sql()), server
    )
    contacts_pb2_grpc.add_ContactsServiceServicer_to_server(
        BareContacts(pool, UUID(args.merchant)), server
    )
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    await server.start()
    if ready is not None:
        ready.set()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is None:
        print(f"READY {port}", flush=True)
    await stop.wait()
    await server.stop(0)
    await pool.close()


def run(args: argparse.Namespace, ready: Any = None) -> None:
    if args.loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(args, ready))
    else:
        asyncio.run(serve(args, ready))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", required=True)
    p.add_argument("--merchant", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=1, help="SO_REUSEPORT processes")
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    p.add_argument("--pool-min", type=int, default=2)
    p.add_argument("--pool-max", type=int, default=10)
    args = p.parse_args(argv)
    ctx = multiprocessing.get_context("spawn")
    children = []
    for _ in range(args.workers - 1):
        ev = ctx.Event()
        proc = ctx.Process(target=run, args=(args, ev), daemon=True)
        proc.start()
        children.append((proc, ev))
    for _, ev in children:
        ev.wait(30)
    try:
        run(args)
    finally:
        for proc, _ in children:
            proc.terminate()
        for proc, _ in children:
            proc.join(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
