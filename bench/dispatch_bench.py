"""Campaign dispatch throughput into the X sandbox (limits lifted) and worker memory.

The driver process hosts the sandbox (its own thread; the driver otherwise only
polls the database) and sets up a connected account, N contacts that are sandbox
users, a segment, a template and a running BULK_DM campaign through the real gRPC
server. Then ``--workers`` real ``mktx-grpc worker`` processes dispatch it; the
driver samples the ledger and the workers' RSS until every row is SENT, and checks
that each contact received exactly one DM.

Run:  .venv/bin/python bench/dispatch_bench.py [--contacts 10000] [--workers 2]
Uses TEST_DATABASE_URL when set, else the embedded PostgreSQL in .data/bench.
Writes bench/results/dispatch.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from mktx.v1 import accounts_pb2 as A
from mktx.v1 import accounts_pb2_grpc, campaigns_pb2, campaigns_pb2_grpc
from mktx_grpc.core.auth import mint_token
from mktx_grpc.core.config import Settings
from mktx_grpc.core.db import embedded_database_url, make_pool, migrate
from mktx_grpc.deps import close_deps, make_deps
from mktx_grpc.sandbox import SandboxConfig, SandboxServer
from mktx_grpc.server import GrpcApp

ROOT = Path(__file__).resolve().parents[1]
C = campaigns_pb2
CALLBACK = "https://bench.example/cb"
#: Set by --profile: run the (single) worker under cProfile, writing this file.
PROFILE = ""


#: (admin URL, name) of every database this run created; dropped when it ends.
CREATED: list[tuple[str, str]] = []


def fresh_database() -> str:
    admin = os.environ.get("TEST_DATABASE_URL") or embedded_database_url(ROOT / ".data" / "bench")
    name = f"mktx_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    CREATED.append((admin, name))
    url = make_conninfo(admin, dbname=name)
    migrate(url)
    return url


def settings_for(url: str, sandbox: SandboxServer, data_dir: Path) -> Settings:
    cfg = sandbox.config
    return Settings(
        database_url=url,
        data_dir=data_dir,
        jwt_secret=b"bench-jwt-secret-0123456789abcdef",
        encryption_key=bytes(range(32)),
        page_token_key=b"bench-page-token-key",
        x_consumer_key=cfg.consumer_key,
        x_consumer_secret=cfg.consumer_secret,
        x_client_id=cfg.oauth2_client_id,
        x_client_secret=cfg.oauth2_client_secret,
        x_bearer_token=cfg.app_bearer_token,
        x_api_base=sandbox.base_url,
        x_authorize_base=sandbox.base_url,
        x_sandbox=True,
    )


async def setup(settings: Settings, sandbox: SandboxServer, n: int) -> tuple[str, str]:
    """Connect an account, add n contacts, a segment, a template; start a campaign.
    Returns (campaign id, the account's X user id)."""
    merchant = uuid.uuid4()
    pool = make_pool(settings.database_url, min_size=1, max_size=4)
    await pool.open(wait=True)
    deps = make_deps(settings, pool)
    app = GrpcApp(deps, host="127.0.0.1", port=0)
    await app.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
    md = [("authorization", f"Bearer {mint_token(settings, merchant, user_id='bench')}")]
    try:
        owner = sandbox.state.add_user(
            str(1_800_000_000_000_000_000 + secrets.randbelow(10**17)), "benchshop", "Bench Shop"
        )
        accounts = accounts_pb2_grpc.AccountsServiceStub(channel)
        started = await accounts.StartConnection(
            A.StartConnectionRequest(auth_method=A.AUTH_METHOD_OAUTH2, callback_uri=CALLBACK),
            metadata=md,
        )
        resp = httpx.get(started.authorization_url + f"&sandbox_user_id={owner.id}")
        cb = {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["location"]).query).items()}
        account = await accounts.CompleteConnection(
            A.CompleteConnectionRequest(state=started.state, code=cb["code"]), metadata=md
        )
        budget = json.dumps({"per_15_minutes": 10_000_000, "per_24_hours": 100_000_000})
        users = [
            sandbox.state.add_user(str(1_900_000_000_000_000_000 + i), f"u{i}", f"User {i}")
            for i in range(n)
        ]
        async with await psycopg.AsyncConnection.connect(
            settings.database_url, autocommit=True
        ) as conn:
            await conn.execute(
                "UPDATE accounts SET settings = jsonb_set(settings, '{dm_budget}',"
                " %s::jsonb) WHERE id = %s",
                (budget, account.id),
            )
            async with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY contacts (merchant_id, account_id, x_user_id, username, display_name, tags)"
                    " FROM STDIN"
                ) as copy,
            ):
                for u in users:
                    await copy.write_row(
                        (merchant, account.id, u.id, u.username, u.name, ["bench"])
                    )
            seg = uuid.uuid4()
            await conn.execute(
                "INSERT INTO segments (id, merchant_id, name, conditions) VALUES (%s, %s, 'bench',"
                " %s::jsonb)",
                (
                    seg,
                    merchant,
                    json.dumps(
                        {
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
                    ),
                ),
            )
            tpl = uuid.uuid4()
            await conn.execute(
                "INSERT INTO templates (id, merchant_id, name, type, content, variables)"
                " VALUES (%s, %s, 'bench', 'TEXT', %s, %s)",
                (
                    tpl,
                    merchant,
                    "Hi {{contact.display_name}}, {{code}} is yours",
                    ["code", "contact.display_name"],
                ),
            )
        stub = campaigns_pb2_grpc.CampaignsServiceStub(channel)
        camp = await stub.CreateCampaign(
            C.CreateCampaignRequest(
                campaign=C.Campaign(
                    name="bench",
                    account_id=account.id,
                    type=C.CAMPAIGN_TYPE_BULK_DM,
                    template_id=str(tpl),
                    segment_ids=[str(seg)],
                    variables={"code": "BENCH"},
                )
            ),
            metadata=md,
        )
        camp = await stub.StartCampaign(C.StartCampaignRequest(id=camp.id), metadata=md)
        assert camp.counts.total == n, camp.counts
        return camp.id, owner.id
    finally:
        await channel.close()
        await app.stop(0)
        await close_deps(deps)
        await pool.close()


def worker_env(settings: Settings, sandbox: SandboxServer, data_dir: Path) -> dict[str, str]:
    cfg = sandbox.config
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MKTX_", "X_"))}
    env.update(
        {
            "DATABASE_URL": settings.database_url,
            "MKTX_DATA_DIR": str(data_dir),
            "MKTX_ENCRYPTION_KEY": base64.b64encode(bytes(range(32))).decode(),
            "MKTX_JWT_SECRET": settings.jwt_secret.decode(),
            "X_CONSUMER_KEY": cfg.consumer_key,
            "X_CONSUMER_SECRET": cfg.consumer_secret,
            "X_CLIENT_ID": cfg.oauth2_client_id,
            "X_CLIENT_SECRET": cfg.oauth2_client_secret,
            "X_BEARER_TOKEN": cfg.app_bearer_token,
            "X_API_BASE": sandbox.base_url,
            "X_AUTHORIZE_BASE": sandbox.base_url,
            "MKTX_X_SANDBOX": "true",
            "MKTX_LOG_LEVEL": "WARNING",
            "MKTX_POOL_MAX_SIZE": "16",
            # No /metrics listener: N workers on one box would contend for its port.
            "MKTX_WORKER_METRICS_PORT": "0",
        }
    )
    return env


def _cpu(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds of ``procs`` (0 for any that are gone)."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process by pid (backends come and go)."""
    out: dict[int, float] = {}
    for p in psutil.process_iter(["name"]):
        if (p.info["name"] or "").startswith("postgres"):
            out[p.pid] = _cpu([p])
    return out


def run(n: int, workers: int) -> dict[str, float | int | str]:
    config = SandboxConfig(rate_limits_enabled=False, echo_dm_to_webhook=False)
    with SandboxServer(config) as sandbox, tempfile.TemporaryDirectory() as tmp:
        url = fresh_database()
        settings = settings_for(url, sandbox, Path(tmp))
        campaign_id, owner_id = asyncio.run(setup(settings, sandbox, n))
        env = worker_env(settings, sandbox, Path(tmp))
        exe = Path(sys.executable).with_name("mktx-grpc")
        log = open(Path(tempfile.gettempdir()) / "mktx_dispatch_bench.log", "wb")
        cmd = [str(exe), "worker"]
        if PROFILE:
            cmd = [sys.executable, "-m", "cProfile", "-o", PROFILE, "-m", "mktx_grpc.cli", "worker"]
        me = psutil.Process()
        cpu0 = (_cpu([me]), _postgres_cpu())
        procs = [subprocess.Popen(cmd, env=env, stdout=log, stderr=log) for _ in range(workers)]
        ps = [psutil.Process(p.pid) for p in procs]
        rss_peak = 0
        first_at = last_at = None
        started = time.perf_counter()
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                while True:
                    sent = conn.execute(
                        "SELECT count(*) FROM campaign_recipients WHERE campaign_id = %s"
                        " AND state = 'SENT'",
                        (campaign_id,),
                    ).fetchone()[0]
                    now = time.perf_counter()
                    rss_peak = max(rss_peak, max(p.memory_info().rss for p in ps))
                    if sent and first_at is None:
                        first_at = now
                    if sent >= n:
                        last_at = now
                        break
                    if now - started > 600 or any(p.poll() is not None for p in procs):
                        raise RuntimeError(f"stuck at {sent}/{n}")
                    time.sleep(0.1)
                status = conn.execute(
                    "SELECT status, sent_count FROM campaigns WHERE id = %s", (campaign_id,)
                ).fetchone()
                # CPU seconds from the workers' start to the last SENT row: the
                # workers, the driver (the sandbox, mostly) and PostgreSQL.
                pg = _postgres_cpu()
                cpu = (
                    _cpu(ps),
                    _cpu([me]) - cpu0[0],
                    sum(t - cpu0[1].get(pid, 0.0) for pid, t in pg.items()),
                )
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(20)
            log.close()
        dms = sandbox.state.sent_dms(owner_id)
        per = Counter(d.recipient_id for d in dms)
        assert len(per) == n and set(per.values()) == {1}, "duplicates or missing DMs"
        assert first_at is not None and last_at is not None
        return {
            "contacts": n,
            "workers": workers,
            "seconds": round(last_at - first_at, 2),
            "dms_per_s": round(n / (last_at - first_at)),
            "wall_seconds": round(last_at - started, 2),
            "rss_mb": round(rss_peak / 2**20, 1),
            "cpu_worker_s": round(cpu[0], 1),
            "cpu_sandbox_s": round(cpu[1], 1),
            "cpu_postgres_s": round(cpu[2], 1),
            "load_1m": round(os.getloadavg()[0], 2),
            "counter": status[1],
            "status": status[0],
        }


def drop_created() -> None:
    for admin, name in CREATED:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    try:
        bench()
    finally:
        drop_created()


def bench() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=10_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--profile", default="", help="cProfile output file (one worker)")
    ap.add_argument(
        "--no-write", action="store_true", help="print only (comparisons: keep results/)"
    )
    args = ap.parse_args()
    global PROFILE
    PROFILE = args.profile
    if PROFILE:
        print(run(args.contacts, 1))
        return
    rows = [run(args.contacts, w) for w in args.workers]
    for r in rows:
        print(r)
    if args.no_write:
        return
    out = ROOT / "bench" / "results" / "dispatch.md"
    out.parent.mkdir(exist_ok=True)
    lines = [
        "# Campaign dispatch throughput into the X sandbox",
        "",
        "A BULK_DM campaign to N contacts (every contact a sandbox user), sent by real",
        "`mktx-grpc worker` processes against the X sandbox with its rate limits lifted and",
        "the account's DM budget raised. The sandbox runs in the driver process (its own",
        "thread); PostgreSQL is TEST_DATABASE_URL's server when set (these runs), else the",
        "embedded one. DMs/s is from the first to the last",
        "SENT row; RSS is the largest worker's peak resident memory. Every run checks that",
        "each contact received exactly one DM.",
        "",
        f"Reproduce: `.venv/bin/python bench/dispatch_bench.py --contacts {args.contacts}"
        f" --workers {' '.join(map(str, args.workers))}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, recorded {time.strftime('%Y-%m-%d')}.",
        "",
        "CPU seconds are from the workers' start to the last SENT row: all workers, the",
        "driver (the sandbox, mostly) and every PostgreSQL process (so other sessions'",
        "database work on a shared box shows up there). Load is the 1-minute average at",
        "the end of the run.",
        "",
        "| contacts | workers | seconds | DMs/s | CPU s worker | CPU s sandbox"
        " | CPU s PostgreSQL | load | worker RSS (MiB) | status |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *[
            f"| {r['contacts']} | {r['workers']} | {r['seconds']} | {r['dms_per_s']} |"
            f" {r['cpu_worker_s']} | {r['cpu_sandbox_s']} | {r['cpu_postgres_s']} |"
            f" {r['load_1m']} | {r['rss_mb']} | {r['status']} |"
            for r in rows
        ],
        "",
    ]
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
