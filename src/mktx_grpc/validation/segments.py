"""Validation rules for SegmentsService requests."""

from __future__ import annotations

from mktx.v1 import segments_pb2

from ..core.errors import FieldViolation
from ..domain.segments import MAX_PREVIEW_SAMPLE, validate_conditions, validate_segment_fields
from ..mapping.segments import UPDATABLE
from . import rules


def create_segment(req: segments_pb2.CreateSegmentRequest) -> list[FieldViolation]:
    v = rules.request_id(req.request_id)
    if not req.HasField("segment"):
        return [*v, FieldViolation("segment", "is required")]
    s = req.segment
    v += rules.prefixed("segment", validate_segment_fields(s.name, s.description))
    v += rules.uuid_field(s.account_id, "segment.account_id", required=False)
    v += validate_conditions(s.conditions, "segment.conditions")
    return v


def update_segment(req: segments_pb2.UpdateSegmentRequest) -> list[FieldViolation]:
    s = req.segment
    v = rules.uuid_field(s.id, "segment.id")
    v += rules.mask_paths(req.update_mask, UPDATABLE, required=True)
    paths = set(req.update_mask.paths)
    fields = validate_segment_fields(s.name, s.description)
    v += rules.prefixed("segment", [f for f in fields if f.field in paths])
    if "account_id" in paths:
        v += rules.uuid_field(s.account_id, "segment.account_id", required=False)
    if "conditions" in paths:
        v += validate_conditions(s.conditions, "segment.conditions")
    return v


def list_segments(req: segments_pb2.ListSegmentsRequest) -> list[FieldViolation]:
    v = rules.page(req)
    v += rules.uuid_field(req.account_id, "account_id", required=False)
    v += rules.text_field(req.name_contains, "name_contains", max_len=200)
    return v


def delete_segment(req: segments_pb2.DeleteSegmentRequest) -> list[FieldViolation]:
    return rules.uuid_field(req.id, "id")


def preview_segment(req: segments_pb2.PreviewSegmentRequest) -> list[FieldViolation]:
    v: list[FieldViolation] = []
    source = req.WhichOneof("source")
    if source is None:
        v.append(FieldViolation("segment_id", "one of segment_id or conditions is required"))
    elif source == "segment_id":
        v += rules.uuid_field(req.segment_id, "segment_id")
    else:
        v += validate_conditions(req.conditions, "conditions")
        v += rules.uuid_field(req.account_id, "account_id", required=False)
    if req.sample_size < 0:
        v.append(FieldViolation("sample_size", "must not be negative"))
    elif req.sample_size > MAX_PREVIEW_SAMPLE:
        v.append(FieldViolation("sample_size", f"must be at most {MAX_PREVIEW_SAMPLE}"))
    return v
