"""The model client's HTTP transports (``ai.client.model_transport``: the default
aiohttp backend and httpx2's own) against a small real HTTP server on a local
socket, whose misbehaviour each test chooses: keep-alive reuse, a server that
dropped a kept-alive connection, chunked and close-delimited bodies,
``connection: close``, timeouts and refused connections as httpx2's errors (which
the openai client retries and maps to its own). The openai client over them is
covered by every other test in tests/ai (the stand-in over HTTP)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx2
import pytest

from mktx_grpc.ai.client import model_transport


@dataclass
class Server:
    """Answers ``POST`` with the request body echoed; ``mode`` bends the rules."""

    mode: str = "ok"
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.requests.append(body)
                served += 1
                if self.mode == "drop_second" and served == 2:
                    return  # a kept-alive connection the server let go of
                if self.mode == "drop_all":
                    return
                if self.mode == "hang":
                    await asyncio.sleep(10)
                    return
                if self.mode == "chunked":
                    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                    for part in (b"data: one\n\n", b"data: two\n\n"):
                        writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                        await writer.drain()
                        await asyncio.sleep(0.01)
                    writer.write(b"0\r\n\r\n")
                elif self.mode == "until_close":
                    writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + body)
                    await writer.drain()
                    return
                elif self.mode == "close_header":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
                        % (len(body), body)
                    )
                    await writer.drain()
                    return
                else:
                    writer.write(
                        b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
                        b"content-length: %d\r\n\r\n%s" % (len(body), body)
                    )
                await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    s = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.port = s.sockets[0].getsockname()[1]
    try:
        yield srv
    finally:
        s.close()


@pytest.fixture(params=["aiohttp", "default"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def http(server: Server, kind: str) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}", transport=model_transport(kind), timeout=2.0
    ) as client:
        yield client


async def test_keep_alive_reuses_one_connection(server: Server, http: httpx2.AsyncClient):
    for i in range(5):
        r = await http.post("/v1/chat/completions", json={"n": i})
        assert r.status_code == 201 and r.json() == {"n": i}
        assert r.headers["content-type"] == "application/json"
    assert server.connections == 1
    # Callers at once get connections of their own, kept for the next round.
    rs = await asyncio.gather(*(http.post("/x", content=b"%d" % i) for i in range(4)))
    assert sorted(r.content for r in rs) == [b"0", b"1", b"2", b"3"]
    assert server.connections == 4


async def test_a_dropped_kept_alive_connection_is_a_transport_error_then_replaced(
    server: Server, http: httpx2.AsyncClient
):
    server.mode = "drop_second"
    assert (await http.post("/x", content=b"a")).content == b"a"
    # The reused connection ends with no byte of an answer. A POST is not sent again
    # by the transport: the error is an httpx2 transport error, which the openai
    # client retries (APIConnectionError / APITimeoutError, max_retries).
    with pytest.raises(httpx2.TransportError):
        await http.post("/x", content=b"b")
    # The dead connection is not reused: the next call gets a new one.
    server.mode = "ok"
    assert (await http.post("/x", content=b"c")).content == b"c"
    assert server.requests == [b"a", b"b", b"c"] and server.connections == 2


async def test_a_new_connection_that_fails_is_not_retried(server: Server, http: httpx2.AsyncClient):
    server.mode = "drop_all"
    with pytest.raises(httpx2.TransportError):
        await http.post("/x", content=b"a")
    assert server.requests == [b"a"] and server.connections == 1


async def test_a_chunked_body_streams_as_it_arrives(server: Server, http: httpx2.AsyncClient):
    server.mode = "chunked"
    async with http.stream("POST", "/x", content=b"s") as r:
        parts = [p async for p in r.aiter_raw()]
    assert parts == [b"data: one\n\n", b"data: two\n\n"]
    # Read to the end: the connection is kept for the next request.
    server.mode = "ok"
    assert (await http.post("/x", content=b"t")).content == b"t"
    assert server.connections == 1


async def test_a_stream_let_go_early_closes_its_connection(
    server: Server, http: httpx2.AsyncClient
):
    server.mode = "chunked"
    async with http.stream("POST", "/x", content=b"s") as r:
        async for _ in r.aiter_raw():
            break
    server.mode = "ok"
    assert (await http.post("/x", content=b"t")).content == b"t"
    assert server.connections == 2


@pytest.mark.parametrize("mode", ["until_close", "close_header"])
async def test_connection_close_bodies_and_no_reuse(
    server: Server, http: httpx2.AsyncClient, mode: str
):
    server.mode = mode
    assert (await http.post("/x", content=b"body-1")).content == b"body-1"
    assert (await http.post("/x", content=b"body-2")).content == b"body-2"
    assert server.connections == 2 and server.requests == [b"body-1", b"body-2"]


async def test_a_silent_server_is_a_read_timeout(server: Server, kind: str):
    server.mode = "hang"
    async with httpx2.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}",
        transport=model_transport(kind),
        timeout=httpx2.Timeout(5.0, read=0.2),
    ) as http:
        with pytest.raises(httpx2.ReadTimeout):
            await http.post("/x", content=b"a")


async def test_a_refused_connection_is_a_connect_error(kind: str):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with httpx2.AsyncClient(transport=model_transport(kind), timeout=2.0) as http:
        # httpx2's ConnectError; httpx-aiohttp's mapping names it ConnectTimeout. Both
        # are transport errors the openai client retries and the breaker counts.
        with pytest.raises((httpx2.ConnectError, httpx2.ConnectTimeout)):
            await http.post(f"http://127.0.0.1:{port}/x", content=b"a")
