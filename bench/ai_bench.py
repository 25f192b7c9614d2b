"""AI assistant benchmarks (issue 10 §7).

1. **ProcessMessage overhead**: the real gRPC server in-process (the whole
   interceptor chain, HS256 JWT) against the OpenAI-compatible stand-in answering at
   once, in its own process (``mktx-grpc ai-standin``, so it does not share this
   process's GIL). One caller, ``--calls`` sequential calls; p50/p99 through gRPC,
   and the model's share (the stand-in's HTTP round trip as the client saw it).
2. **100 concurrent conversations** against a stand-in that answers after
   ``--latency-ms`` (default 200): ``--conversations`` callers, each on its own
   conversation, sending messages back to back for ``--seconds``; messages/s.

Both with moderation off (one model call per message) and on (two), since the
moderation call is a second round trip. ``--driver-procs N`` also runs phase 2
(moderation off) with its callers in N processes of their own (spawned, each with
its own gRPC channel), so this process is the gRPC server alone: the in-process
callers otherwise share its one core.

Run:  .venv/bin/python bench/ai_bench.py [--calls 500] [--seconds 10]
Uses TEST_DATABASE_URL when set, else the embedded PostgreSQL in .data/bench.
Writes bench/results/ai.md (``--no-write`` to skip). Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import httpx
import httpx2
import psycopg
from google.protobuf.field_mask_pb2 import FieldMask
from psycopg import sql
from psycopg.conninfo import make_conninfo

from mktx.v1 import ai_pb2 as A
from mktx.v1 import ai_pb2_grpc
from mktx_grpc.core.auth import mint_token
from mktx_grpc.core.config import Settings
from mktx_grpc.core.db import embedded_database_url, make_pool, migrate
from mktx_grpc.deps import close_deps, make_deps
from mktx_grpc.server import GrpcApp

ROOT = Path(__file__).resolve().parents[1]
CREATED: list[tuple[str, str]] = []
TEXTS = ["where is my order", "has my parcel shipped yet", "do you ship abroad", "how much is it"]


def fresh_database() -> str:
    admin = os.environ.get("TEST_DATABASE_URL") or embedded_database_url(ROOT / ".data" / "bench")
    name = f"mktx_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    CREATED.append((admin, name))
    url = make_conninfo(admin, dbname=name)
    migrate(url)
    return url


def drop_databases() -> None:
    for admin, name in CREATED:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_standin(latency_ms: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    exe = Path(sys.executable).parent / "mktx-grpc"
    args = [str(exe), "ai-standin", "--port", str(port)]
    if latency_ms:
        args += ["--latency-ms", str(latency_ms)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/_standin/stats", timeout=0.5).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the stand-in did not start")


def seed(url: str, merchant: uuid.UUID, n: int) -> list[str]:
    """One account, ``n`` contacts each with a live conversation."""
    account = uuid.uuid4()
    convs = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO accounts (id, merchant_id, x_user_id, auth_method)"
            " VALUES (%s, %s, %s, 'OAUTH2')",
            (account, merchant, str(1_800_000_000_000_000_000 + merchant.int % 10**17)),
        )
        for i in range(n):
            contact, conv = uuid.uuid4(), uuid.uuid4()
            conn.execute(
                "INSERT INTO contacts (id, merchant_id, account_id, x_user_id, display_name)"
                " VALUES (%s, %s, %s, %s, %s)",
                (contact, merchant, account, f"9{i:018d}", f"Customer {i}"),
            )
            conn.execute(
                "INSERT INTO conversations (id, merchant_id, account_id, contact_id)"
                " VALUES (%s, %s, %s, %s)",
                (conv, merchant, account, contact),
            )
            convs.append(str(conv))
    return convs


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def drive(
    port: int,
    md: list[tuple[str, str]],
    convs: list[str],
    start_at: float,
    stop_at: float,
    out: Any,
) -> None:
    """A driver process (``--driver-procs``): its own gRPC channel and event loop,
    one caller per conversation in ``convs``, messages back to back from wall clock
    ``start_at`` until ``stop_at``; puts (messages completed inside that window,
    errors, its CPU seconds) on ``out``. Calls before ``start_at`` or completing
    after ``stop_at`` would inflate the rate (the first version counted both)."""

    async def run() -> tuple[int, int]:
        done = errors = 0
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            ai = ai_pb2_grpc.AIServiceStub(ch)
            await ch.channel_ready()
            await asyncio.sleep(max(0.0, start_at - time.time()))

            async def caller(conv: str) -> None:
                nonlocal done, errors
                i = 0
                while time.time() < stop_at:
                    try:
                        await ai.ProcessMessage(
                            A.ProcessMessageRequest(
                                conversation_id=conv, text=TEXTS[i % len(TEXTS)]
                            ),
                            metadata=md,
                        )
                        done += time.time() <= stop_at
                    except grpc.aio.AioRpcError:
                        errors += 1
                    i += 1

            await asyncio.gather(*(caller(c) for c in convs))
        return done, errors

    cpu0 = time.process_time()
    done, errors = asyncio.run(run())
    out.put((done, errors, time.process_time() - cpu0))


async def run_phase(
    url: str,
    base: str,
    *,
    moderation: bool,
    calls: int,
    seconds: float,
    conversations: int,
    driver_procs: int = 0,
) -> dict[str, float]:
    settings = Settings(
        database_url=url,
        jwt_secret=b"bench-jwt-secret-0123456789abcdef",
        encryption_key=bytes(range(32)),
        page_token_key=b"bench",
        # The per-merchant rate limiter is lifted: this measures the assistant.
        rate_limit_per_minute=100_000_000,
        rate_limit_burst=1_000_000,
        ai_base_url=f"{base}/v1",
        ai_api_key="sk-standin-local",
        ai_max_retries=0,
        ai_timeout=10.0,
    )
    pool = make_pool(url, min_size=4, max_size=20, metrics=False)
    await pool.open(wait=True)
    deps = make_deps(settings, pool)
    app = GrpcApp(deps, host="127.0.0.1", port=0)
    await app.start()
    merchant = uuid.uuid4()
    md = [("authorization", f"Bearer {mint_token(settings, merchant, user_id='bench')}")]
    convs = seed(url, merchant, max(conversations, 1))
    out: dict[str, float] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
        ai = ai_pb2_grpc.AIServiceStub(ch)
        await ai.UpdateAISettings(
            A.UpdateAISettingsRequest(
                settings=A.AISettings(enabled=True, moderation_enabled=moderation),
                update_mask=FieldMask(paths=["enabled", "moderation_enabled"]),
            ),
            metadata=md,
        )
        if calls:
            for _ in range(20):  # warm-up
                await ai.ProcessMessage(
                    A.ProcessMessageRequest(conversation_id=convs[0], text=TEXTS[0]), metadata=md
                )
            lat, model = [], []
            for i in range(calls):
                t0 = time.perf_counter()
                r = await ai.ProcessMessage(
                    A.ProcessMessageRequest(
                        conversation_id=convs[0], text=TEXTS[i % len(TEXTS)], dry_run=True
                    ),
                    metadata=md,
                )
                lat.append((time.perf_counter() - t0) * 1000)
                model.append(r.latency.ToTimedelta().total_seconds() * 1000)
            out.update(
                p50=statistics.median(lat),
                p99=pct(lat, 99),
                model_p50=statistics.median(model),
            )
        if seconds and driver_procs:
            # The callers in processes of their own: this process is the server only.
            ctx = multiprocessing.get_context("spawn")
            queue = ctx.Queue()
            start_at = time.time() + 3.0  # the drivers' imports and channels first
            stop_at = start_at + seconds
            shares = [convs[:conversations][i::driver_procs] for i in range(driver_procs)]
            procs = [
                ctx.Process(target=drive, args=(app.port, md, share, start_at, stop_at, queue))
                for share in shares
            ]
            for p in procs:
                p.start()
            await asyncio.sleep(max(0.0, start_at - time.time()))
            cpu0, t0 = proc_cpu(os.getpid()), time.perf_counter()
            results = [await asyncio.to_thread(queue.get) for _ in procs]
            wall = time.perf_counter() - t0
            for p in procs:
                p.join(10)
            out.update(
                msgs_per_s=sum(r[0] for r in results) / seconds,
                errors=sum(r[1] for r in results),
                cpu_server=100 * (proc_cpu(os.getpid()) - cpu0) / wall,
                cpu_drivers=100 * sum(r[2] for r in results) / wall,
            )
        elif seconds:
            done = 0
            errors = 0
            stop = time.perf_counter() + seconds

            async def caller(conv: str) -> None:
                nonlocal done, errors
                i = 0
                while time.perf_counter() < stop:
                    try:
                        await ai.ProcessMessage(
                            A.ProcessMessageRequest(
                                conversation_id=conv, text=TEXTS[i % len(TEXTS)]
                            ),
                            metadata=md,
                        )
                        done += 1
                    except grpc.aio.AioRpcError:
                        errors += 1
                    i += 1

            t0 = time.perf_counter()
            await asyncio.gather(*(caller(c) for c in convs[:conversations]))
            out.update(msgs_per_s=done / (time.perf_counter() - t0), errors=errors)
    await app.stop(0)
    await close_deps(deps)
    await pool.close()
    return out


async def standin_alone(base: str, *, seconds: float, concurrency: int) -> float:
    """Requests/s the stand-in itself serves for this service's real request (the
    merchant's intents, the strict schema), driven by raw httpx2: the ceiling phase 2
    can reach on this box."""
    from datetime import UTC, datetime

    from mktx_grpc.domain import ai as domain

    st = domain.DEFAULT_SETTINGS
    body = {
        "model": "gpt-4o-mini",
        "messages": domain.build_messages(
            st,
            contact={"name": "A"},
            context=[],
            text=TEXTS[0],
            known_slots={},
            today=datetime.now(UTC),
        ),
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "a", "strict": True, "schema": domain.output_schema(st)},
        },
    }
    done = 0
    stop = time.perf_counter() + seconds
    # httpx2, the openai client's HTTP library, with its limits: httpx's own pool
    # costs milliseconds per request with 100 connections (it walks them all, twice
    # over, on each request), which would measure this driver, not the stand-in.
    limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(
        base_url=base,
        headers={"authorization": "Bearer sk-standin-local"},
        timeout=30,
        limits=limits,
    ) as http:

        async def one() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                r = await http.post("/v1/chat/completions", json=body)
                r.raise_for_status()
                done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(concurrency)))
        return done / (time.perf_counter() - t0)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--conversations", type=int, default=100)
    ap.add_argument("--latency-ms", type=int, default=200)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument(
        "--driver-procs",
        type=int,
        default=0,
        help="also run the concurrent phase (moderation off and on) with its callers in N "
        "processes of their own, so this process is the gRPC server alone",
    )
    args = ap.parse_args()
    split: dict[bool, dict[str, float]] = {}
    url = fresh_database()
    rows = []
    try:
        load = os.getloadavg()
        instant, instant_base = start_standin(0)
        slow, slow_base = start_standin(args.latency_ms)
        try:
            ceiling = await standin_alone(
                slow_base, seconds=args.seconds, concurrency=args.conversations
            )
            print("stand-in alone", ceiling, flush=True)
            for moderation in (False, True):
                a = await run_phase(
                    url,
                    instant_base,
                    moderation=moderation,
                    calls=args.calls,
                    seconds=0,
                    conversations=1,
                )
                me, them, t0 = proc_cpu(os.getpid()), proc_cpu(slow.pid), time.perf_counter()
                b = await run_phase(
                    url,
                    slow_base,
                    moderation=moderation,
                    calls=0,
                    seconds=args.seconds,
                    conversations=args.conversations,
                )
                wall = time.perf_counter() - t0
                # CPU share during the phase (its setup included): this process
                # (server, gRPC callers, model client) and the stand-in.
                b["cpu_service"] = 100 * (proc_cpu(os.getpid()) - me) / wall
                b["cpu_standin"] = 100 * (proc_cpu(slow.pid) - them) / wall
                rows.append((moderation, a, b))
                print(moderation, a, b, flush=True)
            for moderation in (False, True) if args.driver_procs else ():
                split[moderation] = await run_phase(
                    url,
                    slow_base,
                    moderation=moderation,
                    calls=0,
                    seconds=args.seconds,
                    conversations=args.conversations,
                    driver_procs=args.driver_procs,
                )
                print("driver processes, moderation", moderation, split[moderation], flush=True)
        finally:
            for p in (instant, slow):
                p.terminate()
                p.wait(5)
    finally:
        drop_databases()
    lines = [
        "# AI assistant benchmark (bench/ai_bench.py)",
        "",
        f"{platform.node()}, {os.cpu_count()} cores, load average before: "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}. Stand-ins in their own processes.",
        "",
        f"| moderation | ProcessMessage p50 ms | p99 ms | of which model p50 ms "
        f"| {args.conversations} conversations, {args.latency_ms} ms model: msgs/s | errors "
        "| CPU of this process / stand-in |",
        "|---|---|---|---|---|---|---|",
    ]
    for moderation, a, b in rows:
        lines.append(
            f"| {'on' if moderation else 'off'} | {a['p50']:.2f} | {a['p99']:.2f} "
            f"| {a['model_p50']:.2f} | {b.get('msgs_per_s', 0):.0f} | {int(b.get('errors', 0))} "
            f"| {b.get('cpu_service', 0):.0f}% / {b.get('cpu_standin', 0):.0f}% |"
        )
    lines += [
        "",
        f"The {args.latency_ms} ms stand-in alone, driven by raw httpx2 with the same request "
        f"from {args.conversations} callers: {ceiling:.0f} requests/s (the most the concurrent "
        f"phase could reach through this stand-in; {1000 * args.conversations / args.latency_ms:.0f}"
        " would be no overhead at all).",
    ]
    for moderation, got in split.items():
        lines += [
            "",
            f"The concurrent phase (moderation {'on' if moderation else 'off'}) with its "
            f"callers in {args.driver_procs} processes of their own (`--driver-procs "
            f"{args.driver_procs}`; still end to end through gRPC): {got['msgs_per_s']:.0f} "
            f"msgs/s, {int(got['errors'])} errors; CPU of the server process "
            f"{got['cpu_server']:.0f}%, of the drivers {got['cpu_drivers']:.0f}% together.",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        (ROOT / "bench" / "results" / "ai.md").write_text(text)


if __name__ == "__main__":
    asyncio.run(main())
