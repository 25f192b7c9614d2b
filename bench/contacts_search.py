"""ListContacts with a search term over 1M contacts: p50/p99 through real gRPC.

Creates a throwaway database on the server named by TEST_DATABASE_URL (or
BENCH_DATABASE_URL), applies the migrations, loads 1,000,000 contacts for one
merchant with a single INSERT ... SELECT generate_series, then calls ListContacts
(page_size 50) through the production server composition for several kinds of
search term, and drops the database.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python bench/contacts_search.py [--rows 1000000] [--calls 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from mktx.v1 import contacts_pb2, contacts_pb2_grpc
from mktx_grpc.core.auth import mint_token
from mktx_grpc.core.config import Settings
from mktx_grpc.core.db import make_pool, migrate
from mktx_grpc.deps import close_deps, make_deps
from mktx_grpc.server import GrpcApp

FIRST = [
    "Ana",
    "Bruno",
    "Carla",
    "Diego",
    "Elena",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Karin",
    "Luis",
    "Marta",
    "Nils",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
]
LAST = [
    "Smith",
    "Garcia",
    "Muller",
    "Rossi",
    "Dubois",
    "Novak",
    "Silva",
    "Jensen",
    "Kowalski",
    "Nakamura",
    "Okafor",
    "Larsen",
    "Moreau",
    "Schmidt",
    "Costa",
    "Berg",
    "Ivanova",
    "Haddad",
    "Fischer",
    "Lopez",
]

QUERIES = {
    "rare (one match)": "user742913",
    "selective (~100 matches)": "user4242",
    "common (display name)": "rossi",
    "two letters, no match (prefix)": "zz",
    "two letters, every username (prefix)": "us",
    "one letter (prefix)": "r",
    "no match": "qqqxxx",
}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def run(admin_url: str, rows: int, calls: int) -> str:
    name = f"mktx_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(admin_url, dbname=name)
    try:
        migrate(url)
        merchant, account = uuid.uuid4(), uuid.uuid4()
        t0 = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO accounts (id, merchant_id, x_user_id, auth_method)"
                " VALUES (%s, %s, '1', 'OAUTH2')",
                (account, merchant),
            )
            conn.execute(
                """INSERT INTO contacts (merchant_id, account_id, x_user_id, username,
                                         display_name, tags, last_interaction_at)
                   SELECT %(m)s, %(a)s, (1000000000 + g)::text, 'user' || g,
                          (%(first)s::text[])[1 + g %% 20] || ' ' ||
                          (%(last)s::text[])[1 + (g / 20) %% 20],
                          CASE WHEN g %% 7 = 0 THEN '{vip}'::text[] ELSE '{}' END,
                          now() - (g %% 100000) * interval '1 minute'
                     FROM generate_series(1, %(n)s) g""",
                {"m": merchant, "a": account, "first": FIRST, "last": LAST, "n": rows},
            )
            conn.execute("VACUUM ANALYZE contacts")
            trgm = conn.execute(
                "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'contacts_%%_trgm'"
            ).fetchone()
            version = conn.execute("SHOW server_version").fetchone()
        load_s = time.perf_counter() - t0

        data = Path(tempfile.mkdtemp())
        settings = Settings(
            database_url=url,
            data_dir=data,
            jwt_secret=b"bench-secret-0123456789abcdef!!",
            encryption_key=bytes(range(32)),
            page_token_key=b"bench",
        )
        pool = make_pool(url, min_size=2, max_size=4)
        await pool.open(wait=True)
        deps = make_deps(settings, pool)
        app = GrpcApp(deps, host="127.0.0.1", port=0)
        await app.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
        stub = contacts_pb2_grpc.ContactsServiceStub(channel)
        md = [("authorization", f"Bearer {mint_token(settings, merchant, user_id='bench')}")]
        lines = [
            "# ListContacts search over 1M contacts",
            "",
            f"- rows: {rows:,} contacts of one merchant (worst case: no tenant narrowing);"
            f" loaded and indexed in {load_s:.1f} s",
            f"- PostgreSQL {version[0] if version else '?'}; pg_trgm GIN indexes present:"
            f" {bool(trgm and trgm[0])}",
            f"- {calls} sequential ListContacts calls per term (page_size 50) through the"
            " production gRPC server in-process, one client, 2-core box",
            "",
            "| search term | matches on page 1 | p50 ms | p99 ms | mean ms |",
            "|---|---:|---:|---:|---:|",
        ]
        try:
            for label, term in QUERIES.items():
                req = contacts_pb2.ListContactsRequest(query=term, page_size=50)
                first = await stub.ListContacts(req, metadata=md)  # warm up
                times = []
                for _ in range(calls):
                    t = time.perf_counter()
                    await stub.ListContacts(req, metadata=md)
                    times.append((time.perf_counter() - t) * 1000)
                lines.append(
                    f"| {label}: `{term}` | {len(first.contacts)} | {pct(times, 50):.2f} |"
                    f" {pct(times, 99):.2f} | {statistics.mean(times):.2f} |"
                )
                print(lines[-1], flush=True)
            # The plan for the common case, for the record.
            with psycopg.connect(url, autocommit=True) as conn:
                plan = conn.execute(
                    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)"
                    " SELECT id FROM contacts WHERE merchant_id = %s AND (username ILIKE %s"
                    " OR display_name ILIKE %s) ORDER BY coalesce(last_interaction_at,"
                    " '-infinity'::timestamptz) DESC, id DESC LIMIT 51",
                    (merchant, "%user742913%", "%user742913%"),
                ).fetchall()
            lines += ["", "Plan for the rare term:", "", "```", *[r[0] for r in plan], "```"]
        finally:
            await channel.close()
            await app.stop(0)
            await close_deps(deps)
            await pool.close()
        return "\n".join(lines) + "\n"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "contacts_search.md")
    )
    args = parser.parse_args()
    admin = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not admin:
        raise SystemExit("set BENCH_DATABASE_URL or TEST_DATABASE_URL")
    report = asyncio.run(run(admin, args.rows, args.calls))
    Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
