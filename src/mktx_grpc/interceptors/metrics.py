"""Counts every RPC for Prometheus: calls and latency by method and status code,
and the calls in flight by method (``core.metrics``).

Second in the chain, after logging: the latency includes every stage below it.
Kept cheap because it runs on every call: the labelled children are looked up once
per method (and code) and kept in plain dicts, so a call costs one dict lookup, the
in-flight increment and decrement, and the two increments of its outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from ..core import metrics as core_metrics
from ._stream import call_next, is_stream


def _code_name(context: grpc.aio.ServicerContext, exc: BaseException | None) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if exc is None:
        return "OK"
    # A client that cancels, or a failure that bypassed the error mapping.
    return "CANCELLED" if isinstance(exc, asyncio.CancelledError) else "UNKNOWN"


class MetricsInterceptor(AsyncServerInterceptor):
    """See the module docstring. ``metrics`` defaults to the process's."""

    def __init__(self, metrics: core_metrics.ProcessMetrics | None = None) -> None:
        m = metrics or core_metrics.get()
        self._calls = m.rpc_calls
        self._duration = m.rpc_duration
        self._in_flight_metric = m.rpc_in_flight
        self._in_flight: dict[str, Any] = {}
        #: (method, code) -> (calls child, duration child)
        self._outcomes: dict[tuple[str, str], tuple[Any, Any]] = {}

    async def intercept(
        self,
        method: Callable[..., Any],
        request: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> Any:
        flight = self._in_flight.get(method_name)
        if flight is None:
            flight = self._in_flight[method_name] = self._in_flight_metric.labels(method_name)
        flight.inc()
        start = time.perf_counter()
        try:
            result = await call_next(method, request, context)
        except BaseException as exc:
            self._done(method_name, _code_name(context, exc), start, flight)
            raise
        if is_stream(result):
            return self._stream(result, method_name, context, start, flight)
        self._done(method_name, _code_name(context, None), start, flight)
        return result

    async def _stream(
        self,
        it: AsyncIterator[Any],
        method_name: str,
        context: grpc.aio.ServicerContext,
        start: float,
        flight: Any,
    ) -> AsyncIterator[Any]:
        failure: BaseException | None = None
        try:
            async for item in it:
                yield item
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._done(method_name, _code_name(context, failure), start, flight)

    def _done(self, method_name: str, code: str, start: float, flight: Any) -> None:
        elapsed = time.perf_counter() - start
        flight.dec()
        key = (method_name, code)
        children = self._outcomes.get(key)
        if children is None:
            children = self._outcomes[key] = (
                self._calls.labels(method_name, code),
                self._duration.labels(method_name, code),
            )
        children[0].inc()
        children[1].observe(elapsed)
