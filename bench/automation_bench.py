"""Automation step throughput: N executions whose timers fall due at the same moment,
each running non-sending steps (ADD_TAG, SET_ATTRIBUTE, CONDITION over a segment
condition, END), drained by 1 and then by 2 worker processes (``run_due_steps``
loops, the production step runner). Reports steps/s per run and checks afterwards
that every execution COMPLETED with exactly its 4 steps, none twice.

``--latency RATE`` instead measures trigger-to-first-step latency: message.received
events appended to the outbox at RATE/s for ``--seconds`` (each in its own
transaction, as ingestion writes them) while one worker process runs the production
loops (the ``automation-triggers`` consumer and the step runner); latency is the
first step's start (its pass's transaction start) minus the event's commit-side
timestamp, both on the database clock: p50 / p99 / max.

Run:  .venv/bin/python bench/automation_bench.py [--executions 20000] [--workers 1 2]
      .venv/bin/python bench/automation_bench.py --latency 500 --seconds 10
Uses TEST_DATABASE_URL when set, else the embedded PostgreSQL in .data/bench.
Writes bench/results/automation.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[1]


def fresh_database() -> tuple[str, str, str]:
    from mktx_grpc.core.db import embedded_database_url, migrate

    admin = os.environ.get("TEST_DATABASE_URL") or embedded_database_url(ROOT / ".data" / "bench")
    name = f"mktx_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(admin, dbname=name)
    migrate(url)
    return admin, name, url


DEFINITION = {
    "trigger": {"type": "MANUAL", "config": {}, "reentry": "EVERY_TIME", "reentry_cooldown_s": 0},
    "nodes": [
        {"id": "tag", "type": "ADD_TAG", "name": "", "config": {"tags": ["bench"]}, "position": {}},
        {
            "id": "attr",
            "type": "SET_ATTRIBUTE",
            "name": "",
            "config": {"key": "stage", "value": "two"},
            "position": {},
        },
        {
            "id": "cond",
            "type": "CONDITION",
            "name": "",
            "config": {
                "conditions": {
                    "operator": "CONDITION_GROUP_OPERATOR_AND",
                    "nodes": [
                        {
                            "condition": {
                                "field": "tags",
                                "operator": "CONDITION_OPERATOR_CONTAINS",
                                "string_value": "bench",
                            }
                        }
                    ],
                }
            },
            "position": {},
        },
        {"id": "end", "type": "END", "name": "", "config": {}, "position": {}},
    ],
    "connections": [
        {"from": "trigger", "to": "tag", "branch": "default"},
        {"from": "tag", "to": "attr", "branch": "default"},
        {"from": "attr", "to": "cond", "branch": "default"},
        {"from": "cond", "to": "end", "branch": "true"},
        {"from": "cond", "to": "end", "branch": "false"},
    ],
}
STEPS_PER_EXECUTION = 4


def seed(url: str, n: int) -> str:
    """A merchant, account, N contacts, one published flow and N executions all due
    at the same moment. Returns the flow id."""
    merchant, account, flow = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO accounts (id, merchant_id, x_user_id, auth_method) VALUES (%s, %s, '1', 'OAUTH2')",
            (account, merchant),
        )
        conn.execute(
            "INSERT INTO contacts (merchant_id, account_id, x_user_id, username, display_name)"
            " SELECT %s, %s, (10000000 + g)::text, 'u' || g, 'User ' || g"
            " FROM generate_series(1, %s) g",
            (merchant, account, n),
        )
        conn.execute(
            "INSERT INTO flows (id, merchant_id, account_id, name, status, definition,"
            " trigger_type, published_version) VALUES (%s, %s, %s, 'bench', 'ACTIVE', %s, 'MANUAL', 1)",
            (flow, merchant, account, json.dumps(DEFINITION)),
        )
        conn.execute(
            "INSERT INTO flow_versions (merchant_id, flow_id, version, definition, trigger_type)"
            " VALUES (%s, %s, 1, %s, 'MANUAL')",
            (merchant, flow, json.dumps(DEFINITION)),
        )
        conn.execute(
            "INSERT INTO flow_executions (merchant_id, flow_id, flow_version, account_id,"
            " contact_id, trigger_key, status, current_node_id, due_at)"
            " SELECT %s, %s, 1, %s, id, 'bench', 'RUNNING', 'tag', NULL FROM contacts"
            " WHERE merchant_id = %s",
            (merchant, flow, account, merchant),
        )
        conn.execute("ANALYZE")
        # The same moment for every timer.
        conn.execute("UPDATE flow_executions SET due_at = now()")
    return str(flow)


async def worker_main(url: str, batch: int) -> None:
    from mktx_grpc.core.config import Settings
    from mktx_grpc.core.db import make_pool
    from mktx_grpc.deps import close_deps, make_deps
    from mktx_grpc.worker.automation import StepOptions, run_due_steps

    settings = Settings(
        database_url=url,
        data_dir=Path("/tmp"),
        encryption_key=bytes(range(32)),
        jwt_secret=b"bench-jwt-secret-0123456789abcdef",
        page_token_key=b"bench-page-token-key",
    )
    pool = make_pool(url, min_size=1, max_size=2)
    await pool.open(wait=True)
    deps = make_deps(settings, pool)
    try:
        while await run_due_steps(deps, StepOptions(batch_size=batch)):
            pass
    finally:
        await close_deps(deps)
        await pool.close()


INBOUND = {
    "trigger": {
        "type": "INBOUND_MESSAGE",
        "config": {},
        "reentry": "EVERY_TIME",
        "reentry_cooldown_s": 0,
    },
    "nodes": [
        {"id": "tag", "type": "ADD_TAG", "name": "", "config": {"tags": ["seen"]}, "position": {}}
    ],
    "connections": [{"from": "trigger", "to": "tag", "branch": "default"}],
}


def seed_latency(url: str, n: int) -> tuple[uuid.UUID, uuid.UUID, list[tuple[str, str, str]]]:
    """An ACTIVE INBOUND_MESSAGE flow and n contacts, each with a conversation holding
    one inbound message. Returns (merchant, account, [(contact, conversation, message)])."""
    merchant, account, flow = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO accounts (id, merchant_id, x_user_id, auth_method) VALUES (%s, %s, '1', 'OAUTH2')",
            (account, merchant),
        )
        conn.execute(
            "INSERT INTO flows (id, merchant_id, account_id, name, status, definition,"
            " trigger_type, published_version) VALUES (%s, %s, %s, 'lat', 'ACTIVE', %s,"
            " 'INBOUND_MESSAGE', 1)",
            (flow, merchant, account, json.dumps(INBOUND)),
        )
        conn.execute(
            "INSERT INTO flow_versions (merchant_id, flow_id, version, definition, trigger_type)"
            " VALUES (%s, %s, 1, %s, 'INBOUND_MESSAGE')",
            (merchant, flow, json.dumps(INBOUND)),
        )
        rows = conn.execute(
            "WITH c AS (INSERT INTO contacts (merchant_id, account_id, x_user_id)"
            "  SELECT %s, %s, (20000000 + g)::text FROM generate_series(1, %s) g RETURNING id),"
            " v AS (INSERT INTO conversations (merchant_id, account_id, contact_id)"
            "  SELECT %s, %s, id FROM c RETURNING id, contact_id),"
            " m AS (INSERT INTO messages (merchant_id, conversation_id, direction, type, text)"
            "  SELECT %s, id, 'INBOUND', 'TEXT', 'hi' FROM v RETURNING id, conversation_id)"
            " SELECT v.contact_id::text, v.id::text, m.id::text FROM v JOIN m ON m.conversation_id = v.id",
            (merchant, account, n, merchant, account, merchant),
        ).fetchall()
        conn.execute("ANALYZE")
    return merchant, account, [tuple(r) for r in rows]


async def engine_main(url: str) -> None:
    from mktx_grpc.core.config import Settings
    from mktx_grpc.core.db import make_pool
    from mktx_grpc.deps import close_deps, make_deps
    from mktx_grpc.worker import run_loops
    from mktx_grpc.worker.automation import AUTOMATION_TRIGGERS, automation_step_loop
    from mktx_grpc.worker.consumer import consumer_loop

    settings = Settings(
        database_url=url,
        data_dir=Path("/tmp"),
        encryption_key=bytes(range(32)),
        jwt_secret=b"bench-jwt-secret-0123456789abcdef",
        page_token_key=b"bench-page-token-key",
    )
    pool = make_pool(url, min_size=2, max_size=6)
    await pool.open(wait=True)
    deps = make_deps(settings, pool)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await run_loops(deps, stop, [consumer_loop(AUTOMATION_TRIGGERS), automation_step_loop])
    finally:
        await close_deps(deps)
        await pool.close()


def latency_summary(lat: list[float], n: int, sent_for: float) -> dict[str, float]:
    """p50 / p99 / max of the sorted first-step latencies of ``n`` events offered over
    ``sent_for`` seconds."""
    if not lat:
        raise SystemExit("no steps ran")

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))]

    return {
        "events": n,
        "steps": len(lat),
        "rate": n / sent_for,
        "p50": q(0.5),
        "p99": q(0.99),
        "max": lat[-1],
    }


async def drive_latency(
    url: str, rate: int, seconds: float, sidecar: bool = False
) -> dict[str, float]:
    from mktx_grpc.core.db import make_pool, use_connection
    from mktx_grpc.store.events import append_event

    n = int(rate * seconds)
    merchant, account, people = seed_latency(url, n)
    if sidecar:
        return await drive_latency_sidecar(url, rate, n)
    engine = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--role", "engine", "--url", url
    )
    pool = make_pool(url, min_size=4, max_size=8)
    await pool.open(wait=True)
    try:
        await asyncio.sleep(3.0)  # the engine's imports and first passes

        async def one(contact: str, conv: str, msg: str) -> None:
            async with use_connection(pool, transaction=True):
                await append_event(
                    merchant,
                    "message.received",
                    uuid.UUID(conv),
                    {
                        "account_id": str(account),
                        "contact_id": contact,
                        "conversation_id": conv,
                        "message_id": msg,
                        "direction": "INBOUND",
                    },
                )

        start = time.monotonic()
        tasks = []
        for i, p in enumerate(people):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(*p)))
        await asyncio.gather(*tasks)
        sent_for = time.monotonic() - start
        deadline = time.monotonic() + 60
        while True:
            async with use_connection(pool):
                from mktx_grpc.store import fetch_one

                row = await fetch_one("SELECT count(*) AS k FROM flow_execution_steps", {})
            if (row is not None and row["k"] >= n) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        engine.send_signal(signal.SIGTERM)
        await asyncio.wait_for(engine.wait(), 30)
        await pool.close()
    with psycopg.connect(url) as conn:
        lat = [
            float(r[0])
            for r in conn.execute(
                "SELECT extract(epoch FROM s.started_at - e.created_at)"
                " FROM flow_execution_steps s"
                " JOIN flow_executions x ON x.id = s.execution_id"
                " JOIN domain_events e ON x.trigger_key = 'event:' || e.id"
                " WHERE s.step_no = 1"
            ).fetchall()
        ]
        split = conn.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM x.started_at - e.created_at)),"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.started_at - x.started_at))"
            " FROM flow_execution_steps s JOIN flow_executions x ON x.id = s.execution_id"
            " JOIN domain_events e ON x.trigger_key = 'event:' || e.id WHERE s.step_no = 1"
        ).fetchone()
        print(f"median event->execution {split[0]:.3f}s, execution->first step {split[1]:.3f}s")
    lat.sort()
    return latency_summary(lat, n, sent_for)


#: DM events per signed delivery in --sidecar mode (X batches a user's events).
PER_POST = 5


async def drive_latency_sidecar(url: str, rate: int, n: int) -> dict[str, float]:
    """``--latency R --sidecar``: the n seeded contacts each DM the shop once, as X
    delivers DMs: signed ``direct_message_events`` POSTs (PER_POST events each) at R
    events/s to the production webhook sidecar in its own process (as
    bench/webhook_ingest.py runs it), while one worker process runs the automation
    loops. Latency: the flow's first step's start (database clock) minus the start of
    the POST that carried its DM (this process's clock; same machine)."""
    import httpx
    import webhook_ingest as wi

    with psycopg.connect(url, autocommit=True) as conn:
        senders = [r[0] for r in conn.execute("SELECT x_user_id FROM contacts ORDER BY x_user_id")]
    shop = "1"
    base = 1_970_000_000_000_000_000 + int(time.time() * 1000) * 1000
    deliveries: list[tuple[bytes, dict[str, str], list[str]]] = []
    for i in range(0, len(senders), PER_POST):
        dms = [
            (str(base + i + j), sender, f"hello {base + i + j}")
            for j, sender in enumerate(senders[i : i + PER_POST])
        ]
        deliveries.append((*wi.signed_delivery(shop, dms), [xid for xid, _, _ in dms]))
    side, port = wi.start_sidecar(url)
    engine = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--role", "engine", "--url", url
    )
    sent: dict[str, float] = {}
    try:
        async with httpx.AsyncClient(timeout=30.0) as http:
            await wi.wait_sidecar(http, port, side)
            await asyncio.sleep(3.0)  # the engine's imports and first passes
            hook = f"http://127.0.0.1:{port}/webhooks/twitter"

            async def post(body: bytes, headers: dict[str, str], ids: list[str]) -> None:
                at = time.time()
                for x in ids:
                    sent[x] = at
                resp = await http.post(hook, content=body, headers=headers)
                if resp.status_code != 200:
                    raise RuntimeError(f"delivery refused: {resp.status_code}")

            start = time.monotonic()
            tasks = []
            interval = PER_POST / rate
            for k, d in enumerate(deliveries):
                delay = start + k * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(post(*d)))
            await asyncio.gather(*tasks)
            sent_for = time.monotonic() - start
        deadline = time.monotonic() + 120
        while True:
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM flow_execution_steps WHERE step_no = 1"
                ).fetchone()
            if (row is not None and row[0] >= n) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        engine.send_signal(signal.SIGTERM)
        await asyncio.wait_for(engine.wait(), 30)
        side.terminate()
        side.wait(timeout=10)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT e.payload ->> 'x_event_id', extract(epoch FROM s.started_at)"
            " FROM flow_execution_steps s"
            " JOIN flow_executions x ON x.id = s.execution_id"
            " JOIN domain_events e ON x.trigger_key = 'event:' || e.id"
            " WHERE s.step_no = 1"
        ).fetchall()
    lat = sorted(float(at) - sent[xid] for xid, at in rows if xid in sent)
    return latency_summary(lat, n, sent_for)


def run(url: str, workers: int, batch: int) -> float:
    start = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--role", "worker", "--url", url, "--batch", str(batch)]
        )
        for _ in range(workers)
    ]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"worker exited {p.returncode}")
    return time.monotonic() - start


def verify(url: str, n: int) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        done = conn.execute(
            "SELECT count(*) FROM flow_executions WHERE status = 'COMPLETED'"
        ).fetchone()[0]
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (execution_id, step_no)) FROM flow_execution_steps"
        ).fetchone()
        uneven = conn.execute(
            "SELECT count(*) FROM (SELECT execution_id FROM flow_execution_steps"
            " GROUP BY execution_id HAVING count(*) <> %s) x",
            (STEPS_PER_EXECUTION,),
        ).fetchone()[0]
    out = {"completed": done, "steps": total, "distinct_steps": distinct, "uneven": uneven}
    assert done == n and total == distinct == n * STEPS_PER_EXECUTION and uneven == 0, out
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", default="driver")
    ap.add_argument("--url", default="")
    ap.add_argument("--executions", type=int, default=20_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=0, help="executions per pass (0: the default)")
    ap.add_argument("--latency", type=int, default=0, help="events/s: measure latency")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument(
        "--sidecar", action="store_true", help="--latency: DMs delivered through the sidecar"
    )
    args = ap.parse_args()
    if not args.batch:
        from mktx_grpc.worker.automation import StepOptions

        args.batch = StepOptions().batch_size
    if args.role == "worker":
        asyncio.run(worker_main(args.url, args.batch))
        return
    if args.role == "engine":
        asyncio.run(engine_main(args.url))
        return
    if args.latency:
        admin, name, url = fresh_database()
        try:
            load = os.getloadavg()[0]
            r = asyncio.run(drive_latency(url, args.latency, args.seconds, args.sidecar))
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        line = (
            f"| {args.latency}/s for {args.seconds:.0f} s | {r['events']} | {r['steps']} |"
            f" {r['rate']:.0f}/s | {r['p50'] * 1000:.0f} ms | {r['p99'] * 1000:.0f} ms |"
            f" {r['max'] * 1000:.0f} ms | {load:.2f} |"
        )
        print(line)
        out = ROOT / "bench" / "results" / "automation_latency.md"
        out.write_text(
            "# Automation trigger-to-first-step latency (issue 9 §6)\n\n"
            f"`bench/automation_bench.py --latency {args.latency} --seconds {args.seconds:.0f}"
            + (" --sidecar`: " if args.sidecar else "`: ")
            + (
                f"each seeded contact DMs the shop once, delivered as X does (signed"
                f" direct_message_events POSTs, {PER_POST} events each) to the production"
                " webhook sidecar in its own process, while one worker process runs the"
                " automation-triggers consumer and the step runner. Latency: the flow's first"
                " step's start minus the start of the POST that carried its DM."
                if args.sidecar
                else "message.received events appended to the outbox (each its own"
                " transaction) while one worker process runs the automation-triggers consumer"
                " and the step runner. The events are appended directly, not ingested"
                " through the sidecar (--sidecar does that)."
            )
            + "\n\n"
            "| offered | events | first steps | achieved | p50 | p99 | max | load before |\n"
            "|---|---|---|---|---|---|---|---|\n" + line + "\n"
        )
        print(f"wrote {out}")
        return
    lines = [
        "# Automation step throughput (issue 9 §6)",
        "",
        f"`bench/automation_bench.py --executions {args.executions} --workers "
        f"{' '.join(map(str, args.workers))} --batch {args.batch}`; "
        f"{STEPS_PER_EXECUTION} non-sending steps per execution (ADD_TAG, SET_ATTRIBUTE, "
        "CONDITION over a segment condition, END), every timer due at the same moment.",
        "",
        "| workers | executions | steps | seconds | steps/s | load before | verified |",
        "|---|---|---|---|---|---|---|",
    ]
    for w in args.workers:
        admin, name, url = fresh_database()
        try:
            seed(url, args.executions)
            load = os.getloadavg()[0]
            secs = run(url, w, args.batch)
            checked = verify(url, args.executions)
            steps = args.executions * STEPS_PER_EXECUTION
            row = (
                f"| {w} | {args.executions} | {steps} | {secs:.1f} | {steps / secs:,.0f} |"
                f" {load:.2f} | {checked['completed']} completed, {checked['distinct_steps']}"
                " distinct steps, 0 twice |"
            )
            print(row, flush=True)
            lines.append(row)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    lines += [
        "",
        f"Each worker claims {args.batch} due executions per transaction (`FOR UPDATE SKIP",
        "LOCKED`) and runs their steps in it: the contact changes, step log, execution updates",
        "and outbox events of a pass are written in a few multi-row statements, its CONDITION",
        "steps evaluated together. Seconds include process start.",
        "The box is shared (2 cores, other helpers' tests running): compare the rows of one",
        "run, not runs across time.",
    ]
    out = ROOT / "bench" / "results" / "automation.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
