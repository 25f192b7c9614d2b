"""Proto ⇄ domain and row conversions for campaigns (shared by the servicer, validation and
other modules that need them)."""

from __future__ import annotations

from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.json_format import MessageToDict

from mktx.v1 import campaigns_pb2, conversations_pb2

from ..core import prototime
from ..domain import campaigns as domain
from ..store import Row, etag_of
from ..store import campaigns as store
from .common import from_ts, ts

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


def timedelta_of(d: Duration, field: str) -> timedelta:
    return prototime.to_timedelta(d, field)


def duration_of(value: timedelta) -> Duration:
    return prototime.duration(value)


def draft_from_proto(c: C.Campaign, path: str = "campaign") -> domain.CampaignDraft:
    """The client's campaign as a draft; ``path`` prefixes field names in errors."""
    s = c.schedule
    return domain.CampaignDraft(
        name=c.name.strip(),
        account_id=c.account_id,
        type=TYPE_TO_DB.get(c.type, ""),
        description=c.description,
        template_id=c.template_id,
        segment_ids=list(c.segment_ids),
        exclude_segment_ids=list(c.exclusion.exclude_segment_ids),
        exclude_messaged_within=timedelta_of(
            c.exclusion.exclude_messaged_within, f"{path}.exclusion.exclude_messaged_within"
        ),
        exclude_campaign_ids=list(c.exclusion.exclude_campaign_ids),
        exclude_open_conversations=c.exclusion.exclude_open_conversations,
        variables=dict(c.variables),
        start_at=from_ts(s.start_time, f"{path}.schedule.start_time")
        if s.HasField("start_time")
        else None,
        end_at=(
            from_ts(s.end_time, f"{path}.schedule.end_time") if s.HasField("end_time") else None
        ),
        time_zone=s.time_zone or "UTC",
        send_window=(
            MessageToDict(s.send_window, preserving_proto_field_name=True)
            if s.HasField("send_window")
            else None
        ),
        respect_contact_time_zone=s.respect_contact_time_zone,
        enrol_delay=timedelta_of(s.enrol_delay, f"{path}.schedule.enrol_delay"),
        steps=[
            domain.Step(
                st.template_id,
                timedelta_of(st.delay, f"{path}.steps[{i}].delay"),
                dict(st.variables),
            )
            for i, st in enumerate(c.steps)
        ],
        stop_on_reply=c.stop_on_reply if c.HasField("stop_on_reply") else True,
        attribution_window=(
            timedelta_of(c.attribution_window, f"{path}.attribution_window")
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
        enrol_delay=duration_of(d.enrol_delay),
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
            exclude_messaged_within=duration_of(d.exclude_messaged_within),
            exclude_campaign_ids=d.exclude_campaign_ids,
            exclude_open_conversations=d.exclude_open_conversations,
        ),
        variables=d.variables,
        schedule=schedule,
        steps=[
            C.CampaignStep(
                template_id=s.template_id, delay=duration_of(s.delay), variables=s.variables
            )
            for s in d.steps
        ],
        stop_on_reply=d.stop_on_reply,
        attribution_window=duration_of(d.attribution_window),
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
