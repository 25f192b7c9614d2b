"""SegmentsService: proto in, domain call, proto out. No SQL here.

A campaign id named in a condition must be one of the caller's campaigns: another
merchant's (or an unknown) campaign is NOT_FOUND with resource "campaign", rather
than a condition that silently matches nobody.
"""

from __future__ import annotations

from uuid import UUID

import grpc
from google.protobuf.empty_pb2 import Empty

from mktx.v1 import segments_pb2, segments_pb2_grpc

from ..core.context import current_principal
from ..core.errors import FailedPrecondition, InvalidArgument, NotFound
from ..core.pagination import decode_time_cursor, effective_page_size, time_page
from ..deps import Deps
from ..domain import segments as domain
from ..mapping.contacts import contact_to_proto
from ..mapping.segments import draft_from_proto, segment_to_proto
from ..store import Row, check_etag
from ..store import accounts as accounts_store
from ..store import segments as store
from ..store.idempotency import create_once
from ..validation.rules import prefixed


def _checked(d: store.SegmentDraft) -> store.SegmentDraft:
    violations = domain.validate_segment_fields(d.name, d.description)
    violations += domain.validate_conditions(domain.conditions_from_json(d.conditions))
    if violations:
        raise InvalidArgument(prefixed("segment", violations))
    return d


async def _check_references(
    merchant: UUID, account_id: UUID | None, group: segments_pb2.ConditionGroup
) -> None:
    """NOT_FOUND for an account or a condition's campaign that is not the merchant's."""
    if account_id is not None and await accounts_store.get(merchant, account_id) is None:
        raise NotFound("account", str(account_id))
    missing = await store.missing_campaigns(merchant, domain.campaign_ids(group))
    if missing:
        raise NotFound("campaign", missing[0])


async def _refuse_if_in_use(merchant: UUID, segment_id: UUID, what: str) -> None:
    users = await store.live_campaigns_using(merchant, segment_id)
    if users:
        names = ", ".join(f"{u['name']} ({u['status'].lower()})" for u in users)
        raise FailedPrecondition(
            f"cannot {what} a segment used by live campaigns: {names}",
            reason="RESOURCE_IN_USE",
            metadata={"campaign_ids": ",".join(str(u["id"]) for u in users)},
        )


class SegmentsServicer(segments_pb2_grpc.SegmentsServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def _load(self, merchant_id: UUID, segment_id: str, *, for_update: bool = False) -> Row:
        row = await store.get(merchant_id, UUID(segment_id), for_update=for_update)
        if row is None:
            raise NotFound("segment", segment_id)
        return row

    async def CreateSegment(
        self, request: segments_pb2.CreateSegmentRequest, context: grpc.aio.ServicerContext
    ) -> segments_pb2.Segment:
        merchant = current_principal().merchant_id
        draft = _checked(draft_from_proto(request.segment))

        async def create() -> tuple[UUID, segments_pb2.Segment]:
            await _check_references(merchant, draft.account_id, request.segment.conditions)
            count = await store.count_matching(merchant, draft.conditions, draft.account_id)
            row = await store.insert(merchant, draft, count)
            return row["id"], segment_to_proto(row)

        async def load(segment_id: UUID) -> segments_pb2.Segment:
            return segment_to_proto(await self._load(merchant, str(segment_id)))

        return await create_once(merchant, "segment", request.request_id, create, load)

    async def GetSegment(
        self, request: segments_pb2.GetSegmentRequest, context: grpc.aio.ServicerContext
    ) -> segments_pb2.Segment:
        return segment_to_proto(await self._load(current_principal().merchant_id, request.id))

    async def ListSegments(
        self, request: segments_pb2.ListSegmentsRequest, context: grpc.aio.ServicerContext
    ) -> segments_pb2.ListSegmentsResponse:
        merchant = current_principal().merchant_id
        filters = ["segments", str(merchant), request.account_id, request.name_contains]
        tokens = self._deps.page_tokens
        after = decode_time_cursor(tokens, request.page_token, filters)
        size = effective_page_size(request.page_size)
        rows = await store.list_page(
            merchant,
            account_id=UUID(request.account_id) if request.account_id else None,
            name_contains=request.name_contains,
            after=after,
            limit=size + 1,
        )
        page, next_token = time_page(tokens, rows, size, filters)
        return segments_pb2.ListSegmentsResponse(
            segments=[segment_to_proto(r) for r in page], next_page_token=next_token
        )

    async def UpdateSegment(
        self, request: segments_pb2.UpdateSegmentRequest, context: grpc.aio.ServicerContext
    ) -> segments_pb2.Segment:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.segment.id, for_update=True)
        check_etag(request.etag, row, "segment")
        current = store.draft_from_row(row)
        incoming = draft_from_proto(request.segment)
        for path in request.update_mask.paths:
            setattr(current, path, getattr(incoming, path))
        draft = _checked(current)
        audience_changed = (
            draft.account_id != row["account_id"] or draft.conditions != row["conditions"]
        )
        count = None
        if audience_changed:
            await _refuse_if_in_use(merchant, row["id"], "change the audience of")
            await _check_references(
                merchant, draft.account_id, domain.conditions_from_json(draft.conditions)
            )
            count = await store.count_matching(merchant, draft.conditions, draft.account_id)
        return segment_to_proto(await store.update(merchant, row["id"], draft, count))

    async def DeleteSegment(
        self, request: segments_pb2.DeleteSegmentRequest, context: grpc.aio.ServicerContext
    ) -> Empty:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.id, for_update=True)
        check_etag(request.etag, row, "segment")
        await _refuse_if_in_use(merchant, row["id"], "delete")
        await store.delete(merchant, row["id"])
        return Empty()

    async def PreviewSegment(
        self, request: segments_pb2.PreviewSegmentRequest, context: grpc.aio.ServicerContext
    ) -> segments_pb2.PreviewSegmentResponse:
        merchant = current_principal().merchant_id
        if request.WhichOneof("source") == "segment_id":
            row = await self._load(merchant, request.segment_id)
            conditions, account_id = row["conditions"], row["account_id"]
        else:
            account_id = UUID(request.account_id) if request.account_id else None
            await _check_references(merchant, account_id, request.conditions)
            conditions = domain.conditions_to_json(request.conditions)
        size = request.sample_size or domain.DEFAULT_PREVIEW_SAMPLE
        total, rows = await store.count_and_sample(merchant, conditions, account_id, size)
        return segments_pb2.PreviewSegmentResponse(
            total_count=total, sample_contacts=[contact_to_proto(r) for r in rows]
        )

    async def RefreshSegmentCount(
        self, request: segments_pb2.RefreshSegmentCountRequest, context: grpc.aio.ServicerContext
    ) -> segments_pb2.Segment:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.id)
        count = await store.count_matching(merchant, row["conditions"], row["account_id"])
        updated = await store.set_count(merchant, row["id"], count)
        if updated is None:  # deleted meanwhile
            raise NotFound("segment", request.id)
        return segment_to_proto(updated)
