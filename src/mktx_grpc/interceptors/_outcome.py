"""What the client got, for the log line and the metrics of a call."""

from __future__ import annotations

import asyncio

import grpc


def outcome_code(context: grpc.aio.ServicerContext, exc: BaseException | None) -> str:
    """The status code name the client received.

    The code set on the call (an abort, ``set_code``) when there is one. Otherwise a
    handler cancelled by grpc (the client cancelled, or the deadline passed) is
    ``DEADLINE_EXCEEDED`` when no time remains and ``CANCELLED`` otherwise; a handler
    that finished after its deadline is ``DEADLINE_EXCEEDED`` too (the client stopped
    waiting), and an exception that bypassed the error mapping is ``UNKNOWN``.
    """
    code = context.code()
    if isinstance(code, grpc.StatusCode) and code is not grpc.StatusCode.OK:
        return str(code.name)
    if exc is not None and not isinstance(exc, asyncio.CancelledError):
        return "UNKNOWN" if code is None else str(code.name)
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return "DEADLINE_EXCEEDED"
    if exc is not None or context.cancelled():
        return "CANCELLED"
    return "OK"
