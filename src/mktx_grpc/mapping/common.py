"""Small conversions between database values and protobuf types."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from ..core import prototime


def ts(value: datetime | None) -> Timestamp | None:
    """A Timestamp for ``value``, or None (leaves the proto field unset)."""
    if value is None:
        return None
    return prototime.timestamp(value)


def from_ts(value: Timestamp, field: str) -> datetime:
    """A request's Timestamp as a UTC datetime; InvalidArgument naming ``field``
    when it is out of range (:func:`mktx_grpc.core.prototime.to_datetime`)."""
    return prototime.to_datetime(value, field)


def struct_to_dict(s: Struct) -> dict[str, Any]:
    """A Struct as plain JSON values (numbers are floats, as protobuf keeps them)."""
    out: dict[str, Any] = json_format.MessageToDict(s)
    return out
