"""Long streams in flight, so that a drain can end them promptly.

A server-streaming call (health ``Watch``, ``WatchConversations``, reflection) may
last for hours. On shutdown the server waits for in-flight calls to finish; a stream
never does, so without this it would hold the process for the whole grace period and
its client would learn nothing until the connection dropped. :class:`LongStreams`
records the task of every response stream (``chained_handler`` adds and removes
them; unary calls are not recorded and pay nothing); :meth:`LongStreams.end_all`
ends each with UNAVAILABLE ("the server is shutting down"), which clients treat as
"reconnect, elsewhere", and refuses streams that start afterwards.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

log = logging.getLogger(__name__)

#: The status message of a stream ended by a drain.
DRAIN_MESSAGE = "the server is shutting down; reconnect"


class LongStreams:
    def __init__(self) -> None:
        self._active: dict[asyncio.Task[object], grpc.aio.ServicerContext] = {}
        self._ended: set[asyncio.Task[object]] = set()
        #: Set by end_all: streams that start from now on are refused at once.
        self.draining = False

    def __len__(self) -> int:
        return len(self._active)

    def add(self, task: asyncio.Task[object], context: grpc.aio.ServicerContext) -> None:
        self._active[task] = context

    def discard(self, task: asyncio.Task[object]) -> None:
        self._active.pop(task, None)
        self._ended.discard(task)

    def was_ended(self, task: asyncio.Task[object]) -> bool:
        """Whether ``task`` was cancelled by :meth:`end_all` (not by its client)."""
        return task in self._ended

    def end_all(self) -> int:
        """End every stream in flight with UNAVAILABLE; returns how many."""
        self.draining = True
        ended = 0
        for task, context in list(self._active.items()):
            if task in self._ended or task.done():
                continue
            # Set first, so the log line and metrics record what the client gets.
            context.set_code(grpc.StatusCode.UNAVAILABLE)
            context.set_details(DRAIN_MESSAGE)
            self._ended.add(task)
            task.cancel(DRAIN_MESSAGE)
            ended += 1
        if ended:
            log.info("ended %d open stream(s) for shutdown", ended)
        return ended
