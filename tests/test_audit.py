"""Audit rows for destructive RPCs (audit_log, migration 0017): who, which request,
which method and resource, in the change's own transaction."""

from __future__ import annotations

import uuid

import grpc
from helpers import expect_error

from mktx.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    contacts_pb2,
    contacts_pb2_grpc,
    templates_pb2,
    templates_pb2_grpc,
)
from mktx_grpc.methods import METHODS

T = templates_pb2


async def audit_rows(db, merchant):
    cur = await db.execute(
        "SELECT user_id, request_id, method, resource_id FROM audit_log WHERE merchant_id = %s"
        " ORDER BY id",
        (merchant,),
    )
    return [tuple(r) for r in await cur.fetchall()]


def md(api, merchant, user="alice", request_id="req-1"):
    return [*api.auth(merchant, user), ("x-request-id", request_id)]


async def test_delete_template_writes_one_audit_row_with_user_and_request(
    api, merchant, other_merchant, db
):
    stub = templates_pb2_grpc.TemplatesServiceStub(api.channel)
    made = await stub.CreateTemplate(
        T.CreateTemplateRequest(
            template=T.Template(name="t", type=T.TEMPLATE_TYPE_TEXT, content="x")
        ),
        metadata=api.auth(merchant),
    )
    assert await audit_rows(db, merchant) == []  # a create is not audited
    # Another merchant cannot delete it (NOT_FOUND), and that writes nothing.
    await expect_error(
        stub.DeleteTemplate(T.DeleteTemplateRequest(id=made.id), metadata=md(api, other_merchant)),
        grpc.StatusCode.NOT_FOUND,
    )
    await stub.DeleteTemplate(
        T.DeleteTemplateRequest(id=made.id), metadata=md(api, merchant, "alice", "req-del-1")
    )
    assert await audit_rows(db, merchant) == [
        ("alice", "req-del-1", "/mktx.v1.TemplatesService/DeleteTemplate", made.id)
    ]
    assert await audit_rows(db, other_merchant) == []
    # Deleting it again fails: no second row.
    await expect_error(
        stub.DeleteTemplate(T.DeleteTemplateRequest(id=made.id), metadata=md(api, merchant)),
        grpc.StatusCode.NOT_FOUND,
    )
    assert len(await audit_rows(db, merchant)) == 1


async def test_a_failed_destructive_call_leaves_no_row(api, merchant, db):
    stub = templates_pb2_grpc.TemplatesServiceStub(api.channel)
    await expect_error(
        stub.DeleteTemplate(T.DeleteTemplateRequest(id="nope"), metadata=md(api, merchant)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await expect_error(
        stub.DeleteTemplate(
            T.DeleteTemplateRequest(id=str(uuid.uuid4())), metadata=md(api, merchant)
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert await audit_rows(db, merchant) == []


async def _account(db, merchant):
    account = uuid.uuid4()
    x_user = str(uuid.uuid4().int % 10**15)
    await db.execute(
        "INSERT INTO accounts (id, merchant_id, x_user_id, username, status, auth_method,"
        " access_token_enc) VALUES (%s, %s, %s, 'shop', 'ACTIVE', 'OAUTH2', %s)",
        (account, merchant, x_user, b"\x01enc"),
    )
    return str(account)


async def test_gdpr_erase_and_disconnect_are_audited(api, merchant, db):
    account = await _account(db, merchant)
    contacts = contacts_pb2_grpc.ContactsServiceStub(api.channel)
    contact = await contacts.CreateContact(
        contacts_pb2.CreateContactRequest(
            contact=contacts_pb2.Contact(account_id=account, x_user_id="4711", username="ana")
        ),
        metadata=api.auth(merchant),
    )
    await contacts.DeleteContact(
        contacts_pb2.DeleteContactRequest(id=contact.id),
        metadata=md(api, merchant, "dpo", "gdpr-1"),
    )
    accounts = accounts_pb2_grpc.AccountsServiceStub(api.channel)
    got = await accounts.DisconnectAccount(
        accounts_pb2.DisconnectAccountRequest(id=account), metadata=md(api, merchant, "bob", "dc-1")
    )
    assert got.status == accounts_pb2.ACCOUNT_STATUS_DISCONNECTED
    # Disconnecting again changes nothing, so records nothing.
    await accounts.DisconnectAccount(
        accounts_pb2.DisconnectAccountRequest(id=account), metadata=md(api, merchant, "bob", "dc-2")
    )
    assert await audit_rows(db, merchant) == [
        ("dpo", "gdpr-1", "/mktx.v1.ContactsService/DeleteContact", contact.id),
        ("bob", "dc-1", "/mktx.v1.AccountsService/DisconnectAccount", account),
    ]


def test_every_destructive_transactional_rpc_is_audited():
    """Delete*, Cancel* and Disconnect* RPCs in one transaction carry ``audit`` in the
    method table; those that manage their own transactions (DeletePost,
    DisconnectAccount) write the row in their operation (DisconnectAccount tested
    above, DeletePost in publishing/test_publishing_service.py)."""
    destructive = [
        name
        for name in METHODS
        if name.rsplit("/", 1)[1].startswith(("Delete", "Cancel", "Disconnect"))
    ]
    assert "/mktx.v1.CampaignsService/CancelCampaign" in destructive
    for name in destructive:
        spec = METHODS[name]
        if spec.write:
            assert spec.audit, f"{name} is destructive but not audited"
        else:
            assert name in (
                "/mktx.v1.PublishingService/DeletePost",
                "/mktx.v1.AccountsService/DisconnectAccount",
            ), name
