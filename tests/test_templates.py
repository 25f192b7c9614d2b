"""TemplatesService end to end through the production interceptor chain."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from helpers import expect_error

from mktx.v1 import common_pb2, templates_pb2, templates_pb2_grpc

T = templates_pb2
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def text_template(name: str = "Welcome", content: str = "Hi {{first_name|friend}}, use {{code}}!"):
    return T.Template(
        name=name, type=T.TEMPLATE_TYPE_TEXT, content=content, tags=["Promo", "promo "]
    )


@pytest.fixture
def stub(api):
    return templates_pb2_grpc.TemplatesServiceStub(api.channel)


async def test_create_get_roundtrip_extracts_variables(api, stub, merchant):
    md = api.auth(merchant)
    created = await stub.CreateTemplate(
        T.CreateTemplateRequest(template=text_template()), metadata=md
    )
    assert uuid.UUID(created.id)
    assert list(created.variables) == ["code", "first_name"]
    assert list(created.tags) == ["promo"]
    assert created.etag and created.create_time.seconds > 0
    got = await stub.GetTemplate(T.GetTemplateRequest(id=created.id), metadata=md)
    assert got == created


async def test_quick_reply_and_card_variables_come_from_every_field(api, stub, merchant):
    md = api.auth(merchant)
    qr = await stub.CreateTemplate(
        T.CreateTemplateRequest(
            template=T.Template(
                name="qr",
                type=T.TEMPLATE_TYPE_QUICK_REPLY,
                content="Pick one, {{name}}",
                quick_replies=[
                    common_pb2.QuickReplyOption(label="Yes {{emoji}}", metadata="y"),
                    common_pb2.QuickReplyOption(label="No", description="{{why}}"),
                ],
            )
        ),
        metadata=md,
    )
    assert list(qr.variables) == ["emoji", "name", "why"]
    card = await stub.CreateTemplate(
        T.CreateTemplateRequest(
            template=T.Template(
                name="card",
                type=T.TEMPLATE_TYPE_CARD,
                content="Sale!",
                card_media_url="https://cdn.example/{{img}}.png",
                card_buttons=[
                    common_pb2.CardButton(label="Shop", url="https://shop.example/?c={{coupon}}")
                ],
            )
        ),
        metadata=md,
    )
    assert list(card.variables) == ["coupon", "img"]


async def test_create_reports_every_bad_field_together(api, stub, merchant):
    bad = T.Template(
        name="",
        type=T.TEMPLATE_TYPE_QUICK_REPLY,
        content="x" * 10_001,
        quick_replies=[common_pb2.QuickReplyOption(label="L" * 37)],
        card_media_url="http://insecure.example/a.png",
    )
    err = await expect_error(
        stub.CreateTemplate(
            T.CreateTemplateRequest(template=bad, request_id="bad id!"), metadata=api.auth(merchant)
        ),
        INVALID,
        "VALIDATION_ERROR",
    )
    assert set(err.bad_fields) >= {
        "template.name",
        "template.content",
        "template.quick_replies[0].label",
        "template.card_media_url",
        "request_id",
    }


@pytest.mark.parametrize(
    ("template", "field"),
    [
        (T.Template(name="n", content="hi"), "template.type"),
        (T.Template(name="n", type=T.TEMPLATE_TYPE_TEXT, content="   "), "template.content"),
        (
            T.Template(name="n", type=T.TEMPLATE_TYPE_TEXT, content="Hi {{ 1bad }}"),
            "template.content",
        ),
        (T.Template(name="n", type=T.TEMPLATE_TYPE_TEXT, content="Hi {{name"), "template.content"),
        (
            T.Template(name="n", type=T.TEMPLATE_TYPE_QUICK_REPLY, content="q"),
            "template.quick_replies",
        ),
        (
            T.Template(
                name="n",
                type=T.TEMPLATE_TYPE_CARD,
                content="c",
                card_media_url="https://a.example/x.png",
            ),
            "template.card_buttons",
        ),
        (
            T.Template(name="n", type=T.TEMPLATE_TYPE_TEXT, content="c", tags=["x" * 51]),
            "template.tags[0]",
        ),
    ],
)
async def test_create_rejects_invalid_templates(api, stub, merchant, template, field):
    err = await expect_error(
        stub.CreateTemplate(
            T.CreateTemplateRequest(template=template), metadata=api.auth(merchant)
        ),
        INVALID,
    )
    assert field in err.bad_fields


async def test_missing_template_message_is_invalid(api, stub, merchant):
    err = await expect_error(
        stub.CreateTemplate(T.CreateTemplateRequest(), metadata=api.auth(merchant)), INVALID
    )
    assert "template" in err.bad_fields


async def test_duplicate_name_is_already_exists_case_insensitively(api, stub, merchant):
    md = api.auth(merchant)
    await stub.CreateTemplate(T.CreateTemplateRequest(template=text_template("Promo")), metadata=md)
    await expect_error(
        stub.CreateTemplate(T.CreateTemplateRequest(template=text_template("promo")), metadata=md),
        grpc.StatusCode.ALREADY_EXISTS,
        "DUPLICATE_RESOURCE",
    )


async def test_request_id_makes_create_idempotent(api, stub, merchant, db):
    md = api.auth(merchant)
    req = T.CreateTemplateRequest(template=text_template("Idem"), request_id="req-1")
    first = await stub.CreateTemplate(req, metadata=md)
    again = await stub.CreateTemplate(req, metadata=md)
    assert again.id == first.id
    # Concurrent retries also converge on one template.
    req2 = T.CreateTemplateRequest(template=text_template("Idem2"), request_id="req-2")
    results = await asyncio.gather(*(stub.CreateTemplate(req2, metadata=md) for _ in range(5)))
    assert len({r.id for r in results}) == 1
    count = await (
        await db.execute("SELECT count(*) FROM templates WHERE merchant_id = %s", (merchant,))
    ).fetchone()
    assert count[0] == 2


async def test_request_id_is_per_merchant(api, stub, merchant, other_merchant):
    req = T.CreateTemplateRequest(template=text_template("Shared"), request_id="same-key")
    a = await stub.CreateTemplate(req, metadata=api.auth(merchant))
    b = await stub.CreateTemplate(req, metadata=api.auth(other_merchant))
    assert a.id != b.id


async def test_get_not_found_and_bad_id(api, stub, merchant):
    md = api.auth(merchant)
    err = await expect_error(
        stub.GetTemplate(T.GetTemplateRequest(id=str(uuid.uuid4())), metadata=md),
        grpc.StatusCode.NOT_FOUND,
        "RESOURCE_NOT_FOUND",
    )
    assert err.info.metadata["resource"] == "template"
    err = await expect_error(
        stub.GetTemplate(T.GetTemplateRequest(id="nope"), metadata=md), INVALID
    )
    assert err.bad_fields == {"id": "must be a UUID"}


async def test_other_merchant_sees_not_found_everywhere(api, stub, merchant, other_merchant):
    created = await stub.CreateTemplate(
        T.CreateTemplateRequest(template=text_template()), metadata=api.auth(merchant)
    )
    md = api.auth(other_merchant)
    nf = grpc.StatusCode.NOT_FOUND
    await expect_error(stub.GetTemplate(T.GetTemplateRequest(id=created.id), metadata=md), nf)
    await expect_error(
        stub.PreviewTemplate(T.PreviewTemplateRequest(id=created.id), metadata=md), nf
    )
    await expect_error(
        stub.UpdateTemplate(
            T.UpdateTemplateRequest(
                template=T.Template(id=created.id, name="stolen"),
                update_mask=FieldMask(paths=["name"]),
            ),
            metadata=md,
        ),
        nf,
    )
    await expect_error(stub.DeleteTemplate(T.DeleteTemplateRequest(id=created.id), metadata=md), nf)
    listed = await stub.ListTemplates(T.ListTemplatesRequest(), metadata=md)
    assert list(listed.templates) == []
    # ...and the owner's template is untouched.
    still = await stub.GetTemplate(T.GetTemplateRequest(id=created.id), metadata=api.auth(merchant))
    assert still == created


async def test_update_with_mask_and_etag(api, stub, merchant):
    md = api.auth(merchant)
    created = await stub.CreateTemplate(
        T.CreateTemplateRequest(template=text_template()), metadata=md
    )
    updated = await stub.UpdateTemplate(
        T.UpdateTemplateRequest(
            template=T.Template(id=created.id, content="Bye {{who}}", name="ignored"),
            update_mask=FieldMask(paths=["content"]),
            etag=created.etag,
        ),
        metadata=md,
    )
    assert updated.content == "Bye {{who}}"
    assert updated.name == created.name  # not in the mask
    assert list(updated.variables) == ["who"]
    assert updated.etag != created.etag
    # The old etag is now stale.
    await expect_error(
        stub.UpdateTemplate(
            T.UpdateTemplateRequest(
                template=T.Template(id=created.id, content="again"),
                update_mask=FieldMask(paths=["content"]),
                etag=created.etag,
            ),
            metadata=md,
        ),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    got = await stub.GetTemplate(T.GetTemplateRequest(id=created.id), metadata=md)
    assert got.content == "Bye {{who}}"


async def test_update_validation(api, stub, merchant):
    md = api.auth(merchant)
    created = await stub.CreateTemplate(
        T.CreateTemplateRequest(template=text_template()), metadata=md
    )
    err = await expect_error(
        stub.UpdateTemplate(
            T.UpdateTemplateRequest(
                template=T.Template(id=created.id), update_mask=FieldMask(paths=["type", "bogus"])
            ),
            metadata=md,
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {"update_mask.paths[0]", "update_mask.paths[1]"}
    err = await expect_error(
        stub.UpdateTemplate(
            T.UpdateTemplateRequest(template=T.Template(id=created.id)), metadata=md
        ),
        INVALID,
    )
    assert "update_mask" in err.bad_fields
    # The merged template is validated: blank content is refused and nothing changes.
    err = await expect_error(
        stub.UpdateTemplate(
            T.UpdateTemplateRequest(
                template=T.Template(id=created.id, content=""),
                update_mask=FieldMask(paths=["content"]),
            ),
            metadata=md,
        ),
        INVALID,
    )
    assert "template.content" in err.bad_fields
    assert (await stub.GetTemplate(T.GetTemplateRequest(id=created.id), metadata=md)) == created


async def test_update_rename_onto_existing_name_conflicts(api, stub, merchant):
    md = api.auth(merchant)
    await stub.CreateTemplate(T.CreateTemplateRequest(template=text_template("A")), metadata=md)
    b = await stub.CreateTemplate(T.CreateTemplateRequest(template=text_template("B")), metadata=md)
    await expect_error(
        stub.UpdateTemplate(
            T.UpdateTemplateRequest(
                template=T.Template(id=b.id, name="a"), update_mask=FieldMask(paths=["name"])
            ),
            metadata=md,
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )


async def test_list_filters_and_paginates(api, stub, merchant):
    md = api.auth(merchant)
    names = [f"promo-{i:02d}" for i in range(7)] + ["other"]
    for n in names:
        await stub.CreateTemplate(T.CreateTemplateRequest(template=text_template(n)), metadata=md)
    await stub.CreateTemplate(
        T.CreateTemplateRequest(
            template=T.Template(
                name="promo-qr",
                type=T.TEMPLATE_TYPE_QUICK_REPLY,
                content="q",
                quick_replies=[common_pb2.QuickReplyOption(label="ok")],
            )
        ),
        metadata=md,
    )
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        resp = await stub.ListTemplates(
            T.ListTemplatesRequest(
                name_contains="PROMO", type=T.TEMPLATE_TYPE_TEXT, page_size=3, page_token=token
            ),
            metadata=md,
        )
        seen += [t.name for t in resp.templates]
        pages += 1
        token = resp.next_page_token
        if not token:
            break
    assert pages == 3
    assert seen == list(reversed(names[:7]))  # newest first, no duplicates, no gaps
    # A token is bound to its filters.
    first = await stub.ListTemplates(T.ListTemplatesRequest(page_size=2), metadata=md)
    assert first.next_page_token
    err = await expect_error(
        stub.ListTemplates(
            T.ListTemplatesRequest(
                page_size=2, name_contains="x", page_token=first.next_page_token
            ),
            metadata=md,
        ),
        INVALID,
    )
    assert "page_token" in err.bad_fields
    await expect_error(
        stub.ListTemplates(T.ListTemplatesRequest(page_token="garbage"), metadata=md), INVALID
    )
    err = await expect_error(
        stub.ListTemplates(T.ListTemplatesRequest(page_size=-1), metadata=md), INVALID
    )
    assert "page_size" in err.bad_fields
    # Oversized page sizes are coerced down rather than refused.
    big = await stub.ListTemplates(T.ListTemplatesRequest(page_size=10_000), metadata=md)
    assert len(big.templates) == 9


async def test_name_search_treats_wildcards_literally(api, stub, merchant):
    md = api.auth(merchant)
    for n in ["50% off", "500 off"]:
        await stub.CreateTemplate(T.CreateTemplateRequest(template=text_template(n)), metadata=md)
    resp = await stub.ListTemplates(T.ListTemplatesRequest(name_contains="0%"), metadata=md)
    assert [t.name for t in resp.templates] == ["50% off"]


async def test_preview_renders_with_fallbacks_and_names_missing(api, stub, merchant):
    md = api.auth(merchant)
    created = await stub.CreateTemplate(
        T.CreateTemplateRequest(template=text_template()), metadata=md
    )
    out = await stub.PreviewTemplate(
        T.PreviewTemplateRequest(id=created.id, variables={"code": "SAVE10"}), metadata=md
    )
    assert out.content == "Hi friend, use SAVE10!"
    assert list(out.fallback_variables) == ["first_name"]
    out = await stub.PreviewTemplate(
        T.PreviewTemplateRequest(id=created.id, variables={"code": "X", "first_name": "Ada"}),
        metadata=md,
    )
    assert out.content == "Hi Ada, use X!"
    err = await expect_error(
        stub.PreviewTemplate(T.PreviewTemplateRequest(id=created.id), metadata=md),
        INVALID,
        "MISSING_VARIABLES",
    )
    assert set(err.bad_fields) == {"variables.code"}


async def test_delete_and_in_use_guard(api, stub, merchant, db):
    md = api.auth(merchant)
    created = await stub.CreateTemplate(
        T.CreateTemplateRequest(template=text_template()), metadata=md
    )
    account_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO accounts (id, merchant_id, x_user_id, auth_method) VALUES (%s, %s, %s, 'OAUTH1')",
        (account_id, merchant, "1001"),
    )
    await db.execute(
        "INSERT INTO campaigns (merchant_id, account_id, name, type, status, template_id)"
        " VALUES (%s, %s, 'Spring', 'BULK_DM', 'RUNNING', %s)",
        (merchant, account_id, created.id),
    )
    err = await expect_error(
        stub.DeleteTemplate(T.DeleteTemplateRequest(id=created.id), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESOURCE_IN_USE",
    )
    assert "Spring" in err.message
    await db.execute(
        "UPDATE campaigns SET status = 'COMPLETED' WHERE merchant_id = %s", (merchant,)
    )
    await expect_error(
        stub.DeleteTemplate(T.DeleteTemplateRequest(id=created.id, etag='"stale"'), metadata=md),
        grpc.StatusCode.ABORTED,
    )
    await stub.DeleteTemplate(
        T.DeleteTemplateRequest(id=created.id, etag=created.etag), metadata=md
    )
    await expect_error(
        stub.GetTemplate(T.GetTemplateRequest(id=created.id), metadata=md),
        grpc.StatusCode.NOT_FOUND,
    )
    await expect_error(
        stub.DeleteTemplate(T.DeleteTemplateRequest(id=created.id), metadata=md),
        grpc.StatusCode.NOT_FOUND,
    )
    # The completed campaign keeps its history; its template reference is cleared.
    row = await (
        await db.execute("SELECT template_id FROM campaigns WHERE merchant_id = %s", (merchant,))
    ).fetchone()
    assert row[0] is None
