"""A lean HTTP/1.1 transport for the model client: keep-alive connections on asyncio
streams, under the openai package's HTTP client (httpx2).

The default transport (httpcore2 over anyio, with h11) was the largest share of
the service's CPU per message with 100 model calls in flight (bench/results/ai.md):
cancel scopes, per-event h11 validation, a pool that walks and probes every
connection on each request start and end. A model call needs none of that: one
request, one response, on a connection reused for the next call. This transport
does just that, and raises httpx2's own errors, so the openai client's retries,
timeouts and error types (``APITimeoutError``, ``APIConnectionError``) stay as
they are.

What it does:

- One idle list per origin (scheme, host, port), last in first out; a connection
  goes back to it when its response has been read to the end, unless either side
  said ``connection: close``. At most ``max_idle`` idle connections per origin;
  there is no cap on connections in use (the callers' concurrency is the cap).
- A response with a ``content-length`` is read whole before it is returned (the
  model's answers are small; the connection is free at once); a chunked or
  close-delimited one (the server-sent events of a streamed answer) is returned as
  a stream read as it arrives, its connection reused once read to the end and
  closed when the reader lets go early.
- A reused connection that the server had closed (its keep-alive timeout raced the
  request: no byte of a response came back) is replaced by a new one and the
  request sent again, once; a failure on a new connection is the caller's.
- httpx2's timeouts from the request: ``connect`` (with TLS), ``write``, and
  ``read`` for each wait for bytes. ``ConnectTimeout``/``WriteTimeout``/
  ``ReadTimeout`` and ``ConnectError``/``WriteError``/``ReadError``/
  ``RemoteProtocolError`` as httpx2 raises them.
- ``https`` with a default TLS context (httpx2's ``create_ssl_context``). No
  proxies and no HTTP/2: a provider behind a proxy needs the default transport
  (``MKTX_AI_HTTP=default``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx2

#: Longest response head (status line and headers) read.
MAX_HEAD = 64 * 1024
#: Bodies at most this long (by content-length) are read whole before returning.
EAGER_BODY = 4 * 1024 * 1024
_CHUNK = 64 * 1024

Origin = tuple[str, str, int]


class _Conn:
    __slots__ = ("origin", "reader", "writer")

    def __init__(
        self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        """Whether an idle connection can carry a request: not closed by either side
        and with nothing unread (a server says nothing on an idle connection)."""
        unread = getattr(self.reader, "_buffer", b"")
        return not (self.writer.is_closing() or self.reader.at_eof() or unread)

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()


class _Stale(Exception):
    """A reused connection ended before any byte of a response: send again."""


def _timeouts(request: httpx2.Request) -> tuple[float | None, float | None, float | None]:
    t: dict[str, float | None] = request.extensions.get("timeout") or {}
    return t.get("connect"), t.get("write"), t.get("read")


class LeanTransport(httpx2.AsyncBaseTransport):
    """See the module docstring. ``max_idle``: idle connections kept per origin."""

    def __init__(self, *, max_idle: int = 128, ssl_context: ssl.SSLContext | None = None) -> None:
        self._idle: dict[Origin, list[_Conn]] = {}
        self._max_idle = max_idle
        self._ssl = ssl_context
        self._closed = False

    # -- connections ------------------------------------------------------------

    def _take(self, origin: Origin) -> _Conn | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.usable():
                return conn
            conn.close()
        return None

    def give_back(self, conn: _Conn) -> None:
        idle = self._idle.setdefault(conn.origin, [])
        if self._closed or len(idle) >= self._max_idle or not conn.usable():
            conn.close()
        else:
            idle.append(conn)

    async def _connect(
        self, origin: Origin, connect_s: float | None, request: httpx2.Request
    ) -> _Conn:
        scheme, host, port = origin
        ctx: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = httpx2.create_ssl_context()
            ctx = self._ssl
        try:
            async with asyncio.timeout(connect_s):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=ctx, server_hostname=host if ctx else None, limit=MAX_HEAD
                )
        except TimeoutError:
            raise httpx2.ConnectTimeout("connecting timed out", request=request) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx2.ConnectError(str(exc) or type(exc).__name__, request=request) from None
        return _Conn(origin, reader, writer)

    # -- one exchange -----------------------------------------------------------

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._closed:
            raise httpx2.ConnectError("the transport is closed", request=request)
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx2.UnsupportedProtocol(f"unsupported scheme {scheme!r}", request=request)
        origin: Origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        connect_t, write_t, read_t = _timeouts(request)
        body = await request.aread()
        target = url.raw_path
        lines = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            lines += [name, b": ", value, b"\r\n"]
        lines.append(b"\r\n")
        payload = b"".join(lines) + body
        conn = self._take(origin)
        if conn is not None:
            try:
                return await self._exchange(conn, payload, request, write_t, read_t, reused=True)
            except _Stale:
                pass
        conn = await self._connect(origin, connect_t, request)
        return await self._exchange(conn, payload, request, write_t, read_t, reused=False)

    async def _exchange(
        self,
        conn: _Conn,
        payload: bytes,
        request: httpx2.Request,
        write_t: float | None,
        read_t: float | None,
        *,
        reused: bool,
    ) -> httpx2.Response:
        reader, writer = conn.reader, conn.writer
        try:
            writer.write(payload)
            if writer.transport.get_write_buffer_size():
                async with asyncio.timeout(write_t):
                    await writer.drain()
        except TimeoutError:
            conn.close()
            raise httpx2.WriteTimeout("writing the request timed out", request=request) from None
        except OSError as exc:
            conn.close()
            if reused:
                raise _Stale from None
            raise httpx2.WriteError(str(exc) or type(exc).__name__, request=request) from None
        try:
            async with asyncio.timeout(read_t):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            conn.close()
            raise httpx2.ReadTimeout("reading the response timed out", request=request) from None
        except asyncio.IncompleteReadError as exc:
            conn.close()
            if reused and not exc.partial:
                raise _Stale from None
            raise httpx2.RemoteProtocolError(
                "the server closed the connection without a full response", request=request
            ) from None
        except asyncio.LimitOverrunError:
            conn.close()
            raise httpx2.RemoteProtocolError(
                "the response head is too long", request=request
            ) from None
        except OSError as exc:
            conn.close()
            if reused:
                raise _Stale from None
            raise httpx2.ReadError(str(exc) or type(exc).__name__, request=request) from None
        status, reason, headers, keep_alive, length, chunked = _parse_head(head, request)
        keep_alive = keep_alive and not _says_close(request.headers.get("connection"))
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1", "reason_phrase": reason}
        if request.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            length, chunked = 0, False
        if not chunked and length is not None and length <= EAGER_BODY:
            try:
                async with asyncio.timeout(read_t):
                    data = await reader.readexactly(length) if length else b""
            except TimeoutError:
                conn.close()
                raise httpx2.ReadTimeout(
                    "reading the response timed out", request=request
                ) from None
            except (asyncio.IncompleteReadError, OSError):
                conn.close()
                raise httpx2.ReadError(
                    "the connection ended inside the response", request=request
                ) from None
            if keep_alive:
                self.give_back(conn)
            else:
                conn.close()
            return httpx2.Response(
                status, headers=headers, stream=httpx2.ByteStream(data), extensions=extensions
            )
        stream = _BodyStream(self, conn, request, read_t, length, chunked, keep_alive)
        return httpx2.Response(status, headers=headers, stream=stream, extensions=extensions)

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
            idle.clear()


def _says_close(value: str | None) -> bool:
    return value is not None and "close" in value.lower()


def _parse_head(
    head: bytes, request: httpx2.Request
) -> tuple[int, bytes, list[tuple[bytes, bytes]], bool, int | None, bool]:
    """Status, reason, headers, keep-alive, content-length (None: not given) and
    whether the body is chunked, from a response head."""
    try:
        first, *rest = head[:-4].split(b"\r\n")
        version, code, *why = first.split(b" ", 2)
        status = int(code)
        if not version.startswith(b"HTTP/1.") or not 100 <= status <= 999:
            raise ValueError
    except ValueError:
        raise httpx2.RemoteProtocolError(
            "a malformed response status line", request=request
        ) from None
    headers: list[tuple[bytes, bytes]] = []
    keep_alive = version == b"HTTP/1.1"
    length: int | None = None
    chunked = False
    for line in rest:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise httpx2.RemoteProtocolError("a malformed response header", request=request)
        value = value.strip()
        headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise httpx2.RemoteProtocolError(
                    "a malformed content-length", request=request
                ) from None
            if length < 0:
                raise httpx2.RemoteProtocolError("a malformed content-length", request=request)
        elif lower == b"transfer-encoding":
            chunked = value.lower().endswith(b"chunked")
        elif lower == b"connection":
            v = value.lower()
            if b"close" in v:
                keep_alive = False
            elif b"keep-alive" in v:
                keep_alive = True
    if chunked:
        length = None
    elif length is None:
        keep_alive = False  # the body runs to the end of the connection
    return status, why[0] if why else b"", headers, keep_alive, length, chunked


class _BodyStream(httpx2.AsyncByteStream):
    """A response body read as it arrives (chunked, close-delimited, or long)."""

    def __init__(
        self,
        transport: LeanTransport,
        conn: _Conn,
        request: httpx2.Request,
        read_t: float | None,
        length: int | None,
        chunked: bool,
        keep_alive: bool,
    ) -> None:
        self._transport = transport
        self._conn: _Conn | None = conn
        self._request = request
        self._read_t = read_t
        self._length = length
        self._chunked = chunked
        self._keep_alive = keep_alive
        self._done = False

    async def _within(self, read: Any) -> Any:
        """Await ``read`` within the read timeout (each wait for bytes has its own:
        the timeout never runs while the reader holds a piece it was given)."""
        async with asyncio.timeout(self._read_t):
            return await read

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            raise httpx2.StreamClosed()
        reader = conn.reader
        within = self._within
        try:
            if self._chunked:
                while True:
                    size_line = await within(reader.readuntil(b"\r\n"))
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                    if size == 0:  # the last chunk; trailers (dropped) up to a blank line
                        while (await within(reader.readuntil(b"\r\n"))) != b"\r\n":
                            pass
                        break
                    data = await within(reader.readexactly(size + 2))
                    if data[-2:] != b"\r\n":
                        raise ValueError("a chunk without its CRLF")
                    yield data[:-2]
            elif self._length is not None:
                left = self._length
                while left:
                    data = await within(reader.read(min(left, _CHUNK)))
                    if not data:
                        raise asyncio.IncompleteReadError(b"", left)
                    left -= len(data)
                    yield data
            else:
                while data := await within(reader.read(_CHUNK)):
                    yield data
            self._done = True
        except TimeoutError:
            self._drop()
            raise httpx2.ReadTimeout(
                "reading the response timed out", request=self._request
            ) from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, ValueError):
            self._drop()
            raise httpx2.ReadError(
                "the connection ended inside the response", request=self._request
            ) from None
        if self._done:
            await self.aclose()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._keep_alive:
            self._transport.give_back(conn)
        else:
            conn.close()
