"""GetTemplate before and after a refactor: several checkouts of the service, one run.

    .venv/bin/python bench/structure_bench.py \\
        --side before=/work/wt/before --side structure=/work/wt/structure --side main=.

Each ``--side NAME=DIR`` is a checkout with its own ``.venv`` (``pip install -e .``);
its ``mktx-grpc serve`` runs at the defaults users run (INFO logging, the full
interceptor chain, one process, uvloop), against the same database and the same
template (``bench/grpc_bench.py``'s setup, migrated by this checkout, so every side
reads the same rows). Before the measured rounds each side is warmed up and checked to
return the same Template bytes as the others; every measured h2load run is checked to
carry one Template per request (a gRPC error carries none). Rounds rotate the order of
the sides, so drift in the box's load hits each side alike. Compare the ratios, not the
absolute figures: the box is shared.

Issue 8 (structure) asks that GetTemplate show no regression beyond noise: ``before``
is the commit before the structure work (0e8e202), ``structure`` the commit that
finished it (228df73), ``main`` the current tree (which adds later features such as
the metrics interceptor).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import grpc_bench as gb
import psycopg
from grpc_bench import JWT_SECRET, POOL_MAX, POOL_MIN, Load, Run, Server, free_port
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from mktx.v1 import templates_pb2
from mktx_grpc.core.auth import mint_token
from mktx_grpc.core.config import Settings

CREATED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
RESULTS = gb.ROOT / "bench" / "results" / "structure_get_template.md"


def start_side(name: str, checkout: Path, db_url: str, tmp: Path) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "MKTX_JWT_SECRET": JWT_SECRET,
        "MKTX_GRPC_HOST": "127.0.0.1",
        "MKTX_GRPC_PORT": str(port),
        "MKTX_WEBHOOK_HOST": "127.0.0.1",
        "MKTX_WEBHOOK_PORT": str(free_port()),
        "MKTX_WORKERS": "1",
        "MKTX_POOL_MIN_SIZE": str(POOL_MIN),
        "MKTX_POOL_MAX_SIZE": str(POOL_MAX),
        "MKTX_LOG_LEVEL": "INFO",
        "MKTX_DATA_DIR": str(tmp / f"data-{name}"),
        "MKTX_WORKER_METRICS_PORT": "0",
        "X_CONSUMER_KEY": "bench-consumer-key",
        "X_CONSUMER_SECRET": "bench-consumer-secret",
    }
    log_path = tmp / f"{name}.log"
    cmd = [str(checkout / ".venv" / "bin" / "mktx-grpc"), "serve"]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=log_path.open("wb"), cwd=checkout
    )
    rev = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    describe = f"{name} ({rev}): `mktx-grpc serve`, 1 process, INFO logging, defaults"
    return Server(name, port, proc, describe, log_path)


def side_database(admin_url: str, name: str) -> str:
    """An empty database for one side; its own ``serve`` migrates it on start (each
    checkout knows only its own migrations, and refuses a newer schema)."""
    db = f"mktx_bench_{name}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    return make_conninfo(admin_url, dbname=db)


def insert_template(db_url: str, merchant: uuid.UUID, template_id: uuid.UUID) -> None:
    """The same row on every side (ids and times fixed, so the answers are identical)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO templates (id, merchant_id, name, description, type, content,
                                      quick_replies, variables, tags, created_at, updated_at)
               VALUES (%s, %s, %s, %s, 'QUICK_REPLY', %s, %s, %s, %s, %s, %s)""",
            (
                template_id,
                merchant,
                "Spring sale follow-up",
                "Sent to contacts who opened the spring sale DM",
                "Hi {{first_name}}, thanks for looking at {{product}}! Want the 20% code?",
                Jsonb(
                    [
                        {"label": "Yes please", "description": "Send the code", "metadata": "yes"},
                        {"label": "Not now", "description": "", "metadata": "no"},
                    ]
                ),
                ["first_name", "product"],
                ["sale", "spring"],
                CREATED,
                CREATED,
            ),
        )
        conn.execute("VACUUM ANALYZE templates")


async def amain(args: argparse.Namespace) -> int:
    sides: list[tuple[str, Path]] = args.sides
    merchant, template_id = uuid.uuid4(), uuid.uuid4()
    urls = {n: side_database(args.admin_url, n) for n, _ in sides}
    token = mint_token(
        Settings(jwt_secret=JWT_SECRET.encode()), merchant, user_id="bench", ttl_seconds=86400
    )
    load = Load(clients=args.clients, streams=args.streams, duration=0, warmup=args.warmup)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="mktx-structure-") as tmpdir:
        tmp = Path(tmpdir)
        body = tmp / "body.bin"
        body.write_bytes(
            gb.grpc_frame(templates_pb2.GetTemplateRequest(id=str(template_id)).SerializeToString())
        )
        servers = [start_side(n, d, urls[n], tmp) for n, d in sides]
        try:
            for s in servers:
                await gb.wait_ready(s, health=True)
                insert_template(urls[s.name], merchant, template_id)
            answers = {s.name: await gb.get_template(s.port, template_id, token) for s in servers}
            if len(set(answers.values())) != 1:
                raise AssertionError(f"the sides answer differently: {answers}")
            size = len(next(iter(answers.values())))
            for s in servers:
                gb.run_h2load(load, s, body, token, "warm-up", size, warmup_seconds=args.warmup)
            for rnd in range(args.rounds):
                order = servers[rnd % len(servers) :] + servers[: rnd % len(servers)]
                for s in order:
                    run = gb.run_h2load(
                        load, s, body, token, f"round {rnd + 1}", size, requests=args.requests
                    )
                    runs.append(run)
                    print(
                        f"{run.label} {s.name}: {run.rps:,.0f} req/s, "
                        f"{run.cpu_us_per_req:,.0f} µs CPU/req, load {run.loadavg}"
                    )
        finally:
            for s in servers:
                s.stop()
    base = sides[0][0]
    by = {n: [r for r in runs if r.side == n] for n, _ in sides}
    med = {n: statistics.median(r.rps for r in rs) for n, rs in by.items()}
    cpu = {n: statistics.median(r.cpu_us_per_req for r in rs) for n, rs in by.items()}
    lines = [
        "# GetTemplate before and after the structure work (issue 8)",
        "",
        "Written by `bench/structure_bench.py`. Each side is a checkout's own `mktx-grpc serve`",
        "at the defaults (1 process, INFO logging, full interceptor chain), same database,",
        "same template, sides rotating within each round. The box is shared: compare ratios.",
        "",
        *gb.machine_info(args.admin_url),
        "",
        *[f"- {s.describe}" for s in servers],
        "",
        f"h2load -c {args.clients} -m {args.streams}, {args.requests} requests per run, "
        f"{args.rounds} rounds.",
        "",
        "| side | median req/s | vs " + base + " | median server CPU µs/req | vs " + base + " |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {n} | {med[n]:,.0f} | {med[n] / med[base]:.3f}× | {cpu[n]:,.0f} | "
            f"{cpu[n] / cpu[base]:.3f}× |"
            for n in by
        ],
        "",
        "## All runs",
        "",
        *gb.table(runs),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        RESULTS.write_text(text)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--side", action="append", required=True, help="NAME=CHECKOUT_DIR")
    p.add_argument("--admin-url", default=os.environ.get("DATABASE_URL", gb.DEFAULT_ADMIN_URL))
    p.add_argument("--clients", "-c", type=int, default=16)
    p.add_argument("--streams", "-m", type=int, default=20)
    p.add_argument("--requests", type=int, default=15_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    args.sides = [(n, Path(d).resolve()) for n, d in (s.split("=", 1) for s in args.side)]
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
