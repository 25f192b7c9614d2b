"""Benchmark: segment count and preview over 1M contacts, compiled vs hand-written.

One merchant owns ``--contacts`` contacts (default 1,000,000); two other merchants own
``--others`` more between them, sharing the tags, so tenant filtering is exercised.
The segment has three conditions: a tag, a numeric attribute and a date

    tags contains "vip" AND attributes.score > 500 AND last_interaction_at within 30 days

It is evaluated through the production path (``store.segments.count_matching`` and
``count_and_sample`` on one psycopg connection, exactly as the RPCs run them) and as
the same query written by hand with the key and operators inline. Both use the same
indexes (migrations 0001-0005). Runs are interleaved; p50/p95 are reported over
``--runs`` timed runs after a warm-up, and EXPLAIN (ANALYZE, BUFFERS) of both is
written to the results file.

    .venv/bin/python bench/segments_bench.py --contacts 1000000 --runs 50

Requires PostgreSQL at --admin-url (default postgresql://postgres@127.0.0.1:5432/postgres);
it creates ``mktx_bench_segments`` and drops it at the end unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from mktx.v1 import segments_pb2 as S
from mktx_grpc.core.context import connection_var
from mktx_grpc.core.db import SQL_DIR, migrate
from mktx_grpc.domain.segments import compile_conditions, conditions_to_json
from mktx_grpc.store import segments as store

DB = "mktx_bench_segments"
MERCHANT = uuid.UUID("00000000-0000-4000-8000-000000000001")
SAMPLE = 50

CONDITIONS = S.ConditionGroup(
    operator=S.CONDITION_GROUP_OPERATOR_AND,
    nodes=[
        S.ConditionNode(
            condition=S.Condition(
                field="tags", operator=S.CONDITION_OPERATOR_CONTAINS, string_value="vip"
            )
        ),
        S.ConditionNode(
            condition=S.Condition(
                field="attributes.score",
                operator=S.CONDITION_OPERATOR_GREATER_THAN,
                number_value=500,
            )
        ),
        S.ConditionNode(
            condition=S.Condition(
                field="last_interaction_at", operator=S.CONDITION_OPERATOR_WITHIN_LAST_DAYS, days=30
            )
        ),
    ],
)

HAND_WHERE = """
 WHERE merchant_id = %(merchant_id)s
   AND tags @> ARRAY[%(tag)s::text]
   AND (attributes ->> 'score')::numeric > %(score)s
   AND last_interaction_at >= now() - make_interval(days => %(days)s)"""
HAND_COUNT = "SELECT count(*) AS total FROM contacts" + HAND_WHERE
HAND_SAMPLE = (
    "SELECT * FROM contacts"
    + HAND_WHERE
    + " ORDER BY last_interaction_at DESC NULLS LAST, id DESC LIMIT %(limit)s"
)
HAND_PARAMS = {"merchant_id": MERCHANT, "tag": "vip", "score": 500, "days": 30}

# One INSERT ... SELECT generate_series per merchant group. About 5% of contacts are
# "vip", scores are uniform in 0..999, last interactions uniform over a year (2% never).
GENERATE = """
INSERT INTO contacts (merchant_id, account_id, x_user_id, username, display_name, source,
                      follows_account, tags, attributes, created_at, last_interaction_at)
SELECT (%(merchants)s::uuid[])[1 + g %% %(k)s], (%(accounts)s::uuid[])[1 + g %% %(k)s],
       'u' || g, 'user' || g, 'User ' || g,
       (ARRAY['INBOUND_MESSAGE','NEW_FOLLOWER','MENTION','IMPORT','MANUAL'])[1 + g %% 5],
       g %% 3 = 0,
       CASE WHEN random() < 0.05 THEN ARRAY['vip', 't' || (g %% 20)]
            ELSE ARRAY['t' || (g %% 20), 't' || (g %% 7 + 20)] END,
       jsonb_build_object('score', floor(random() * 1000)::int,
                          'plan', (ARRAY['free','pro','team'])[1 + g %% 3]),
       now() - random() * interval '730 days',
       CASE WHEN random() < 0.02 THEN NULL ELSE now() - random() * interval '365 days' END
  FROM generate_series(1, %(n)s) g
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def setup(admin_url: str, contacts: int, others: int) -> str:
    url = make_conninfo(admin_url, dbname=DB)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))
    # Only the migrations up to and including ours: later ones may be mid-edit.
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted((SQL_DIR / "migrations").glob("000[1-5]_*.sql")):
            shutil.copy(path, tmp)
        migrate(url, Path(tmp))
    others_ids = [uuid.uuid4(), uuid.uuid4()]
    with psycopg.connect(url, autocommit=True) as conn:
        accounts = {}
        for m in [MERCHANT, *others_ids]:
            accounts[m] = conn.execute(
                "INSERT INTO accounts (merchant_id, x_user_id, auth_method)"
                " VALUES (%s, %s, 'OAUTH1') RETURNING id",
                (m, str(uuid.uuid4().int % 10**15)),
            ).fetchone()[0]  # type: ignore[index]
        t = time.perf_counter()
        conn.execute(
            GENERATE,
            {"n": contacts, "merchants": [MERCHANT], "accounts": [accounts[MERCHANT]], "k": 1},
        )
        conn.execute(
            GENERATE,
            {
                "n": others,
                "merchants": others_ids,
                "accounts": [accounts[m] for m in others_ids],
                "k": 2,
            },
        )
        print(f"generated {contacts + others} contacts in {time.perf_counter() - t:.1f}s")
        conn.execute("VACUUM ANALYZE contacts")
    return url


async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    t = time.perf_counter()
    result = await fn()
    return (time.perf_counter() - t) * 1000, result


async def run(url: str, runs: int, warmup: int) -> dict[str, Any]:
    conditions = conditions_to_json(CONDITIONS)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    connection_var.set(conn)

    async def compiled_count() -> int:
        return await store.count_matching(MERCHANT, conditions, None)

    async def compiled_preview() -> tuple[int, int]:
        total, rows = await store.count_and_sample(MERCHANT, conditions, None, SAMPLE)
        return total, len(rows)

    async def hand_count() -> int:
        cur = await conn.execute(HAND_COUNT, HAND_PARAMS)
        return (await cur.fetchone())[0]  # type: ignore[index]

    async def hand_preview() -> tuple[int, int]:
        total = await hand_count()
        cur = await conn.execute(HAND_SAMPLE, {**HAND_PARAMS, "limit": SAMPLE})
        return total, len(await cur.fetchall())

    cases = {"count": (compiled_count, hand_count), "preview": (compiled_preview, hand_preview)}
    times: dict[str, list[float]] = {f"{k} {w}": [] for k in cases for w in ("compiled", "hand")}
    results: dict[str, Any] = {}
    for i in range(warmup + runs):
        for name, (compiled, hand) in cases.items():
            # Alternate which goes first, so neither always gets the warmer cache.
            order = [("compiled", compiled), ("hand", hand)]
            if i % 2:
                order.reverse()
            for which, fn in order:
                ms, result = await timed(fn)
                results[f"{name} {which}"] = result
                if i >= warmup:
                    times[f"{name} {which}"].append(ms)
    assert results["count compiled"] == results["count hand"], results
    assert results["preview compiled"] == results["preview hand"], results

    compiled = compile_conditions(conditions)
    where = compiled.where.as_string(conn)
    compiled_sql = (
        f"SELECT count(*) FROM contacts c WHERE c.merchant_id = %(merchant_id)s AND {where}"
    )
    explains = {}
    for label, query, params in [
        ("compiled", compiled_sql, {**compiled.params, "merchant_id": MERCHANT}),
        ("hand-written", HAND_COUNT, HAND_PARAMS),
    ]:
        cur = await conn.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + query, params)
        explains[label] = (query, "\n".join(r[0] for r in await cur.fetchall()))
    await conn.close()
    return {"times": times, "matches": results["count compiled"], "explains": explains}


def report(out: dict[str, Any], contacts: int, others: int, runs: int) -> str:
    times = out["times"]
    lines = [
        "# Segment count and preview over 1M contacts",
        "",
        f"Generated by `bench/segments_bench.py --contacts {contacts} --others {others}"
        f" --runs {runs}` on the local PostgreSQL",
        f"({contacts:,} contacts of the measured merchant, {others:,} of two others).",
        "",
        "Segment: `tags contains vip AND attributes.score > 500 AND last_interaction_at"
        f" within 30 days`, matching {out['matches']:,} contacts.",
        "Compiled = the production path (`store.segments.count_matching` /"
        " `count_and_sample`, sample of 50); hand-written = the same query with the key"
        " and operators inline. Same connection, same indexes, runs interleaved.",
        "",
        "| query | p50 ms | p95 ms | p50 ratio compiled/hand |",
        "|---|---|---|---|",
    ]
    for name in ("count", "preview"):
        c, h = times[f"{name} compiled"], times[f"{name} hand"]
        ratio = statistics.median(c) / statistics.median(h)
        lines.append(
            f"| {name} compiled | {statistics.median(c):.1f} | {pct(c, 0.95):.1f} | {ratio:.2f} |"
        )
        lines.append(f"| {name} hand-written | {statistics.median(h):.1f} | {pct(h, 0.95):.1f} | |")
    for label, (query, plan) in out["explains"].items():
        lines += [
            "",
            f"## EXPLAIN ({label} count)",
            "",
            "```sql",
            query.strip(),
            "```",
            "",
            "```",
            plan,
            "```",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--others", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "segments.md"))
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--reuse", action="store_true", help="reuse a kept database")
    args = ap.parse_args()
    url = (
        make_conninfo(args.admin_url, dbname=DB)
        if args.reuse
        else setup(args.admin_url, args.contacts, args.others)
    )
    try:
        out = asyncio.run(run(url, args.runs, args.warmup))
    finally:
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB))
                )
    text = report(out, args.contacts, args.others, args.runs)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
