"""Assertions on rich gRPC errors."""

from __future__ import annotations

import socket
from collections.abc import Awaitable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass
class RichError:
    code: grpc.StatusCode
    message: str
    info: error_details_pb2.ErrorInfo | None = None
    bad_fields: dict[str, str] = field(default_factory=dict)
    retry_delay_s: float | None = None
    bad_request_count: int = 0


def parse_error(err: grpc.aio.AioRpcError) -> RichError:
    out = RichError(code=err.code(), message=err.details() or "")
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        return out
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            out.info = info
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            detail.Unpack(br)
            out.bad_request_count += 1
            out.bad_fields.update({v.field: v.description for v in br.field_violations})
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            ri = error_details_pb2.RetryInfo()
            detail.Unpack(ri)
            out.retry_delay_s = ri.retry_delay.ToTimedelta().total_seconds()
    return out


async def expect_error(
    call: Awaitable[Any], code: grpc.StatusCode, reason: str | None = None
) -> RichError:
    """Await ``call``, assert it fails with ``code`` (and ErrorInfo ``reason``), and
    return the parsed error. Every error must carry an ErrorInfo in domain mktx.v1."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        parsed = parse_error(err)
    else:
        raise AssertionError(f"expected {code.name}, but the call succeeded")
    assert parsed.code == code, f"expected {code.name}, got {parsed.code.name}: {parsed.message}"
    assert parsed.info is not None, "error carries no google.rpc.ErrorInfo"
    assert parsed.info.domain == "mktx.v1"
    if reason is not None:
        assert parsed.info.reason == reason, f"reason {parsed.info.reason} != {reason}"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert parsed.bad_request_count == 1, "INVALID_ARGUMENT must carry exactly one BadRequest"
    return parsed


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports on 127.0.0.1: all are bound at once before any is
    released, so two of them can never be the same port (binding one at a time can
    hand the same ephemeral port out twice)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def free_port() -> int:
    """One free port on 127.0.0.1."""
    return free_ports(1)[0]
