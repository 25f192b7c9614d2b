"""Outbox-consumer latency: trigger (an event committed) -> its consumer's handler.

The driver creates a fresh database, starts one consumer process
(``--role consumer``: ``worker.consumer`` with a handler that writes one row per
event, like a trigger or a rollup would), then commits events at a fixed rate, each
in its own transaction as real writes do, with the wall time just before its commit
in the payload. The consumer's handler notes ``time.time() - payload.t`` per event.
Modes: ``notify`` is the production loop (``consumer_loop``: wakes on the outbox
NOTIFY); ``poll-<ms>`` instead sleeps that long whenever a pass found nothing.
Per run: p50/p99/max latency, the consumer's CPU while loaded and while idle, and
its passes per second while idle (each a transaction on the database).

Run:  .venv/bin/python bench/consumer_bench.py [--seconds 10]
Uses TEST_DATABASE_URL when set, else the embedded PostgreSQL in .data/bench.
Writes bench/results/consumers.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[1]
CREATED: list[tuple[str, str]] = []


def fresh_database() -> str:
    from mktx_grpc.core.db import embedded_database_url, migrate

    admin = os.environ.get("TEST_DATABASE_URL") or embedded_database_url(ROOT / ".data" / "bench")
    name = f"mktx_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    CREATED.append((admin, name))
    url = make_conninfo(admin, dbname=name)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_effects (event_id bigint PRIMARY KEY)")
    return url


# ------------------------------------------------------------------ consumer process


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _exists(path: Path) -> bool:
    return path.exists()


async def consumer_main(url: str, mode: str, kind: str, out: Path, stop_file: Path) -> None:
    from mktx_grpc.core.context import current_connection
    from mktx_grpc.core.db import make_pool
    from mktx_grpc.store.events import OutboxEvent
    from mktx_grpc.worker.consumer import Consumer, consume_once, consumer_loop

    latencies: list[float] = []
    passes = 0

    def note(events: Sequence[OutboxEvent]) -> None:
        now = time.time()
        latencies.extend(now - float(e.payload["t"]) for e in events if "t" in e.payload)

    async def handle(ev: OutboxEvent) -> None:
        await current_connection().execute(
            "INSERT INTO bench_effects VALUES (%s) ON CONFLICT DO NOTHING", (ev.id,)
        )
        note([ev])

    async def handle_batch(events: Sequence[OutboxEvent]) -> None:
        await current_connection().execute(
            "INSERT INTO bench_effects SELECT unnest(%s::bigint[]) ON CONFLICT DO NOTHING",
            ([e.id for e in events],),
        )
        note(events)

    c = (
        Consumer("bench", handle=handle)
        if kind == "event"
        else Consumer("bench", handle_batch=handle_batch)
    )
    pool = make_pool(url, min_size=1, max_size=4)
    await pool.open(wait=True)

    class _Deps:  # consumer_loop only needs the pool
        def __init__(self) -> None:
            self.pool = pool

    deps = _Deps()
    loop = consumer_loop(c)
    counting = consume_once

    async def counted(p, consumer):  # type: ignore[no-untyped-def]
        nonlocal passes
        passes += 1
        return await counting(p, consumer)

    import mktx_grpc.worker.consumer as mod

    mod.consume_once = counted  # count passes (the loop looks the name up each call)
    passes_file = out.with_suffix(".passes")

    async def report() -> None:
        while True:
            _write(passes_file, str(passes))
            await asyncio.sleep(0.1)

    reporter = asyncio.create_task(report())
    try:
        while not _exists(stop_file):
            if mode == "notify":
                await loop(deps)  # type: ignore[arg-type]
            else:
                r = await counted(pool, c)
                if not (r.more or r.progressed) and r.held_event_id is None:
                    await asyncio.sleep(int(mode.split("-")[1]) / 1000)
                elif r.held_event_id is not None:
                    await asyncio.sleep(0.002)
    finally:
        reporter.cancel()
        _write(passes_file, str(passes))
        _write(out, json.dumps({"latencies": latencies, "passes": passes}))
        await pool.close()


# ------------------------------------------------------------------ driver


async def produce(url: str, rate: int, seconds: float) -> int:
    from mktx_grpc.core.db import make_pool, use_connection
    from mktx_grpc.store.events import append_event

    pool = make_pool(url, min_size=8, max_size=8)
    await pool.open(wait=True)
    merchants = [uuid.uuid4() for _ in range(20)]
    sent = 0

    async def one(i: int) -> None:
        # One autocommitted statement: the stamp is taken just before its commit.
        async with use_connection(pool):
            await append_event(merchants[i % 20], "bench.happened", None, {"t": time.time()})

    start = time.perf_counter()
    pending: set[asyncio.Task[None]] = set()
    while (elapsed := time.perf_counter() - start) < seconds:
        while sent < int(elapsed * rate):
            t = asyncio.create_task(one(sent))
            pending.add(t)
            t.add_done_callback(pending.discard)
            sent += 1
        await asyncio.sleep(0.002)
    await asyncio.gather(*pending)
    await pool.close()
    return sent


def run(mode: str, kind: str, rate: int, seconds: float, idle: float) -> dict[str, object]:
    url = fresh_database()
    tmp = Path(tempfile.mkdtemp())
    out, stop = tmp / "lat.json", tmp / "stop"
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--role",
            "consumer",
            "--url",
            url,
            "--mode",
            mode,
            "--kind",
            kind,
            "--out",
            str(out),
            "--stop",
            str(stop),
        ],
    )
    ps = psutil.Process(proc.pid)
    time.sleep(2.0)  # the consumer is up and idle
    cpu0 = ps.cpu_times()
    produced = asyncio.run(produce(url, rate, seconds))
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + 60
        while conn.execute("SELECT count(*) FROM bench_effects").fetchone()[0] < produced:
            assert time.monotonic() < deadline, "consumer fell behind"
            time.sleep(0.05)
    cpu1 = ps.cpu_times()
    passes0 = int((out.with_suffix(".passes")).read_text() or 0)
    time.sleep(idle)
    cpu2 = ps.cpu_times()
    passes1 = int((out.with_suffix(".passes")).read_text() or 0)
    stop.write_text("")
    proc.wait(30)
    lat = sorted(json.loads(out.read_text())["latencies"])
    q = statistics.quantiles(lat, n=100)
    return {
        "mode": mode,
        "handler": kind,
        "rate": rate,
        "events": produced,
        "p50_ms": round(q[49] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "max_ms": round(lat[-1] * 1000, 1),
        "cpu_loaded_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 2),
        "cpu_idle_pct": round(
            100 * ((cpu2.user + cpu2.system) - (cpu1.user + cpu1.system)) / idle, 1
        ),
        "idle_passes_per_s": round((passes1 - passes0) / idle, 1),
        "load_1m": round(os.getloadavg()[0], 2),
    }


def drop_created() -> None:
    for admin, name in CREATED:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", default="driver")
    ap.add_argument("--url", default="")
    ap.add_argument("--mode", default="notify")
    ap.add_argument("--kind", default="event")
    ap.add_argument("--out", default="")
    ap.add_argument("--stop", default="")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--idle", type=float, default=5.0)
    ap.add_argument(
        "--plan",
        nargs="*",
        default=[
            "notify:event:500",
            "notify:batch:1000",
            "poll-50:event:500",
            "poll-50:batch:1000",
            "poll-200:event:500",
        ],
        help="runs as mode:handler:events_per_s",
    )
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    if args.role == "consumer":
        asyncio.run(consumer_main(args.url, args.mode, args.kind, Path(args.out), Path(args.stop)))
        return
    plan = [(m, k, int(r)) for m, k, r in (x.split(":") for x in args.plan)]
    rows = []
    try:
        for mode, kind, rate in plan:
            r = run(mode, kind, rate, args.seconds, args.idle)
            print(r, flush=True)
            rows.append(r)
    finally:
        drop_created()
    lines = [
        "# Outbox consumers: trigger -> handler latency",
        "",
        "One consumer process (``worker/consumer.py``) against a fresh database; the driver",
        "commits events at a fixed rate, each in its own transaction, stamping the wall time",
        "just before its commit. Latency is from that stamp to the handler seeing the event",
        "(before the consumer's own commit, ~1 ms more). `event`: a per-event handler (one",
        "INSERT per event), as automation triggers would be; `batch`: a",
        "batch handler (one INSERT per batch), as analytics rollups would be. `notify` is the",
        "production loop (wakes on the outbox NOTIFY, re-reads every second regardless);",
        "`poll-N` sleeps N ms whenever a pass found nothing. Idle figures are the consumer",
        "process over the seconds after the load, with nothing to do.",
        "",
        f"Reproduce: `.venv/bin/python bench/consumer_bench.py --seconds {args.seconds:g}"
        f" --plan {' '.join(args.plan)}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, recorded {time.strftime('%Y-%m-%d')}; the box was shared",
        "with other sessions' tests (load below), so treat the tails as upper bounds.",
        "",
        "| mode | handler | events/s | events | p50 ms | p99 ms | max ms | consumer CPU s"
        " (loaded) | consumer CPU idle % | idle passes/s | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {r['mode']} | {r['handler']} | {r['rate']} | {r['events']} | {r['p50_ms']} |"
            f" {r['p99_ms']} | {r['max_ms']} | {r['cpu_loaded_s']} | {r['cpu_idle_pct']} |"
            f" {r['idle_passes_per_s']} | {r['load_1m']} |"
            for r in rows
        ],
        "",
    ]
    if args.no_write:
        return
    out = ROOT / "bench" / "results" / "consumers.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
