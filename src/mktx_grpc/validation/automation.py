"""Validation rules for AutomationService requests (run before the unit of work).

The whole graph is checked here for CreateFlow; UpdateFlow's graph is checked by the
servicer once the masked fields are merged into the stored draft (the same domain
rules, the same field paths)."""

from __future__ import annotations

from mktx.v1 import automation_pb2 as P

from ..core.errors import FieldViolation
from ..domain import automation as domain
from ..mapping.automation import UPDATABLE, definition_from_proto
from . import rules


def _etag(value: str) -> list[FieldViolation]:
    return rules.text_field(value, "etag", max_len=100)


def create_flow(req: P.CreateFlowRequest) -> list[FieldViolation]:
    v = rules.request_id(req.request_id)
    if not req.HasField("flow"):
        return [*v, FieldViolation("flow", "is required")]
    f = req.flow
    v += domain.validate_flow_fields(f.name, f.description, "flow.")
    v += rules.uuid_field(f.account_id, "flow.account_id")
    v += domain.validate_definition(definition_from_proto(f), "flow.")
    return v


def update_flow(req: P.UpdateFlowRequest) -> list[FieldViolation]:
    f = req.flow
    v = rules.uuid_field(f.id, "flow.id")
    v += rules.mask_paths(req.update_mask, UPDATABLE, required=True)
    v += _etag(req.etag)
    paths = set(req.update_mask.paths)
    fields = domain.validate_flow_fields(f.name, f.description, "flow.")
    v += [x for x in fields if x.field.removeprefix("flow.") in paths]
    return v


def list_flows(req: P.ListFlowsRequest) -> list[FieldViolation]:
    v = rules.page(req)
    v += rules.uuid_field(req.account_id, "account_id", required=False)
    v += rules.enum_field(req.status, "status", P.FlowStatus, required=False)
    v += rules.enum_field(req.trigger_type, "trigger_type", P.FlowTriggerType, required=False)
    return v


def id_and_etag(
    req: P.ActivateFlowRequest | P.DeleteFlowRequest | P.DeactivateFlowRequest,
) -> list[FieldViolation]:
    return rules.uuid_field(req.id, "id") + _etag(req.etag)


def start_flow_execution(req: P.StartFlowExecutionRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.flow_id, "flow_id")
    v += rules.uuid_field(req.contact_id, "contact_id")
    v += rules.request_id(req.request_id)
    return v


def list_flow_executions(req: P.ListFlowExecutionsRequest) -> list[FieldViolation]:
    v = rules.page(req)
    v += rules.uuid_field(req.flow_id, "flow_id")
    v += rules.uuid_field(req.contact_id, "contact_id", required=False)
    v += rules.enum_field(req.status, "status", P.FlowExecutionStatus, required=False)
    return v
