"""Proto ⇄ domain and row conversions for automation flows and executions."""

from __future__ import annotations

from typing import Any

from google.protobuf.struct_pb2 import Struct

from mktx.v1 import automation_pb2 as P

from ..domain import automation as domain
from ..store import Row, etag_of
from .common import struct_to_dict, ts

#: Update mask paths of UpdateFlow.
UPDATABLE = ("name", "description", "trigger", "nodes", "connections")

_TRIGGER_PREFIX = "FLOW_TRIGGER_TYPE_"
_NODE_PREFIX = "FLOW_NODE_TYPE_"
_REENTRY_PREFIX = "FLOW_REENTRY_POLICY_"


def _name(enum: Any, value: int, prefix: str) -> str:
    """The enum value's name without its prefix; "UNKNOWN" for a number the contract
    does not have (validation rejects it)."""
    try:
        return str(enum.Name(value)).removeprefix(prefix)
    except ValueError:
        return "UNKNOWN"


def _ints(value: Any) -> Any:
    """Struct numbers come as floats: whole ones become ints again (weights, weekdays)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def _struct(value: dict[str, Any]) -> Struct:
    s = Struct()
    s.update(value)
    return s


def trigger_from_proto(t: P.FlowTrigger) -> domain.Trigger:
    reentry = _name(P.FlowReentryPolicy, t.reentry, _REENTRY_PREFIX)
    return domain.Trigger(
        type=_name(P.FlowTriggerType, t.type, _TRIGGER_PREFIX),
        config=_ints(struct_to_dict(t.config)),
        reentry="EVERY_TIME" if reentry == "UNSPECIFIED" else reentry,
        reentry_cooldown_s=t.reentry_cooldown.seconds + t.reentry_cooldown.nanos / 1e9,
    )


def definition_from_proto(flow: P.Flow) -> domain.Definition:
    return domain.Definition(
        trigger=trigger_from_proto(flow.trigger),
        nodes=[
            domain.Node(
                id=n.id,
                type=_name(P.FlowNodeType, n.type, _NODE_PREFIX),
                name=n.name,
                config=_ints(struct_to_dict(n.config)),
                x=n.position.x,
                y=n.position.y,
            )
            for n in flow.nodes
        ],
        connections=[
            domain.Connection(c.from_node_id, c.to_node_id, c.branch or domain.DEFAULT)
            for c in flow.connections
        ],
    )


def _trigger_to_proto(t: domain.Trigger) -> P.FlowTrigger:
    out = P.FlowTrigger(
        type=_TRIGGER_PREFIX + t.type
        if _TRIGGER_PREFIX + t.type in P.FlowTriggerType.keys()
        else "FLOW_TRIGGER_TYPE_UNSPECIFIED",
        config=_struct(t.config),
        reentry=_REENTRY_PREFIX + t.reentry,
    )
    if t.reentry_cooldown_s:
        secs = int(t.reentry_cooldown_s)
        out.reentry_cooldown.seconds = secs
        out.reentry_cooldown.nanos = round((t.reentry_cooldown_s - secs) * 1e9)
    return out


def node_type_value(name: str) -> str:
    key = _NODE_PREFIX + name
    return key if key in P.FlowNodeType.keys() else "FLOW_NODE_TYPE_UNSPECIFIED"


def _graph_to_proto(d: domain.Definition) -> tuple[list[P.FlowNode], list[P.FlowConnection]]:
    nodes = [
        P.FlowNode(
            id=n.id,
            type=node_type_value(n.type),
            name=n.name,
            config=_struct(n.config),
            position=P.FlowNodePosition(x=n.x, y=n.y),
        )
        for n in d.nodes
    ]
    conns = [
        P.FlowConnection(from_node_id=c.from_node, to_node_id=c.to_node, branch=c.branch)
        for c in d.connections
    ]
    return nodes, conns


def flow_to_proto(row: Row, stats: P.FlowStats | None = None) -> P.Flow:
    """A flow row (flows.* plus ``published_definition``, ``published_at`` from the
    latest version when there is one)."""
    draft = domain.Definition.from_json(row["definition"])
    nodes, conns = _graph_to_proto(draft)
    out = P.Flow(
        id=str(row["id"]),
        name=row["name"],
        description=row["description"],
        account_id=str(row["account_id"]),
        status="FLOW_STATUS_" + row["status"],
        trigger=_trigger_to_proto(draft.trigger),
        nodes=nodes,
        connections=conns,
        version=row["version"],
        activate_time=ts(row["activated_at"]),
        create_time=ts(row["created_at"]),
        update_time=ts(row["updated_at"]),
        etag=etag_of(row["id"], row["version"]),
        published_version=row["published_version"],
    )
    published = row.get("published_definition")
    if published is not None:
        pub = domain.Definition.from_json(published)
        pnodes, pconns = _graph_to_proto(pub)
        out.published.CopyFrom(
            P.FlowVersion(
                version=row["published_version"],
                trigger=_trigger_to_proto(pub.trigger),
                nodes=pnodes,
                connections=pconns,
                publish_time=ts(row["published_at"]),
            )
        )
        out.has_unpublished_changes = published != row["definition"]
    else:
        out.has_unpublished_changes = True
    if stats is not None:
        out.stats.CopyFrom(stats)
    return out


def stats_to_proto(totals: Row | None, per_node: list[Row], order: list[str]) -> P.FlowStats:
    out = P.FlowStats()
    if totals is not None:
        out.started_count = totals["started"]
        out.active_count = totals["active"]
        out.waiting_count = totals["waiting"]
        out.completed_count = totals["completed"]
        out.failed_count = totals["failed"]
        out.cancelled_count = totals["cancelled"]
        last = ts(totals["last_start"])
        if last is not None:
            out.last_start_time.CopyFrom(last)
    rank = {nid: i for i, nid in enumerate(order)}
    for r in sorted(per_node, key=lambda r: (rank.get(r["node_id"], len(rank)), r["node_id"])):
        out.nodes.append(
            P.FlowNodeStats(
                node_id=r["node_id"],
                entered_count=r["entered"],
                completed_count=r["completed"],
                waiting_count=r["waiting"],
                failed_count=r["failed"],
            )
        )
    return out


_STEP_STATUS = ("RUNNING", "WAITING", "COMPLETED", "FAILED", "SKIPPED")


def execution_to_proto(row: Row, steps: list[Row] | None = None) -> P.FlowExecution:
    out = P.FlowExecution(
        id=str(row["id"]),
        flow_id=str(row["flow_id"]),
        flow_version=row["flow_version"],
        contact_id=str(row["contact_id"]),
        conversation_id=str(row["conversation_id"]) if row["conversation_id"] else "",
        status="FLOW_EXECUTION_STATUS_" + row["status"],
        current_node_id=row["current_node_id"] if row["status"] in ("RUNNING", "WAITING") else "",
        wake_time=ts(row["wake_at"]) if row["status"] == "WAITING" else None,
        trigger_event=_struct(row["trigger_event"] or {}),
        start_time=ts(row["started_at"]),
        complete_time=ts(row["completed_at"]),
        error=row["error"],
    )
    for s in steps or []:
        out.steps.append(
            P.FlowExecutionStep(
                node_id=s["node_id"],
                node_type=node_type_value(s["node_type"]),
                status="FLOW_STEP_STATUS_"
                + (s["status"] if s["status"] in _STEP_STATUS else "UNSPECIFIED"),
                branch=s["branch"],
                start_time=ts(s["started_at"]),
                end_time=ts(s["finished_at"]),
                output=_struct(s["output"] or {}),
                error=s["error"],
            )
        )
    return out


FLOW_STATUS_NAMES = {
    P.FLOW_STATUS_DRAFT: "DRAFT",
    P.FLOW_STATUS_ACTIVE: "ACTIVE",
    P.FLOW_STATUS_INACTIVE: "INACTIVE",
}
EXECUTION_STATUS_NAMES = {
    v: k.removeprefix("FLOW_EXECUTION_STATUS_") for k, v in P.FlowExecutionStatus.items() if v != 0
}


def trigger_type_name(value: int) -> str:
    return _name(P.FlowTriggerType, value, _TRIGGER_PREFIX)
