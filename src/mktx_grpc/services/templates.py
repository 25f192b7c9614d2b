"""TemplatesService: proto in, domain call, proto out. No SQL here."""

from __future__ import annotations

from uuid import UUID

import grpc
from google.protobuf.empty_pb2 import Empty

from mktx.v1 import common_pb2, templates_pb2, templates_pb2_grpc

from ..core.context import current_principal
from ..core.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from ..core.pagination import decode_time_cursor, effective_page_size, time_page
from ..deps import Deps
from ..domain import templates as domain
from ..mapping.templates import (
    TYPE_TO_DB,
    draft_from_proto,
    template_to_proto,
)
from ..store import Row, check_etag
from ..store import automation as automation_store
from ..store import templates as store
from ..store.idempotency import create_once
from ..validation.rules import prefixed


def _checked(d: domain.TemplateDraft) -> domain.TemplateDraft:
    d.tags = domain.normalize_tags(d.tags)
    violations = domain.validate_template(d)
    if violations:
        raise InvalidArgument(prefixed("template", violations))
    return d


class TemplatesServicer(templates_pb2_grpc.TemplatesServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def _load(self, merchant_id: UUID, template_id: str, *, for_update: bool = False) -> Row:
        if for_update or not self._deps.settings.coalesce_reads:
            row = await store.get(merchant_id, UUID(template_id), for_update=for_update)
        else:
            row = await store.read_one(merchant_id, UUID(template_id))
        if row is None:
            raise NotFound("template", template_id)
        return row

    async def CreateTemplate(
        self, request: templates_pb2.CreateTemplateRequest, context: grpc.aio.ServicerContext
    ) -> templates_pb2.Template:
        merchant = current_principal().merchant_id
        draft = _checked(draft_from_proto(request.template))

        async def create() -> tuple[UUID, templates_pb2.Template]:
            row = await store.insert(merchant, draft)
            return row["id"], template_to_proto(row)

        async def load(template_id: UUID) -> templates_pb2.Template:
            return template_to_proto(await self._load(merchant, str(template_id)))

        return await create_once(merchant, "template", request.request_id, create, load)

    async def GetTemplate(
        self, request: templates_pb2.GetTemplateRequest, context: grpc.aio.ServicerContext
    ) -> templates_pb2.Template:
        return template_to_proto(await self._load(current_principal().merchant_id, request.id))

    async def ListTemplates(
        self, request: templates_pb2.ListTemplatesRequest, context: grpc.aio.ServicerContext
    ) -> templates_pb2.ListTemplatesResponse:
        merchant = current_principal().merchant_id
        filters = ["templates", str(merchant), request.type, request.name_contains]
        tokens = self._deps.page_tokens
        after = decode_time_cursor(tokens, request.page_token, filters)
        size = effective_page_size(request.page_size)
        rows = await store.list_page(
            merchant,
            type_=TYPE_TO_DB.get(request.type),
            name_contains=request.name_contains,
            after=after,
            limit=size + 1,
        )
        page, next_token = time_page(tokens, rows, size, filters)
        return templates_pb2.ListTemplatesResponse(
            templates=[template_to_proto(r) for r in page], next_page_token=next_token
        )

    async def UpdateTemplate(
        self, request: templates_pb2.UpdateTemplateRequest, context: grpc.aio.ServicerContext
    ) -> templates_pb2.Template:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.template.id, for_update=True)
        check_etag(request.etag, row, "template")
        current = store.draft_from_row(row)
        incoming = draft_from_proto(request.template)
        for path in request.update_mask.paths:
            setattr(current, path, getattr(incoming, path))
        updated = await store.update(merchant, row["id"], _checked(current))
        return template_to_proto(updated)

    async def DeleteTemplate(
        self, request: templates_pb2.DeleteTemplateRequest, context: grpc.aio.ServicerContext
    ) -> Empty:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.id, for_update=True)
        check_etag(request.etag, row, "template")
        users = await store.live_campaigns_using(merchant, row["id"])
        flows = await automation_store.flows_using_template(merchant, row["id"])
        if users or flows:
            used: list[str] = []
            metadata: dict[str, str] = {}
            if users:
                names = ", ".join(f"{u['name']} ({u['status'].lower()})" for u in users)
                used.append(f"live campaigns: {names}")
                metadata["campaign_ids"] = ",".join(str(u["id"]) for u in users)
            if flows:
                names = ", ".join(f"{f['name']} ({f['status'].lower()})" for f in flows)
                used.append(f"flows: {names}")
                metadata["flow_ids"] = ",".join(str(f["id"]) for f in flows)
            raise FailedPrecondition(
                f"template is used by {'; '.join(used)}",
                reason="RESOURCE_IN_USE",
                metadata=metadata,
            )
        await store.delete(merchant, row["id"])
        return Empty()

    async def PreviewTemplate(
        self, request: templates_pb2.PreviewTemplateRequest, context: grpc.aio.ServicerContext
    ) -> templates_pb2.PreviewTemplateResponse:
        row = await self._load(current_principal().merchant_id, request.id)
        draft = store.draft_from_row(row)
        try:
            out = domain.render(draft, dict(request.variables))
        except domain.MissingVariables as missing:
            raise InvalidArgument(
                [
                    FieldViolation(f"variables.{name}", "no value given and no fallback")
                    for name in missing.names
                ],
                f"missing values for variables: {', '.join(missing.names)}",
                reason="MISSING_VARIABLES",
            ) from None
        return templates_pb2.PreviewTemplateResponse(
            content=out.content,
            quick_replies=[
                common_pb2.QuickReplyOption(
                    label=q.label, description=q.description, metadata=q.metadata
                )
                for q in out.quick_replies
            ],
            card_media_url=out.card_media_url,
            card_buttons=[
                common_pb2.CardButton(label=b.label, url=b.url) for b in out.card_buttons
            ],
            fallback_variables=out.fallback_variables,
        )
