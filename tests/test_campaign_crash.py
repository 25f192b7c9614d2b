"""Crash test: ``mktx-grpc worker`` as a real subprocess, killed with SIGKILL in the
middle of a 1,000-contact campaign and restarted. Every contact must end up with
exactly one DM at X (counted in the sandbox): none twice, none missing."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from campaign_helpers import (
    add_contacts,
    add_segment,
    add_template,
    connect_account,
    lift_budget,
    sandbox_limits_lifted,
    scalar,
    states,
    tag_condition,
)
from psycopg.conninfo import make_conninfo

from mktx.v1 import campaigns_pb2, campaigns_pb2_grpc

C = campaigns_pb2
N = 1000
#: The worker subprocess's PostgreSQL application_name.
WORKER_APP = "crash-test-worker"


def _worker_env(settings, sandbox, data_dir: Path) -> dict[str, str]:
    cfg = sandbox.config
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MKTX_", "X_"))}
    env.update(
        {
            # Named, so the test can tell when the killed worker's sessions are gone.
            "DATABASE_URL": make_conninfo(settings.database_url, application_name=WORKER_APP),
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
            # No /metrics listener: parallel tests would contend for the default port.
            "MKTX_WORKER_METRICS_PORT": "0",
        }
    )
    return env


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("mktx-grpc")
    out = log.open("ab")
    return subprocess.Popen([str(exe), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)


async def _wait_for(predicate, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if proc.poll() is not None:
            raise AssertionError(f"worker exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; worker log:\n{log.read_text()[-3000:]}")
        await asyncio.sleep(0.05)


async def test_kill_9_mid_campaign_then_restart_sends_each_dm_exactly_once(
    api, merchant, sandbox, db, settings, tmp_path
):
    row, owner = await connect_account(api, merchant, sandbox, db)
    await lift_budget(db, row["id"])
    contacts = await add_contacts(db, sandbox, merchant, row["id"], N, tags=["crash"])
    seg = await add_segment(db, merchant, tag_condition("crash"))
    tpl = await add_template(api, merchant, "Only once, {{contact.username}}")
    stub = campaigns_pb2_grpc.CampaignsServiceStub(api.channel)
    md = api.auth(merchant)
    env = _worker_env(settings, sandbox, tmp_path)
    log = tmp_path / "worker.log"

    async def sent_rows() -> int:
        return await scalar(
            db,
            "SELECT count(*) FROM campaign_recipients WHERE campaign_id = %s AND state = 'SENT'",
            c.id,
        )

    with sandbox_limits_lifted(sandbox):
        c = await stub.CreateCampaign(
            C.CreateCampaignRequest(
                campaign=C.Campaign(
                    name="crash",
                    account_id=str(row["id"]),
                    type=C.CAMPAIGN_TYPE_BULK_DM,
                    template_id=tpl,
                    segment_ids=[seg],
                )
            ),
            metadata=md,
        )
        c = await stub.StartCampaign(C.StartCampaignRequest(id=c.id), metadata=md)
        assert c.counts.total == N

        worker = _start_worker(env, log)
        try:

            async def some_sent() -> bool:
                return await sent_rows() >= N // 5

            await _wait_for(some_sent, 60, worker, log)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        at_kill = await states(db, c.id)
        reached_x = len(sandbox.state.sent_dms(owner.id))
        assert at_kill.get("SENT", 0) < N, "the worker finished before it was killed"
        # DMs X accepted whose SENT the dead worker never recorded are exactly what
        # recovery must not send again.
        print(f"at kill: ledger {at_kill}, DMs at X {reached_x}")

        # A SIGKILLed client's backend runs its current statement to the end (an
        # UPDATE of many ledger rows, maybe waiting on a row lock) before it notices
        # the socket is gone. Touching those rows meanwhile could deadlock with it
        # (the flake of issue 13 §6), so wait until its sessions have ended.
        async def worker_sessions_gone() -> bool:
            return not await scalar(
                db,
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s",
                WORKER_APP,
            )

        deadline = time.monotonic() + 30
        while not await worker_sessions_gone():
            assert time.monotonic() < deadline, "the killed worker's sessions never ended"
            await asyncio.sleep(0.05)
        # The dead worker's leases run out (as they would after lease_seconds): one
        # statement locking the rows in id order, the order the worker locks them in.
        await db.execute(
            "UPDATE campaign_recipients SET lease_until = now() - interval '1 second'"
            " WHERE id IN (SELECT id FROM campaign_recipients"
            "              WHERE campaign_id = %s AND state = 'SENDING'"
            "              ORDER BY id FOR UPDATE)",
            (c.id,),
        )
        worker = _start_worker(env, log)
        try:

            async def completed() -> bool:
                return (
                    await scalar(db, "SELECT status FROM campaigns WHERE id = %s", c.id)
                    == "COMPLETED"
                )

            await _wait_for(completed, 90, worker, log)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()

    received = Counter(d.recipient_id for d in sandbox.state.sent_dms(owner.id))
    duplicates = {k: v for k, v in received.items() if v > 1}
    assert not duplicates, f"{len(duplicates)} contacts got more than one DM"
    assert set(received) == {user.id for _, user in contacts}, "some contacts got no DM"
    assert await states(db, c.id) == {"SENT": N}
    got = await stub.GetCampaign(C.GetCampaignRequest(id=c.id), metadata=md)
    assert (got.counts.sent, got.counts.queued, got.counts.failed) == (N, 0, 0)
    assert (
        await scalar(
            db,
            "SELECT count(DISTINCT x_event_id) FROM campaign_recipients WHERE campaign_id = %s",
            c.id,
        )
        == N
    )
