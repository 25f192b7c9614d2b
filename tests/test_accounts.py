"""AccountsService read and settings path, on accounts inserted directly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from helpers import expect_error

from mktx.v1 import accounts_pb2, accounts_pb2_grpc, common_pb2

A = accounts_pb2
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
def stub(api):
    return accounts_pb2_grpc.AccountsServiceStub(api.channel)


async def insert_account(db, merchant, x_user_id="2244994945", status="ACTIVE", **extra):
    account_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO accounts (id, merchant_id, x_user_id, username, display_name, status,"
        " auth_method, access_token_enc, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, 'OAUTH2', %s, %s)",
        (
            account_id,
            merchant,
            x_user_id,
            f"user{x_user_id}",
            "Shop",
            status,
            b"\x01ciphertext",
            extra.get("created_at", datetime.now(UTC)),
        ),
    )
    return str(account_id)


def schedule(tz="Europe/Berlin"):
    return common_pb2.WeeklySchedule(
        time_zone=tz,
        days=[
            common_pb2.DaySchedule(
                day=common_pb2.DAY_OF_WEEK_MONDAY,
                ranges=[common_pb2.TimeRange(start="09:00", end="17:30")],
            )
        ],
    )


async def test_get_and_list_with_status_filter(api, stub, merchant, db):
    md = api.auth(merchant)
    now = datetime.now(UTC)
    ids = [
        await insert_account(db, merchant, str(1000 + i), created_at=now - timedelta(minutes=i))
        for i in range(5)
    ]
    err_id = await insert_account(
        db, merchant, "1999", status="ERROR", created_at=now - timedelta(hours=1)
    )
    got = await stub.GetAccount(A.GetAccountRequest(id=ids[0]), metadata=md)
    assert got.x_user_id == "1000" and got.status == A.ACCOUNT_STATUS_ACTIVE
    assert got.auth_method == A.AUTH_METHOD_OAUTH2 and got.etag
    listed = []
    token = ""
    while True:
        page = await stub.ListAccounts(
            A.ListAccountsRequest(page_size=2, page_token=token), metadata=md
        )
        listed += [a.id for a in page.accounts]
        token = page.next_page_token
        if not token:
            break
    assert listed == [*ids, err_id]
    errors = await stub.ListAccounts(
        A.ListAccountsRequest(status=A.ACCOUNT_STATUS_ERROR), metadata=md
    )
    assert [a.id for a in errors.accounts] == [err_id]


async def test_account_never_exposes_tokens(api, stub, merchant, db):
    account_id = await insert_account(db, merchant)
    got = await stub.GetAccount(A.GetAccountRequest(id=account_id), metadata=api.auth(merchant))
    assert b"ciphertext" not in got.SerializeToString()
    field_names = {f.name for f in A.Account.DESCRIPTOR.fields}
    assert not any("token" in n and n != "token_expire_time" for n in field_names)


async def test_update_settings_with_mask_and_etag(api, stub, merchant, db):
    md = api.auth(merchant)
    account_id = await insert_account(db, merchant)
    current = await stub.GetAccount(A.GetAccountRequest(id=account_id), metadata=md)
    updated = await stub.UpdateAccountSettings(
        A.UpdateAccountSettingsRequest(
            account_id=account_id,
            settings=A.AccountSettings(
                auto_reply_enabled=True,
                business_hours=A.BusinessHours(enabled=True, schedule=schedule()),
                dm_budget=A.DmBudget(per_15_minutes=10, per_24_hours=500),
            ),
            update_mask=FieldMask(paths=["auto_reply_enabled", "business_hours"]),
            etag=current.etag,
        ),
        metadata=md,
    )
    assert updated.settings.auto_reply_enabled
    assert updated.settings.business_hours.schedule.time_zone == "Europe/Berlin"
    assert updated.settings.dm_budget.per_15_minutes == 0  # not in the mask
    # Narrow path into the budget only.
    again = await stub.UpdateAccountSettings(
        A.UpdateAccountSettingsRequest(
            account_id=account_id,
            settings=A.AccountSettings(dm_budget=A.DmBudget(per_15_minutes=7)),
            update_mask=FieldMask(paths=["dm_budget.per_15_minutes"]),
        ),
        metadata=md,
    )
    assert again.settings.dm_budget.per_15_minutes == 7
    assert again.settings.auto_reply_enabled  # kept
    await expect_error(
        stub.UpdateAccountSettings(
            A.UpdateAccountSettingsRequest(
                account_id=account_id, settings=A.AccountSettings(), etag=current.etag
            ),
            metadata=md,
        ),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )


async def test_update_settings_validation(api, stub, merchant, db):
    md = api.auth(merchant)
    account_id = await insert_account(db, merchant)
    bad_schedule = common_pb2.WeeklySchedule(
        time_zone="Mars/Olympus",
        days=[
            common_pb2.DaySchedule(
                day=common_pb2.DAY_OF_WEEK_MONDAY,
                ranges=[
                    common_pb2.TimeRange(start="18:00", end="09:00"),
                    common_pb2.TimeRange(start="9am", end="25:00"),
                ],
            ),
            common_pb2.DaySchedule(day=common_pb2.DAY_OF_WEEK_MONDAY),
        ],
    )
    err = await expect_error(
        stub.UpdateAccountSettings(
            A.UpdateAccountSettingsRequest(
                account_id=account_id,
                settings=A.AccountSettings(
                    business_hours=A.BusinessHours(enabled=True, schedule=bad_schedule),
                    dm_budget=A.DmBudget(per_15_minutes=-1),
                ),
                update_mask=FieldMask(paths=["business_hours", "dm_budget", "nope"]),
            ),
            metadata=md,
        ),
        INVALID,
    )
    p = "settings.business_hours.schedule"
    assert set(err.bad_fields) == {
        "update_mask.paths[2]",
        f"{p}.time_zone",
        f"{p}.days[0].ranges[0]",
        f"{p}.days[0].ranges[1].start",
        f"{p}.days[0].ranges[1].end",
        f"{p}.days[1].day",
        "settings.dm_budget.per_15_minutes",
    }
    # Nothing was written.
    got = await stub.GetAccount(A.GetAccountRequest(id=account_id), metadata=md)
    assert not got.settings.HasField("business_hours")
    await expect_error(
        stub.UpdateAccountSettings(A.UpdateAccountSettingsRequest(account_id="x"), metadata=md),
        INVALID,
    )


async def test_disconnect_erases_tokens_and_is_idempotent(api, stub, merchant, db):
    md = api.auth(merchant)
    account_id = await insert_account(db, merchant)
    out = await stub.DisconnectAccount(A.DisconnectAccountRequest(id=account_id), metadata=md)
    assert out.status == A.ACCOUNT_STATUS_DISCONNECTED
    row = await (
        await db.execute(
            "SELECT access_token_enc, token_secret_enc, refresh_token_enc FROM accounts WHERE id = %s",
            (account_id,),
        )
    ).fetchone()
    assert row == (None, None, None)
    again = await stub.DisconnectAccount(A.DisconnectAccountRequest(id=account_id), metadata=md)
    assert again.status == A.ACCOUNT_STATUS_DISCONNECTED and again.etag == out.etag
    # The X user can be connected again once the old account is disconnected.
    await insert_account(db, merchant)


async def test_statistics_count_this_month(api, stub, merchant, db):
    md = api.auth(merchant)
    account_id = await insert_account(db, merchant)
    contact = uuid.uuid4()
    await db.execute(
        "INSERT INTO contacts (id, merchant_id, account_id, x_user_id) VALUES (%s, %s, %s, '42')",
        (contact, merchant, account_id),
    )
    conv = uuid.uuid4()
    await db.execute(
        "INSERT INTO conversations (id, merchant_id, account_id, contact_id) VALUES (%s, %s, %s, %s)",
        (conv, merchant, account_id, contact),
    )
    long_ago = datetime.now(UTC) - timedelta(days=62)
    for direction, created in [
        ("INBOUND", None),
        ("INBOUND", None),
        ("OUTBOUND", None),
        ("OUTBOUND", long_ago),
    ]:
        await db.execute(
            "INSERT INTO messages (merchant_id, conversation_id, direction, created_at)"
            " VALUES (%s, %s, %s, coalesce(%s, now()))",
            (merchant, conv, direction, created),
        )
    stats = await stub.GetAccountStatistics(
        A.GetAccountStatisticsRequest(id=account_id), metadata=md
    )
    assert (stats.contacts, stats.conversations, stats.open_conversations) == (1, 1, 1)
    assert stats.messages_received_this_month == 2
    assert stats.messages_sent_this_month == 1


async def test_accounts_are_isolated_between_merchants(api, stub, merchant, other_merchant, db):
    account_id = await insert_account(db, merchant)
    md = api.auth(other_merchant)
    nf = grpc.StatusCode.NOT_FOUND
    await expect_error(stub.GetAccount(A.GetAccountRequest(id=account_id), metadata=md), nf)
    await expect_error(
        stub.GetAccountStatistics(A.GetAccountStatisticsRequest(id=account_id), metadata=md), nf
    )
    await expect_error(
        stub.DisconnectAccount(A.DisconnectAccountRequest(id=account_id), metadata=md), nf
    )
    await expect_error(
        stub.UpdateAccountSettings(
            A.UpdateAccountSettingsRequest(account_id=account_id), metadata=md
        ),
        nf,
    )
    assert not (await stub.ListAccounts(A.ListAccountsRequest(), metadata=md)).accounts
    owner = await stub.GetAccount(A.GetAccountRequest(id=account_id), metadata=api.auth(merchant))
    assert owner.status == A.ACCOUNT_STATUS_ACTIVE
