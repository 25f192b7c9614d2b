"""Runs the interceptor stages as one chain.

Each stage is a grpc-interceptor ``AsyncServerInterceptor`` and could be registered
with a server on its own (so can the chain). Registered as server interceptors,
though, grpc.aio resolves and wraps the method handler again for every interceptor on
every RPC. The server instead applies the chain once per method at registration
(:func:`chained_handler`); the order, the contextvars and the behaviour of each stage
are exactly as if they were registered separately (outermost first).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from .decode import checked_deserializer
from .drain import DRAIN_MESSAGE, LongStreams


class InterceptorChain(AsyncServerInterceptor):
    def __init__(self, stages: Sequence[AsyncServerInterceptor]) -> None:
        if not stages:
            raise ValueError("an interceptor chain needs at least one stage")
        self.stages = list(stages)
        #: method name -> (the handler it was built for, the composed call).
        self._composed: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {}

    def compose(self, method: Callable[..., Any], method_name: str) -> Callable[..., Any]:
        """``method`` behind every stage, outermost first, as ``call(request, context)``."""
        cached = self._composed.get(method_name)
        if cached is not None and cached[0] is method:
            return cached[1]
        call = method
        for stage in reversed(self.stages):
            call = partial(stage.intercept, call, method_name=method_name)
        self._composed[method_name] = (method, call)
        return call

    async def intercept(
        self,
        method: Callable[..., Any],
        request_or_iterator: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> Any:
        return await self.compose(method, method_name)(request_or_iterator, context)


def chained_handler(
    chain: InterceptorChain,
    handler: grpc.RpcMethodHandler,
    method_name: str,
    streams: LongStreams | None = None,
) -> grpc.RpcMethodHandler:
    """The same method handler with ``chain`` applied around its behaviour.

    This is how the server applies the chain: at registration, once per method, so an
    RPC pays for the stages themselves and not for grpc.aio's per-call interceptor
    machinery (resolving and wrapping the handler again on every call). The request
    deserializer is replaced by one that never raises (:mod:`.decode`). Response
    streams are recorded in ``streams`` (when given) so a drain can end them with
    UNAVAILABLE (``interceptors/drain.py``).
    """
    for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        behaviour = getattr(handler, kind)
        if behaviour is not None:
            break
    else:  # pragma: no cover - grpc always sets one
        raise ValueError(f"{method_name}: handler has no behaviour")
    composed = chain.compose(behaviour, method_name)
    wrapped: Callable[..., Any]
    if handler.response_streaming and streams is not None:
        live = streams

        async def drained_streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if live.draining:
                await context.abort(grpc.StatusCode.UNAVAILABLE, DRAIN_MESSAGE)
            task: Any = asyncio.current_task()
            live.add(task, context)
            try:
                result = await composed(request, context)
                if result is not None:  # None: the handler used context.write()
                    async for item in result:
                        yield item
            except asyncio.CancelledError:
                if not live.was_ended(task):
                    raise  # the client went away (or its deadline passed)
                task.uncancel()
                await context.abort(grpc.StatusCode.UNAVAILABLE, DRAIN_MESSAGE)
            finally:
                live.discard(task)

        wrapped = drained_streaming
    elif handler.response_streaming:

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
            result = await composed(request, context)
            if result is not None:  # None: the handler used context.write()
                async for item in result:
                    yield item

        wrapped = streaming
    else:

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            return await composed(request, context)

        wrapped = unary
    return handler._replace(
        **{
            kind: wrapped,
            "request_deserializer": checked_deserializer(handler.request_deserializer),
        }
    )
