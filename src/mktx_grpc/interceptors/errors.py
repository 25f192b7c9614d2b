"""Maps typed domain errors to gRPC statuses with rich error details.

Every error carries ``google.rpc.ErrorInfo`` (domain ``mktx.v1``). InvalidArgument
adds exactly one ``google.rpc.BadRequest`` listing every bad field; QuotaExceeded
adds ``google.rpc.RetryInfo``. Anything unexpected becomes INTERNAL with a generic
message: the traceback goes to the log, never to the client. Connection-level
database failures (refused, shut down, lost mid-query, no pooled connection in time)
are not bugs: they become UNAVAILABLE with reason DATABASE_UNAVAILABLE.

Trailers stay small whatever the input (gRPC clients refuse metadata over 8 KB by
default, and would see RESOURCE_EXHAUSTED instead of the error): the message is cut
to :data:`MAX_MESSAGE_BYTES`, ErrorInfo metadata to :data:`MAX_METADATA_VALUE_BYTES`
a value, and the BadRequest lists the first violations that fit in
:data:`MAX_VIOLATION_BYTES` (at most :data:`MAX_VIOLATIONS`); how many were left
out is in ErrorInfo metadata ``omitted_field_violations`` and in the message.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..core.context import request_id_var
from ..core.db import is_connection_failure
from ..core.errors import DomainError, InvalidArgument, QuotaExceeded, Unavailable
from .stage import ErrorMapper

log = logging.getLogger("mktx_grpc.errors")

DOMAIN = "mktx.v1"
#: What a call that met a connection-level database failure is answered.
DATABASE_UNAVAILABLE = Unavailable(
    "the database is unavailable; retry shortly", metadata={"dependency": "database"}
)

MAX_MESSAGE_BYTES = 512
MAX_METADATA_VALUE_BYTES = 256
MAX_METADATA_ENTRIES = 16
MAX_VIOLATIONS = 50
MAX_VIOLATION_BYTES = 3000
_MAX_FIELD_BYTES = 256
_MAX_DESCRIPTION_BYTES = 512


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (on a character boundary)."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode("utf-8", "ignore") + "..."


def _violations(
    error: InvalidArgument,
) -> tuple[list[error_details_pb2.BadRequest.FieldViolation], int]:
    """The violations that fit the budget, and how many were left out."""
    shown: list[error_details_pb2.BadRequest.FieldViolation] = []
    used = 0
    for v in error.violations[:MAX_VIOLATIONS]:
        fv = error_details_pb2.BadRequest.FieldViolation(
            field=_cut(v.field, _MAX_FIELD_BYTES),
            description=_cut(v.description, _MAX_DESCRIPTION_BYTES),
        )
        size = fv.ByteSize() + 4
        if used + size > MAX_VIOLATION_BYTES:
            break
        shown.append(fv)
        used += size
    return shown, len(error.violations) - len(shown)


def _pack(message: Any) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def status_for(error: DomainError) -> grpc.Status:
    """Build the rich status for a domain error."""
    metadata = {
        _cut(k, 64): _cut(v, MAX_METADATA_VALUE_BYTES)
        for k, v in list(error.metadata.items())[:MAX_METADATA_ENTRIES]
    }
    message = error.message
    violations: list[error_details_pb2.BadRequest.FieldViolation] = []
    if isinstance(error, InvalidArgument):
        violations, omitted = _violations(error)
        if omitted:
            metadata["omitted_field_violations"] = str(omitted)
            message = f"{_cut(message, MAX_MESSAGE_BYTES - 64)} ({omitted} more not listed)"
    details = [
        _pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=metadata))
    ]
    if isinstance(error, InvalidArgument):
        details.append(_pack(error_details_pb2.BadRequest(field_violations=violations)))
    if isinstance(error, QuotaExceeded):
        seconds = error.retry_after_seconds
        if seconds is None and error.retry_at is not None:
            seconds = (error.retry_at - datetime.now(UTC)).total_seconds()
        if seconds is not None:
            delay = duration_pb2.Duration()
            delay.FromMilliseconds(max(0, int(seconds * 1000)))
            details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    status = status_pb2.Status(
        code=error.code, message=_cut(message, MAX_MESSAGE_BYTES), details=details
    )
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


class ErrorMappingInterceptor(ErrorMapper):
    async def on_error(
        self, exc: Exception, context: grpc.aio.ServicerContext, method_name: str
    ) -> NoReturn:
        if isinstance(exc, grpc.aio.AbortError):
            raise exc
        if isinstance(exc, DomainError):
            await context.abort_with_status(_keeping_trailers(status_for(exc), context))
        if is_connection_failure(exc):
            # The database is down, restarting or saturated: not a bug, and worth a
            # retry (here shortly, or on another instance).
            log.warning(
                "database unavailable in %s (request id %s): %s",
                method_name,
                request_id_var.get(),
                type(exc).__name__,
            )
            await context.abort_with_status(
                _keeping_trailers(status_for(DATABASE_UNAVAILABLE), context)
            )
        log.error(
            "unhandled error in %s (request id %s)",
            method_name,
            request_id_var.get(),
            exc_info=exc,
        )
        await context.abort_with_status(_keeping_trailers(internal_status(), context))
        raise AssertionError("unreachable")  # abort_with_status always raises
