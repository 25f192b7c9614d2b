"""Validation rules for TemplatesService requests."""

from __future__ import annotations

from mktx.v1 import templates_pb2

from ..core.errors import FieldViolation
from ..domain.templates import normalize_tags, validate_template
from ..mapping.templates import UPDATABLE, draft_from_proto
from . import rules


def create_template(req: templates_pb2.CreateTemplateRequest) -> list[FieldViolation]:
    v = rules.request_id(req.request_id)
    if not req.HasField("template"):
        return [*v, FieldViolation("template", "is required")]
    v += rules.enum_field(req.template.type, "template.type", templates_pb2.TemplateType)
    draft = draft_from_proto(req.template)
    draft.tags = normalize_tags(draft.tags)
    v += rules.prefixed("template", validate_template(draft))
    return v


def update_template(req: templates_pb2.UpdateTemplateRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.template.id, "template.id")
    v += rules.mask_paths(req.update_mask, UPDATABLE, required=True)
    return v


def list_templates(req: templates_pb2.ListTemplatesRequest) -> list[FieldViolation]:
    v = rules.page(req)
    v += rules.enum_field(req.type, "type", templates_pb2.TemplateType, required=False)
    v += rules.text_field(req.name_contains, "name_contains", max_len=200)
    return v


def delete_template(req: templates_pb2.DeleteTemplateRequest) -> list[FieldViolation]:
    return rules.uuid_field(req.id, "id")


def preview_template(req: templates_pb2.PreviewTemplateRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.id, "id")
    for key, value in req.variables.items():
        if len(value) > 10_000:
            v.append(FieldViolation(f"variables.{key}", "must be at most 10000 characters"))
    return v
