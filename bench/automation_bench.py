"""Automation step throughput: N executions whose timers fall due at the same moment,
each running non-sending steps (ADD_TAG, SET_ATTRIBUTE, CONDITION over a segment
condition, END), drained by 1 and then by 2 worker processes (``run_due_steps``
loops, the production step runner). Reports steps/s per run and checks afterwards
that every execution COMPLETED with exactly its 4 steps, none twice.

Run:  .venv/bin/python bench/automation_bench.py [--executions 20000] [--workers 1 2]
Uses TEST_DATABASE_URL when set, else the embedded PostgreSQL in .data/bench.
Writes bench/results/automation.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
    ap.add_argument("--batch", type=int, default=200)
    args = ap.parse_args()
    if args.role == "worker":
        asyncio.run(worker_main(args.url, args.batch))
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
        "Each worker claims 200 due executions per transaction (`FOR UPDATE SKIP LOCKED`) and",
        "runs their steps in it, one savepoint per execution. Seconds include process start.",
        "The box is shared (2 cores, other helpers' tests running): compare the rows of one",
        "run, not runs across time.",
    ]
    out = ROOT / "bench" / "results" / "automation.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
