"""CampaignsService: proto in, domain call, proto out. No SQL here.

Sending happens in the dispatcher (``worker/dispatch.py``); this servicer manages
the lifecycle, snapshots the audience on start, and reads counters and the ledger.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.empty_pb2 import Empty
from google.protobuf.json_format import MessageToDict

from mktx.v1 import campaigns_pb2, campaigns_pb2_grpc, conversations_pb2

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
from ..mapping.common import from_ts, ts
from ..store import Row, check_etag, etag_of
from ..store import campaigns as store
from ..store.idempotency import create_once
from ..store.templates import draft_from_row as template_draft
from ..validation.rules import prefixed

C = campaigns_pb2

TYPE_TO_DB = {
    C.CAMPAIGN_TYPE_BULK_DM: domain.BULK_DM,
    C.CAMPAIGN_TYPE_WELCOME: domain.WELCOME,
    C.CAMPAIGN_TYPE_FOLLOW_UP: domain.FOLLOW_UP,
    C.CAMPAIGN_TYPE_DRIP: domain.DRIP,
    C.CAMPAIGN_TYPE_BROADCAST: domain.BROADCAST,
}
TYPE_FROM_DB = {v: k for k, v in TYPE_TO_DB.items()}
STATUS_TO_DB = {
    C.CAMPAIGN_STATUS_DRAFT: domain.DRAFT,
    C.CAMPAIGN_STATUS_SCHEDULED: domain.SCHEDULED,
    C.CAMPAIGN_STATUS_RUNNING: domain.RUNNING,
    C.CAMPAIGN_STATUS_PAUSED: domain.PAUSED,
    C.CAMPAIGN_STATUS_COMPLETED: domain.COMPLETED,
    C.CAMPAIGN_STATUS_CANCELLED: domain.CANCELLED,
}
STATUS_FROM_DB = {v: k for k, v in STATUS_TO_DB.items()}
STATE_TO_DB = {
    C.CAMPAIGN_RECIPIENT_STATE_QUEUED: domain.QUEUED,
    C.CAMPAIGN_RECIPIENT_STATE_SENDING: domain.SENDING,
    C.CAMPAIGN_RECIPIENT_STATE_SENT: domain.SENT,
    C.CAMPAIGN_RECIPIENT_STATE_DELIVERED: domain.DELIVERED,
    C.CAMPAIGN_RECIPIENT_STATE_READ: domain.READ,
    C.CAMPAIGN_RECIPIENT_STATE_REPLIED: domain.REPLIED,
    C.CAMPAIGN_RECIPIENT_STATE_FAILED: domain.FAILED,
    C.CAMPAIGN_RECIPIENT_STATE_SKIPPED: domain.SKIPPED,
}
STATE_FROM_DB = {v: k for k, v in STATE_TO_DB.items()}

#: Update mask paths and the draft attributes each one sets.
UPDATABLE: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "description": ("description",),
    "template_id": ("template_id",),
    "segment_ids": ("segment_ids",),
    "exclusion": (
        "exclude_segment_ids",
        "exclude_messaged_within",
        "exclude_campaign_ids",
        "exclude_open_conversations",
    ),
    "exclusion.exclude_segment_ids": ("exclude_segment_ids",),
    "exclusion.exclude_messaged_within": ("exclude_messaged_within",),
    "exclusion.exclude_campaign_ids": ("exclude_campaign_ids",),
    "exclusion.exclude_open_conversations": ("exclude_open_conversations",),
    "variables": ("variables",),
    "schedule": (
        "start_at",
        "end_at",
        "time_zone",
        "send_window",
        "respect_contact_time_zone",
        "enrol_delay",
    ),
    "schedule.start_time": ("start_at",),
    "schedule.end_time": ("end_at",),
    "schedule.time_zone": ("time_zone",),
    "schedule.send_window": ("send_window",),
    "schedule.respect_contact_time_zone": ("respect_contact_time_zone",),
    "schedule.enrol_delay": ("enrol_delay",),
    "steps": ("steps",),
    "stop_on_reply": ("stop_on_reply",),
    "attribution_window": ("attribution_window",),
    "max_sends_per_hour": ("max_sends_per_hour",),
}


def _td(d: Duration) -> timedelta:
    return timedelta(seconds=d.seconds, microseconds=d.nanos // 1000)


def _dur(value: timedelta) -> Duration:
    out = Duration()
    out.FromTimedelta(value)
    return out


def draft_from_proto(c: C.Campaign) -> domain.CampaignDraft:
    s = c.schedule
    return domain.CampaignDraft(
        name=c.name.strip(),
        account_id=c.account_id,
        type=TYPE_TO_DB.get(c.type, ""),
        description=c.description,
        template_id=c.template_id,
        segment_ids=list(c.segment_ids),
        exclude_segment_ids=list(c.exclusion.exclude_segment_ids),
        exclude_messaged_within=_td(c.exclusion.exclude_messaged_within),
        exclude_campaign_ids=list(c.exclusion.exclude_campaign_ids),
        exclude_open_conversations=c.exclusion.exclude_open_conversations,
        variables=dict(c.variables),
        start_at=from_ts(s.start_time) if s.HasField("start_time") else None,
        end_at=from_ts(s.end_time) if s.HasField("end_time") else None,
        time_zone=s.time_zone or "UTC",
        send_window=(
            MessageToDict(s.send_window, preserving_proto_field_name=True)
            if s.HasField("send_window")
            else None
        ),
        respect_contact_time_zone=s.respect_contact_time_zone,
        enrol_delay=_td(s.enrol_delay),
        steps=[domain.Step(st.template_id, _td(st.delay), dict(st.variables)) for st in c.steps],
        stop_on_reply=c.stop_on_reply if c.HasField("stop_on_reply") else True,
        attribution_window=(
            _td(c.attribution_window)
            if c.HasField("attribution_window")
            else domain.DEFAULT_ATTRIBUTION
        ),
        max_sends_per_hour=c.max_sends_per_hour,
    )


def counts_of(row: Row) -> C.CampaignCounts:
    total = row["recipients_total"]
    sent, failed, skipped = row["sent_count"], row["failed_count"], row["skipped_count"]
    return C.CampaignCounts(
        total=total,
        queued=max(0, total - sent - failed - skipped),
        sent=sent,
        delivered=row["delivered_count"],
        read=row["read_count"],
        clicked=row["clicked_count"],
        replied=row["replied_count"],
        failed=failed,
        skipped=skipped,
    )


def campaign_to_proto(row: Row) -> C.Campaign:
    d = store.draft_from_row(row)
    schedule = C.CampaignSchedule(
        start_time=ts(d.start_at),
        end_time=ts(d.end_at),
        time_zone=d.time_zone,
        send_window=domain.window_proto(d),
        respect_contact_time_zone=d.respect_contact_time_zone,
        enrol_delay=_dur(d.enrol_delay),
    )
    return C.Campaign(
        id=str(row["id"]),
        name=d.name,
        description=d.description,
        account_id=d.account_id,
        type=TYPE_FROM_DB[d.type],
        status=STATUS_FROM_DB[row["status"]],
        status_reason=row["status_reason"],
        template_id=d.template_id,
        segment_ids=d.segment_ids,
        exclusion=C.CampaignExclusion(
            exclude_segment_ids=d.exclude_segment_ids,
            exclude_messaged_within=_dur(d.exclude_messaged_within),
            exclude_campaign_ids=d.exclude_campaign_ids,
            exclude_open_conversations=d.exclude_open_conversations,
        ),
        variables=d.variables,
        schedule=schedule,
        steps=[
            C.CampaignStep(template_id=s.template_id, delay=_dur(s.delay), variables=s.variables)
            for s in d.steps
        ],
        stop_on_reply=d.stop_on_reply,
        attribution_window=_dur(d.attribution_window),
        max_sends_per_hour=d.max_sends_per_hour,
        counts=counts_of(row),
        launch_time=ts(row["started_at"]),
        complete_time=ts(row["completed_at"]),
        create_time=ts(row["created_at"]),
        update_time=ts(row["updated_at"]),
        etag=etag_of(row["id"], row["version"]),
    )


def recipient_to_proto(row: Row) -> C.CampaignRecipient:
    return C.CampaignRecipient(
        campaign_id=str(row["campaign_id"]),
        contact_id=str(row["contact_id"]),
        contact=conversations_pb2.ContactSummary(
            id=str(row["contact_id"]),
            x_user_id=row["c_x_user_id"],
            username=row["c_username"],
            display_name=row["c_display_name"],
            profile_image_url=row["c_profile_image_url"],
        ),
        step_index=row["step"],
        state=STATE_FROM_DB[row["state"]],
        reason=row["reason"],
        x_event_id=row["x_event_id"] or "",
        message_id=str(row["message_id"]) if row["message_id"] else "",
        due_time=ts(row["due_at"]),
        send_time=ts(row["sent_at"]),
        deliver_time=ts(row["delivered_at"]),
        read_time=ts(row["read_at"]),
        reply_time=ts(row["replied_at"]),
        attempt_count=row["attempts"],
        update_time=ts(row["updated_at"]),
    )


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
        if await store.get_account(merchant, UUID(d.account_id)) is None:
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
        account = await store.get_account(merchant, row["account_id"])
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
        account = await store.get_account(merchant, row["account_id"])
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
            from_ts(request.start_time)
            if request.HasField("start_time")
            else row["started_at"] or row["created_at"]
        )
        end = (
            from_ts(request.end_time)
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
