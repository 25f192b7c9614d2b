"""Benchmark: DM events ingested per second through the webhook sidecar.

The sidecar runs in its own process (uvicorn + uvloop, the production app from
``create_webhook_app``) against a throwaway database on a local PostgreSQL. This
process plays X: it signs deliveries exactly as X does, batches several
``direct_message_events`` per POST with the ``users`` map, and keeps several
deliveries in flight. A share of deliveries is sent twice, as X's retries and
replays do.

Figures:
* accepted/s: events durably recorded (committed before each 200);
* ingested/s: events fully processed (contact, conversation, message, interaction,
  domain event, inbox row finished), from the first POST to the last commit.

Afterwards the counts are checked: every event exactly once in the inbox, as a
message, as a message.received domain event, and finished as PROCESSED.

    .venv/bin/python bench/webhook_ingest.py --events 20000 --batch 25 --contacts 2000

Requires a PostgreSQL reachable at --admin-url (default
postgresql://postgres@127.0.0.1:5432/postgres); the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "gen"))

SECRET = "bench-consumer-secret"


def serve(db_url: str, port: int, workers: int, pool_size: int) -> None:
    """The sidecar process."""
    import uvicorn

    from mktx_grpc.core.config import Settings
    from mktx_grpc.core.db import make_pool
    from mktx_grpc.deps import make_deps
    from mktx_grpc.webhooks.app import create_webhook_app
    from mktx_grpc.webhooks.options import IngestOptions

    async def main() -> None:
        settings = Settings(database_url=db_url, encryption_key=bytes(32), page_token_key=b"bench")
        pool = make_pool(db_url, min_size=pool_size, max_size=pool_size)
        await pool.open(wait=True)
        app = create_webhook_app(
            make_deps(settings, pool), SECRET, options=IngestOptions(workers=workers)
        )
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                lifespan="on",
                log_level="warning",
                access_log=False,
                loop="uvloop",
            )
        )
        await server.serve()
        await pool.close()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def signed_delivery(shop: str, dms: list[tuple[str, str, str]]) -> tuple[bytes, dict[str, str]]:
    """One Account Activity delivery to ``shop`` as X signs it, holding the DMs
    ``(event id, sender id, text)`` (other benchmarks drive the sidecar with it)."""
    from mktx_grpc.x.signatures import webhook_signature

    now_ms = str(int(time.time() * 1000))
    events = [
        {
            "type": "message_create",
            "id": xid,
            "created_timestamp": now_ms,
            "message_create": {
                "target": {"recipient_id": shop},
                "sender_id": sender,
                "message_data": {"text": text, "entities": {}},
            },
        }
        for xid, sender, text in dms
    ]
    users = {
        uid: {"id": uid, "id_str": uid, "name": f"U{uid[-5:]}", "screen_name": f"u{uid[-6:]}"}
        for uid in {shop, *(sender for _, sender, _ in dms)}
    }
    body = json.dumps(
        {"for_user_id": shop, "direct_message_events": events, "users": users},
        separators=(",", ":"),
    ).encode()
    return body, {
        "content-type": "application/json",
        "x-twitter-webhooks-signature": webhook_signature(SECRET, body),
    }


def start_sidecar(
    db_url: str, *, workers: int = 2, pool: int = 6
) -> tuple[subprocess.Popen[bytes], int]:
    """The production sidecar in a process of its own (``--serve``); returns it and
    its port. Wait for it with :func:`wait_sidecar`."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            db_url,
            str(port),
            "--workers",
            str(workers),
            "--pool",
            str(pool),
        ],
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'gen'}"},
    )
    return proc, port


async def wait_sidecar(
    http: httpx.AsyncClient, port: int, proc: subprocess.Popen[bytes], within: float = 30
) -> None:
    give_up = time.monotonic() + within
    while True:
        try:
            if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > give_up or proc.poll() is not None:
            raise RuntimeError("sidecar did not start")
        await asyncio.sleep(0.05)


def make_deliveries(
    shop: str, n_events: int, batch: int, n_contacts: int
) -> list[tuple[bytes, dict[str, str], int]]:
    from mktx_grpc.x.signatures import webhook_signature

    contacts = [str(1_900_000_000_000_000_000 + i) for i in range(n_contacts)]
    base_ms = int(time.time() * 1000)
    out = []
    seq = 0
    while seq < n_events:
        events, users = [], {}
        for _ in range(min(batch, n_events - seq)):
            sender = random.choice(contacts)
            seq += 1
            events.append(
                {
                    "type": "message_create",
                    "id": str(1_950_000_000_000_000_000 + seq),
                    "created_timestamp": str(base_ms + seq),
                    "message_create": {
                        "target": {"recipient_id": shop},
                        "sender_id": sender,
                        "source_app_id": "29000001",
                        "message_data": {
                            "text": f"bench message {seq}: is the item in stock?",
                            "entities": {
                                "hashtags": [],
                                "symbols": [],
                                "user_mentions": [],
                                "urls": [],
                            },
                        },
                    },
                }
            )
            for uid in (sender, shop):
                users[uid] = {
                    "id": uid,
                    "id_str": uid,
                    "name": f"User {uid[-5:]}",
                    "screen_name": f"user{uid[-5:]}",
                    "profile_image_url_https": f"https://pbs.twimg.com/p/{uid}.jpg",
                    "followers_count": 1,
                    "friends_count": 1,
                    "verified": False,
                    "protected": False,
                }
        body = json.dumps(
            {"for_user_id": shop, "direct_message_events": events, "users": users},
            separators=(",", ":"),
        ).encode()
        headers = {
            "content-type": "application/json",
            "x-twitter-webhooks-signature": webhook_signature(SECRET, body),
        }
        out.append((body, headers, len(events)))
    return out


async def load(
    url: str, deliveries: list[tuple[bytes, dict[str, str], int]], concurrency: int
) -> tuple[int, int]:
    """POST every delivery (a share twice); returns (new events, duplicate events)."""
    queue: asyncio.Queue[tuple[bytes, dict[str, str], int]] = asyncio.Queue()
    for d in deliveries:
        queue.put_nowait(d)
    totals = [0, 0]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as http:

        async def worker() -> None:
            while not queue.empty():
                body, headers, n = queue.get_nowait()
                for attempt in range(5):
                    resp = await http.post(url, content=body, headers=headers)
                    if resp.status_code == 200:
                        break
                    await asyncio.sleep(0.1 * (attempt + 1))  # as X retries
                else:
                    raise RuntimeError(f"delivery refused: {resp.status_code} {resp.text}")
                got = resp.json()
                totals[0] += got["new"]
                totals[1] += got["recorded"] - got["new"]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return totals[0], totals[1]


def wait_processed(db_url: str, n: int, timeout: float) -> float:
    give_up = time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM webhook_inbox WHERE processed_at IS NOT NULL"
            ).fetchone()
            if row is not None and row[0] >= n:
                return time.perf_counter()
            if time.monotonic() > give_up:
                raise RuntimeError(f"only {row[0] if row else 0} of {n} processed")
            time.sleep(0.01)


def verify(db_url: str, n: int) -> dict[str, Any]:
    with psycopg.connect(db_url, autocommit=True) as conn:

        def one(query: str) -> Any:
            row = conn.execute(query).fetchone()
            assert row is not None
            return row[0]

        counts = {
            "inbox_rows": one("SELECT count(*) FROM webhook_inbox"),
            "inbox_distinct_keys": one("SELECT count(DISTINCT event_key) FROM webhook_inbox"),
            "inbox_processed": one(
                "SELECT count(*) FROM webhook_inbox WHERE outcome = 'PROCESSED'"
            ),
            "inbox_other_outcomes": one(
                "SELECT count(*) FROM webhook_inbox WHERE outcome <> 'PROCESSED'"
            ),
            "inbox_max_attempts": one("SELECT max(attempts) FROM webhook_inbox"),
            "messages": one("SELECT count(*) FROM messages"),
            "messages_distinct_x_ids": one("SELECT count(DISTINCT x_event_id) FROM messages"),
            "message_received_events": one(
                "SELECT count(*) FROM domain_events WHERE type = 'message.received'"
            ),
            "interactions": one("SELECT count(*) FROM contact_interactions"),
            "sum_conversation_message_count": one("SELECT sum(message_count) FROM conversations"),
            "contacts": one("SELECT count(*) FROM contacts"),
            "conversations": one("SELECT count(*) FROM conversations"),
            "processing_lag_p50_ms": one(
                "SELECT round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY"
                " extract(epoch FROM processed_at - received_at))::numeric, 1)"
                " FROM webhook_inbox"
            ),
            "processing_lag_p99_ms": one(
                "SELECT round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY"
                " extract(epoch FROM processed_at - received_at))::numeric, 1)"
                " FROM webhook_inbox"
            ),
        }
    for key in (
        "inbox_rows",
        "inbox_distinct_keys",
        "inbox_processed",
        "messages",
        "messages_distinct_x_ids",
        "message_received_events",
        "interactions",
        "sum_conversation_message_count",
    ):
        if counts[key] != n:
            raise AssertionError(f"{key} = {counts[key]}, expected {n}: {counts}")
    if counts["inbox_other_outcomes"] != 0 or counts["contacts"] != counts["conversations"]:
        raise AssertionError(f"unexpected counts: {counts}")
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=25, help="DM events per POST")
    ap.add_argument("--contacts", type=int, default=2_000, help="distinct senders")
    ap.add_argument("--concurrency", type=int, default=8, help="deliveries in flight")
    ap.add_argument(
        "--duplicates", type=float, default=0.1, help="share of deliveries sent a second time"
    )
    ap.add_argument("--workers", type=int, default=2, help="sidecar processing workers")
    ap.add_argument("--pool", type=int, default=6, help="sidecar pool size")
    ap.add_argument("--keep", action="store_true", help="keep the database")
    ap.add_argument("--serve", nargs=2, metavar=("DB_URL", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.workers, args.pool)
        return 0

    from mktx_grpc.core.db import migrate

    dbname = f"mktx_bench_{uuid.uuid4().hex[:10]}"
    db_url = make_conninfo(args.admin_url, dbname=dbname)
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    proc: subprocess.Popen[bytes] | None = None
    try:
        migrate(db_url)
        shop = "1500000000000000001"
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO accounts (merchant_id, x_user_id, username, auth_method)"
                " VALUES (%s, %s, 'bench_shop', 'OAUTH1')",
                (uuid.uuid4(), shop),
            )
        random.seed(7)
        deliveries = make_deliveries(shop, args.events, args.batch, args.contacts)
        dup = random.sample(deliveries, int(len(deliveries) * args.duplicates))
        sends = deliveries + dup
        random.shuffle(sends)

        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                db_url,
                str(port),
                "--workers",
                str(args.workers),
                "--pool",
                str(args.pool),
            ],
            env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'gen'}"},
        )
        url = f"http://127.0.0.1:{port}/webhooks/twitter"
        give_up = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > give_up or proc.poll() is not None:
                raise RuntimeError("sidecar did not start")
            time.sleep(0.05)

        t0 = time.perf_counter()
        new, dups = asyncio.run(load(url, sends, args.concurrency))
        t_accepted = time.perf_counter()
        t_done = wait_processed(db_url, args.events, timeout=600)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        counts = verify(db_url, args.events)
        if new != args.events:
            raise AssertionError(f"sidecar reported {new} new events, expected {args.events}")

        accepted = args.events / (t_accepted - t0)
        ingested = args.events / (t_done - t0)
        report = {
            "events": args.events,
            "posts": len(sends),
            "events_per_post": args.batch,
            "duplicate_events_sent": dups,
            "concurrency": args.concurrency,
            "distinct_senders": args.contacts,
            "sidecar_workers": args.workers,
            "accept_seconds": round(t_accepted - t0, 2),
            "ingest_seconds": round(t_done - t0, 2),
            "accepted_events_per_s": round(accepted),
            "ingested_events_per_s": round(ingested),
            **counts,
            "metrics_failed": next(
                (
                    ln.split()[-1]
                    for ln in metrics.splitlines()
                    if ln.startswith("mktx_webhook_events_failed_total")
                ),
                "?",
            ),
        }
        print(json.dumps(report, indent=2, default=str))
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(dbname)
                    )
                )


if __name__ == "__main__":
    raise SystemExit(main())
