"""Serving the sidecar under uvicorn with bounded receive times and connections.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) and concurrency
(``limit_concurrency``, 503 beyond it), but not the time a client takes to send a
request's headers: its keep-alive timer is cancelled by the first byte received, so
a client trickling one header byte a second holds a connection for ever. The
protocol classes here add that bound: from the moment a connection is made, or a
response is complete, the client has ``receive_timeout`` seconds to finish the next
request's headers, or the connection is closed. The body has its own bound in the
app (408, :mod:`.app`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .options import IngestOptions

__all__ = ["sidecar_config"]


class _HeaderDeadline:
    """Mixin for uvicorn's HTTP protocols: close a connection whose next request's
    headers are not complete ``_header_timeout`` seconds after it became idle."""

    _header_timeout: float = 10.0
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._seen_cycle = self.cycle
        self._header_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self._header_timeout, self._header_deadline_passed
        )

    def _disarm_header_deadline(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _check_headers_done(self) -> None:
        # A new request/response cycle exists once a request's headers are parsed.
        if self.cycle is not None and self.cycle is not getattr(self, "_seen_cycle", None):
            self._disarm_header_deadline()
            self._seen_cycle = self.cycle

    def _header_deadline_passed(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    # Before uvicorn's protocol in the MRO, so these wrap its own.
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)  # type: ignore[misc]


class _BoundedH11Protocol(_HeaderDeadline, H11Protocol):
    def handle_events(self) -> None:
        super().handle_events()
        self._check_headers_done()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()
        self._check_headers_done()  # a pipelined request may have started already


def _protocol_class(receive_timeout: float) -> type[asyncio.Protocol]:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency of uvicorn[standard]
        return type(
            "SidecarH11Protocol", (_BoundedH11Protocol,), {"_header_timeout": receive_timeout}
        )

    class _BoundedHttpToolsProtocol(_HeaderDeadline, HttpToolsProtocol):
        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._check_headers_done()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_header_deadline()

    return type(
        "SidecarHttpToolsProtocol",
        (_BoundedHttpToolsProtocol,),
        {"_header_timeout": receive_timeout},
    )


def sidecar_config(app: Any, options: IngestOptions, **kwargs: Any) -> uvicorn.Config:
    """The uvicorn configuration the sidecar runs with: ``options.receive_timeout``
    for headers, ``options.keep_alive`` for idle connections and
    ``options.max_connections`` for concurrency. ``kwargs`` go to
    :class:`uvicorn.Config` (host, port, lifespan, logging)."""
    kwargs.setdefault("log_config", None)
    kwargs.setdefault("access_log", False)
    return uvicorn.Config(
        app,
        http=_protocol_class(options.receive_timeout),
        timeout_keep_alive=max(1, round(options.keep_alive)),
        limit_concurrency=options.max_connections,
        **kwargs,
    )
