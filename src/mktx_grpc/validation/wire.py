"""Checks every request gets, whatever its method: one walk over the message by its
descriptor (no I/O).

* Every string field (nested, repeated and map keys and values included) must not
  hold NUL or another C0 control character other than tab, newline and carriage
  return: PostgreSQL cannot store NUL at all, and none of them belongs in a name, a
  message or an id.
* Every ``google.protobuf.Timestamp`` must be valid as protobuf defines it (0001-01-01
  to 9999-12-31, nanos 0..999,999,999) and every ``google.protobuf.Duration`` too
  (at most 10,000 years either way, nanos within ±999,999,999 and of the same sign
  as the seconds).

Violations name the field path as the method rules do (``template.quick_replies[2].label``,
``labels["k"]``), so a client sees every bad field of the request in one BadRequest.
The walk stops descending :data:`MAX_DEPTH` levels down (the decoder limits nesting
well before that; this only bounds the work).
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ..core.errors import FieldViolation
from ..core.prototime import duration_problem, timestamp_problem

__all__ = ["check_request"]

MAX_DEPTH = 128

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_MESSAGE = (
    "must not contain NUL or other control characters (U+0000 to U+001F except tab, "
    "newline and carriage return)"
)

_TIMESTAMP = "google.protobuf.Timestamp"
_DURATION = "google.protobuf.Duration"


def check_request(message: Message) -> list[FieldViolation]:
    """The violations of the checks above anywhere in ``message`` (empty when none)."""
    out: list[FieldViolation] = []
    _walk(message, "", out, 0)
    return out


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _walk(message: Message, prefix: str, out: list[FieldViolation], depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    for field, value in message.ListFields():
        path = _join(prefix, field.name)
        if field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                for i, item in enumerate(value):
                    _check_text(item, f"{path}[{i}]", out)
            else:
                _check_text(value, path, out)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            mtype = field.message_type
            if mtype is not None and mtype.GetOptions().map_entry:
                _walk_map(mtype, value, path, out, depth)
            elif field.is_repeated:
                for i, item in enumerate(value):
                    _walk_message(item, f"{path}[{i}]", out, depth)
            else:
                _walk_message(value, path, out, depth)


def _walk_message(value: Message, path: str, out: list[FieldViolation], depth: int) -> None:
    name = value.DESCRIPTOR.full_name
    if name == _TIMESTAMP:
        problem = timestamp_problem(value.seconds, value.nanos)  # type: ignore[attr-defined]
    elif name == _DURATION:
        problem = duration_problem(value.seconds, value.nanos)  # type: ignore[attr-defined]
    else:
        _walk(value, path, out, depth + 1)
        return
    if problem:
        out.append(FieldViolation(path, problem))


def _walk_map(
    entry: Descriptor, value: Any, path: str, out: list[FieldViolation], depth: int
) -> None:
    key_field = entry.fields_by_name["key"]
    value_field = entry.fields_by_name["value"]
    for key in value:
        key_text = str(key)
        if len(key_text) <= 64 and key_text.isprintable() and '"' not in key_text:
            item_path = f'{path}["{key_text}"]'
        else:  # never echo a long or unprintable key whole
            item_path = f"{path}[{key_text[:32]!a}...]"
        if key_field.type == FieldDescriptor.TYPE_STRING:
            _check_text(key_text, f"{path} (key)", out)
        item = value[key]
        if value_field.type == FieldDescriptor.TYPE_STRING:
            _check_text(item, item_path, out)
        elif value_field.type == FieldDescriptor.TYPE_MESSAGE:
            _walk_message(item, item_path, out, depth)


def _check_text(value: str, path: str, out: list[FieldViolation]) -> None:
    if _CONTROL.search(value):
        out.append(FieldViolation(path, _CONTROL_MESSAGE))
