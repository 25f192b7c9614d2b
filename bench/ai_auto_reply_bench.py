"""Auto-reply latency (issue 10 §7, third figure): an inbound DM injected at the X
sandbox (delivered to the webhook sidecar as X would) to the bot's reply received
by the sandbox, p50 / p99, with an AI stand-in that answers at once.

Everything ``serve`` runs, in this process: the gRPC server, the webhook sidecar
(uvicorn, its event processors), the worker loops (the outbox consumers, the
auto-reply loop, the DM sender), and the X sandbox; the stand-in runs in its own
process. ``--messages`` customers each write once, one after another, and the time
from the injection call to the reply appearing at the sandbox is recorded.

Run:  .venv/bin/python bench/ai_auto_reply_bench.py [--messages 40]
Uses TEST_DATABASE_URL when set. Writes bench/results/ai_auto_reply.md (``--no-write``
to skip). Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import psycopg
import uvicorn
from google.protobuf.field_mask_pb2 import FieldMask

from mktx.v1 import accounts_pb2 as AC
from mktx.v1 import accounts_pb2_grpc, ai_pb2, ai_pb2_grpc
from mktx_grpc.core.auth import mint_token
from mktx_grpc.core.config import Settings
from mktx_grpc.core.db import make_pool
from mktx_grpc.deps import close_deps, make_deps
from mktx_grpc.sandbox import SandboxConfig, SandboxServer
from mktx_grpc.server import GrpcApp
from mktx_grpc.webhooks.app import create_webhook_app
from mktx_grpc.worker import run_loops

sys.path.insert(0, str(Path(__file__).parent))
from ai_bench import drop_databases, fresh_database, start_standin

ROOT = Path(__file__).resolve().parents[1]
CALLBACK = "https://shop.example/x/callback"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(messages: int) -> dict[str, float]:
    url = fresh_database()
    standin, standin_base = start_standin(0)
    sandbox = SandboxServer(SandboxConfig()).start()
    webhook_port = free_port()
    cfg = sandbox.config
    settings = Settings(
        database_url=url,
        data_dir=ROOT / ".data" / "bench-ai",
        jwt_secret=b"bench-jwt-secret-0123456789abcdef",
        encryption_key=bytes(range(32)),
        page_token_key=b"bench",
        # The per-merchant rate limiter is lifted: this measures the assistant.
        rate_limit_per_minute=100_000_000,
        rate_limit_burst=1_000_000,
        x_consumer_key=cfg.consumer_key,
        x_consumer_secret=cfg.consumer_secret,
        x_client_id=cfg.oauth2_client_id,
        x_client_secret=cfg.oauth2_client_secret,
        x_bearer_token=cfg.app_bearer_token,
        x_api_base=sandbox.base_url,
        x_authorize_base=sandbox.base_url,
        x_sandbox=True,
        auto_register_webhook=True,
        webhook_host="127.0.0.1",
        webhook_port=webhook_port,
        ai_base_url=f"{standin_base}/v1",
        ai_api_key="sk-standin-local",
    )
    pool = make_pool(url, min_size=2, max_size=10, metrics=False)
    await pool.open(wait=True)
    deps = make_deps(settings, pool)
    app = GrpcApp(deps, host="127.0.0.1", port=0)
    await app.start()
    sidecar = uvicorn.Server(
        uvicorn.Config(
            create_webhook_app(deps, settings.x_consumer_secret),
            host="127.0.0.1",
            port=webhook_port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(sidecar.serve()), asyncio.create_task(run_loops(deps, stop))]
    while not sidecar.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.02)
    merchant = uuid.uuid4()
    md = [("authorization", f"Bearer {mint_token(settings, merchant, user_id='bench')}")]
    lat: list[float] = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as ch:
            accounts = accounts_pb2_grpc.AccountsServiceStub(ch)
            owner = sandbox.state.add_user("1810000000000000001", "benchshop", "Bench Shop")
            started = await accounts.StartConnection(
                AC.StartConnectionRequest(auth_method=AC.AUTH_METHOD_OAUTH2, callback_uri=CALLBACK),
                metadata=md,
            )
            resp = httpx.get(started.authorization_url + f"&sandbox_user_id={owner.id}")
            cb = {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["location"]).query).items()}
            account = await accounts.CompleteConnection(
                AC.CompleteConnectionRequest(state=started.state, code=cb["code"]), metadata=md
            )
            await accounts.UpdateAccountSettings(
                AC.UpdateAccountSettingsRequest(
                    account_id=account.id,
                    settings=AC.AccountSettings(auto_reply_enabled=True),
                    update_mask=FieldMask(paths=["auto_reply_enabled"]),
                ),
                metadata=md,
            )
            budget = json.dumps({"per_15_minutes": 1_000_000, "per_24_hours": 10_000_000})
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "UPDATE accounts SET settings = jsonb_set(settings, '{dm_budget}',"
                    " %s::jsonb) WHERE id = %s",
                    (budget, account.id),
                )
            await ai_pb2_grpc.AIServiceStub(ch).UpdateAISettings(
                ai_pb2.UpdateAISettingsRequest(
                    settings=ai_pb2.AISettings(enabled=True),
                    update_mask=FieldMask(paths=["enabled"]),
                ),
                metadata=md,
            )
            with sandbox.state.lock:
                sandbox.state.config.rate_limits_enabled = False
            async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
                for i in range(messages + 3):
                    user = sandbox.state.add_user(
                        str(1_820_000_000_000_000_000 + i), f"cust{i}", f"Customer {i}"
                    )
                    t0 = time.perf_counter()
                    r = await http.post(
                        "/_sandbox/dms/inbound",
                        json={
                            "sender_id": user.id,
                            "recipient_id": owner.id,
                            "text": "where is my order",
                        },
                    )
                    r.raise_for_status()
                    give_up = t0 + 30
                    while not any(
                        d.recipient_id == user.id for d in sandbox.state.sent_dms(owner.id)
                    ):
                        if time.perf_counter() > give_up:
                            raise RuntimeError(f"no reply to customer {i}")
                        await asyncio.sleep(0.002)
                    if i >= 3:  # warm-up
                        lat.append((time.perf_counter() - t0) * 1000)
    finally:
        stop.set()
        sidecar.should_exit = True
        for t in tasks:
            await asyncio.wait_for(t, 15)
        await app.stop(0)
        await close_deps(deps)
        await pool.close()
        sandbox.stop()
        standin.terminate()
        drop_databases()
    lat.sort()
    return {
        "p50": statistics.median(lat),
        "p99": lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))],
        "n": len(lat),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=40)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()
    r = asyncio.run(run(args.messages))
    text = (
        "# Auto-reply latency (bench/ai_auto_reply_bench.py)\n\n"
        f"{os.cpu_count()} cores, load average before: {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}. Inbound DM injected at the X sandbox to the bot's reply at the "
        f"sandbox, {r['n']} customers one after another, instant stand-in in its own "
        "process, everything else in one process as `serve` runs it.\n\n"
        f"| p50 ms | p99 ms |\n|---|---|\n| {r['p50']:.0f} | {r['p99']:.0f} |\n"
    )
    print(text)
    if not args.no_write:
        (ROOT / "bench" / "results" / "ai_auto_reply.md").write_text(text)


if __name__ == "__main__":
    main()
