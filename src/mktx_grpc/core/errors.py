"""Typed domain errors. The error interceptor maps each to a gRPC status.

Domain and store code raise these; nothing below the servicers knows about gRPC
(``code`` is a ``google.rpc.Code`` number, which the interceptor sends as the status).
Every error has a ``reason`` (UPPER_SNAKE, sent as ``google.rpc.ErrorInfo.reason``)
and optional ``metadata`` (string map, sent as ``ErrorInfo.metadata``). Messages are
written for API users: they never contain tokens, SQL or stack traces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from google.rpc import code_pb2


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: ``field`` is a path such as ``template.quick_replies[2].label``."""

    field: str
    description: str


class DomainError(Exception):
    """Base class. ``code`` is the status (``google.rpc.Code``) the interceptor sends."""

    code: int = code_pb2.UNKNOWN
    reason: str = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(DomainError):
    """Bad input. Carries every violation found, reported together in one BadRequest."""

    code = code_pb2.INVALID_ARGUMENT
    reason = "VALIDATION_ERROR"

    def __init__(
        self,
        violations: Iterable[FieldViolation],
        message: str | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        self.violations = list(violations)
        if message is None:
            fields = ", ".join(v.field for v in self.violations)
            message = f"invalid argument: {fields}" if fields else "invalid argument"
        super().__init__(message, reason=reason)

    @classmethod
    def single(cls, field: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field, description)])


class NotFound(DomainError):
    """The resource does not exist, or belongs to another merchant (indistinguishable)."""

    code = code_pb2.NOT_FOUND
    reason = "RESOURCE_NOT_FOUND"

    def __init__(self, resource: str, resource_id: str) -> None:
        super().__init__(
            f"{resource} {resource_id} not found",
            metadata={"resource": resource, "id": resource_id},
        )


class AlreadyExists(DomainError):
    code = code_pb2.ALREADY_EXISTS
    reason = "DUPLICATE_RESOURCE"


class FailedPrecondition(DomainError):
    code = code_pb2.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class Aborted(DomainError):
    code = code_pb2.ABORTED
    reason = "ETAG_MISMATCH"


class Unauthenticated(DomainError):
    code = code_pb2.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    code = code_pb2.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class QuotaExceeded(DomainError):
    """A rate limit or budget is spent; ``retry_at`` says when to try again."""

    code = code_pb2.RESOURCE_EXHAUSTED
    reason = "RATE_LIMIT_EXCEEDED"

    def __init__(
        self,
        message: str,
        *,
        retry_at: datetime | None = None,
        retry_after_seconds: float | None = None,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_at = retry_at
        self.retry_after_seconds = retry_after_seconds


class UpstreamError(DomainError):
    """X or the AI provider failed or could not be reached."""

    code = code_pb2.UNAVAILABLE
    reason = "TWITTER_API_ERROR"


class Unimplemented(DomainError):
    code = code_pb2.UNIMPLEMENTED
    reason = "NOT_IMPLEMENTED"


class Unavailable(DomainError):
    """A dependency this process needs (the database) cannot be reached right now;
    the call may be retried, here a little later or on another instance."""

    code = code_pb2.UNAVAILABLE
    reason = "DATABASE_UNAVAILABLE"
