"""Coalesced point reads (store/coalesce.py): through the API, and the batch mechanics
(leader hand-off, failures, cancellation) with a controllable fetch."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import grpc
import psycopg
import pytest
from helpers import expect_error

from mktx.v1 import templates_pb2, templates_pb2_grpc
from mktx_grpc.core.context import connection_var
from mktx_grpc.store import templates as templates_store
from mktx_grpc.store.coalesce import PointReads

T = templates_pb2


@pytest.fixture
def settings(settings):
    """Coalescing is opt-in (MKTX_COALESCE_READS); these tests turn it on."""
    return settings.replace(coalesce_reads=True)


async def test_concurrent_get_template_reads_are_batched_and_correct(
    api, merchant, other_merchant, database_url
):
    stub = templates_pb2_grpc.TemplatesServiceStub(api.channel)

    async def create(owner: uuid.UUID, name: str) -> str:
        made = await stub.CreateTemplate(
            T.CreateTemplateRequest(
                template=T.Template(name=name, type=T.TEMPLATE_TYPE_TEXT, content=f"hi {name}")
            ),
            metadata=api.auth(owner),
        )
        return str(made.id)

    mine = [await create(merchant, f"t{i}") for i in range(5)]
    theirs = await create(other_merchant, "theirs")
    missing = str(uuid.uuid4())
    before = (templates_store.point_reads.batches, templates_store.point_reads.reads)
    asks = [*mine * 8, theirs, missing, theirs, missing]
    # Hold the first batch's query on a table lock until later reads have queued behind
    # it, so that sharing does not depend on how the box schedules the calls.
    async with await psycopg.AsyncConnection.connect(database_url) as locker:
        await locker.execute("LOCK TABLE templates IN ACCESS EXCLUSIVE MODE")  # until rollback
        calls = asyncio.gather(
            *(
                stub.GetTemplate(T.GetTemplateRequest(id=i), metadata=api.auth(merchant))
                for i in asks
            ),
            return_exceptions=True,
        )
        loop = asyncio.get_running_loop()
        give_up = loop.time() + 30
        while len(templates_store.point_reads._queued.get(merchant, [])) < 2:
            assert loop.time() < give_up, "no read queued behind the first batch"
            await asyncio.sleep(0.01)
        await locker.rollback()
        results = await calls
    for asked, got in zip(asks, results, strict=True):
        if asked in mine:
            assert isinstance(got, T.Template) and got.id == asked
            assert got.content == f"hi {got.name}"
        else:
            assert isinstance(got, grpc.aio.AioRpcError)
            assert got.code() == grpc.StatusCode.NOT_FOUND
    batches = templates_store.point_reads.batches - before[0]
    reads = templates_store.point_reads.reads - before[1]
    assert reads == len(asks)
    assert batches < reads  # some calls shared a query
    # The owner still reads its own.
    own = await stub.GetTemplate(T.GetTemplateRequest(id=theirs), metadata=api.auth(other_merchant))
    assert own.name == "theirs"


async def test_a_read_sees_a_write_committed_before_it(api, merchant):
    stub = templates_pb2_grpc.TemplatesServiceStub(api.channel)
    md = api.auth(merchant)
    made = await stub.CreateTemplate(
        T.CreateTemplateRequest(
            template=T.Template(name="a", type=T.TEMPLATE_TYPE_TEXT, content="1")
        ),
        metadata=md,
    )
    await stub.DeleteTemplate(T.DeleteTemplateRequest(id=made.id), metadata=md)
    await expect_error(
        stub.GetTemplate(T.GetTemplateRequest(id=made.id), metadata=md), grpc.StatusCode.NOT_FOUND
    )


class Gate:
    """A fetch that waits for the test to release each batch, recording the batches."""

    def __init__(self) -> None:
        self.batches: list[list[uuid.UUID]] = []
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def fetch(self, merchant: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
        self.batches.append(sorted(ids))
        await self.release.wait()
        self.release.clear()
        if self.fail is not None:
            raise self.fail
        return [{"id": i, "merchant": merchant} for i in ids]

    async def single(self, merchant: uuid.UUID, row_id: uuid.UUID) -> dict[str, Any]:
        return {"id": row_id, "single": True}


@pytest.fixture
async def autocommit(database_url):
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    token = connection_var.set(conn)
    try:
        yield conn
    finally:
        connection_var.reset(token)
        await conn.close()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_batches_form_while_a_query_is_in_flight(autocommit):
    gate = Gate()
    reads = PointReads(gate.fetch, gate.single)
    m = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(4)]
    first = asyncio.ensure_future(reads.get(m, ids[0]))
    await settle()
    rest = [asyncio.ensure_future(reads.get(m, i)) for i in ids[1:]]
    await settle()
    assert gate.batches == [[ids[0]]]  # the first ran alone, at once
    gate.release.set()
    assert (await first)["id"] == ids[0]
    await settle()
    assert gate.batches[1] == sorted(ids[1:])  # the others, as one batch
    gate.release.set()
    assert [(await r)["id"] for r in rest] == ids[1:]
    # Another merchant is batched on its own.
    other = asyncio.ensure_future(reads.get(uuid.uuid4(), ids[0]))
    await settle()
    assert len(gate.batches) == 3
    gate.release.set()
    await other


async def test_a_failed_batch_fails_its_reads_and_the_next_batch_runs(autocommit):
    gate = Gate()
    reads = PointReads(gate.fetch, gate.single)
    m = uuid.uuid4()
    first = asyncio.ensure_future(reads.get(m, uuid.uuid4()))
    await settle()
    queued = [asyncio.ensure_future(reads.get(m, uuid.uuid4())) for _ in range(3)]
    await settle()
    gate.fail = RuntimeError("database went away")
    gate.release.set()
    with pytest.raises(RuntimeError):
        await first
    await settle()
    gate.release.set()  # the queued batch ran and fails too
    for q in queued:
        with pytest.raises(RuntimeError):
            await q
    gate.fail = None
    later = asyncio.ensure_future(reads.get(m, uuid.uuid4()))
    await settle()
    gate.release.set()
    assert (await later)["id"]


async def test_a_cancelled_leader_does_not_strand_the_others(autocommit):
    gate = Gate()
    reads = PointReads(gate.fetch, gate.single)
    m = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(3)]
    leader = asyncio.ensure_future(reads.get(m, ids[0]))
    await settle()
    queued = [asyncio.ensure_future(reads.get(m, i)) for i in ids[1:]]
    await settle()
    leader.cancel()
    await settle()
    # A queued read took the lead with the rest of the batch.
    assert gate.batches[-1] == sorted(ids[1:])
    gate.release.set()
    assert [(await q)["id"] for q in queued] == ids[1:]
    # A queued read cancelled before its batch is dropped from it.
    first = asyncio.ensure_future(reads.get(m, ids[0]))
    await settle()
    gone = asyncio.ensure_future(reads.get(m, ids[1]))
    stays = asyncio.ensure_future(reads.get(m, ids[2]))
    await settle()
    gone.cancel()
    gate.release.set()
    await first
    await settle()
    assert gate.batches[-1] == [ids[2]]
    gate.release.set()
    assert (await stays)["id"] == ids[2]


async def test_inside_a_transaction_a_read_runs_alone(autocommit):
    gate = Gate()
    reads = PointReads(gate.fetch, gate.single)
    async with autocommit.transaction():
        got = await reads.get(uuid.uuid4(), uuid.uuid4())
    assert got["single"] and gate.batches == []
