"""Runs the interceptor stages inside one grpc.aio interceptor layer.

Each stage is a grpc-interceptor ``AsyncServerInterceptor`` and can be registered
with a server on its own. Registered one by one, though, grpc.aio builds a fresh
method handler per interceptor per RPC; composing them here costs one layer, and
the composition for a method is built once and reused. The order, the contextvars
and the behaviour of each stage are exactly as if they were registered separately
(outermost first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor


class InterceptorChain(AsyncServerInterceptor):
    def __init__(self, stages: Sequence[AsyncServerInterceptor]) -> None:
        if not stages:
            raise ValueError("an interceptor chain needs at least one stage")
        self.stages = list(stages)
        #: method name -> (the handler it was built for, the composed call).
        self._composed: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {}
        #: method name -> (the servicer's handler, our wrapped handler).
        self._handlers: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        """grpc.aio's hook, called for every RPC. The servicer handler for a method
        never changes, so the wrapped handler built for it is reused instead of being
        rebuilt per call (grpc-interceptor builds a new one each time)."""
        inner = await continuation(handler_call_details)
        cached = self._handlers.get(handler_call_details.method)
        if cached is not None and cached[0] is inner:
            return cached[1]
        wrapped = await super().intercept_service(  # type: ignore[no-untyped-call]
            lambda _: _resolved(inner), handler_call_details
        )
        if inner is not None:
            self._handlers[handler_call_details.method] = (inner, wrapped)
        return wrapped

    def _compose(self, method: Callable[..., Any], method_name: str) -> Callable[..., Any]:
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
        return await self._compose(method, method_name)(request_or_iterator, context)


async def _resolved(value: Any) -> Any:
    return value
