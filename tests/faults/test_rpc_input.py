"""Hostile gRPC input, case by case (issue 13 §5): NUL and control characters,
extreme and invalid Durations/Timestamps, malformed bytes, error amplification,
oversized and unauthenticated messages. Over a real server on a loopback port."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import jwt
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2
from helpers import parse_error

from mktx.v1 import (
    campaigns_pb2,
    common_pb2,
    contacts_pb2,
    conversations_pb2,
    segments_pb2,
    templates_pb2,
    templates_pb2_grpc,
)
from mktx_grpc.core import prototime
from mktx_grpc.core.auth import mint_token
from mktx_grpc.core.errors import FieldViolation, InvalidArgument, NotFound
from mktx_grpc.interceptors.errors import status_for
from mktx_grpc.validation.wire import check_request


def _status(exc: grpc.aio.AioRpcError) -> status_pb2.Status:
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    raise AssertionError("no rich status")


def _violations(exc: grpc.aio.AioRpcError) -> dict[str, str]:
    out: dict[str, str] = {}
    for detail in _status(exc).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            detail.Unpack(br)
            out.update({v.field: v.description for v in br.field_violations})
    return out


def _trailer_bytes(exc: grpc.aio.AioRpcError) -> int:
    return len((exc.details() or "").encode()) + sum(
        len(k) + len(v if isinstance(v, bytes) else v.encode())
        for k, v in exc.trailing_metadata() or ()
    )


# ------------------------------------------------------------------ the walk (pure)


def test_walk_finds_control_characters_anywhere_with_paths() -> None:
    req = templates_pb2.CreateTemplateRequest(
        template=templates_pb2.Template(
            name="ok\x00",
            content="tab\tand\nnewline\r fine",
            variables=["fine", "\x1b[31m"],
            quick_replies=[
                common_pb2.QuickReplyOption(label="a"),
                common_pb2.QuickReplyOption(label="\x07"),
            ],
        )
    )
    found = {v.field for v in check_request(req)}
    assert found == {"template.name", "template.variables[1]", "template.quick_replies[1].label"}


def test_walk_checks_maps_repeated_and_nested_times() -> None:
    c = contacts_pb2.Contact(tags=["fine", "bad\x00"])
    c.attributes.update({"k": "v\x00"})
    c.follow_time.seconds = 2**62
    req = contacts_pb2.CreateContactRequest(contact=c)
    found = {v.field: v.description for v in check_request(req)}
    assert "contact.tags[1]" in found
    assert "contact.tags[0]" not in found
    assert "contact.follow_time" in found and "9999" in found["contact.follow_time"]
    assert 'contact.attributes.fields["k"].string_value' in found


@pytest.mark.parametrize(
    ("seconds", "nanos", "problem"),
    [
        (1, -1, "same sign"),
        (-1, 1, "same sign"),
        (0, 1_000_000_000, "nanos"),
        (10**12, 0, "10,000 years"),
        (-(2**63), 0, "10,000 years"),
    ],
)
def test_invalid_durations(seconds: int, nanos: int, problem: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        prototime.to_timedelta(Duration(seconds=seconds, nanos=nanos), "d")
    assert info.value.violations[0].field == "d"
    assert problem in info.value.violations[0].description


@pytest.mark.parametrize(("seconds", "nanos"), [(2**62, 0), (-(2**62), 0), (0, -1), (0, 10**9)])
def test_invalid_timestamps(seconds: int, nanos: int) -> None:
    with pytest.raises(InvalidArgument):
        prototime.to_datetime(Timestamp(seconds=seconds, nanos=nanos), "t")


def test_checked_conversions_at_the_edges() -> None:
    top = prototime.to_datetime(Timestamp(seconds=prototime.TIMESTAMP_MAX_SECONDS), "t")
    assert top.year == 9999
    with pytest.raises(InvalidArgument) as info:
        prototime.add(top, timedelta(days=2), "snooze_duration")
    assert info.value.violations[0].field == "snooze_duration"
    longest = prototime.to_timedelta(Duration(seconds=prototime.DURATION_MAX_SECONDS), "d")
    assert prototime.duration(longest * 2).seconds == prototime.DURATION_MAX_SECONDS  # clamped
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert prototime.to_datetime(prototime.timestamp(now), "t") == now


# ------------------------------------------------------------------ bounded errors


def test_error_details_are_capped() -> None:
    many = InvalidArgument([FieldViolation(f"f{i}." + "x" * 300, "d" * 900) for i in range(5000)])
    status = status_for(many)
    raw = dict(status.trailing_metadata)["grpc-status-details-bin"]
    assert len(raw) < 4500
    st = status_pb2.Status.FromString(raw)
    info = error_details_pb2.ErrorInfo()
    br = error_details_pb2.BadRequest()
    st.details[0].Unpack(info)
    st.details[1].Unpack(br)
    shown = len(br.field_violations)
    assert 0 < shown < 5000
    assert info.metadata["omitted_field_violations"] == str(5000 - shown)
    assert f"{5000 - shown} more not listed" in st.message
    assert len(st.message.encode()) <= 512
    # Metadata echoing input (an id in NotFound) is cut too.
    nf = status_pb2.Status.FromString(
        dict(status_for(NotFound("contact", "z" * 20_000)).trailing_metadata)[
            "grpc-status-details-bin"
        ]
    )
    assert len(nf.SerializeToString()) < 1200


# ------------------------------------------------------------------ over the wire


async def test_nul_in_any_request_field_is_invalid_argument(api: Any, merchant: uuid.UUID) -> None:
    stub = templates_pb2_grpc.TemplatesServiceStub(api.channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListTemplates(
            templates_pb2.ListTemplatesRequest(name_contains="a\x00b"), metadata=api.auth(merchant)
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "name_contains" in _violations(info.value)


async def test_extreme_snooze_is_invalid_argument(api: Any, merchant: uuid.UUID) -> None:
    from mktx.v1 import conversations_pb2_grpc

    stub = conversations_pb2_grpc.ConversationsServiceStub(api.channel)
    for d in (Duration(seconds=2**62), Duration(seconds=5, nanos=-5), Duration(seconds=10**11)):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.SnoozeConversation(
                conversations_pb2.SnoozeConversationRequest(
                    id=str(uuid.uuid4()), snooze_duration=d
                ),
                metadata=api.auth(merchant),
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, d
        assert "snooze_duration" in _violations(info.value)


async def test_extreme_campaign_times_are_invalid_argument(api: Any, merchant: uuid.UUID) -> None:
    from mktx.v1 import campaigns_pb2_grpc

    stub = campaigns_pb2_grpc.CampaignsServiceStub(api.channel)
    c = campaigns_pb2.Campaign(name="c")
    c.schedule.start_time.seconds = 2**62
    c.exclusion.exclude_messaged_within.seconds = -(2**62)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateCampaign(
            campaigns_pb2.CreateCampaignRequest(campaign=c), metadata=api.auth(merchant)
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = _violations(info.value)
    assert "campaign.schedule.start_time" in found
    assert "campaign.exclusion.exclude_messaged_within" in found


@pytest.mark.parametrize(
    "raw", [b"\xff\xff\xff\xff", b"\x0a\x7fabc", b"\x7b" * 20_000 + b"\x7c" * 20_000]
)
async def test_malformed_bytes_are_invalid_argument_without_internals(
    api: Any, merchant: uuid.UUID, raw: bytes
) -> None:
    call = api.channel.unary_unary("/mktx.v1.TemplatesService/ListTemplates")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(raw, metadata=api.auth(merchant))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details() or ""
    assert "mktx.v1.ListTemplatesRequest" in details
    assert "DecodeError" not in details and "Error parsing" not in details
    assert _violations(info.value) == {
        "request": "is not a valid mktx.v1.ListTemplatesRequest message (malformed protobuf bytes)"
    }


async def test_deeply_nested_preview_error_fits_default_client_limits(
    api: Any, merchant: uuid.UUID
) -> None:
    from mktx.v1 import segments_pb2_grpc

    group = segments_pb2.ConditionGroup(
        nodes=[segments_pb2.ConditionNode(condition=segments_pb2.Condition())]
    )
    for _ in range(48):
        group = segments_pb2.ConditionGroup(
            nodes=[
                segments_pb2.ConditionNode(group=group),
                segments_pb2.ConditionNode(condition=segments_pb2.Condition(field="\x01")),
            ]
        )
    stub = segments_pb2_grpc.SegmentsServiceStub(api.channel)  # default client limits
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.PreviewSegment(
            segments_pb2.PreviewSegmentRequest(conditions=group), metadata=api.auth(merchant)
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert _trailer_bytes(info.value) <= 8 * 1024


async def test_oversized_unauthenticated_call_is_refused_unread(
    api: Any, merchant: uuid.UUID
) -> None:
    limit = api.settings.grpc_max_receive_bytes
    big = templates_pb2.ListTemplatesRequest(page_token="p" * (limit + 1024))
    stub = templates_pb2_grpc.TemplatesServiceStub(api.channel)
    # No token: refused before the message is read (else RESOURCE_EXHAUSTED).
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListTemplates(big)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert info.value.details() == "missing authorization metadata"
    # A token that does not verify is no better than none: refused unread, and the
    # message says which check failed, as for a small call.
    forged = jwt.encode(
        {"merchant_id": str(merchant), "exp": int(time.time()) + 60},
        "not-the-server-secret-0123456789abcdef",
        algorithm="HS256",
    )
    expired = mint_token(api.settings, merchant, ttl_seconds=-120)
    for value, reason in (
        (f"Bearer {forged}", "INVALID_TOKEN"),
        (f"Bearer {expired}", "TOKEN_EXPIRED"),
        ("Bearer junk", "INVALID_TOKEN"),
        ("Basic dXNlcjpwYXNz", "INVALID_TOKEN"),
    ):
        md = [("authorization", value)]
        with pytest.raises(grpc.aio.AioRpcError) as small:
            await stub.ListTemplates(templates_pb2.ListTemplatesRequest(), metadata=md)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ListTemplates(big, metadata=md)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, (value, info.value.details())
        assert info.value.details() == small.value.details()
        parsed = parse_error(info.value)
        assert parsed.info is not None and parsed.info.reason == reason
    # With a valid token the size limit applies.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListTemplates(big, metadata=api.auth(merchant))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # A small call without a token gets the same answer as before.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListTemplates(templates_pb2.ListTemplatesRequest())
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Public methods need no token.
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(api.channel)
    assert (await health.Check(health_pb2.HealthCheckRequest())).status == 1
