"""SegmentsService end to end through the production interceptor chain."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from helpers import expect_error
from psycopg.types.json import Jsonb

from mktx.v1 import segments_pb2, segments_pb2_grpc
from mktx_grpc.worker.segments import refresh_segment_counts

S = segments_pb2
Op = S.ConditionOperator
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
HOSTILE = "'; drop table contacts; --"


@pytest.fixture
def stub(api):
    return segments_pb2_grpc.SegmentsServiceStub(api.channel)


async def insert_account(db, merchant):
    account_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO accounts (id, merchant_id, x_user_id, auth_method) VALUES (%s, %s, %s,"
        " 'OAUTH1')",
        (account_id, merchant, str(account_id.int % 10**15)),
    )
    return account_id


async def insert_contact(
    db, merchant, account_id, name, *, tags=(), attributes=None, days_ago=None, display_name=""
):
    row = await (
        await db.execute(
            "INSERT INTO contacts (merchant_id, account_id, x_user_id, username, display_name, tags,"
            " attributes, last_interaction_at) VALUES (%s, %s, %s, %s, %s, %s, %s,"
            " now() - make_interval(days => %s::int)) RETURNING id",
            (
                merchant,
                account_id,
                name,
                name,
                display_name,
                list(tags),
                Jsonb(attributes or {}),
                days_ago,
            ),
        )
    ).fetchone()
    return row[0]


async def insert_campaign(db, merchant, account_id, status="RUNNING"):
    row = await (
        await db.execute(
            "INSERT INTO campaigns (merchant_id, account_id, name, type, status)"
            " VALUES (%s, %s, %s, 'BULK_DM', %s) RETURNING id",
            (merchant, account_id, f"camp-{status.lower()}", status),
        )
    ).fetchone()
    return row[0]


def cond(field, op, **value):
    if "strings" in value:
        value["string_list"] = S.ConditionStringList(values=value.pop("strings"))
    return S.ConditionNode(condition=S.Condition(field=field, operator=op, **value))


def group(*nodes, op=S.CONDITION_GROUP_OPERATOR_AND):
    return S.ConditionGroup(operator=op, nodes=nodes)


VIP = group(cond("tags", Op.CONDITION_OPERATOR_CONTAINS, string_value="vip"))


def segment(name="VIPs", conditions=VIP, **kw):
    return S.Segment(name=name, conditions=conditions, **kw)


@pytest.fixture
async def world(db, merchant, other_merchant):
    """Merchant: 3 VIPs (one on a second account) and 2 others. The other merchant has
    a VIP too, which must never be counted."""
    acc = await insert_account(db, merchant)
    acc2 = await insert_account(db, merchant)
    other_acc = await insert_account(db, other_merchant)
    ids = {
        "v1": await insert_contact(db, merchant, acc, "v1", tags=["vip"], days_ago=3),
        "v2": await insert_contact(db, merchant, acc, "v2", tags=["vip"], days_ago=1),
        "v3": await insert_contact(db, merchant, acc2, "v3", tags=["vip"], days_ago=None),
        "n1": await insert_contact(db, merchant, acc, "n1", days_ago=2),
        "n2": await insert_contact(db, merchant, acc, "n2", display_name=HOSTILE),
        "o1": await insert_contact(db, other_merchant, other_acc, "o1", tags=["vip"]),
    }
    return {"acc": acc, "acc2": acc2, "other_acc": other_acc, "ids": ids}


async def create(stub, api, merchant, seg=None, **kw):
    return await stub.CreateSegment(
        S.CreateSegmentRequest(segment=seg or segment(), **kw), metadata=api.auth(merchant)
    )


# ------------------------------------------------------------------ create / get


async def test_create_get_roundtrip_counts_contacts(api, stub, merchant, world):
    created = await create(stub, api, merchant)
    assert uuid.UUID(created.id)
    assert created.contact_count == 3
    assert created.count_refresh_time.seconds > 0 and created.etag
    assert created.conditions == VIP
    got = await stub.GetSegment(S.GetSegmentRequest(id=created.id), metadata=api.auth(merchant))
    assert got == created
    scoped = await create(
        stub, api, merchant, segment("VIPs of acc2", account_id=str(world["acc2"]))
    )
    assert scoped.contact_count == 1 and scoped.account_id == str(world["acc2"])
    everyone = await create(stub, api, merchant, segment("All", S.ConditionGroup()))
    assert everyone.contact_count == 5


def ts(seconds):
    return Timestamp(seconds=seconds)


def _deep(levels):
    g = group(cond("tags", Op.CONDITION_OPERATOR_IS_SET))
    for _ in range(levels - 1):
        g = group(S.ConditionNode(group=g))
    return g


P = "segment.conditions"


BAD_CONDITIONS = [
    (
        group(cond("tags", Op.CONDITION_OPERATOR_GREATER_THAN, number_value=1)),
        f"{P}.nodes[0].condition.operator",
    ),
    (
        group(
            cond("tags", Op.CONDITION_OPERATOR_IS_SET),
            S.ConditionNode(
                group=group(
                    cond("follows_account", Op.CONDITION_OPERATOR_CONTAINS, string_value="x")
                )
            ),
        ),
        f"{P}.nodes[1].group.nodes[0].condition.operator",
    ),
    (
        group(cond("created_at", Op.CONDITION_OPERATOR_EQUALS, timestamp_value=ts(1))),
        f"{P}.nodes[0].condition.operator",
    ),
    (
        group(cond("attributes.bad-key", Op.CONDITION_OPERATOR_IS_SET)),
        f"{P}.nodes[0].condition.field",
    ),
    (
        group(cond("attributes.x'; drop table contacts; --", Op.CONDITION_OPERATOR_IS_SET)),
        f"{P}.nodes[0].condition.field",
    ),
    (group(cond("nope", Op.CONDITION_OPERATOR_IS_SET)), f"{P}.nodes[0].condition.field"),
    (
        group(cond("username", Op.CONDITION_OPERATOR_UNSPECIFIED, string_value="a")),
        f"{P}.nodes[0].condition.operator",
    ),
    (group(cond("username", Op.CONDITION_OPERATOR_EQUALS)), f"{P}.nodes[0].condition.value"),
    (
        group(cond("username", Op.CONDITION_OPERATOR_EQUALS, number_value=3)),
        f"{P}.nodes[0].condition.number_value",
    ),
    (
        group(cond("attributes.n", Op.CONDITION_OPERATOR_CONTAINS, number_value=3)),
        f"{P}.nodes[0].condition.number_value",
    ),
    (
        group(cond("username", Op.CONDITION_OPERATOR_EQUALS, string_value="x" * 501)),
        f"{P}.nodes[0].condition.string_value",
    ),
    (
        group(cond("username", Op.CONDITION_OPERATOR_IN, strings=[])),
        f"{P}.nodes[0].condition.string_list.values",
    ),
    (
        group(cond("source", Op.CONDITION_OPERATOR_EQUALS, string_value="carrier_pigeon")),
        f"{P}.nodes[0].condition.string_value",
    ),
    (
        group(cond("received_campaign", Op.CONDITION_OPERATOR_EQUALS, string_value="c1")),
        f"{P}.nodes[0].condition.string_value",
    ),
    (
        group(cond("last_interaction_at", Op.CONDITION_OPERATOR_WITHIN_LAST_DAYS, days=0)),
        f"{P}.nodes[0].condition.days",
    ),
    (
        group(
            cond(
                "messages_sent",
                Op.CONDITION_OPERATOR_BETWEEN,
                number_range=S.ConditionNumberRange(min=5, max=1),
            )
        ),
        f"{P}.nodes[0].condition.number_range.max",
    ),
    (
        group(
            cond(
                "created_at",
                Op.CONDITION_OPERATOR_BETWEEN,
                timestamp_range=S.ConditionTimestampRange(start_time=ts(100), end_time=ts(50)),
            )
        ),
        f"{P}.nodes[0].condition.timestamp_range.end_time",
    ),
    (group(S.ConditionNode(group=S.ConditionGroup())), f"{P}.nodes[0].group.nodes"),
    (group(S.ConditionNode()), f"{P}.nodes[0]"),
    (_deep(6), f"{P}" + ".nodes[0].group" * 5),
    (group(*[cond("tags", Op.CONDITION_OPERATOR_IS_SET)] * 51), P),
    (S.ConditionGroup(operator=7), f"{P}.operator"),
]


async def test_create_rejects_bad_conditions_with_exact_paths(api, stub, merchant):
    # One server for every case: each call is INVALID_ARGUMENT naming exactly the path.
    for conditions, field in BAD_CONDITIONS:
        err = await expect_error(
            create(stub, api, merchant, segment(conditions=conditions)), INVALID, "VALIDATION_ERROR"
        )
        assert list(err.bad_fields) == [field], (field, err.bad_fields)
    # Preview reports the same paths without the "segment." prefix.
    for conditions, field in BAD_CONDITIONS[:3]:
        err = await expect_error(
            stub.PreviewSegment(
                S.PreviewSegmentRequest(conditions=conditions), metadata=api.auth(merchant)
            ),
            INVALID,
        )
        assert list(err.bad_fields) == [field.removeprefix("segment.")]


async def test_depth_five_and_fifty_conditions_are_allowed(api, stub, merchant, world):
    deep = await create(stub, api, merchant, segment("deep", _deep(5)))
    assert deep.contact_count == 3
    many = group(
        *[cond("tags", Op.CONDITION_OPERATOR_IS_SET)] * 25,
        S.ConditionNode(group=group(*[cond("tags", Op.CONDITION_OPERATOR_IS_SET)] * 25)),
    )
    assert (await create(stub, api, merchant, segment("many", many))).contact_count == 3


async def test_create_reports_every_bad_field_together(api, stub, merchant):
    bad = S.Segment(
        name="",
        description="d" * 1001,
        account_id="nope",
        conditions=group(
            cond("tags", Op.CONDITION_OPERATOR_BEFORE, timestamp_value=ts(1)),
            cond("attributes.1x", Op.CONDITION_OPERATOR_IS_SET),
        ),
    )
    err = await expect_error(
        stub.CreateSegment(
            S.CreateSegmentRequest(segment=bad, request_id="bad id!"), metadata=api.auth(merchant)
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {
        "request_id",
        "segment.name",
        "segment.description",
        "segment.account_id",
        f"{P}.nodes[0].condition.operator",
        f"{P}.nodes[1].condition.field",
    }
    err = await expect_error(
        stub.CreateSegment(S.CreateSegmentRequest(), metadata=api.auth(merchant)), INVALID
    )
    assert "segment" in err.bad_fields


async def test_duplicate_name_is_already_exists(api, stub, merchant, world):
    await create(stub, api, merchant, segment("Buyers"))
    await expect_error(
        create(stub, api, merchant, segment("buyers")),
        grpc.StatusCode.ALREADY_EXISTS,
        "DUPLICATE_RESOURCE",
    )


async def test_request_id_makes_create_idempotent(api, stub, merchant, world, db):
    first = await create(stub, api, merchant, segment("Idem"), request_id="seg-1")
    again = await create(stub, api, merchant, segment("Idem"), request_id="seg-1")
    assert again.id == first.id
    results = await asyncio.gather(
        *(create(stub, api, merchant, segment("Idem2"), request_id="seg-2") for _ in range(5))
    )
    assert len({r.id for r in results}) == 1
    count = await (
        await db.execute("SELECT count(*) FROM segments WHERE merchant_id = %s", (merchant,))
    ).fetchone()
    assert count[0] == 2


async def test_unknown_account_and_foreign_campaign_are_not_found(
    api, stub, merchant, world, db, other_merchant
):
    err = await expect_error(
        create(stub, api, merchant, segment(account_id=str(world["other_acc"]))),
        NOT_FOUND,
        "RESOURCE_NOT_FOUND",
    )
    assert err.info.metadata["resource"] == "account"
    foreign = await insert_campaign(db, other_merchant, world["other_acc"], "DRAFT")
    by_foreign = group(cond("received_campaign", Op.CONDITION_OPERATOR_IN, strings=[str(foreign)]))
    err = await expect_error(create(stub, api, merchant, segment(conditions=by_foreign)), NOT_FOUND)
    assert err.info.metadata == {"resource": "campaign", "id": str(foreign)}
    await expect_error(
        stub.PreviewSegment(
            S.PreviewSegmentRequest(conditions=by_foreign), metadata=api.auth(merchant)
        ),
        NOT_FOUND,
    )
    own = await insert_campaign(db, merchant, world["acc"], "COMPLETED")
    await db.execute(
        "INSERT INTO campaign_recipients (merchant_id, campaign_id, contact_id,"
        " state) VALUES (%s, %s, %s, 'DELIVERED')",
        (merchant, own, world["ids"]["n1"]),
    )
    ok = await create(
        stub,
        api,
        merchant,
        segment(
            "got it",
            group(cond("received_campaign", Op.CONDITION_OPERATOR_EQUALS, string_value=str(own))),
        ),
    )
    assert ok.contact_count == 1


async def test_get_not_found_and_bad_id(api, stub, merchant):
    md = api.auth(merchant)
    err = await expect_error(
        stub.GetSegment(S.GetSegmentRequest(id=str(uuid.uuid4())), metadata=md),
        NOT_FOUND,
        "RESOURCE_NOT_FOUND",
    )
    assert err.info.metadata["resource"] == "segment"
    err = await expect_error(stub.GetSegment(S.GetSegmentRequest(id="nope"), metadata=md), INVALID)
    assert err.bad_fields == {"id": "must be a UUID"}
    for call in (
        stub.DeleteSegment(S.DeleteSegmentRequest(id="x"), metadata=md),
        stub.RefreshSegmentCount(S.RefreshSegmentCountRequest(id="x"), metadata=md),
        stub.PreviewSegment(S.PreviewSegmentRequest(segment_id="x"), metadata=md),
    ):
        await expect_error(call, INVALID)
    missing = str(uuid.uuid4())
    for call in (
        stub.DeleteSegment(S.DeleteSegmentRequest(id=missing), metadata=md),
        stub.RefreshSegmentCount(S.RefreshSegmentCountRequest(id=missing), metadata=md),
        stub.PreviewSegment(S.PreviewSegmentRequest(segment_id=missing), metadata=md),
        stub.UpdateSegment(
            S.UpdateSegmentRequest(
                segment=S.Segment(id=missing, name="x"), update_mask=FieldMask(paths=["name"])
            ),
            metadata=md,
        ),
    ):
        await expect_error(call, NOT_FOUND)


async def test_other_merchant_sees_not_found_everywhere(api, stub, merchant, other_merchant, world):
    created = await create(stub, api, merchant)
    md = api.auth(other_merchant)
    await expect_error(
        stub.GetSegment(S.GetSegmentRequest(id=created.id), metadata=md),
        NOT_FOUND,
        "RESOURCE_NOT_FOUND",
    )
    await expect_error(
        stub.UpdateSegment(
            S.UpdateSegmentRequest(
                segment=S.Segment(id=created.id, name="stolen"),
                update_mask=FieldMask(paths=["name"]),
            ),
            metadata=md,
        ),
        NOT_FOUND,
    )
    await expect_error(
        stub.DeleteSegment(S.DeleteSegmentRequest(id=created.id), metadata=md), NOT_FOUND
    )
    await expect_error(
        stub.PreviewSegment(S.PreviewSegmentRequest(segment_id=created.id), metadata=md), NOT_FOUND
    )
    await expect_error(
        stub.RefreshSegmentCount(S.RefreshSegmentCountRequest(id=created.id), metadata=md),
        NOT_FOUND,
    )
    assert list((await stub.ListSegments(S.ListSegmentsRequest(), metadata=md)).segments) == []
    # The other merchant's own VIP segment counts only its own contact.
    theirs = await create(stub, api, other_merchant)
    assert theirs.contact_count == 1
    still = await stub.GetSegment(S.GetSegmentRequest(id=created.id), metadata=api.auth(merchant))
    assert still == created


# ------------------------------------------------------------------ update / delete


async def test_update_with_mask_and_etag(api, stub, merchant, world):
    md = api.auth(merchant)
    created = await create(stub, api, merchant)
    renamed = await stub.UpdateSegment(
        S.UpdateSegmentRequest(
            segment=S.Segment(
                id=created.id, name="Top", description="best", conditions=S.ConditionGroup()
            ),
            update_mask=FieldMask(paths=["name", "description"]),
            etag=created.etag,
        ),
        metadata=md,
    )
    assert (renamed.name, renamed.description) == ("Top", "best")
    assert renamed.conditions == VIP and renamed.contact_count == 3  # not in the mask
    assert renamed.count_refresh_time == created.count_refresh_time
    assert renamed.etag != created.etag
    err = await expect_error(
        stub.UpdateSegment(
            S.UpdateSegmentRequest(
                segment=S.Segment(id=created.id, name="again"),
                update_mask=FieldMask(paths=["name"]),
                etag=created.etag,
            ),
            metadata=md,
        ),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    assert err.message
    widened = await stub.UpdateSegment(
        S.UpdateSegmentRequest(
            segment=S.Segment(
                id=created.id,
                conditions=group(
                    cond("tags", Op.CONDITION_OPERATOR_CONTAINS, string_value="vip"),
                    cond("username", Op.CONDITION_OPERATOR_EQUALS, string_value="n1"),
                    op=S.CONDITION_GROUP_OPERATOR_OR,
                ),
            ),
            update_mask=FieldMask(paths=["conditions"]),
        ),
        metadata=md,
    )
    assert widened.contact_count == 4
    scoped = await stub.UpdateSegment(
        S.UpdateSegmentRequest(
            segment=S.Segment(id=created.id, account_id=str(world["acc2"])),
            update_mask=FieldMask(paths=["account_id"]),
        ),
        metadata=md,
    )
    assert scoped.contact_count == 1 and scoped.account_id == str(world["acc2"])
    unscoped = await stub.UpdateSegment(
        S.UpdateSegmentRequest(
            segment=S.Segment(id=created.id), update_mask=FieldMask(paths=["account_id"])
        ),
        metadata=md,
    )
    assert unscoped.contact_count == 4 and unscoped.account_id == ""


async def test_update_validation(api, stub, merchant, world):
    md = api.auth(merchant)
    created = await create(stub, api, merchant)
    err = await expect_error(
        stub.UpdateSegment(
            S.UpdateSegmentRequest(
                segment=S.Segment(
                    id=created.id,
                    name="",
                    conditions=group(cond("follows_account", Op.CONDITION_OPERATOR_IS_SET)),
                ),
                update_mask=FieldMask(paths=["name", "conditions", "contact_count"]),
            ),
            metadata=md,
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {
        "segment.name",
        f"{P}.nodes[0].condition.operator",
        "update_mask.paths[2]",
    }
    err = await expect_error(
        stub.UpdateSegment(
            S.UpdateSegmentRequest(segment=S.Segment(id=created.id, name="x")), metadata=md
        ),
        INVALID,
    )
    assert "update_mask" in err.bad_fields
    other = await create(stub, api, merchant, segment("Other"))
    await expect_error(
        stub.UpdateSegment(
            S.UpdateSegmentRequest(
                segment=S.Segment(id=other.id, name="vips"), update_mask=FieldMask(paths=["name"])
            ),
            metadata=md,
        ),
        grpc.StatusCode.ALREADY_EXISTS,
        "DUPLICATE_RESOURCE",
    )


async def test_delete_with_etag(api, stub, merchant, world):
    md = api.auth(merchant)
    created = await create(stub, api, merchant)
    await expect_error(
        stub.DeleteSegment(S.DeleteSegmentRequest(id=created.id, etag='"stale"'), metadata=md),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    await stub.DeleteSegment(S.DeleteSegmentRequest(id=created.id, etag=created.etag), metadata=md)
    await expect_error(stub.GetSegment(S.GetSegmentRequest(id=created.id), metadata=md), NOT_FOUND)


async def test_segment_in_use_cannot_be_deleted_or_retargeted(api, stub, merchant, world, db):
    for status, excluded in [("RUNNING", False), ("SCHEDULED", False), ("PAUSED", True)]:
        await _check_in_use(api, stub, merchant, world, db, status, excluded)


async def _check_in_use(api, stub, merchant, world, db, status, excluded):
    md = api.auth(merchant)
    created = await create(stub, api, merchant, segment(f"in use {status}"))
    campaign = await insert_campaign(db, merchant, world["acc"], status)
    await db.execute(
        "INSERT INTO campaign_segments (merchant_id, campaign_id, segment_id,"
        " excluded) VALUES (%s, %s, %s, %s)",
        (merchant, campaign, created.id, excluded),
    )
    err = await expect_error(
        stub.DeleteSegment(S.DeleteSegmentRequest(id=created.id), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESOURCE_IN_USE",
    )
    assert err.info.metadata["campaign_ids"] == str(campaign)
    for seg, path in [
        (S.Segment(id=created.id, conditions=S.ConditionGroup()), "conditions"),
        (S.Segment(id=created.id, account_id=str(world["acc2"])), "account_id"),
    ]:
        await expect_error(
            stub.UpdateSegment(
                S.UpdateSegmentRequest(segment=seg, update_mask=FieldMask(paths=[path])),
                metadata=md,
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "RESOURCE_IN_USE",
        )
    # Renaming, or "changing" conditions to the same tree, is fine.
    same = await stub.UpdateSegment(
        S.UpdateSegmentRequest(
            segment=S.Segment(id=created.id, name="Renamed", conditions=VIP),
            update_mask=FieldMask(paths=["name", "conditions"]),
        ),
        metadata=md,
    )
    assert same.name == "Renamed"
    # Once the campaign is over, the segment is free.
    await db.execute("UPDATE campaigns SET status = 'COMPLETED' WHERE id = %s", (campaign,))
    await stub.DeleteSegment(S.DeleteSegmentRequest(id=created.id), metadata=md)


# ------------------------------------------------------------------ list


async def test_list_pages_newest_first_with_filters(api, stub, merchant, world):
    md = api.auth(merchant)
    made = [await create(stub, api, merchant, segment(f"seg {i}")) for i in range(5)]
    scoped = await create(
        stub, api, merchant, segment("scoped 100%", account_id=str(world["acc2"]))
    )
    seen, token = [], ""
    while True:
        page = await stub.ListSegments(
            S.ListSegmentsRequest(page_size=2, page_token=token), metadata=md
        )
        assert len(page.segments) <= 2
        seen += [s.id for s in page.segments]
        token = page.next_page_token
        if not token:
            break
    assert seen == [scoped.id] + [s.id for s in reversed(made)]
    only = await stub.ListSegments(
        S.ListSegmentsRequest(account_id=str(world["acc2"])), metadata=md
    )
    assert [s.id for s in only.segments] == [scoped.id]
    named = await stub.ListSegments(S.ListSegmentsRequest(name_contains="0%"), metadata=md)
    assert [s.id for s in named.segments] == [scoped.id]
    first = await stub.ListSegments(S.ListSegmentsRequest(page_size=2), metadata=md)
    err = await expect_error(
        stub.ListSegments(
            S.ListSegmentsRequest(
                page_size=2, page_token=first.next_page_token, name_contains="seg"
            ),
            metadata=md,
        ),
        INVALID,
    )
    assert "page_token" in err.bad_fields
    err = await expect_error(
        stub.ListSegments(S.ListSegmentsRequest(page_size=-1, account_id="x"), metadata=md), INVALID
    )
    assert set(err.bad_fields) == {"page_size", "account_id"}


# ------------------------------------------------------------------ preview / refresh


async def test_preview_stored_and_ad_hoc(api, stub, merchant, world):
    md = api.auth(merchant)
    created = await create(stub, api, merchant)
    got = await stub.PreviewSegment(S.PreviewSegmentRequest(segment_id=created.id), metadata=md)
    assert got.total_count == 3
    # Most recent interaction first; never interacted last.
    assert [c.username for c in got.sample_contacts] == ["v2", "v1", "v3"]
    assert all("vip" in c.tags for c in got.sample_contacts)
    one = await stub.PreviewSegment(
        S.PreviewSegmentRequest(segment_id=created.id, sample_size=1), metadata=md
    )
    assert one.total_count == 3 and [c.username for c in one.sample_contacts] == ["v2"]
    adhoc = await stub.PreviewSegment(
        S.PreviewSegmentRequest(conditions=VIP, account_id=str(world["acc"])), metadata=md
    )
    assert adhoc.total_count == 2
    assert {c.account_id for c in adhoc.sample_contacts} == {str(world["acc"])}
    everyone = await stub.PreviewSegment(
        S.PreviewSegmentRequest(conditions=S.ConditionGroup(), sample_size=50), metadata=md
    )
    assert everyone.total_count == 5 and len(everyone.sample_contacts) == 5
    hostile = await stub.PreviewSegment(
        S.PreviewSegmentRequest(
            conditions=group(
                cond("display_name", Op.CONDITION_OPERATOR_EQUALS, string_value=HOSTILE)
            )
        ),
        metadata=md,
    )
    assert [c.username for c in hostile.sample_contacts] == ["n2"]
    nobody = await stub.PreviewSegment(
        S.PreviewSegmentRequest(
            conditions=group(cond("display_name", Op.CONDITION_OPERATOR_CONTAINS, string_value="%"))
        ),
        metadata=md,
    )
    assert nobody.total_count == 0 and not nobody.sample_contacts
    await expect_error(
        stub.PreviewSegment(
            S.PreviewSegmentRequest(conditions=VIP, account_id=str(world["other_acc"])), metadata=md
        ),
        NOT_FOUND,
    )


async def test_preview_validation(api, stub, merchant):
    md = api.auth(merchant)
    err = await expect_error(stub.PreviewSegment(S.PreviewSegmentRequest(), metadata=md), INVALID)
    assert "segment_id" in err.bad_fields
    err = await expect_error(
        stub.PreviewSegment(
            S.PreviewSegmentRequest(
                conditions=group(cond("tags", Op.CONDITION_OPERATOR_EQUALS, string_value="x")),
                sample_size=51,
                account_id="nope",
            ),
            metadata=md,
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {
        "conditions.nodes[0].condition.operator",
        "sample_size",
        "account_id",
    }
    err = await expect_error(
        stub.PreviewSegment(
            S.PreviewSegmentRequest(segment_id=str(uuid.uuid4()), sample_size=-1), metadata=md
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {"sample_size"}


async def test_refresh_count_rpc_and_worker_loop(api, stub, merchant, world, db):
    md = api.auth(merchant)
    created = await create(stub, api, merchant)
    await insert_contact(db, merchant, world["acc"], "v4", tags=["vip"])
    refreshed = await stub.RefreshSegmentCount(
        S.RefreshSegmentCountRequest(id=created.id), metadata=md
    )
    assert refreshed.contact_count == 4
    assert refreshed.etag == created.etag  # derived data: no new version
    assert refreshed.count_refresh_time.ToNanoseconds() > created.count_refresh_time.ToNanoseconds()

    await insert_contact(db, merchant, world["acc"], "v5", tags=["vip"])
    deps = api.app.deps
    # Fresh counts are left alone...
    assert await refresh_segment_counts(deps) == 60.0
    got = await stub.GetSegment(S.GetSegmentRequest(id=created.id), metadata=md)
    assert got.contact_count == 4
    # ...stale ones are recounted, for every merchant, in batches.
    await db.execute("UPDATE segments SET count_refreshed_at = now() - interval '1 day'")
    assert await refresh_segment_counts(deps, batch=1) == 1.0
    assert await refresh_segment_counts(deps) == 60.0
    got = await stub.GetSegment(S.GetSegmentRequest(id=created.id), metadata=md)
    assert got.contact_count == 5 and got.etag == created.etag
    # A stored tree that no longer compiles is skipped, not retried in a hot loop.
    await db.execute(
        "UPDATE segments SET conditions = %s, count_refreshed_at = NULL WHERE id = %s",
        (Jsonb({"nodes": [{"condition": {"field": "zzz"}}]}), created.id),
    )
    assert await refresh_segment_counts(deps) == 60.0
    row = await (
        await db.execute(
            "SELECT contact_count, count_refreshed_at FROM segments WHERE id = %s", (created.id,)
        )
    ).fetchone()
    assert row[0] == 5 and row[1] is not None


async def test_hostile_condition_values_leave_tables_intact(api, stub, merchant, world, db):
    for i, value in enumerate([HOSTILE, "' OR 1=1 --", "%", "_", "\\", "日本 🎉"]):
        seg = await create(
            stub,
            api,
            merchant,
            segment(
                f"h{i}",
                group(
                    cond("display_name", Op.CONDITION_OPERATOR_CONTAINS, string_value=value),
                    cond("attributes.note", Op.CONDITION_OPERATOR_NOT_EQUALS, string_value=value),
                    cond("tags", Op.CONDITION_OPERATOR_NOT_IN, strings=[value]),
                ),
            ),
        )
        assert seg.contact_count == (1 if value == HOSTILE else 0)
        assert seg.conditions.nodes[0].condition.string_value == value
    count = await (await db.execute("SELECT count(*) FROM contacts")).fetchone()
    assert count[0] == 6
