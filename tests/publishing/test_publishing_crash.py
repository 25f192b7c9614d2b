"""``mktx-grpc worker`` as a real subprocess, killed with SIGKILL between X accepting a
post and the worker recording it, then restarted: exactly one post at X, the thread
goes on from it, and a post scheduled meanwhile goes out once its time has passed."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from publishing_helpers import P, connect_account, scalar, stub, text_post, ts, worker_env, x_posts

from mktx_grpc.sandbox.faults import FaultRule


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("mktx-grpc")
    return subprocess.Popen(
        [str(exe), "worker"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


async def _wait_for(
    predicate, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if proc.poll() is not None:
            raise AssertionError(f"worker exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; worker log:\n{log.read_text()[-3000:]}")
        await asyncio.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def _scheduled(api, merchant, account_id, *texts, at: datetime) -> str:
    post = await stub(api).CreatePost(
        P.CreatePostRequest(post=text_post(account_id, *texts, publish_time=ts(at))),
        metadata=api.auth(merchant),
    )
    return post.id


async def test_kill_9_between_the_post_and_its_confirmation_then_restart(
    api, merchant, sandbox, db, settings, tmp_path
):
    """One worker is killed with SIGKILL while X holds the answer to a part it stored;
    meanwhile another post is scheduled for later. Both go out exactly once from the
    restarted worker: the killed part is found at X (not resent) and its thread goes on,
    and the scheduled post, whose time passed while no worker ran, is published (late,
    within the grace)."""
    acct, owner = await connect_account(api, merchant, sandbox)
    later = datetime.now(UTC) + timedelta(hours=1)
    crashed = await _scheduled(api, merchant, acct.id, "crash 1/2", "crash 2/2", at=later)
    scheduled = await _scheduled(api, merchant, acct.id, "after the restart", at=later)
    await db.execute("UPDATE posts SET due_at = now(), ready_at = now() WHERE id = %s", (crashed,))
    # X stores part 1, then its answer hangs: the worker is killed while waiting for it.
    sandbox.state.add_fault_rule(
        FaultRule(id="crash-stall", kind="accept_then_stall", route="POST /2/tweets", seconds=60)
    )
    env, log = worker_env(settings, sandbox, tmp_path), tmp_path / "worker.log"
    worker = _start(env, log)
    try:

        async def accepted_at_x() -> bool:
            return len(x_posts(sandbox, owner.id)) == 1

        await _wait_for(accepted_at_x, worker, log)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        sandbox.state.clear_faults()
    part = await (
        await db.execute(
            "SELECT state, x_post_id, attempts FROM post_parts WHERE post_id = %s AND idx = 0",
            (crashed,),
        )
    ).fetchone()
    assert part == ("PUBLISHING", None, 1)  # armed; its outcome died with the worker
    assert await scalar(db, "SELECT status FROM posts WHERE id = %s", crashed) == "PUBLISHING"
    assert await scalar(db, "SELECT status FROM posts WHERE id = %s", scheduled) == "SCHEDULED"
    # While no worker runs: the dead worker's lease runs out (as it would after
    # lease_seconds), and the scheduled post's time passes (20 minutes ago).
    await db.execute(
        "UPDATE posts SET lease_until = now() - interval '1 second' WHERE id = %s", (crashed,)
    )
    await db.execute(
        "UPDATE posts SET publish_at = now() - interval '20 minutes',"
        " due_at = now() - interval '20 minutes', ready_at = now() - interval '20 minutes'"
        " WHERE id = %s",
        (scheduled,),
    )
    worker = _start(env, log)
    try:

        async def published() -> bool:
            return (
                await scalar(
                    db,
                    "SELECT count(*) FROM posts WHERE id = ANY(%s::uuid[]) AND status = 'PUBLISHED'",
                    [crashed, scheduled],
                )
                == 2
            )

        await _wait_for(published, worker, log)
    finally:
        _stop(worker)
    assert worker.returncode == 0
    at_x = {p.text: p for p in x_posts(sandbox, owner.id)}
    assert len(x_posts(sandbox, owner.id)) == 3  # exactly one of each
    assert set(at_x) == {"crash 1/2", "crash 2/2", "after the restart"}
    assert at_x["crash 2/2"].reply_to == at_x["crash 1/2"].id
    got = await stub(api).GetPost(P.GetPostRequest(id=crashed), metadata=api.auth(merchant))
    assert [p.x_post_id for p in got.parts] == [at_x["crash 1/2"].id, at_x["crash 2/2"].id]
    assert [p.attempt_count for p in got.parts] == [1, 1]  # part 1 was found, not resent
