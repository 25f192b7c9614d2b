"""Outermost interceptor: request id, and one structured log line per RPC."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from ..core.context import principal_var, request_id_var
from ._stream import call_next, is_stream

log = logging.getLogger("mktx_grpc.rpc")


def _incoming_request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str) and 0 < len(value) <= 128:
            return value
    # 128 random bits in hex, like uuid4().hex without building a UUID per call.
    return os.urandom(16).hex()


def _code_name(context: grpc.aio.ServicerContext, cancelled: bool = False) -> str:
    """What the client got: the status set, else (no status: the handler returned or
    was cancelled) CANCELLED for a call its client gave up, DEADLINE_EXCEEDED for one
    past its deadline, and OK only for a call answered in time."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if cancelled or context.cancelled():
        remaining = context.time_remaining()
        return "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return "DEADLINE_EXCEEDED"
    return "OK"


class LoggingInterceptor(AsyncServerInterceptor):
    """Logs method, status code, duration, merchant and request id for every RPC.

    The request id is the caller's ``x-request-id`` metadata when given, otherwise
    generated. Request and response bodies are never logged (they may hold personal
    data and, for some RPCs, credentials).
    """

    async def intercept(
        self,
        method: Callable[..., Any],
        request: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> Any:
        request_id_var.set(_incoming_request_id(context))
        start = time.perf_counter()
        try:
            result = await call_next(method, request, context)
        except BaseException as exc:
            self._log(method_name, context, start, isinstance(exc, asyncio.CancelledError))
            raise
        if is_stream(result):
            return self._stream(result, method_name, context, start)
        self._log(method_name, context, start)
        return result

    async def _stream(
        self,
        it: AsyncIterator[Any],
        method_name: str,
        context: grpc.aio.ServicerContext,
        start: float,
    ) -> AsyncIterator[Any]:
        cancelled = False
        try:
            async for item in it:
                yield item
        except (asyncio.CancelledError, GeneratorExit):
            cancelled = True
            raise
        finally:
            self._log(method_name, context, start, cancelled)

    def _log(
        self,
        method_name: str,
        context: grpc.aio.ServicerContext,
        start: float,
        cancelled: bool = False,
    ) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        code_name = _code_name(context, cancelled)
        principal = principal_var.get()
        log.info(
            "rpc",
            extra={
                "rpc_method": method_name,
                "code": code_name,
                "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                "merchant_id": str(principal.merchant_id) if principal else "",
                "request_id": request_id_var.get(),
            },
        )
