"""Shared set-up for the automation tests: flows built as protos, the engine's loops
run in turn (the trigger consumer, the step runner, the DM ledger's sender)."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from campaign_helpers import scalar
from google.protobuf.struct_pb2 import Struct
from psycopg.rows import dict_row

from mktx.v1 import automation_pb2 as P
from mktx.v1 import automation_pb2_grpc
from mktx_grpc.worker.automation import AUTOMATION_TRIGGERS, run_due_steps
from mktx_grpc.worker.consumer import drain
from mktx_grpc.worker.outbound import dispatch_outbound


def stub(api) -> Any:
    return automation_pb2_grpc.AutomationServiceStub(api.channel)


def struct(**values: Any) -> Struct:
    s = Struct()
    s.update(values)
    return s


def n(node_id: str, type_: str, **config: Any) -> P.FlowNode:
    return P.FlowNode(id=node_id, type=f"FLOW_NODE_TYPE_{type_}", config=struct(**config))


def c(a: str, b: str, branch: str = "") -> P.FlowConnection:
    return P.FlowConnection(from_node_id=a, to_node_id=b, branch=branch)


def chain(*ids: str) -> list[P.FlowConnection]:
    return [c(a, b) for a, b in zip(("trigger", *ids[:-1]), ids, strict=True)]


def flow(
    account_id: str,
    trigger: str,
    nodes: list[P.FlowNode],
    connections: list[P.FlowConnection],
    *,
    name: str = "",
    reentry: str = "",
    **trigger_config: Any,
) -> P.Flow:
    import uuid

    t = P.FlowTrigger(type=f"FLOW_TRIGGER_TYPE_{trigger}", config=struct(**trigger_config))
    if reentry:
        t.reentry = P.FlowReentryPolicy.Value(f"FLOW_REENTRY_POLICY_{reentry}")
    return P.Flow(
        name=name or f"flow-{uuid.uuid4().hex[:8]}",
        account_id=account_id,
        trigger=t,
        nodes=nodes,
        connections=connections,
    )


async def create_active(api, merchant, f: P.Flow) -> P.Flow:
    s, md = stub(api), api.auth(merchant)
    created = await s.CreateFlow(P.CreateFlowRequest(flow=f), metadata=md)
    return await s.ActivateFlow(P.ActivateFlowRequest(id=created.id), metadata=md)


async def engine_pass(deps, *, send: bool = True) -> None:
    await drain(deps.pool, AUTOMATION_TRIGGERS)
    while await run_due_steps(deps):
        pass
    if send:
        await dispatch_outbound(deps)


async def run_until(
    deps, done: Callable[[], Awaitable[bool]], *, timeout: float = 60.0, send: bool = True
) -> None:
    """Engine passes until ``done`` (bounded: up to a minute on a loaded box, as the
    other bounded waits of the suite; not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        await engine_pass(deps, send=send)
        if await done():
            return
        if time.monotonic() > deadline:
            raise AssertionError("the flow did not get there in time")
        await asyncio.sleep(0.02)


async def executions(db, flow_id: str) -> list[dict[str, Any]]:
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM flow_executions WHERE flow_id = %s ORDER BY started_at, id", (flow_id,)
        )
        return await cur.fetchall()


async def steps(db, execution_id) -> list[tuple[str, str, str]]:
    rows = await (
        await db.execute(
            "SELECT node_id, status, branch FROM flow_execution_steps WHERE execution_id = %s"
            " ORDER BY step_no",
            (execution_id,),
        )
    ).fetchall()
    return [tuple(r) for r in rows]


async def fast_forward(db, flow_id: str) -> None:
    """Make the flow's waiting timers due now (the shortened wait)."""
    await db.execute(
        "UPDATE flow_executions SET due_at = now() WHERE flow_id = %s AND status = 'WAITING'",
        (flow_id,),
    )


async def emit(db, merchant, type_: str, payload: dict[str, Any]) -> int:
    """Append an outbox event as ingestion would (same payload shape)."""
    import json

    row = await (
        await db.execute(
            "INSERT INTO domain_events (merchant_id, type, aggregate_id, payload)"
            " VALUES (%s, %s, %s, %s::jsonb) RETURNING id",
            (merchant, type_, payload.get("contact_id"), json.dumps(payload)),
        )
    ).fetchone()
    return int(row[0])


class Shop:
    """A connected account whose webhooks reach the sidecar, and its customers."""

    def __init__(self, api, merchant, sandbox, owner, account_id: str) -> None:
        self.api, self.merchant, self.sandbox = api, merchant, sandbox
        self.owner, self.account_id = owner, account_id

    def customer(self, name: str = "Alice Smith") -> Any:
        uid = str(1_800_000_000_000_000_000 + secrets.randbelow(10**17))
        return self.sandbox.state.add_user(uid, f"u{uid[-8:]}", name)

    async def _admin(self, path: str, body: dict[str, Any]) -> None:
        async with httpx.AsyncClient(base_url=self.sandbox.base_url) as admin:
            resp = await admin.post(path, json=body)
            assert resp.status_code in (200, 201), resp.text

    async def follow(self, customer) -> None:
        await self._admin(
            "/_sandbox/follows", {"source_user_id": customer.id, "target_user_id": self.owner.id}
        )

    async def dm(self, customer, text: str) -> None:
        await self._admin(
            "/_sandbox/dms/inbound",
            {"sender_id": customer.id, "recipient_id": self.owner.id, "text": text},
        )

    def texts_to(self, customer) -> list[str]:
        return [
            d.text
            for d in self.sandbox.state.sent_dms(self.owner.id)
            if d.recipient_id == customer.id and d.source == "api"
        ]


async def contact_id_of(db, merchant, customer) -> uuid.UUID | None:
    return await scalar(
        db,
        "SELECT id FROM contacts WHERE merchant_id = %s AND x_user_id = %s",
        merchant,
        customer.id,
    )
