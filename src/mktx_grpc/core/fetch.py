"""Fetching media from merchants' URLs without becoming a way into our network.

:class:`MediaFetcher` GETs an https URL and streams its body into a spooled temporary
file, with these guarantees:

- **https only**, certificates verified (the system's trust store plus an optional
  CA file, ``MKTX_MEDIA_CA_FILE``), no proxies from the environment, no redirects
  (a 3xx is refused: following it would let a public URL point us anywhere).
- **No private addresses** (SSRF): the host name is resolved by us and every address
  it resolves to must be globally routable (not loopback, private, link-local, CGNAT,
  multicast, reserved or an IPv4-mapped one of those); the connection goes to the
  address checked, so a DNS answer that changes between check and connect (DNS
  rebinding) cannot slip through. ``allow_private`` lifts this for the local sandbox
  and tests only.
- **Bounded**: the size is capped while streaming (a ``Content-Length`` over the cap
  is refused before the body is read), and so is the time (``timeout`` per network
  operation, ``total_timeout`` for the whole fetch).

Every failure raises :class:`FetchError` with a message fit for the API user; it never
repeats the URL (which may carry secrets) or internals.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

import httpcore

__all__ = ["FetchError", "FetchedMedia", "MediaFetcher", "is_public_address"]

log = logging.getLogger(__name__)

#: Bytes kept in memory before the spooled file goes to disk.
SPOOL_BYTES = 8 * 1024 * 1024
#: Leading bytes read before the size cap is decided (enough to sniff the type).
HEAD_BYTES = 64


class FetchError(Exception):
    """The media could not be fetched; ``str()`` is safe to show the API user."""


@dataclass
class FetchedMedia:
    """A fetched body: its first bytes, its size, and (for :meth:`MediaFetcher.fetch`)
    the whole body in a temporary file positioned at 0, closed by :meth:`close`."""

    head: bytes
    size: int
    file: IO[bytes] | None = None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def is_public_address(address: str) -> bool:
    """Whether ``address`` (an IP literal) is globally routable and not multicast;
    IPv4-mapped and 6to4/Teredo-embedded addresses are judged by the IPv4 inside."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None and not is_public_address(str(inner)):
            return False
    return ip.is_global and not ip.is_multicast


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves host names itself and connects only to addresses that pass the check."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError):
            raise httpcore.ConnectError("the host name could not be resolved") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not self._allow_private and not all(is_public_address(a) for a in addresses):
            raise _Refused("the host resolves to a private or reserved address")
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError("no address to connect to")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise _Refused("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Refused(httpcore.ConnectError):
    """A connection the guard refused (its message is safe to show)."""


class MediaFetcher:
    """Fetches media over https with the guarantees of the module docstring. Close it
    with :meth:`aclose`."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        ca_file: str | None = None,
        timeout: float = 15.0,
        total_timeout: float = 300.0,
        max_connections: int = 16,
    ) -> None:
        context = ssl.create_default_context()
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        self._timeout = timeout
        self._total = total_timeout
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=max_connections,
            network_backend=_GuardedBackend(allow_private),
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def probe(
        self, url: str, limit: Callable[[bytes], int], *, within: float | None = None
    ) -> FetchedMedia:
        """The media's first bytes and size, without keeping the body: the size is the
        ``Content-Length`` when the server gives one, else the body is counted (up to
        ``limit(head)`` bytes). ``within`` seconds at most (default: ``total_timeout``).
        Raises FetchError."""
        return await self._get(url, limit, keep=False, within=within)

    async def fetch(self, url: str, limit: Callable[[bytes], int]) -> FetchedMedia:
        """The whole body in a temporary file; more than ``limit(head)`` bytes (``head``:
        the first :data:`HEAD_BYTES`) is refused. Raises FetchError."""
        return await self._get(url, limit, keep=True, within=None)

    async def _get(
        self, url: str, limit: Callable[[bytes], int], *, keep: bool, within: float | None
    ) -> FetchedMedia:
        try:
            parts = urlsplit(url)
            host = parts.hostname
            _ = parts.port
            url.encode("ascii")
        except (ValueError, UnicodeEncodeError):
            raise FetchError("the media URL is not a valid URL (use its ASCII form)") from None
        if parts.scheme != "https" or not host:
            raise FetchError("media must be fetched from an https URL")
        if parts.username is not None or parts.password is not None:
            raise FetchError("a media URL must not carry a user name or password")
        try:
            async with asyncio.timeout(within or self._total):
                file, head, size = await self._stream(url, limit, keep)
        except TimeoutError:
            raise FetchError("fetching the media took too long") from None
        except FetchError:
            raise
        except _Refused as exc:
            raise FetchError(f"the media URL is refused: {exc}") from None
        except httpcore.TimeoutException:
            raise FetchError("fetching the media timed out") from None
        except (httpcore.ConnectError, httpcore.NetworkError) as exc:
            if "certificate" in str(exc).lower():
                raise FetchError("the media URL's https certificate is not valid") from None
            raise FetchError("the media URL could not be reached") from None
        except (httpcore.ProtocolError, httpcore.UnsupportedProtocol, ssl.SSLError):
            raise FetchError("the media URL did not answer properly over https") from None
        except Exception:
            # Whatever else a hostile URL or server provokes is the fetch's failure, not ours.
            log.warning("media fetch failed unexpectedly", exc_info=True)
            raise FetchError("the media URL could not be fetched") from None
        return FetchedMedia(head=head, size=size, file=file)

    async def _stream(
        self, url: str, limit: Callable[[bytes], int], keep: bool
    ) -> tuple[IO[bytes] | None, bytes, int]:
        timeouts = {k: self._timeout for k in ("connect", "read", "write", "pool")}
        async with self._pool.stream(
            "GET",
            url,
            headers=[(b"Accept", b"image/*, video/*"), (b"User-Agent", b"mktx-grpc/0.1")],
            extensions={"timeout": timeouts},
        ) as resp:
            if 300 <= resp.status < 400:
                raise FetchError("the media URL redirects; give its final https URL")
            if resp.status != 200:
                raise FetchError(f"fetching the media returned HTTP {resp.status}")
            declared = _content_length(resp.headers)
            file: IO[bytes] | None = (
                tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) if keep else None
            )
            try:
                head = b""
                size = 0
                cap: int | None = None
                async for chunk in resp.aiter_stream():
                    if len(head) < HEAD_BYTES:
                        head += chunk[: HEAD_BYTES - len(head)]
                    size += len(chunk)
                    if cap is None and (len(head) >= HEAD_BYTES or size >= HEAD_BYTES):
                        cap = limit(head)
                        if declared is not None and declared > cap:
                            raise FetchError(f"the media is larger than {cap:,} bytes")
                        if not keep and declared is not None:
                            return None, head, declared
                    if cap is not None and size > cap:
                        raise FetchError(f"the media is larger than {cap:,} bytes")
                    if file is not None:
                        file.write(chunk)
                if cap is None:  # a body shorter than the head
                    cap = limit(head)
                    if size > cap:
                        raise FetchError(f"the media is larger than {cap:,} bytes")
            except BaseException:
                if file is not None:
                    file.close()
                raise
        if size == 0:
            if file is not None:
                file.close()
            raise FetchError("the media is empty")
        if file is not None:
            file.seek(0)
        return file, head, size


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                n = int(value)
            except ValueError:
                return None
            return n if n >= 0 else None
    return None
