"""Maps typed domain errors to gRPC statuses with rich error details.

Every error carries ``google.rpc.ErrorInfo`` (domain ``mktx.v1``). InvalidArgument
adds exactly one ``google.rpc.BadRequest`` listing every bad field; QuotaExceeded
adds ``google.rpc.RetryInfo``. Anything unexpected becomes INTERNAL with a generic
message: the traceback goes to the log, never to the client.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_interceptor.server import AsyncServerInterceptor
from grpc_status import rpc_status

from ..core.context import request_id_var
from ..core.errors import DomainError, InvalidArgument, QuotaExceeded
from ._stream import call_next, is_stream

log = logging.getLogger("mktx_grpc.errors")

DOMAIN = "mktx.v1"


def _pack(message: Any) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def status_for(error: DomainError) -> grpc.Status:
    """Build the rich status for a domain error."""
    details = [
        _pack(
            error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)
        )
    ]
    if isinstance(error, InvalidArgument):
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    if isinstance(error, QuotaExceeded):
        seconds = error.retry_after_seconds
        if seconds is None and error.retry_at is not None:
            seconds = (error.retry_at - datetime.now(UTC)).total_seconds()
        if seconds is not None:
            delay = duration_pb2.Duration()
            delay.FromMilliseconds(max(0, int(seconds * 1000)))
            details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    status = status_pb2.Status(code=error.code, message=error.message, details=details)
    return rpc_status.to_status(status)


def internal_status() -> grpc.Status:
    info = error_details_pb2.ErrorInfo(
        reason="INTERNAL", domain=DOMAIN, metadata={"request_id": request_id_var.get()}
    )
    status = status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error (request id {request_id_var.get()})",
        details=[_pack(info)],
    )
    return rpc_status.to_status(status)


def _keeping_trailers(status: grpc.Status, context: grpc.aio.ServicerContext) -> grpc.Status:
    """``status`` with the trailing metadata already set on the call kept (the
    rate limit's ``x-ratelimit-*``): aborting with a status replaces it otherwise."""
    earlier = tuple(context.trailing_metadata() or ())
    if not earlier:
        return status
    return status._replace(trailing_metadata=earlier + tuple(status.trailing_metadata))


class ErrorMappingInterceptor(AsyncServerInterceptor):
    async def intercept(
        self,
        method: Callable[..., Any],
        request: Any,
        context: grpc.aio.ServicerContext,
        method_name: str,
    ) -> Any:
        try:
            result = await call_next(method, request, context)
        except Exception as exc:
            await self._abort(exc, context, method_name)
        if is_stream(result):
            return self._stream(result, context, method_name)
        return result

    async def _stream(
        self, it: AsyncIterator[Any], context: grpc.aio.ServicerContext, method_name: str
    ) -> AsyncIterator[Any]:
        try:
            async for item in it:
                yield item
        except Exception as exc:
            await self._abort(exc, context, method_name)

    async def _abort(
        self, exc: Exception, context: grpc.aio.ServicerContext, method_name: str
    ) -> NoReturn:
        if isinstance(exc, grpc.aio.AbortError):
            raise exc
        if isinstance(exc, DomainError):
            await context.abort_with_status(_keeping_trailers(status_for(exc), context))
        log.error(
            "unhandled error in %s (request id %s)",
            method_name,
            request_id_var.get(),
            exc_info=exc,
        )
        await context.abort_with_status(_keeping_trailers(internal_status(), context))
        raise AssertionError("unreachable")  # abort_with_status always raises
