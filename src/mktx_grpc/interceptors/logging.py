"""Outermost interceptor: request id, and one structured log line per RPC."""

from __future__ import annotations

import os
import time

import grpc

from ..core import logs
from ..core.context import principal_var, request_id_var
from ._outcome import outcome_code
from .stage import Observer


def _incoming_request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str) and 0 < len(value) <= 128:
            return value
    # 128 random bits in hex, like uuid4().hex without building a UUID per call.
    return os.urandom(16).hex()


class LoggingInterceptor(Observer):
    """Logs method, status code, duration, merchant and request id for every RPC.

    The request id is the caller's ``x-request-id`` metadata when given, otherwise
    generated. Request and response bodies are never logged (they may hold personal
    data and, for some RPCs, credentials). The code is what the client got
    (``_outcome.outcome_code``): a call abandoned at its deadline or cancelled by the
    client is logged as DEADLINE_EXCEEDED or CANCELLED, not OK. The line is written by
    ``core.logs.rpc_line`` (orjson, batched off the event loop).
    """

    def start(self, context: grpc.aio.ServicerContext, method_name: str) -> float:
        request_id_var.set(_incoming_request_id(context))
        return time.perf_counter()

    def finish(
        self,
        state: float,
        context: grpc.aio.ServicerContext,
        method_name: str,
        exc: BaseException | None,
    ) -> None:
        principal = principal_var.get()
        logs.rpc_line(
            method_name,
            outcome_code(context, exc),
            round((time.perf_counter() - state) * 1000, 3),
            str(principal.merchant_id) if principal else "",
            request_id_var.get(),
        )
