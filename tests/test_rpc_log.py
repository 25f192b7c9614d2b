"""The per-RPC log line on the fast path (core.logs.rpc_line through a LineWriter):
its fields, and the code a call abandoned at its deadline or cancelled is logged with.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from helpers import expect_error

from mktx.v1 import templates_pb2, templates_pb2_grpc
from mktx_grpc.core import logs

T = templates_pb2


class Sink(io.RawIOBase):
    """A binary stream that remembers what the writer thread wrote to it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0
        self.threads: set[str] = set()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += bytes(b)
        self.writes += 1
        self.threads.add(threading.current_thread().name)
        return len(b)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.data.decode().splitlines()]


@pytest.fixture
def sink() -> Iterator[Sink]:
    out = Sink()
    writer = logs.LineWriter(out, interval=0.01)  # type: ignore[arg-type]
    previous = logs.set_writer(writer)
    logger = logging.getLogger(logs.RPC_LOGGER)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.setLevel(level)
        logs.set_writer(previous)
        writer.close()


def rpc_lines(sink: Sink) -> list[dict[str, Any]]:
    logs.flush()
    return [line for line in sink.lines() if line["logger"] == logs.RPC_LOGGER]


async def wait_for_lines(sink: Sink, count: int) -> list[dict[str, Any]]:
    """The server writes a call's line after the client has its status (an aborted
    call's status is sent before the abort unwinds the interceptors): wait, bounded,
    until ``count`` lines are there."""
    for _ in range(200):
        lines = rpc_lines(sink)
        if len(lines) >= count:
            return lines
        await asyncio.sleep(0.025)
    return rpc_lines(sink)


@pytest.fixture
def templates(api):
    return templates_pb2_grpc.TemplatesServiceStub(api.channel)


async def test_the_line_keeps_its_fields(api, templates, merchant, sink):
    md = [*api.auth(merchant), ("x-request-id", "req-fast-1")]
    await expect_error(
        templates.GetTemplate(T.GetTemplateRequest(id=str(uuid.uuid4())), metadata=md),
        grpc.StatusCode.NOT_FOUND,
    )
    created = await templates.CreateTemplate(
        T.CreateTemplateRequest(
            template=T.Template(name="t", type=T.TEMPLATE_TYPE_TEXT, content="hi")
        ),
        metadata=api.auth(merchant),
    )
    assert created.id
    await expect_error(
        templates.GetTemplate(T.GetTemplateRequest(id="x")), grpc.StatusCode.UNAUTHENTICATED
    )
    lines = await wait_for_lines(sink, 3)
    assert [(line["rpc_method"].rsplit("/", 1)[1], line["code"]) for line in lines] == [
        ("GetTemplate", "NOT_FOUND"),
        ("CreateTemplate", "OK"),
        ("GetTemplate", "UNAUTHENTICATED"),
    ]
    first = lines[0]
    assert set(first) == {
        "time",
        "level",
        "logger",
        "message",
        "rpc_method",
        "code",
        "duration_ms",
        "merchant_id",
        "request_id",
    }
    assert (first["level"], first["message"], first["request_id"]) == ("INFO", "rpc", "req-fast-1")
    assert first["merchant_id"] == str(merchant) and lines[2]["merchant_id"] == ""
    assert first["duration_ms"] >= 0 and first["time"].endswith("+00:00")
    assert len(lines[1]["request_id"]) == 32  # generated when the caller sent none


async def test_not_written_below_info(api, templates, merchant, sink):
    logging.getLogger(logs.RPC_LOGGER).setLevel(logging.WARNING)
    await expect_error(
        templates.GetTemplate(
            T.GetTemplateRequest(id=str(uuid.uuid4())), metadata=api.auth(merchant)
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    # Back at INFO, a second call is logged; it is the only line, so the first was not.
    logging.getLogger(logs.RPC_LOGGER).setLevel(logging.INFO)
    await templates.CreateTemplate(
        T.CreateTemplateRequest(
            template=T.Template(name="t", type=T.TEMPLATE_TYPE_TEXT, content="hi")
        ),
        metadata=api.auth(merchant),
    )
    lines = await wait_for_lines(sink, 1)
    assert [line["rpc_method"].rsplit("/", 1)[1] for line in lines] == ["CreateTemplate"]


async def _a_template(api, templates, merchant, db):
    """A template whose row the test then locks, so a DeleteTemplate of it waits."""
    created = await templates.CreateTemplate(
        T.CreateTemplateRequest(
            template=T.Template(name="t", type=T.TEMPLATE_TYPE_TEXT, content="x")
        ),
        metadata=api.auth(merchant),
    )
    return created.id


async def test_a_call_abandoned_at_its_deadline_is_logged_deadline_exceeded(
    api, templates, merchant, db, sink
):
    template_id = await _a_template(api, templates, merchant, db)
    async with db.transaction():
        await db.execute("SELECT 1 FROM templates WHERE id = %s FOR UPDATE", (template_id,))
        await expect_error_code(
            templates.DeleteTemplate(
                T.DeleteTemplateRequest(id=template_id), metadata=api.auth(merchant), timeout=0.3
            ),
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )
        line = await wait_for_line(sink, "DeleteTemplate")
    assert line["code"] == "DEADLINE_EXCEEDED"


async def test_a_cancelled_call_is_logged_cancelled(api, templates, merchant, db, sink):
    template_id = await _a_template(api, templates, merchant, db)
    async with db.transaction():
        await db.execute("SELECT 1 FROM templates WHERE id = %s FOR UPDATE", (template_id,))
        call = templates.DeleteTemplate(
            T.DeleteTemplateRequest(id=template_id), metadata=api.auth(merchant), timeout=30
        )
        await asyncio.sleep(0.3)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        line = await wait_for_line(sink, "DeleteTemplate")
    assert line["code"] == "CANCELLED"


async def expect_error_code(call: Any, code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code


async def wait_for_line(sink: Sink, method: str) -> dict[str, Any]:
    """The server logs once its handler has been cancelled: wait (bounded) for it."""
    for _ in range(200):
        found = [line for line in rpc_lines(sink) if line["rpc_method"].endswith("/" + method)]
        if found:
            assert len(found) == 1
            return found[0]
        await asyncio.sleep(0.025)
    raise AssertionError(f"no log line for {method}")


def test_line_writer_batches_and_survives_a_broken_stream():
    out = Sink()
    writer = logs.LineWriter(out, interval=3600)  # type: ignore[arg-type]
    try:
        for i in range(10):
            writer.write(b'{"n": %d}\n' % i)
        assert out.writes == 0  # nothing written on the caller's thread
        writer.flush()
        assert out.writes == 1 and [line["n"] for line in out.lines()] == list(range(10))
    finally:
        writer.close()

    class Broken(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            raise BrokenPipeError

    broken = logs.LineWriter(Broken(), interval=3600)  # type: ignore[arg-type]
    broken.write(b"x\n")
    broken.close()  # dropped, not raised


def test_json_formatter_uses_the_same_time_format():
    record = logging.LogRecord("x", logging.WARNING, "f", 1, "hello %s", ("you",), None)
    record.created = 1_700_000_000.25
    record.extra_field = {"a": 1}
    got = json.loads(logs.JsonFormatter().format(record))
    assert got["time"] == "2023-11-14T22:13:20.250+00:00"
    assert (got["message"], got["extra_field"], got["level"]) == ("hello you", {"a": 1}, "WARNING")
