"""Reusable field checks. Each returns a list of violations (empty when valid)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from ..core.errors import FieldViolation
from ..core.pagination import check_page_size

Rule = Callable[[Any], list[FieldViolation]]

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return len(value) in (32, 36)


def uuid_field(value: str, field: str, *, required: bool = True) -> list[FieldViolation]:
    if not value:
        return [FieldViolation(field, "is required")] if required else []
    if not is_uuid(value):
        return [FieldViolation(field, "must be a UUID")]
    return []


def text_field(
    value: str,
    field: str,
    *,
    required: bool = False,
    max_len: int | None = None,
    min_len: int = 1,
) -> list[FieldViolation]:
    if not value:
        return [FieldViolation(field, "is required")] if required else []
    if required and not value.strip():
        return [FieldViolation(field, "must not be blank")]
    if len(value) < min_len:
        return [FieldViolation(field, f"must be at least {min_len} characters")]
    if max_len is not None and len(value) > max_len:
        return [FieldViolation(field, f"must be at most {max_len} characters")]
    return []


def https_url(value: str, field: str, *, required: bool = False) -> list[FieldViolation]:
    if not value:
        return [FieldViolation(field, "is required")] if required else []
    if len(value) > 2048:
        return [FieldViolation(field, "must be at most 2048 characters")]
    if not value.startswith("https://") or len(value) <= len("https://"):
        return [FieldViolation(field, "must be an https URL")]
    return []


def enum_field(value: int, field: str, enum: Any, *, required: bool = True) -> list[FieldViolation]:
    if value == 0:
        return [FieldViolation(field, "is required")] if required else []
    if value not in enum.values():
        return [FieldViolation(field, "is not a known value")]
    return []


def request_id(value: str, field: str = "request_id") -> list[FieldViolation]:
    if value and not _REQUEST_ID_RE.match(value):
        return [FieldViolation(field, "must be 1-128 characters of [A-Za-z0-9_.:-]")]
    return []


def page(request: Any) -> list[FieldViolation]:
    violations = check_page_size(request.page_size)
    if len(request.page_token) > 2048:
        violations.append(FieldViolation("page_token", "is not a valid page token"))
    return violations


def mask_paths(
    mask: FieldMask, allowed: Iterable[str], field: str = "update_mask", *, required: bool
) -> list[FieldViolation]:
    allowed_set = set(allowed)
    if not mask.paths:
        return [FieldViolation(field, "must name at least one field")] if required else []
    return [
        FieldViolation(f"{field}.paths[{i}]", f"unknown or immutable field {p!r}")
        for i, p in enumerate(mask.paths)
        if p not in allowed_set
    ]


def require_uuid(field: str) -> Rule:
    """A rule checking that the request's top-level ``field`` is a UUID."""

    def rule(request: Message) -> list[FieldViolation]:
        return uuid_field(getattr(request, field), field)

    return rule


def combine(*rules: Rule) -> Rule:
    def rule(request: Any) -> list[FieldViolation]:
        out: list[FieldViolation] = []
        for r in rules:
            out.extend(r(request))
        return out

    return rule


def prefixed(prefix: str, violations: Iterable[FieldViolation]) -> list[FieldViolation]:
    return [FieldViolation(f"{prefix}.{v.field}", v.description) for v in violations]
