"""AutomationService: proto in, domain call, proto out. No SQL here.

Flows keep a draft (always editable) and immutable published versions: ActivateFlow
publishes the draft as the next version; executions run on the version they
started on (see domain/automation.py and worker/automation.py)."""

from __future__ import annotations

import uuid
from uuid import UUID

import grpc
from google.protobuf.empty_pb2 import Empty

from mktx.v1 import automation_pb2 as P
from mktx.v1 import automation_pb2_grpc

from ..core.context import current_principal
from ..core.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from ..core.pagination import decode_time_cursor, effective_page_size, time_page
from ..deps import Deps
from ..domain import automation as domain
from ..mapping.automation import (
    EXECUTION_STATUS_NAMES,
    FLOW_STATUS_NAMES,
    definition_from_proto,
    execution_to_proto,
    flow_to_proto,
    stats_to_proto,
    trigger_type_name,
)
from ..store import Row, check_etag
from ..store import accounts as accounts_store
from ..store import automation as store
from ..store import contacts as contacts_store
from ..store.idempotency import create_once


async def _check_references(
    merchant: UUID, d: domain.Definition, prefix: str
) -> list[FieldViolation]:
    """Templates and flows the definition names that are not the merchant's."""
    refs = domain.references(d, prefix)
    v: list[FieldViolation] = []
    templates = await store.existing_templates(merchant, [i for _, i in refs.template_ids])
    for field, tid in refs.template_ids:
        if str(UUID(tid)) not in templates:
            v.append(FieldViolation(field, "names no template of yours"))
    flows = await store.existing_flows(merchant, [i for _, i in refs.flow_ids])
    for field, fid in refs.flow_ids:
        if str(UUID(fid)) not in flows:
            v.append(FieldViolation(field, "names no flow of yours"))
    return v


async def _checked(
    merchant: UUID, d: domain.Definition, prefix: str = "", *, complete: bool = False
) -> None:
    v = domain.validate_definition(d, prefix, complete=complete)
    if not v:
        v = await _check_references(merchant, d, prefix)
    if v:
        raise InvalidArgument(v)


class AutomationServicer(automation_pb2_grpc.AutomationServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def _row(self, merchant: UUID, flow_id: str) -> Row:
        row = await store.get_flow(merchant, UUID(flow_id))
        if row is None:
            raise NotFound("flow", flow_id)
        return row

    async def _locked(self, merchant: UUID, flow_id: str, etag: str) -> Row:
        row = await store.lock_flow(merchant, UUID(flow_id))
        if row is None:
            raise NotFound("flow", flow_id)
        check_etag(etag, row, "flow")
        return row

    async def _flow(self, merchant: UUID, flow_id: UUID, *, with_stats: bool = True) -> P.Flow:
        row = await self._row(merchant, str(flow_id))
        if not with_stats:
            return flow_to_proto(row)
        totals, nodes = await store.stats(merchant, flow_id)
        order = [n.id for n in domain.Definition.from_json(row["definition"]).nodes]
        return flow_to_proto(row, stats_to_proto(totals, nodes, order))

    async def CreateFlow(
        self, request: P.CreateFlowRequest, context: grpc.aio.ServicerContext
    ) -> P.Flow:
        merchant = current_principal().merchant_id
        f = request.flow
        d = definition_from_proto(f)

        async def create() -> tuple[UUID, P.Flow]:
            if await accounts_store.get(merchant, UUID(f.account_id)) is None:
                raise NotFound("account", f.account_id)
            await _checked(merchant, d, "flow.")
            flow_id = await store.insert_flow(
                merchant,
                UUID(f.account_id),
                f.name.strip(),
                f.description,
                d.to_json(),
                d.trigger.type,
            )
            return flow_id, await self._flow(merchant, flow_id)

        async def load(flow_id: UUID) -> P.Flow:
            return await self._flow(merchant, flow_id)

        return await create_once(merchant, "flow", request.request_id, create, load)

    async def GetFlow(self, request: P.GetFlowRequest, context: grpc.aio.ServicerContext) -> P.Flow:
        return await self._flow(current_principal().merchant_id, UUID(request.id))

    async def ListFlows(
        self, request: P.ListFlowsRequest, context: grpc.aio.ServicerContext
    ) -> P.ListFlowsResponse:
        merchant = current_principal().merchant_id
        filters = ["flows", str(merchant), request.account_id, request.status, request.trigger_type]
        tokens = self._deps.page_tokens
        after = decode_time_cursor(tokens, request.page_token, filters)
        size = effective_page_size(request.page_size)
        rows = await store.list_flows(
            merchant,
            account_id=UUID(request.account_id) if request.account_id else None,
            status=FLOW_STATUS_NAMES.get(request.status),
            trigger_type=trigger_type_name(request.trigger_type) if request.trigger_type else None,
            after=after,
            limit=size + 1,
        )
        page, next_token = time_page(tokens, rows, size, filters)
        return P.ListFlowsResponse(
            flows=[flow_to_proto(r) for r in page], next_page_token=next_token
        )

    async def UpdateFlow(
        self, request: P.UpdateFlowRequest, context: grpc.aio.ServicerContext
    ) -> P.Flow:
        merchant = current_principal().merchant_id
        row = await self._locked(merchant, request.flow.id, request.etag)
        paths = set(request.update_mask.paths)
        current = domain.Definition.from_json(row["definition"])
        incoming = definition_from_proto(request.flow)
        if "trigger" in paths:
            current.trigger = incoming.trigger
        if "nodes" in paths:
            current.nodes = incoming.nodes
        if "connections" in paths:
            current.connections = incoming.connections
        name = request.flow.name.strip() if "name" in paths else row["name"]
        description = request.flow.description if "description" in paths else row["description"]
        await _checked(merchant, current, "flow.")
        await store.update_flow(
            merchant,
            row["id"],
            name=name,
            description=description,
            definition=current.to_json(),
            trigger_type=current.trigger.type,
        )
        return await self._flow(merchant, row["id"])

    async def ActivateFlow(
        self, request: P.ActivateFlowRequest, context: grpc.aio.ServicerContext
    ) -> P.Flow:
        merchant = current_principal().merchant_id
        row = await self._locked(merchant, request.id, request.etag)
        published = None
        if row["published_version"]:
            published = await store.flow_version(merchant, row["id"], row["published_version"])
        unchanged = published is not None and published == row["definition"]
        if row["status"] == "ACTIVE" and unchanged:
            return await self._flow(merchant, row["id"])
        d = domain.Definition.from_json(row["definition"])
        await _checked(merchant, d, complete=True)
        account = await accounts_store.get(merchant, row["account_id"])
        if account is None or account["status"] != "ACTIVE":
            raise FailedPrecondition(
                "the flow's account is not ACTIVE; reconnect it first",
                reason="ACCOUNT_NOT_ACTIVE",
            )
        if unchanged:
            await store.activate_published(merchant, row["id"], row["published_version"])
        else:
            await store.publish(
                merchant, row["id"], row["published_version"] + 1, d.to_json(), d.trigger.type
            )
        return await self._flow(merchant, row["id"])

    async def DeactivateFlow(
        self, request: P.DeactivateFlowRequest, context: grpc.aio.ServicerContext
    ) -> P.Flow:
        merchant = current_principal().merchant_id
        row = await self._locked(merchant, request.id, request.etag)
        if row["status"] == "ACTIVE":
            await store.deactivate(merchant, row["id"])
        if request.cancel_executions:
            await store.cancel_executions(merchant, flow_id=row["id"])
        return await self._flow(merchant, row["id"])

    async def DeleteFlow(
        self, request: P.DeleteFlowRequest, context: grpc.aio.ServicerContext
    ) -> Empty:
        merchant = current_principal().merchant_id
        row = await self._locked(merchant, request.id, request.etag)
        if row["status"] == "ACTIVE":
            raise FailedPrecondition(
                "an ACTIVE flow cannot be deleted; deactivate it first", reason="RESOURCE_IN_USE"
            )
        live = await store.live_execution_count(merchant, row["id"])
        if live:
            raise FailedPrecondition(
                f"{live} executions of the flow are still running or waiting; cancel them"
                " (DeactivateFlow with cancel_executions) first",
                reason="RESOURCE_IN_USE",
            )
        await store.delete_flow(merchant, row["id"])
        return Empty()

    async def StartFlowExecution(
        self, request: P.StartFlowExecutionRequest, context: grpc.aio.ServicerContext
    ) -> P.FlowExecution:
        merchant = current_principal().merchant_id
        row = await self._row(merchant, request.flow_id)
        contact = await contacts_store.get(merchant, UUID(request.contact_id))
        if contact is None or contact["account_id"] != row["account_id"]:
            raise NotFound("contact", request.contact_id)

        async def create() -> tuple[UUID, P.FlowExecution]:
            if not row["published_version"] or row["published_definition"] is None:
                raise FailedPrecondition(
                    "the flow has no published version; activate it once first",
                    reason="FLOW_NOT_PUBLISHED",
                )
            account = await accounts_store.get(merchant, row["account_id"])
            if account is None or account["status"] != "ACTIVE":
                raise FailedPrecondition(
                    "the flow's account is not ACTIVE", reason="ACCOUNT_NOT_ACTIVE"
                )
            # A manual start without a request id is its own trigger event.
            key = f"manual:{request.request_id or uuid.uuid4().hex}"
            started = await store.start_execution(
                merchant,
                flow_id=row["id"],
                flow_version=row["published_version"],
                definition=row["published_definition"],
                account_id=row["account_id"],
                contact_id=contact["id"],
                conversation_id=None,
                trigger_key=key,
                trigger_event={"type": "manual", "actor_user_id": current_principal().user_id},
                check_reentry=False,
            )
            if started is None:
                raise AlreadyExists(
                    "the contact already has a RUNNING or WAITING execution of this flow"
                )
            return started["id"], execution_to_proto(started)

        async def load(execution_id: UUID) -> P.FlowExecution:
            return await self._execution(merchant, execution_id)

        return await create_once(merchant, "flow_execution", request.request_id, create, load)

    async def _execution(
        self, merchant: UUID, execution_id: UUID, *, steps: bool = True
    ) -> P.FlowExecution:
        row = await store.get_execution(merchant, execution_id)
        if row is None:
            raise NotFound("flow execution", str(execution_id))
        return execution_to_proto(
            row, await store.execution_steps(merchant, execution_id) if steps else None
        )

    async def CancelFlowExecution(
        self, request: P.CancelFlowExecutionRequest, context: grpc.aio.ServicerContext
    ) -> P.FlowExecution:
        merchant = current_principal().merchant_id
        row = await store.get_execution(merchant, UUID(request.id), lock=True)
        if row is None:
            raise NotFound("flow execution", request.id)
        await store.cancel_executions(merchant, execution_id=row["id"])
        return await self._execution(merchant, row["id"])

    async def ListFlowExecutions(
        self, request: P.ListFlowExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> P.ListFlowExecutionsResponse:
        merchant = current_principal().merchant_id
        await self._row(merchant, request.flow_id)
        filters = [
            "flow_executions",
            str(merchant),
            request.flow_id,
            request.status,
            request.contact_id,
        ]
        tokens = self._deps.page_tokens
        after = decode_time_cursor(tokens, request.page_token, filters)
        size = effective_page_size(request.page_size)
        rows = await store.list_executions(
            merchant,
            UUID(request.flow_id),
            status=EXECUTION_STATUS_NAMES.get(request.status),
            contact_id=UUID(request.contact_id) if request.contact_id else None,
            after=after,
            limit=size + 1,
        )
        page, next_token = time_page(tokens, rows, size, filters, time_key="started_at")
        return P.ListFlowExecutionsResponse(
            executions=[execution_to_proto(r) for r in page], next_page_token=next_token
        )

    async def GetFlowExecution(
        self, request: P.GetFlowExecutionRequest, context: grpc.aio.ServicerContext
    ) -> P.FlowExecution:
        return await self._execution(current_principal().merchant_id, UUID(request.id))
