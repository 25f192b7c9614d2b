"""Runs the interceptor stages as one chain.

Each stage is a grpc-interceptor ``AsyncServerInterceptor`` and could be registered
with a server on its own (so can the chain). Registered as server interceptors,
though, grpc.aio resolves and wraps the method handler again for every interceptor on
every RPC. The server instead applies the chain once per method at registration
(:func:`chained_handler`); the order, the contextvars and the behaviour of each stage
are exactly as if they were registered separately (outermost first).

For a method with a unary response, the leading stages that have one of the shapes of
:mod:`.stage` (observers, then an error mapper, then guards: logging, metrics, error
mapping, decode, auth, rate limit and validation) run in one coroutine
(:func:`_fused`), in the same order and with the same outcome as nested; the stages
after them (the unit of work) wrap the handler as usual. Response streams keep the
nested form, since their observers finish when the stream ends.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from .decode import checked_deserializer
from .drain import DRAIN_MESSAGE, LongStreams
from .stage import AsyncGuard, ErrorMapper, Guard, Observer


class InterceptorChain(AsyncServerInterceptor):
    def __init__(self, stages: Sequence[AsyncServerInterceptor]) -> None:
        if not stages:
            raise ValueError("an interceptor chain needs at least one stage")
        self.stages = list(stages)
        #: (method name, fused) -> (the handler it was built for, the composed call).
        self._composed: dict[tuple[str, bool], tuple[Callable[..., Any], Callable[..., Any]]] = {}

    def compose(
        self, method: Callable[..., Any], method_name: str, *, fuse: bool = False
    ) -> Callable[..., Any]:
        """``method`` behind every stage, outermost first, as ``call(request, context)``.

        With ``fuse`` (for a method whose response is not a stream) the leading stages
        shaped as in :mod:`.stage` run as one coroutine (see the module docstring)."""
        cached = self._composed.get((method_name, fuse))
        if cached is not None and cached[0] is method:
            return cached[1]
        stages = self.stages
        lead = _fusable_prefix(stages) if fuse else 0
        call = method
        for stage in reversed(stages[lead:]):
            call = partial(stage.intercept, call, method_name=method_name)
        if lead:
            call = _fused(stages[:lead], call, method_name)
        self._composed[(method_name, fuse)] = (method, call)
        return call

    async def intercept(
        self,
        method: Callable[..., Any],
        request_or_iterator: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> Any:
        return await self.compose(method, method_name)(request_or_iterator, context)


def _fusable_prefix(stages: Sequence[AsyncServerInterceptor]) -> int:
    """How many leading stages are observers, then at most one error mapper, then
    guards (that order is what :func:`_fused` runs)."""
    i, n = 0, len(stages)
    while i < n and isinstance(stages[i], Observer):
        i += 1
    if i < n and isinstance(stages[i], ErrorMapper):
        i += 1
    while i < n and isinstance(stages[i], Guard | AsyncGuard):
        i += 1
    return i


def _fused(
    stages: Sequence[AsyncServerInterceptor], inner: Callable[..., Any], method_name: str
) -> Callable[..., Any]:
    """One coroutine running ``stages`` (a :func:`_fusable_prefix`) around ``inner``,
    with the outcome of the same stages nested: observers start outermost first and
    finish innermost first, seeing what escaped the error mapper; the mapper sees what
    a guard or ``inner`` raised; guards run in order, each on the request the one
    before it returned."""
    observers = [s for s in stages if isinstance(s, Observer)]
    mappers = [s for s in stages if isinstance(s, ErrorMapper)]
    on_error = mappers[0].on_error if mappers else None
    guards = [
        (s.check, isinstance(s, AsyncGuard)) for s in stages if isinstance(s, Guard | AsyncGuard)
    ]
    starts = [o.start for o in observers]
    finishes = [o.finish for o in reversed(observers)]

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        states = [start(context, method_name) for start in starts]
        try:
            try:
                for check, awaited in guards:
                    if awaited:
                        request = await check(request, context, method_name)
                    else:
                        request = check(request, context, method_name)
                result = await inner(request, context)
            except Exception as exc:
                if on_error is None:
                    raise
                await on_error(exc, context, method_name)
        except BaseException as exc:
            for finish, state in zip(finishes, reversed(states), strict=True):
                finish(state, context, method_name, exc)
            raise
        for finish, state in zip(finishes, reversed(states), strict=True):
            finish(state, context, method_name, None)
        return result

    return call


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
    composed = chain.compose(behaviour, method_name, fuse=not handler.response_streaming)
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
    elif inspect.iscoroutinefunction(composed):
        # grpc.aio awaits a coroutine function's result (anything else it would run
        # in its thread pool), so the composed call is the behaviour itself.
        wrapped = composed
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
