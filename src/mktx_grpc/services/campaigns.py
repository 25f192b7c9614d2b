"""CampaignsService: proto in, domain call, proto out. No SQL here.

Sending happens in the dispatcher (``worker/dispatch.py``); this servicer manages
the lifecycle, snapshots the audience on start, and reads counters and the ledger.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import grpc
from google.protobuf.empty_pb2 import Empty

from mktx.v1 import campaigns_pb2_grpc

from ..core.context import current_principal
from ..core.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from ..core.pagination import decode_time_cursor, effective_page_size, time_page
from ..deps import Deps
from ..domain import campaigns as domain
from ..domain.schedule import zone
from ..domain.templates import MissingVariables
from ..mapping.campaigns import (
    STATE_TO_DB,
    STATUS_TO_DB,
    TYPE_TO_DB,
    UPDATABLE,
    C,
    campaign_to_proto,
    counts_of,
    draft_from_proto,
    recipient_to_proto,
)
from ..mapping.common import from_ts, ts
from ..store import Row, check_etag
from ..store import accounts as accounts_store
from ..store import campaigns as store
from ..store.idempotency import create_once
from ..store.templates import draft_from_row as template_draft
from ..validation.rules import prefixed


def _checked(d: domain.CampaignDraft) -> domain.CampaignDraft:
    violations = domain.validate_campaign(d)
    if violations:
        raise InvalidArgument(prefixed("campaign", violations))
    return d


class CampaignsServicer(campaigns_pb2_grpc.CampaignsServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def _load(self, merchant_id: UUID, campaign_id: str) -> Row:
        row = await store.get(merchant_id, UUID(campaign_id))
        if row is None:
            raise NotFound("campaign", campaign_id)
        return row

    async def _lock(self, merchant_id: UUID, campaign_id: str, etag: str) -> Row:
        """Lock the campaign for a change, check the etag, and return it in full."""
        locked = await store.lock(merchant_id, UUID(campaign_id))
        if locked is None:
            raise NotFound("campaign", campaign_id)
        check_etag(etag, locked, "campaign")
        return await self._load(merchant_id, campaign_id)

    async def _check_references(self, merchant: UUID, d: domain.CampaignDraft) -> None:
        """NOT_FOUND for the first account, template, segment or campaign named that
        does not exist for this merchant."""
        if await accounts_store.get(merchant, UUID(d.account_id)) is None:
            raise NotFound("account", d.account_id)
        found = await store.existing_templates(merchant, d.template_ids())
        for tid in d.template_ids():
            if tid.lower() not in found:
                raise NotFound("template", tid)
        segs = d.segment_ids + d.exclude_segment_ids
        found = await store.existing_segments(merchant, segs)
        for sid in segs:
            if sid.lower() not in found:
                raise NotFound("segment", sid)
        found = await store.existing_campaigns(merchant, d.exclude_campaign_ids)
        for cid in d.exclude_campaign_ids:
            if cid.lower() not in found:
                raise NotFound("campaign", cid)

    # ------------------------------------------------------------------ CRUD

    async def CreateCampaign(
        self, request: C.CreateCampaignRequest, context: grpc.aio.ServicerContext
    ) -> C.Campaign:
        merchant = current_principal().merchant_id
        draft = _checked(draft_from_proto(request.campaign))

        async def create() -> tuple[UUID, C.Campaign]:
            await self._check_references(merchant, draft)
            row = await store.insert(merchant, draft)
            return row["id"], campaign_to_proto(row)

        async def load(campaign_id: UUID) -> C.Campaign:
            return campaign_to_proto(await self._load(merchant, str(campaign_id)))

        return await create_once(merchant, "campaign", request.request_id, create, load)

    async def GetCampaign(
        self, request: C.GetCampaignRequest, context: grpc.aio.ServicerContext
    ) -> C.Campaign:
        return campaign_to_proto(await self._load(current_principal().merchant_id, request.id))

    async def ListCampaigns(
        self, request: C.ListCampaignsRequest, context: grpc.aio.ServicerContext
    ) -> C.ListCampaignsResponse:
        merchant = current_principal().merchant_id
        filters = [
            "campaigns",
            str(merchant),
            request.account_id,
            request.status,
            request.type,
            request.name_contains,
        ]
        tokens = self._deps.page_tokens
        after = decode_time_cursor(tokens, request.page_token, filters)
        size = effective_page_size(request.page_size)
        rows = await store.list_page(
            merchant,
            account_id=UUID(request.account_id) if request.account_id else None,
            status=STATUS_TO_DB.get(request.status),
            type_=TYPE_TO_DB.get(request.type),
            name_contains=request.name_contains,
            after=after,
            limit=size + 1,
        )
        page, next_token = time_page(tokens, rows, size, filters)
        return C.ListCampaignsResponse(
            campaigns=[campaign_to_proto(r) for r in page], next_page_token=next_token
        )

    async def UpdateCampaign(
        self, request: C.UpdateCampaignRequest, context: grpc.aio.ServicerContext
    ) -> C.Campaign:
        merchant = current_principal().merchant_id
        row = await self._lock(merchant, request.campaign.id, request.etag)
        domain.check_editable(row["status"])
        current = store.draft_from_row(row)
        incoming = draft_from_proto(request.campaign)
        for path in request.update_mask.paths:
            for attr in UPDATABLE[path]:
                setattr(current, attr, getattr(incoming, attr))
        _checked(current)
        await self._check_references(merchant, current)
        updated = await store.update(merchant, row["id"], current)
        return campaign_to_proto(updated)

    async def DeleteCampaign(
        self, request: C.DeleteCampaignRequest, context: grpc.aio.ServicerContext
    ) -> Empty:
        merchant = current_principal().merchant_id
        row = await self._lock(merchant, request.id, request.etag)
        domain.check_deletable(row["status"])
        await store.delete(merchant, row["id"])
        return Empty()

    # ------------------------------------------------------------------ lifecycle

    async def StartCampaign(
        self, request: C.StartCampaignRequest, context: grpc.aio.ServicerContext
    ) -> C.Campaign:
        merchant = current_principal().merchant_id
        row = await self._lock(merchant, request.id, request.etag)
        now = datetime.now(UTC)
        scheduled = row["start_at"] is not None and row["start_at"] > now
        domain.transition(row["status"], "schedule" if scheduled else "start")
        d = store.draft_from_row(row)
        account = await accounts_store.get(merchant, row["account_id"])
        missing = domain.missing_for_start(
            d,
            account_active=account is not None and account["status"] == "ACTIVE",
            templates_found=await store.existing_templates(merchant, d.template_ids()),
            now=now,
        )
        if missing:
            raise FailedPrecondition(
                f"the campaign is not ready to start: missing {', '.join(missing)}",
                reason="CAMPAIGN_NOT_READY",
                metadata={"missing": ",".join(missing)},
            )
        if scheduled:
            await store.set_status(merchant, row["id"], domain.SCHEDULED)
        else:
            await store.launch(merchant, row, now=now)
        return campaign_to_proto(await self._load(merchant, request.id))

    async def _simple(self, request: Any, action: str) -> C.Campaign:
        merchant = current_principal().merchant_id
        row = await self._lock(merchant, request.id, request.etag)
        to = domain.transition(row["status"], action)
        if to == domain.CANCELLED:
            await store.finish(merchant, row["id"], to, "campaign_cancelled")
        else:
            await store.set_status(merchant, row["id"], to)
        return campaign_to_proto(await self._load(merchant, request.id))

    async def PauseCampaign(
        self, request: C.PauseCampaignRequest, context: grpc.aio.ServicerContext
    ) -> C.Campaign:
        return await self._simple(request, "pause")

    async def ResumeCampaign(
        self, request: C.ResumeCampaignRequest, context: grpc.aio.ServicerContext
    ) -> C.Campaign:
        return await self._simple(request, "resume")

    async def CancelCampaign(
        self, request: C.CancelCampaignRequest, context: grpc.aio.ServicerContext
    ) -> C.Campaign:
        return await self._simple(request, "cancel")

    # ------------------------------------------------------------------ sending

    async def SendTestMessage(
        self, request: C.SendTestMessageRequest, context: grpc.aio.ServicerContext
    ) -> C.SendTestMessageResponse:
        """Runs without a transaction (it calls X): reads first, then sends."""
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.id)
        if row["status"] == domain.CANCELLED:
            raise FailedPrecondition(
                "a cancelled campaign sends nothing",
                reason="INVALID_STATE_TRANSITION",
                metadata={"status": row["status"]},
            )
        d = store.draft_from_row(row)
        overrides: dict[str, str] = {}
        if d.type in domain.STEP_TYPES:
            if request.step_index >= len(d.steps):
                raise InvalidArgument.single("step_index", f"the campaign has {len(d.steps)} steps")
            step = d.steps[request.step_index]
            template_id, overrides = step.template_id, dict(step.variables)
            missing_name = f"steps[{request.step_index}].template_id"
        else:
            template_id, missing_name = d.template_id, "template_id"
        templates = await store.templates(merchant, [template_id] if template_id else [])
        template = templates.get(template_id.lower()) if template_id else None
        if template is None:
            raise FailedPrecondition(
                "the campaign has no template to send",
                reason="CAMPAIGN_NOT_READY",
                metadata={"missing": missing_name},
            )
        ids = [UUID(c) for c in request.contact_ids]
        contacts = await store.contacts(merchant, ids)
        for cid, raw in zip(ids, request.contact_ids, strict=True):
            if cid not in contacts:
                raise NotFound("contact", raw)
        account = await accounts_store.get(merchant, row["account_id"])
        if account is None:
            raise NotFound("account", str(row["account_id"]))
        tdraft = template_draft(template)
        results: list[C.SendTestResult] = []
        for cid in ids:
            contact = contacts[cid]
            result = C.SendTestResult(contact_id=str(cid))
            try:
                text = domain.render_for_contact(
                    tdraft, contact, d.variables, {**overrides, **dict(request.variables)}
                )
            except MissingVariables as missing:
                result.error = f"missing_variable:{','.join(missing.names)}"
                results.append(result)
                continue
            result.rendered_text = text
            try:
                sent = await self._deps.xaccess.send_dm(account, contact["x_user_id"], text=text)
            except DomainError as exc:
                result.error = f"{exc.reason}: {exc.message}"
            else:
                result.x_message_id = sent.dm_event_id
            results.append(result)
        return C.SendTestMessageResponse(results=results)

    # ------------------------------------------------------------------ reading

    async def GetCampaignMetrics(
        self, request: C.GetCampaignMetricsRequest, context: grpc.aio.ServicerContext
    ) -> C.CampaignMetrics:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.id)
        now = datetime.now(UTC)
        start = (
            from_ts(request.start_time, "start_time")
            if request.HasField("start_time")
            else row["started_at"] or row["created_at"]
        )
        end = (
            from_ts(request.end_time, "end_time")
            if request.HasField("end_time")
            else row["completed_at"] or now
        )
        if end <= start:
            end = start + timedelta(hours=1)
        tz = zone(request.time_zone or row["time_zone"]) or zone("UTC")
        assert tz is not None
        if request.granularity == C.METRICS_GRANULARITY_HOUR:
            gran = domain.HOUR
        elif request.granularity == C.METRICS_GRANULARITY_DAY:
            gran = domain.DAY
        else:
            gran = domain.pick_granularity(start, end)
        try:
            starts = domain.bucket_starts(start, end, gran, tz)
        except ValueError:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "start_time",
                        f"the range needs more than "
                        f"{domain.MAX_BUCKETS} buckets; narrow it "
                        "or use DAY",
                    )
                ]
            ) from None
        buckets = [C.CampaignMetricsBucket(start_time=ts(s)) for s in starts]
        fields = ("sent", "delivered", "read", "clicked", "replied", "failed", "skipped")
        if starts:
            hours = await store.hourly(merchant, row["id"], starts[0], end)
            i = 0
            for h in hours:
                while i + 1 < len(starts) and h["hour"] >= starts[i + 1]:
                    i += 1
                if h["hour"] < starts[0] - timedelta(hours=1):
                    continue
                b = buckets[i]
                for f in fields:
                    setattr(b, f, getattr(b, f) + h[f])
        counts = counts_of(row)
        return C.CampaignMetrics(
            campaign_id=str(row["id"]),
            counts=counts,
            delivery_rate=domain.rate(counts.delivered, counts.sent),
            read_rate=domain.rate(counts.read, counts.delivered),
            reply_rate=domain.rate(counts.replied, counts.sent),
            click_rate=domain.rate(counts.clicked, counts.delivered),
            failure_rate=domain.rate(counts.failed, counts.sent + counts.failed),
            granularity=(
                C.METRICS_GRANULARITY_HOUR if gran == domain.HOUR else C.METRICS_GRANULARITY_DAY
            ),
            timeline=buckets,
            compute_time=ts(now),
        )

    async def ListCampaignRecipients(
        self, request: C.ListCampaignRecipientsRequest, context: grpc.aio.ServicerContext
    ) -> C.ListCampaignRecipientsResponse:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.id)
        filters = [
            "campaign_recipients",
            str(merchant),
            request.id,
            request.state,
            request.contact_id,
        ]
        tokens = self._deps.page_tokens
        after: tuple[datetime, UUID, int] | None = None
        if request.page_token:
            keys = tokens.decode(request.page_token, filters)
            try:
                if keys is None:
                    raise ValueError
                after = (datetime.fromisoformat(keys[0]), UUID(keys[1]), int(keys[2]))
            except (ValueError, IndexError, TypeError):
                raise InvalidArgument.single(
                    "page_token", "is not a valid page token for this query"
                ) from None
        size = effective_page_size(request.page_size, default=100, maximum=1000)
        rows = await store.list_recipients(
            merchant,
            row["id"],
            state=STATE_TO_DB.get(request.state),
            contact_id=UUID(request.contact_id) if request.contact_id else None,
            after=after,
            limit=size + 1,
        )
        next_token = ""
        if len(rows) > size:
            rows = rows[:size]
            last = rows[-1]
            next_token = tokens.encode(
                [last["due_at"].isoformat(), str(last["contact_id"]), last["step"]], filters
            )
        return C.ListCampaignRecipientsResponse(
            recipients=[recipient_to_proto(r) for r in rows], next_page_token=next_token
        )
