"""Small conversions between database values and protobuf types."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
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


#: A read mask as a tree: field name -> the sub-fields asked for (None: the whole field).
MaskTree = dict[str, "MaskTree | None"]


def mask_path_ok(descriptor: Descriptor, path: str) -> bool:
    """Whether a read mask ``path`` names a field of messages of ``descriptor``: each
    dotted segment a field of the message before it, ``*`` only right after a repeated
    message field (AIP-161), which may also be entered without it."""
    parts = path.split(".")
    node: Descriptor | None = descriptor
    after_repeated = False
    for part in parts:
        if part == "*" and after_repeated:
            after_repeated = False
            continue
        field = node.fields_by_name.get(part) if node is not None else None
        if field is None:
            return False
        node = field.message_type
        after_repeated = field.is_repeated and node is not None
    return True


def mask_tree(paths: Iterable[str]) -> MaskTree:
    """``paths`` of a read mask (validated already) as a tree. A ``*`` segment (AIP-161:
    every element of a repeated field) is dropped, so ``series.*.opened`` and
    ``series.opened`` mean the same; a path naming a whole field wins over paths into it."""
    tree: MaskTree = {}
    for path in paths:
        parts = [p for p in path.split(".") if p != "*"]
        node = tree
        for i, part in enumerate(parts):
            if part in node and node[part] is None:
                break  # the whole field is asked for already
            if i == len(parts) - 1:
                node[part] = None
            else:
                sub = node.get(part)
                if sub is None:
                    sub = node[part] = {}
                node = sub
    return tree


def keep_only(message: Message, tree: MaskTree) -> None:
    """Clear every field of ``message`` that ``tree`` does not name (a partial response,
    AIP-157); a tree under a repeated message field applies to each element."""
    for field, value in message.ListFields():
        if field.name not in tree:
            message.ClearField(field.name)
            continue
        sub = tree[field.name]
        if not sub or field.message_type is None:
            continue
        if field.is_repeated:
            for element in value:
                keep_only(element, sub)
        else:
            keep_only(value, sub)
