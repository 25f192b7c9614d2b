"""Crash test: ``mktx-grpc worker`` as a real subprocess, killed with SIGKILL while
1,000 executions wait on timers and their DMs are in flight, then restarted. After
the restart every step ran exactly once (the step log) and every contact got exactly
one DM at X (counted in the sandbox)."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter

import pytest
from campaign_helpers import (
    add_contacts,
    connect_account,
    lift_budget,
    sandbox_limits_lifted,
    scalar,
)
from flow_helpers import chain, create_active, flow, n
from test_campaign_crash import _start_worker, _wait_for, _worker_env

from mktx_grpc.core.db import use_connection
from mktx_grpc.store import automation as store

N = 1000


@pytest.mark.slow
async def test_kill_9_while_executions_wait_and_send_then_restart(
    api, merchant, sandbox, db, settings, tmp_path
):
    row, owner = await connect_account(api, merchant, sandbox, db)
    await lift_budget(db, row["id"])
    contacts = await add_contacts(db, sandbox, merchant, row["id"], N)
    f = await create_active(
        api,
        merchant,
        flow(
            str(row["id"]),
            "MANUAL",
            [
                n("mark", "ADD_TAG", tags=["entered"]),
                n("wait", "WAIT", duration="1s"),
                n("send", "SEND_MESSAGE", text="Only once, {{username}}"),
                n("done_tag", "ADD_TAG", tags=["sent"]),
                n("end", "END"),
            ],
            chain("mark", "wait", "send", "done_tag", "end"),
        ),
    )
    definition = await scalar(db, "SELECT definition FROM flow_versions WHERE flow_id = %s", f.id)
    async with use_connection(api.app.deps.pool, transaction=True):
        for cid, _ in contacts:
            started = await store.start_execution(
                merchant,
                flow_id=f.id,
                flow_version=1,
                definition=definition,
                account_id=row["id"],
                contact_id=cid,
                conversation_id=None,
                trigger_key="crash-test",
                trigger_event={"type": "manual"},
            )
            assert started is not None
    env = _worker_env(settings, sandbox, tmp_path)
    log = tmp_path / "worker.log"

    async def dms_at_x() -> int:
        return len(sandbox.state.sent_dms(owner.id))

    with sandbox_limits_lifted(sandbox):
        worker = _start_worker(env, log)
        try:

            async def some_sent() -> bool:
                return await dms_at_x() >= N // 5

            await _wait_for(some_sent, 90, worker, log)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        at_kill = dict(
            await (
                await db.execute(
                    "SELECT status, count(*) FROM flow_executions WHERE flow_id = %s GROUP BY status",
                    (f.id,),
                )
            ).fetchall()
        )
        ledger = dict(
            await (
                await db.execute("SELECT state, count(*) FROM outbound_dms GROUP BY state")
            ).fetchall()
        )
        print(f"at kill: executions {at_kill}, ledger {ledger}, DMs at X {await dms_at_x()}")
        assert at_kill.get("COMPLETED", 0) < N, "the worker finished before it was killed"
        # The dead worker's send leases run out (as they would after lease_seconds).
        await db.execute(
            "UPDATE outbound_dms SET lease_until = now() - interval '1 second' WHERE state = 'SENDING'"
        )
        worker = _start_worker(env, log)
        try:

            async def completed() -> bool:
                done = await scalar(
                    db,
                    "SELECT count(*) FROM flow_executions WHERE flow_id = %s AND status = 'COMPLETED'",
                    f.id,
                )
                sent = await scalar(db, "SELECT count(*) FROM outbound_dms WHERE state = 'SENT'")
                return done == N and sent == N

            await _wait_for(completed, 120, worker, log)
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
    per_execution = await (
        await db.execute(
            "SELECT array_agg(node_id ORDER BY step_no), array_agg(step_no ORDER BY step_no)"
            " FROM flow_execution_steps WHERE flow_id = %s GROUP BY execution_id",
            (f.id,),
        )
    ).fetchall()
    assert len(per_execution) == N
    assert {(tuple(nodes), tuple(nos)) for nodes, nos in per_execution} == {
        (("mark", "wait", "send", "done_tag", "end"), (1, 2, 3, 4, 5))
    }
    assert await scalar(db, "SELECT count(*) FROM outbound_dms WHERE flow_id = %s", f.id) == N
    assert (
        await scalar(
            db,
            "SELECT count(*) FROM contacts WHERE merchant_id = %s AND tags @> '{entered,sent}'",
            merchant,
        )
        == N
    )
