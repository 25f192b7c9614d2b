"""Issue 13 §2: a drain that balancers see, with a real ``mktx-grpc serve`` subprocess.

On SIGTERM health answers NOT_SERVING at once while the listener stays open for the
drain delay (calls are still served), then new calls are refused, open streams
(health Watch, WatchConversations) end with UNAVAILABLE, and the process exits 0 as
soon as nothing is in flight, well within the grace period.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time

import grpc
import psycopg
import pytest
from fault_helpers import start_serve
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mktx.v1 import conversations_pb2, conversations_pb2_grpc, templates_pb2, templates_pb2_grpc

GRACE = 20.0
DRAIN = 1.5


async def _wait_exit(proc, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return proc.poll()


@pytest.mark.slow
async def test_check_poller_sees_not_serving_before_the_port_closes(database_url, tmp_path):
    served = start_serve(
        database_url, tmp_path, MKTX_DRAIN_DELAY=str(DRAIN), MKTX_SHUTDOWN_GRACE=str(GRACE)
    )
    seen: list[tuple[float, str]] = []
    during_drain: list[str] = []
    try:
        async with grpc.aio.insecure_channel(served.addr) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            templates = templates_pb2_grpc.TemplatesServiceStub(channel)
            md = (("authorization", f"Bearer {served.token()}"),)
            first = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            t_term = time.monotonic()
            served.proc.send_signal(signal.SIGTERM)
            while True:
                at = time.monotonic()
                try:
                    res = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    value = health_pb2.HealthCheckResponse.ServingStatus.Name(res.status)
                except grpc.aio.AioRpcError as err:
                    value = err.code().name
                seen.append((at - t_term, value))
                if value == "NOT_SERVING" and not during_drain:
                    # Draining, not gone: ordinary calls are still served.
                    try:
                        await templates.ListTemplates(
                            templates_pb2.ListTemplatesRequest(), metadata=md, timeout=2
                        )
                        during_drain.append("OK")
                    except grpc.aio.AioRpcError as err:
                        during_drain.append(err.code().name)
                if value not in ("SERVING", "NOT_SERVING") or at - t_term > GRACE:
                    break
                await asyncio.sleep(0.05)
            # Once the listener has closed, new calls are refused.
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        rc = await _wait_exit(served.proc, GRACE)
    finally:
        served.terminate(5)
    values = [v for _, v in seen]
    print(f"Check after SIGTERM: {seen[:3]} ... {seen[-3:]}")
    assert "NOT_SERVING" in values, values
    first_not_serving = values.index("NOT_SERVING")
    # NOT_SERVING at once (no SERVING after it), for about the drain delay, then gone.
    assert all(v == "SERVING" for v in values[:first_not_serving])
    last_answer = max(i for i, v in enumerate(values) if v == "NOT_SERVING")
    assert all(v == "NOT_SERVING" for v in values[first_not_serving : last_answer + 1])
    # Then the port is gone: UNAVAILABLE, or CANCELLED for a Check that was on the
    # wire (not yet a call the server had accepted) as the listener closed.
    assert values[-1] in ("UNAVAILABLE", "CANCELLED"), values[-5:]
    assert seen[last_answer][0] - seen[first_not_serving][0] >= DRAIN / 2
    assert during_drain == ["OK"]
    assert rc == 0, served.log_text()[-3000:]


@pytest.mark.slow
async def test_open_streams_end_with_unavailable_and_the_process_exits_promptly(
    database_url, tmp_path
):
    served = start_serve(
        database_url, tmp_path, MKTX_DRAIN_DELAY="0.5", MKTX_SHUTDOWN_GRACE=str(GRACE)
    )
    try:
        async with grpc.aio.insecure_channel(served.addr) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            convs = conversations_pb2_grpc.ConversationsServiceStub(channel)
            md = (("authorization", f"Bearer {served.token()}"),)

            async def watch_health() -> tuple[list[str], str]:
                statuses: list[str] = []
                call = health.Watch(health_pb2.HealthCheckRequest())
                try:
                    async for res in call:
                        statuses.append(
                            health_pb2.HealthCheckResponse.ServingStatus.Name(res.status)
                        )
                except grpc.aio.AioRpcError as err:
                    return statuses, err.code().name
                return statuses, "OK"

            async def watch_conversations() -> str:
                call = convs.WatchConversations(
                    conversations_pb2.WatchConversationsRequest(), metadata=md
                )
                try:
                    async for _ in call:
                        pass
                except grpc.aio.AioRpcError as err:
                    return err.code().name
                return "OK"

            health_watches = [asyncio.create_task(watch_health()) for _ in range(3)]
            conv_watches = [asyncio.create_task(watch_conversations()) for _ in range(2)]
            await asyncio.sleep(1.5)  # every stream is open (and has had its first answer)
            assert not any(t.done() for t in [*health_watches, *conv_watches])
            t_term = time.monotonic()
            served.proc.send_signal(signal.SIGTERM)
            health_results = await asyncio.wait_for(asyncio.gather(*health_watches), GRACE)
            conv_results = await asyncio.wait_for(asyncio.gather(*conv_watches), GRACE)
            ended = time.monotonic() - t_term
        rc = await _wait_exit(served.proc, GRACE)
        exited = time.monotonic() - t_term
    finally:
        served.terminate(5)
    print(f"streams ended {ended:.2f}s after SIGTERM; process exited after {exited:.2f}s")
    for statuses, code in health_results:
        # The watcher learns NOT_SERVING first, then the stream ends: reconnect elsewhere.
        assert statuses[0] == "SERVING" and statuses[-1] == "NOT_SERVING", statuses
        assert code == "UNAVAILABLE"
    assert conv_results == ["UNAVAILABLE", "UNAVAILABLE"]
    assert rc == 0, served.log_text()[-3000:]
    # Streams no longer hold the process for the grace period.
    assert exited < GRACE / 2
    log_text = served.log_text()
    assert "unhandled error" not in log_text
    # The log line of each ended stream records what its client got.
    lines = [json.loads(ln) for ln in log_text.splitlines() if ln.startswith("{")]
    streams = [
        r["code"]
        for r in lines
        if r.get("message") == "rpc"
        and r.get("rpc_method")
        in ("/grpc.health.v1.Health/Watch", "/mktx.v1.ConversationsService/WatchConversations")
    ]
    assert streams == ["UNAVAILABLE"] * 5, streams


@pytest.mark.slow
async def test_an_in_flight_unary_call_finishes_within_the_grace(database_url, tmp_path):
    """A unary call still running when the listener closes is not cut off: the
    process waits for it (within the grace), the client gets its answer, and the
    process exits 0 right after. The call is held on a table lock taken by the test,
    so it is provably in flight across the whole drain."""
    served = start_serve(
        database_url, tmp_path, MKTX_DRAIN_DELAY="0.5", MKTX_SHUTDOWN_GRACE=str(GRACE)
    )
    locker = await psycopg.AsyncConnection.connect(database_url)
    try:
        async with grpc.aio.insecure_channel(served.addr) as channel:
            templates = templates_pb2_grpc.TemplatesServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            md = (("authorization", f"Bearer {served.token()}"),)
            await templates.ListTemplates(templates_pb2.ListTemplatesRequest(), metadata=md)
            await locker.execute("LOCK TABLE templates IN ACCESS EXCLUSIVE MODE")

            async def held_call() -> templates_pb2.ListTemplatesResponse:
                return await templates.ListTemplates(
                    templates_pb2.ListTemplatesRequest(), metadata=md, timeout=GRACE
                )

            held = asyncio.create_task(held_call())
            deadline = time.monotonic() + 10
            async with await psycopg.AsyncConnection.connect(
                database_url, autocommit=True
            ) as probe:
                while True:
                    cur = await probe.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock'"
                    )
                    row = await cur.fetchone()
                    if row and row[0]:
                        break
                    assert time.monotonic() < deadline, "the call never waited on the lock"
                    await asyncio.sleep(0.02)
            served.proc.send_signal(signal.SIGTERM)
            # Past the drain delay the listener is closed: new calls are refused ...
            refused = None
            deadline = time.monotonic() + 10
            while refused is None and time.monotonic() < deadline:
                try:
                    await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    await asyncio.sleep(0.05)
                except grpc.aio.AioRpcError as err:
                    refused = err.code()
            assert refused in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
            # ... while the held call is still in flight and the process waits for it.
            await asyncio.sleep(1.0)
            assert not held.done()
            assert served.proc.poll() is None, "the process exited under an in-flight call"
            await locker.commit()  # release the lock: the call completes
            answer = await asyncio.wait_for(held, GRACE)
            assert isinstance(answer, templates_pb2.ListTemplatesResponse)
        rc = await _wait_exit(served.proc, GRACE)
    finally:
        await locker.close()
        served.terminate(5)
    assert rc == 0, served.log_text()[-3000:]
    log_text = served.log_text()
    assert "unhandled error" not in log_text
    lines = [json.loads(ln) for ln in log_text.splitlines() if ln.startswith("{")]
    codes = [
        r["code"]
        for r in lines
        if r.get("message") == "rpc"
        and r.get("rpc_method") == "/mktx.v1.TemplatesService/ListTemplates"
    ]
    assert codes == ["OK", "OK"], codes
