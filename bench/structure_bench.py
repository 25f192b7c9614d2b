"""GetTemplate before and after the structure refactor (issue 8), in one run.

    .venv/bin/python bench/structure_bench.py --before /work/wt/before --after /work/wt/speed-main

Each tree is a checkout with its own ``.venv`` (``pip install -e .``). Each gets its
own throwaway database (``mktx_bench_before`` / ``mktx_bench_after``), migrated by its
own migrations, with the same QUICK_REPLY template as ``grpc_bench.py``. Both servers
run at the same time (``mktx-grpc serve`` of each tree, one process, uvloop, pool
2..10, the given log level); h2load drives GetTemplate against each, sides
alternating, ``--rounds`` rounds. Writes ``bench/results/structure.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent))
import grpc_bench as gb

from mktx.v1 import templates_pb2
from mktx_grpc.core.auth import mint_token
from mktx_grpc.core.config import Settings

RESULTS = gb.ROOT / "bench" / "results" / "structure.md"


def setup(admin_url: str, tree: Path, dbname: str) -> tuple[str, uuid.UUID, uuid.UUID]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = make_conninfo(admin_url, dbname=dbname)
    subprocess.run(
        [
            str(tree / ".venv" / "bin" / "python"),
            "-c",
            # The module moved in the refactor (mktx_grpc.db -> mktx_grpc.core.db).
            "import sys\ntry:\n from mktx_grpc.core.db import migrate\n"
            "except ImportError:\n from mktx_grpc.db import migrate\nmigrate(sys.argv[1])",
            url,
        ],
        check=True,
        cwd=tree,
    )
    merchant = uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            """INSERT INTO templates (merchant_id, name, description, type, content,
                                      quick_replies, variables, tags)
               VALUES (%s, %s, %s, 'QUICK_REPLY', %s, %s, %s, %s) RETURNING id""",
            (
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
            ),
        ).fetchone()
        conn.execute("VACUUM ANALYZE templates")
    assert row is not None
    return url, merchant, row[0]


def start(tree: Path, name: str, db_url: str, log_level: str, tmp: Path) -> gb.Server:
    port = gb.free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "MKTX_JWT_SECRET": gb.JWT_SECRET,
        "MKTX_GRPC_HOST": "127.0.0.1",
        "MKTX_GRPC_PORT": str(port),
        "MKTX_WEBHOOK_HOST": "127.0.0.1",
        "MKTX_WEBHOOK_PORT": str(gb.free_port()),
        "MKTX_WORKERS": "1",
        "MKTX_POOL_MIN_SIZE": str(gb.POOL_MIN),
        "MKTX_POOL_MAX_SIZE": str(gb.POOL_MAX),
        "MKTX_LOG_LEVEL": log_level,
        "MKTX_DATA_DIR": str(tmp / f"data-{name}"),
        "X_CONSUMER_KEY": "bench-consumer-key",
        "X_CONSUMER_SECRET": "bench-consumer-secret",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each serve makes its own
    log_path = tmp / f"{name}.log"
    proc = subprocess.Popen(
        [str(tree / ".venv" / "bin" / "mktx-grpc"), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("wb"),
        cwd=tree,
    )
    head = subprocess.run(
        ["git", "-C", str(tree), "log", "--oneline", "-1"], capture_output=True, text=True
    ).stdout.strip()
    return gb.Server(name, port, proc, f"`{head}` ({tree}), MKTX_LOG_LEVEL={log_level}", log_path)


async def amain(args: argparse.Namespace) -> int:
    admin_url = os.environ.get("DATABASE_URL", "").strip() or gb.DEFAULT_ADMIN_URL
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="mktx-structure-"))
    sides = []
    for name, tree in (("before", Path(args.before)), ("after", Path(args.after))):
        url, merchant, tid = setup(admin_url, tree, f"mktx_bench_{name}")
        token = mint_token(
            Settings(jwt_secret=gb.JWT_SECRET.encode()), merchant, user_id="bench", ttl_seconds=3600
        )
        body = tmp / f"{name}.bin"
        body.write_bytes(
            gb.grpc_frame(templates_pb2.GetTemplateRequest(id=str(tid)).SerializeToString())
        )
        sides.append((start(tree, name, url, args.log_level, tmp), token, body, tid))
    load = gb.Load(args.clients, args.streams, args.duration, args.warmup)
    runs: dict[str, list[gb.Run]] = {"before": [], "after": []}
    try:
        sizes = {}
        for srv, token, _, tid in sides:
            await gb.wait_ready(srv, health=True)
            sizes[srv.name] = len(await gb.get_template(srv.port, tid, token))
        # Each side is checked against its own answer's size (the trees may differ in
        # a byte or two, e.g. timestamps' precision).
        print(f"answer sizes: {sizes}", flush=True)
        n = {}
        for srv, token, body, _ in sides:
            w = gb.run_h2load(
                load, srv, body, token, "warm-up", sizes[srv.name], warmup_seconds=load.warmup
            )
            n[srv.name] = max(1000, int(w.rps * load.duration))
        for i in range(args.rounds):
            for srv, token, body, _ in sides if i % 2 == 0 else sides[::-1]:
                r = gb.run_h2load(
                    load, srv, body, token, "GetTemplate", sizes[srv.name], requests=n[srv.name]
                )
                runs[srv.name].append(r)
                print(
                    f"   {srv.name:7s} {r.rps:8,.0f} req/s {r.cpu_us_per_req:5,.0f} µs/req "
                    f"(loadavg {r.loadavg})",
                    flush=True,
                )
    finally:
        for srv, *_ in sides:
            srv.stop()
    before, after = runs["before"], runs["after"]
    b = statistics.mean(r.rps for r in before)
    a = statistics.mean(r.rps for r in after)
    cb = statistics.mean(r.cpu_us_per_req for r in before)
    ca = statistics.mean(r.cpu_us_per_req for r in after)
    lines = [
        "# GetTemplate before and after the structure refactor (issue 8)",
        "",
        "Written by `bench/structure_bench.py`: both trees served at the same time, each",
        "with its own database migrated by its own migrations and the same template;",
        f"h2load {load.clients} connections × {load.streams} streams, warm-up {load.warmup} s"
        f" each, then {args.rounds} alternating rounds of about {load.duration} s per side.",
        "",
        *[f"- **{srv.name}**: {srv.describe}" for srv, *_ in sides],
        "",
        *gb.machine_info(admin_url),
        "",
        "| side | req/s per run | mean req/s | server CPU µs/req (mean) |",
        "|---|---|---:|---:|",
        f"| before | {', '.join(f'{r.rps:,.0f}' for r in before)} | {b:,.0f} | {cb:,.0f} |",
        f"| after | {', '.join(f'{r.rps:,.0f}' for r in after)} | {a:,.0f} | {ca:,.0f} |",
        "",
        f"After / before: **{a / b:.2f}×** req/s, {ca / cb:.2f}× server CPU per request.",
        "",
        "## All runs",
        "",
        *gb.table(before + after),
        "",
        f"Total wall time {time.monotonic() - t0:.0f} s.",
    ]
    print("\n".join(lines))
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS.relative_to(gb.ROOT)}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", required=True, help="checkout of the commit before (with .venv)")
    p.add_argument("--after", required=True, help="checkout of main (with .venv)")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--streams", type=int, default=20)
    p.add_argument("--duration", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--log-level", default="WARNING")
    return asyncio.run(amain(p.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
