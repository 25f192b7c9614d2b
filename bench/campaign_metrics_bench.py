"""GetCampaignMetrics latency for a 100k-recipient campaign (issue 5: "GetMetrics must
stay fast for a 100k-recipient campaign: keep counters, don't count rows").

Builds a throwaway database on the local PostgreSQL with one campaign, 100,000 contacts
and ledger rows in assorted states, and 30 days of hourly metric buckets; then calls
GetCampaignMetrics through the production gRPC server (in-process, full interceptor
chain) with HOUR and DAY granularity and reports p50/p99. Writes
bench/results/campaign_metrics.md.

    .venv/bin/python bench/campaign_metrics_bench.py [--recipients 100000] [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from mktx.v1 import campaigns_pb2 as C
from mktx.v1 import campaigns_pb2_grpc
from mktx_grpc.core.auth import mint_token
from mktx_grpc.core.config import Settings
from mktx_grpc.core.db import make_pool, migrate
from mktx_grpc.deps import close_deps, make_deps
from mktx_grpc.server import GrpcApp

DB = "mktx_bench_metrics"


def setup(admin_url: str, recipients: int) -> tuple[str, uuid.UUID, uuid.UUID]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))
    url = make_conninfo(admin_url, dbname=DB)
    migrate(url)
    merchant, account, campaign = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO accounts (id, merchant_id, x_user_id, auth_method) VALUES (%s, %s, '1', 'OAUTH2')",
            (account, merchant),
        )
        conn.execute(
            "INSERT INTO contacts (merchant_id, account_id, x_user_id)"
            " SELECT %s, %s, (1000 + g)::text FROM generate_series(1, %s) g",
            (merchant, account, recipients),
        )
        conn.execute(
            "INSERT INTO campaigns (id, merchant_id, account_id, name, type, status,"
            " recipients_total, sent_count, delivered_count, read_count, replied_count,"
            " failed_count, skipped_count, started_at)"
            " VALUES (%s, %s, %s, 'Big', 'BULK_DM', 'RUNNING', %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                campaign,
                merchant,
                account,
                recipients,
                int(recipients * 0.9),
                int(recipients * 0.8),
                int(recipients * 0.5),
                int(recipients * 0.05),
                int(recipients * 0.05),
                int(recipients * 0.05),
                now - timedelta(days=30),
            ),
        )
        conn.execute(
            "INSERT INTO campaign_recipients (merchant_id, campaign_id, contact_id, state, sent_at)"
            " SELECT %s, %s, id, (ARRAY['SENT','DELIVERED','READ','REPLIED','FAILED'])[1 + (row_number() OVER () %% 5)],"
            " now() - (random() * interval '30 days') FROM contacts WHERE merchant_id = %s",
            (merchant, campaign, merchant),
        )
        conn.execute(
            "INSERT INTO campaign_metrics_hourly (merchant_id, campaign_id, hour, sent, delivered, read)"
            " SELECT %s, %s, %s - make_interval(hours => h), 125, 110, 70 FROM generate_series(0, 719) h",
            (merchant, campaign, now),
        )
        conn.execute("ANALYZE")
    return url, merchant, campaign


async def measure(
    url: str, merchant: uuid.UUID, campaign: uuid.UUID, calls: int
) -> dict[str, list[float]]:
    settings = Settings(
        database_url=url,
        jwt_secret=b"bench-secret-0123456789abcdef0123",
        encryption_key=os.urandom(32),
        page_token_key=b"k",
    )
    pool = make_pool(url, min_size=1, max_size=4)
    await pool.open(wait=True)
    deps = make_deps(settings, pool)
    app = GrpcApp(deps, host="127.0.0.1", port=0)
    await app.start()
    md = [("authorization", f"Bearer {mint_token(settings, merchant)}")]
    out: dict[str, list[float]] = {}
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
            stub = campaigns_pb2_grpc.CampaignsServiceStub(ch)
            for label, gran in (
                ("HOUR", C.METRICS_GRANULARITY_HOUR),
                ("DAY", C.METRICS_GRANULARITY_DAY),
            ):
                req = C.GetCampaignMetricsRequest(id=str(campaign), granularity=gran)
                first = await stub.GetCampaignMetrics(req, metadata=md)
                assert first.counts.sent > 0 and len(first.timeline) > 0, first
                times = []
                for _ in range(calls):
                    t = time.perf_counter()
                    await stub.GetCampaignMetrics(req, metadata=md)
                    times.append((time.perf_counter() - t) * 1000)
                out[f"{label} ({len(first.timeline)} buckets)"] = times
    finally:
        await app.stop(0)
        await close_deps(deps)
        await pool.close()
    return out


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    t = time.perf_counter()
    url, merchant, campaign = setup(admin, args.recipients)
    print(f"setup {time.perf_counter() - t:.1f}s")
    results = asyncio.run(measure(url, merchant, campaign, args.calls))
    lines = [
        "# GetCampaignMetrics for a 100k-recipient campaign",
        "",
        f"Command: `.venv/bin/python bench/campaign_metrics_bench.py --recipients {args.recipients} --calls {args.calls}`",
        "",
        f"{args.recipients:,} recipients in the ledger, 30 days of hourly buckets; {args.calls} sequential",
        "calls per granularity through the production gRPC server (in-process, full interceptor",
        "chain), local PostgreSQL, 2-core shared box. Counts come from the campaign's counters",
        "and the timeline from `campaign_metrics_hourly`; no ledger rows are counted per call.",
        "",
        "| granularity | p50 ms | p99 ms | mean ms |",
        "|---|---:|---:|---:|",
    ]
    for label, times in results.items():
        lines.append(
            f"| {label} | {pct(times, 50):.2f} | {pct(times, 99):.2f} | {statistics.mean(times):.2f} |"
        )
        print(lines[-1])
    Path(__file__).with_name("results").joinpath("campaign_metrics.md").write_text(
        "\n".join(lines) + "\n"
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
