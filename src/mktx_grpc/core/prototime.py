"""The one checked way between protobuf Timestamps/Durations and Python datetimes.

Protobuf lets a client send any ``seconds``/``nanos`` pair; Python's ``datetime``
and ``timedelta`` have narrower ranges, and arithmetic on them overflows. Every
conversion of request values goes through :func:`to_datetime`, :func:`to_timedelta`
and :func:`add`, which raise :class:`~.errors.InvalidArgument` naming the field
instead of ``OverflowError``/``ValueError`` (an INTERNAL). Responses are built with
:func:`timestamp` and :func:`duration`, which clamp rather than fail (the values
come from our own database). :func:`timestamp_problem` and
:func:`duration_problem` are protobuf's validity rules, also run over every request
by the validation interceptor (:mod:`mktx_grpc.validation.wire`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from .errors import InvalidArgument

__all__ = [
    "DURATION_MAX_SECONDS",
    "TIMESTAMP_MAX_SECONDS",
    "TIMESTAMP_MIN_SECONDS",
    "add",
    "duration",
    "duration_problem",
    "timestamp",
    "timestamp_problem",
    "to_datetime",
    "to_timedelta",
]

#: 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, protobuf's Timestamp range
#: (also exactly what ``datetime`` holds).
TIMESTAMP_MIN_SECONDS = -62_135_596_800
TIMESTAMP_MAX_SECONDS = 253_402_300_799
#: 10,000 years, protobuf's Duration range (``timedelta`` holds more).
DURATION_MAX_SECONDS = 315_576_000_000


def timestamp_problem(seconds: int, nanos: int) -> str:
    """Why ``seconds``/``nanos`` are not a valid Timestamp, or ""."""
    if not 0 <= nanos <= 999_999_999:
        return "must have nanos between 0 and 999,999,999"
    if not TIMESTAMP_MIN_SECONDS <= seconds <= TIMESTAMP_MAX_SECONDS:
        return "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"
    return ""


def duration_problem(seconds: int, nanos: int) -> str:
    """Why ``seconds``/``nanos`` are not a valid Duration, or ""."""
    if not -999_999_999 <= nanos <= 999_999_999:
        return "must have nanos between -999,999,999 and 999,999,999"
    if (seconds > 0 and nanos < 0) or (seconds < 0 and nanos > 0):
        return "must have seconds and nanos of the same sign"
    if not -DURATION_MAX_SECONDS <= seconds <= DURATION_MAX_SECONDS:
        return "must be at most 10,000 years either way"
    return ""


def to_datetime(value: Timestamp, field: str) -> datetime:
    """``value`` as an aware UTC datetime; InvalidArgument on ``field`` when it is
    not a valid Timestamp."""
    problem = timestamp_problem(value.seconds, value.nanos)
    if problem:
        raise InvalidArgument.single(field, problem)
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (OverflowError, ValueError, OSError):  # pragma: no cover - range checked above
        raise InvalidArgument.single(field, "is not a valid timestamp") from None


def to_timedelta(value: Duration, field: str) -> timedelta:
    """``value`` as a timedelta; InvalidArgument on ``field`` when it is not a valid
    Duration."""
    problem = duration_problem(value.seconds, value.nanos)
    if problem:
        raise InvalidArgument.single(field, problem)
    return timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)


def add(start: datetime, delta: timedelta, field: str) -> datetime:
    """``start + delta``; InvalidArgument on ``field`` when it leaves the years 1 to
    9999."""
    try:
        return start + delta
    except OverflowError:
        raise InvalidArgument.single(field, "is too far from now") from None


def timestamp(value: datetime) -> Timestamp:
    """A Timestamp for an aware datetime (naive ones are taken as UTC)."""
    out = Timestamp()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    out.FromDatetime(value.astimezone(UTC))
    return out


def duration(value: timedelta) -> Duration:
    """A Duration for ``value``, clamped to protobuf's range."""
    limit = timedelta(seconds=DURATION_MAX_SECONDS)
    out = Duration()
    out.FromTimedelta(max(-limit, min(limit, value)))
    return out
