"""Validation rules for CampaignsService requests (run by the validation interceptor;
every violation of a request is reported together)."""

from __future__ import annotations

from mktx.v1 import campaigns_pb2

from ..core.errors import FieldViolation
from ..domain.campaigns import validate_campaign
from ..mapping.campaigns import UPDATABLE, draft_from_proto
from . import rules

C = campaigns_pb2


def create_campaign(req: C.CreateCampaignRequest) -> list[FieldViolation]:
    v = rules.request_id(req.request_id)
    if not req.HasField("campaign"):
        return [*v, FieldViolation("campaign", "is required")]
    v += rules.enum_field(req.campaign.type, "campaign.type", C.CampaignType)
    v += _durations(req.campaign)
    draft = draft_from_proto(req.campaign)
    v += [
        x
        for x in rules.prefixed("campaign", validate_campaign(draft))
        if x.field != "campaign.type"
    ]
    return v


def _durations(c: C.Campaign) -> list[FieldViolation]:
    """Negative or fractional-nanosecond durations are rejected before conversion."""
    v: list[FieldViolation] = []
    pairs = [
        ("campaign.attribution_window", c.attribution_window),
        ("campaign.schedule.enrol_delay", c.schedule.enrol_delay),
        ("campaign.exclusion.exclude_messaged_within", c.exclusion.exclude_messaged_within),
    ]
    pairs += [(f"campaign.steps[{i}].delay", s.delay) for i, s in enumerate(c.steps)]
    for path, d in pairs:
        if d.seconds < 0 or d.nanos < 0:
            v.append(FieldViolation(path, "must not be negative"))
    return v


def update_campaign(req: C.UpdateCampaignRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.campaign.id, "campaign.id")
    v += rules.mask_paths(req.update_mask, UPDATABLE, required=True)
    v += _durations(req.campaign)
    return v


def list_campaigns(req: C.ListCampaignsRequest) -> list[FieldViolation]:
    v = rules.page(req)
    v += rules.uuid_field(req.account_id, "account_id", required=False)
    v += rules.enum_field(req.status, "status", C.CampaignStatus, required=False)
    v += rules.enum_field(req.type, "type", C.CampaignType, required=False)
    v += rules.text_field(req.name_contains, "name_contains", max_len=200)
    return v


def send_test_message(req: C.SendTestMessageRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.id, "id")
    if not req.contact_ids:
        v.append(FieldViolation("contact_ids", "is required"))
    elif len(req.contact_ids) > 10:
        v.append(FieldViolation("contact_ids", "at most 10 contacts"))
    for i, cid in enumerate(req.contact_ids[:10]):
        v += rules.uuid_field(cid, f"contact_ids[{i}]")
    if req.step_index < 0 or req.step_index >= 10:
        v.append(FieldViolation("step_index", "must be 0 to 9"))
    for key, value in req.variables.items():
        if len(value) > 1_000:
            v.append(FieldViolation(f"variables.{key}", "must be at most 1000 characters"))
    return v


def get_campaign_metrics(req: C.GetCampaignMetricsRequest) -> list[FieldViolation]:
    from ..domain.schedule import zone

    v = rules.uuid_field(req.id, "id")
    v += rules.enum_field(req.granularity, "granularity", C.MetricsGranularity, required=False)
    if req.time_zone and zone(req.time_zone) is None:
        v.append(FieldViolation("time_zone", "must be an IANA time zone"))
    if (
        req.HasField("start_time")
        and req.HasField("end_time")
        # Compared as protobuf values: no conversion that could overflow.
        and (req.end_time.seconds, req.end_time.nanos)
        <= (req.start_time.seconds, req.start_time.nanos)
    ):
        v.append(FieldViolation("end_time", "must be after start_time"))
    return v


def list_campaign_recipients(req: C.ListCampaignRecipientsRequest) -> list[FieldViolation]:
    v = rules.uuid_field(req.id, "id")
    v += rules.page(req)
    v += rules.uuid_field(req.contact_id, "contact_id", required=False)
    v += rules.enum_field(req.state, "state", C.CampaignRecipientState, required=False)
    return v
