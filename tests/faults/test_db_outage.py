"""Issue 13 §1: PostgreSQL stopped and restarted under steady load, with real processes.

A PostgreSQL of the test's own (never the shared one) serves a real ``mktx-grpc
serve`` subprocess. Calls run at a steady rate (reads and writes, each with a 1 s
deadline) while a poller watches health Check and another the sidecar's /healthz.
PostgreSQL is stopped (fast shutdown: pooled connections get AdminShutdown) and
started again. What clients must see:

- every call answers OK, UNAVAILABLE or DEADLINE_EXCEEDED: never INTERNAL or UNKNOWN
  (UNAVAILABLE carries ErrorInfo reason DATABASE_UNAVAILABLE);
- calls succeed again within 3 s of the database's return;
- health is NOT_SERVING during the outage and SERVING after; the sidecar answers 503
  during it and recovers, without a restart;
- the RPC log line of a call the client saw fail is not "OK".
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import grpc
import httpx
import pytest
from fault_helpers import ScratchPostgres, start_serve, start_worker
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from mktx.v1 import templates_pb2, templates_pb2_grpc
from mktx_grpc.x.signatures import webhook_signature

T = templates_pb2
#: Seconds between calls (25 calls/s), and each call's deadline.
CALL_INTERVAL = 0.04
CALL_DEADLINE = 2.0
#: The targets of issue 13 §1.
RECOVERY_SECONDS = 3.0
HEALTH_LAG_SECONDS = 1.5


#: The built-in X sandbox's consumer secret (``serve`` without X credentials), which
#: signs webhooks.
SANDBOX_SECRET = "sandbox-consumer-secret"


def _dm_delivery(n: int) -> dict:
    sender, recipient = "1800000000000000001", "1800000000000000002"
    event_id = str(1_900_000_000_000_000_000 + time.time_ns() // 1000 % 10**12 * 100 + n % 100)
    return {
        "for_user_id": recipient,
        "direct_message_events": [
            {
                "type": "message_create",
                "id": event_id,
                "created_timestamp": str(int(time.time() * 1000)),
                "message_create": {
                    "target": {"recipient_id": recipient},
                    "sender_id": sender,
                    "source_app_id": "29000001",
                    "message_data": {"text": f"hello {n}", "entities": {}},
                },
            }
        ],
        "users": {
            uid: {"id": uid, "id_str": uid, "name": "U", "screen_name": f"u{uid[-4:]}"}
            for uid in (sender, recipient)
        },
    }


@dataclass
class Call:
    started: float
    ended: float
    code: grpc.StatusCode
    request_id: str
    reason: str = ""


@dataclass
class Probe:
    at: float
    value: str
    ended: float = 0.0


@pytest.fixture
def scratch_pg():
    pg = ScratchPostgres()
    try:
        pg.init()
        pg.start()
        pg.create_database("mktx")
        yield pg
    finally:
        pg.destroy()


def _reason(err: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(err)
    if status is None:
        return ""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


async def _run_load(
    addr: str,
    token: str,
    webhook_port: int,
    outage: float,
    pg: ScratchPostgres,
    worker_port: int | None,
):
    calls: list[Call] = []
    health: list[Probe] = []
    sidecar: list[Probe] = []
    webhooks: list[Probe] = []
    worker: list[Probe] = []
    stop = asyncio.Event()
    md_auth = ("authorization", f"Bearer {token}")
    async with grpc.aio.insecure_channel(addr) as channel:
        templates = templates_pb2_grpc.TemplatesServiceStub(channel)
        checker = health_pb2_grpc.HealthStub(channel)

        async def one(i: int) -> None:
            rid = uuid.uuid4().hex
            md = (md_auth, ("x-request-id", rid))
            start = time.monotonic()
            code, reason = grpc.StatusCode.OK, ""
            try:
                if i % 2:
                    await templates.ListTemplates(
                        T.ListTemplatesRequest(page_size=5), metadata=md, timeout=CALL_DEADLINE
                    )
                else:
                    await templates.CreateTemplate(
                        T.CreateTemplateRequest(
                            template=T.Template(
                                name=f"t{i}", type=T.TEMPLATE_TYPE_TEXT, content="hello"
                            ),
                            request_id=str(uuid.uuid4()),
                        ),
                        metadata=md,
                        timeout=CALL_DEADLINE,
                    )
            except grpc.aio.AioRpcError as err:
                code, reason = err.code(), _reason(err)
            calls.append(Call(start, time.monotonic(), code, rid, reason))

        async def load() -> None:
            tasks: list[asyncio.Task[None]] = []
            i = 0
            next_at = time.monotonic()
            while not stop.is_set():
                tasks.append(asyncio.create_task(one(i)))
                i += 1
                next_at += CALL_INTERVAL
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await asyncio.gather(*tasks)

        async def poll_health() -> None:
            while not stop.is_set():
                at = time.monotonic()
                try:
                    res = await checker.Check(health_pb2.HealthCheckRequest(), timeout=2.0)
                    value = health_pb2.HealthCheckResponse.ServingStatus.Name(res.status)
                except grpc.aio.AioRpcError as err:
                    value = err.code().name
                health.append(Probe(at, value, time.monotonic()))
                await asyncio.sleep(0.1)

        async def post_webhooks() -> None:
            # Signed DM deliveries, each a new event: 200 once stored in the inbox,
            # 503 (X delivers again) while the database cannot take it.
            n = 0
            async with httpx.AsyncClient(timeout=10.0) as http:
                while not stop.is_set():
                    n += 1
                    body = json.dumps(_dm_delivery(n), separators=(",", ":")).encode()
                    headers = {
                        "content-type": "application/json",
                        "x-twitter-webhooks-signature": webhook_signature(SANDBOX_SECRET, body),
                    }
                    at = time.monotonic()
                    try:
                        res = await http.post(
                            f"http://127.0.0.1:{webhook_port}/webhooks/twitter",
                            content=body,
                            headers=headers,
                        )
                        value = str(res.status_code)
                    except httpx.HTTPError as exc:
                        value = type(exc).__name__
                    webhooks.append(Probe(at, value, time.monotonic()))
                    await asyncio.sleep(0.3)

        async def poll_sidecar() -> None:
            async with httpx.AsyncClient(timeout=3.0) as http:
                while not stop.is_set():
                    at = time.monotonic()
                    try:
                        res = await http.get(f"http://127.0.0.1:{webhook_port}/healthz")
                        value = str(res.status_code)
                    except httpx.HTTPError as exc:
                        value = type(exc).__name__
                    sidecar.append(Probe(at, value, time.monotonic()))
                    await asyncio.sleep(0.2)

        async def poll_worker() -> None:
            # Its own loop: probed after the sidecar's (each up to 2 s while the
            # database is down), a short outage could hold no whole worker probe.
            if worker_port is None:
                return
            async with httpx.AsyncClient(timeout=3.0) as http:
                while not stop.is_set():
                    at = time.monotonic()
                    try:
                        res = await http.get(f"http://127.0.0.1:{worker_port}/healthz")
                        value = str(res.status_code)
                    except httpx.HTTPError as exc:
                        value = type(exc).__name__
                    worker.append(Probe(at, value, time.monotonic()))
                    await asyncio.sleep(0.2)

        await asyncio.wait_for(channel.channel_ready(), 10)
        workers = [
            asyncio.create_task(load()),
            asyncio.create_task(poll_health()),
            asyncio.create_task(poll_sidecar()),
            asyncio.create_task(poll_worker()),
            asyncio.create_task(post_webhooks()),
        ]
        await asyncio.sleep(2.0)
        t_stop = time.monotonic()
        await asyncio.to_thread(pg.stop, "fast")
        t_down = time.monotonic()
        await asyncio.sleep(outage)
        t_restart = time.monotonic()
        await asyncio.to_thread(pg.start)
        t_up = time.monotonic()
        wall_up = time.time()
        await asyncio.sleep(RECOVERY_SECONDS + 3.0)
        stop.set()
        await asyncio.gather(*workers)
    return calls, health, sidecar, webhooks, worker, (t_stop, t_down, t_restart, t_up), wall_up


def _records(log_text: str) -> list[dict]:
    out = []
    for line in log_text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _logged_codes(log_text: str) -> dict[str, str]:
    return {
        r["request_id"]: r.get("code", "")
        for r in _records(log_text)
        if r.get("message") == "rpc" and "request_id" in r
    }


@pytest.mark.slow
@pytest.mark.parametrize("outage", [5.0, 0.0], ids=["5s-outage", "quick-restart"])
async def test_database_outage_is_unavailable_and_survived(scratch_pg, tmp_path, outage):
    served = start_serve(scratch_pg.url("mktx"), tmp_path)
    worker_proc = None
    try:
        # A separate `mktx-grpc worker` too (the long outage only: it costs time).
        worker_port = None
        if outage >= 3.0:
            worker_proc, worker_port, _ = start_worker(served, tmp_path)
        (
            calls,
            health,
            sidecar,
            webhooks,
            worker,
            (t_stop, t_down, t_restart, t_up),
            wall_up,
        ) = await _run_load(
            served.addr, served.token(), served.webhook_port, outage, scratch_pg, worker_port
        )
        log_text = served.log_text()
    finally:
        rc = served.terminate()
        worker_rc = None
        if worker_proc is not None:
            worker_proc.send_signal(signal.SIGTERM)
            try:
                worker_rc = worker_proc.wait(30)
            except subprocess.TimeoutExpired:
                worker_proc.kill()
    assert rc == 0, served.log_text()[-3000:]
    if worker_proc is not None:
        # The worker process lived through the outage: unhealthy during it, healthy
        # again after it without a restart, and it stops cleanly.
        assert worker_rc == 0
        assert all(p.value == "200" for p in worker if p.ended < t_stop)
        worker_down = [p for p in worker if t_down <= p.at < p.ended < t_restart]
        assert worker_down and all(p.value == "503" for p in worker_down), worker_down
        worker_late = [p.value for p in worker if p.at >= t_up + RECOVERY_SECONDS]
        assert worker_late and set(worker_late) == {"200"}, worker_late

    by_code = Counter(c.code.name for c in calls)
    print(f"outage {outage}s: {len(calls)} calls {dict(by_code)}")
    # Before the stop, everything worked.
    before = [c for c in calls if c.ended < t_stop]
    assert before and all(c.code == grpc.StatusCode.OK for c in before)
    # Never INTERNAL or UNKNOWN (or anything else): a database outage is UNAVAILABLE,
    # or the client's own deadline.
    allowed = {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
    bad = [c for c in calls if c.code not in allowed]
    assert not bad, f"{len(bad)} calls answered {Counter(c.code.name for c in bad)}"
    unavailable = [c for c in calls if c.code == grpc.StatusCode.UNAVAILABLE]
    assert {c.reason for c in unavailable} <= {"DATABASE_UNAVAILABLE"}
    if outage >= 3.0:
        assert unavailable, "no call was answered UNAVAILABLE"
    # Recovery: every call started 3 s after the database's return succeeds.
    after = [c for c in calls if c.started >= t_up + RECOVERY_SECONDS]
    assert after and all(c.code == grpc.StatusCode.OK for c in after), Counter(
        c.code.name for c in after
    )
    first_ok = min(c.ended for c in calls if c.started >= t_up and c.code.name == "OK")
    print(f"first OK {first_ok - t_up:.2f}s after the database returned")
    # Health follows: SERVING after the return (within the lag), and when the outage
    # is long enough to notice, NOT_SERVING during it.
    early = [p for p in health if p.at < t_stop]
    assert all(p.value == "SERVING" for p in early), early
    assert all(p.value == "SERVING" for p in health if p.at >= t_up + HEALTH_LAG_SECONDS)
    assert all(p.value == "200" for p in sidecar if p.at >= t_up + RECOVERY_SECONDS)
    # Webhook deliveries: stored before, 503 or stored during (never a 500), stored
    # again after the return.
    assert all(p.value == "200" for p in webhooks if p.ended < t_stop)
    assert {p.value for p in webhooks} <= {"200", "503"}, [p.value for p in webhooks]
    late = [p.value for p in webhooks if p.at >= t_up + RECOVERY_SECONDS]
    assert late and set(late) == {"200"}, late
    if outage >= 3.0:
        during = [p for p in health if t_down + HEALTH_LAG_SECONDS <= p.at < p.ended < t_restart]
        assert during and all(p.value == "NOT_SERVING" for p in during), during
        down = [c for c in calls if c.started >= t_down and c.ended < t_restart]
        assert down and all(c.code != grpc.StatusCode.OK for c in down)
        hooks_down = [p for p in webhooks if t_down <= p.at < p.ended < t_restart]
        assert hooks_down and all(p.value == "503" for p in hooks_down), hooks_down
        side_down = [
            p for p in sidecar if t_down + HEALTH_LAG_SECONDS <= p.at < p.ended < t_restart
        ]
        assert side_down and all(p.value == "503" for p in side_down), side_down
    # The log line of each call records what its client got: none failed and "OK".
    logged = _logged_codes(log_text)
    lied = [
        (c.code.name, logged[c.request_id])
        for c in calls
        if c.code != grpc.StatusCode.OK and logged.get(c.request_id) == "OK"
    ]
    assert not lied, f"{len(lied)} failed calls logged OK: {lied[:5]}"
    assert "unhandled error" not in log_text
    # The worker loops and the live listener (in-process) resumed by themselves: none
    # of them still fails once the database is back.
    late = [
        r["message"]
        for r in _records(log_text)
        if r.get("message", "").startswith(("background loop", "live listener"))
        and datetime.fromisoformat(r["time"]).timestamp() > wall_up + RECOVERY_SECONDS
    ]
    assert not late, late
