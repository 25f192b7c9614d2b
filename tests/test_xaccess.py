"""Sending as an account: the DB-backed DM budget and X error mapping, against the
sandbox and the real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import xhelpers as xh
from psycopg.rows import dict_row

from mktx.v1 import accounts_pb2_grpc
from mktx_grpc.core.errors import FailedPrecondition, QuotaExceeded, UpstreamError
from mktx_grpc.store.budget import DbDmBudget, budget_key
from mktx_grpc.x import XRateLimited
from mktx_grpc.x.access import UpstreamNotSent, UpstreamOutcomeUnknown


@pytest.fixture
async def account(api, merchant, sandbox, db):
    """A connected OAuth 2.0 account (as a database row) and a customer to DM."""
    stub = accounts_pb2_grpc.AccountsServiceStub(api.channel)
    owner = xh.new_x_user(sandbox)
    connected = await xh.connect(stub, api.auth(merchant), owner)
    customer = xh.new_x_user(sandbox)
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM accounts WHERE id = %s", (connected.id,))
        row = await cur.fetchone()
    return row, owner, customer


async def test_send_dm_reaches_x_and_spends_budget(api, account, sandbox, db):
    row, owner, customer = account
    sent = await api.app.deps.xaccess.send_dm(row, customer.id, text="hello there")
    assert sent.dm_event_id and sent.dm_conversation_id == "-".join(
        sorted([owner.id, customer.id], key=int)
    )
    dms = sandbox.state.sent_dms(owner.id)
    assert [(d.text, d.recipient_id) for d in dms] == [("hello there", customer.id)]
    spent = await (
        await db.execute(
            "SELECT w15_count, w24_count FROM account_dm_budget WHERE account_id = %s", (row["id"],)
        )
    ).fetchone()
    assert spent == (1, 1)


async def test_budget_is_exact_under_concurrency_and_reports_reset(api, account, db):
    row, _, _ = account
    budget = DbDmBudget(api.app.deps.pool)
    key = budget_key(row["merchant_id"], row["id"])
    await db.execute(
        "UPDATE accounts SET settings = jsonb_set(settings, '{dm_budget}', '{\"per_15_minutes\": 5}')"
        " WHERE id = %s",
        (row["id"],),
    )
    results = await asyncio.gather(
        *(budget.acquire(key) for _ in range(12)), return_exceptions=True
    )
    granted = [r for r in results if r is None]
    refused = [r for r in results if isinstance(r, XRateLimited)]
    assert (len(granted), len(refused)) == (5, 7)
    reset = refused[0].reset_at
    assert (
        datetime.now(UTC) + timedelta(minutes=14)
        < reset
        <= datetime.now(UTC) + timedelta(minutes=15)
    )
    # Once the window has passed, the budget is available again.
    await db.execute(
        "UPDATE account_dm_budget SET w15_start = now() - interval '16 minutes'"
        " WHERE account_id = %s",
        (row["id"],),
    )
    await budget.acquire(key)
    assert (
        await (
            await db.execute(
                "SELECT w15_count FROM account_dm_budget WHERE account_id = %s", (row["id"],)
            )
        ).fetchone()
    )[0] == 1


async def test_daily_budget_is_enforced_too(api, account, db):
    row, _, customer = account
    await db.execute(
        "INSERT INTO account_dm_budget (merchant_id, account_id, w24_start, w24_count)"
        " VALUES (%s, %s, now() - interval '1 hour', 1440)",
        (row["merchant_id"], row["id"]),
    )
    with pytest.raises(QuotaExceeded) as info:
        await api.app.deps.xaccess.send_dm(row, customer.id, text="over")
    assert info.value.reason == "DM_BUDGET_SPENT"
    assert info.value.retry_at > datetime.now(UTC) + timedelta(hours=22)


async def test_x_rate_limit_maps_to_quota_with_retry_time(api, account, sandbox):
    row, _, customer = account
    faults = sandbox.state.faults
    try:
        with sandbox.state.lock:
            faults.rate_limit_next, faults.rate_limit_reset_after = 5, 120
        with pytest.raises(QuotaExceeded) as info:
            await api.app.deps.xaccess.send_dm(row, customer.id, text="hi")
    finally:
        with sandbox.state.lock:
            faults.rate_limit_next = 0
    assert info.value.reason == "RATE_LIMIT_EXCEEDED"
    assert info.value.retry_at is not None and info.value.retry_at > datetime.now(UTC)


async def test_recipient_refusing_dms_and_x_outage(api, account, sandbox):
    row, owner, _ = account
    closed = xh.new_x_user(sandbox, accepts_dms=False)
    with pytest.raises(FailedPrecondition) as info:
        await api.app.deps.xaccess.send_dm(row, closed.id, text="hi")
    assert info.value.reason == "TWITTER_FORBIDDEN"
    faults = sandbox.state.faults
    try:
        with sandbox.state.lock:
            faults.error_next, faults.error_status = 10, 502
        with pytest.raises(UpstreamError):
            await api.app.deps.xaccess.send_dm(row, closed.id, text="hi")
    finally:
        with sandbox.state.lock:
            faults.error_next = 0


async def test_x_errors_say_whether_anything_was_sent(api, account, sandbox):
    """A DM refused by the open breaker was not sent (safe to retry); a 5xx after
    the POST left leaves the outcome unknown. Both are UNAVAILABLE to API clients."""
    row, owner, customer = account
    xa = api.app.deps.xaccess
    faults = sandbox.state.faults
    try:
        with sandbox.state.lock:
            faults.error_next, faults.error_status = 1, 503
        with pytest.raises(UpstreamOutcomeUnknown) as lost:
            await xa.send_dm(row, customer.id, text="hi")
    finally:
        with sandbox.state.lock:
            faults.error_next = 0
    assert lost.value.metadata == {"x_outcome": "unknown"}
    breaker = xa.x.breaker(sandbox.base_url.removeprefix("http://"))
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    try:
        with pytest.raises(UpstreamNotSent) as refused:
            await xa.send_dm(row, customer.id, text="hi")
    finally:
        breaker.record_success()
    assert refused.value.cause == "BREAKER_OPEN" and refused.value.retry_at is not None
    assert refused.value.metadata["x_outcome"] == "not_sent"
    assert refused.value.code == UpstreamError.code
    assert sandbox.state.sent_dms(owner.id) == []


async def test_lost_refresh_answer_never_marks_the_account_revoked(api, account, sandbox, db):
    """The refresh X took but whose answer was lost: the account keeps sending on its
    current access token (still valid), stays ACTIVE, and the next refresh learns that
    X rotated the pair, which only reconnecting can repair."""
    row, owner, customer = account
    await db.execute(
        "UPDATE accounts SET token_expires_at = now() + interval '1 minute' WHERE id = %s",
        (row["id"],),
    )
    expiring = {**row, "token_expires_at": datetime.now(UTC) + timedelta(minutes=1)}
    with xh.fault_rule(sandbox, route="POST /2/oauth2/token", kind="accept_then_error"):
        sent = await api.app.deps.xaccess.send_dm(expiring, customer.id, text="still works")
    assert [d.id for d in sandbox.state.sent_dms(owner.id)] == [sent.dm_event_id]
    status = await (
        await db.execute("SELECT status FROM accounts WHERE id = %s", (row["id"],))
    ).fetchone()
    assert status == ("ACTIVE",)
    with pytest.raises(FailedPrecondition) as info:
        await api.app.deps.xaccess.refresh(expiring)
    assert info.value.reason == "ACCOUNT_AUTH_REVOKED"


async def test_inactive_account_cannot_send(api, account, db):
    row, _, customer = account
    with pytest.raises(FailedPrecondition) as info:
        await api.app.deps.xaccess.send_dm({**row, "status": "ERROR"}, customer.id, text="x")
    assert info.value.reason == "ACCOUNT_NOT_ACTIVE"


async def test_revoked_during_send_marks_error(api, account, sandbox, db):
    row, owner, customer = account
    sandbox.state.revoke_user_tokens(owner.id)
    with pytest.raises(FailedPrecondition) as info:
        await api.app.deps.xaccess.send_dm(row, customer.id, text="x")
    assert info.value.reason == "ACCOUNT_AUTH_REVOKED"
    status = await (
        await db.execute("SELECT status FROM accounts WHERE id = %s", (row["id"],))
    ).fetchone()
    assert status[0] == "ERROR"


async def _w15(db, account_id) -> int:
    cur = await db.execute(
        "SELECT w15_count FROM account_dm_budget WHERE account_id = %s", (account_id,)
    )
    return (await cur.fetchone())[0]


async def test_planned_sends_reserve_in_one_batch_and_hand_back_the_rest(api, account, db):
    row, _, _ = account
    budget = DbDmBudget(api.app.deps.pool)
    key = budget_key(row["merchant_id"], row["id"])
    async with budget.planned(key, 10):
        await budget.acquire(key)
        # The whole plan is counted at once, so other processes see it as spent.
        assert await _w15(db, row["id"]) == 10
        await budget.acquire(key)
        await budget.acquire(key)
    # The seven never used are handed back when the plan ends.
    assert await _w15(db, row["id"]) == 3


async def test_planned_reservations_never_exceed_the_budget_across_processes(api, account, db):
    row, _, _ = account
    await db.execute(
        "UPDATE accounts SET settings = jsonb_set(settings, '{dm_budget}', '{\"per_15_minutes\": 5}')"
        " WHERE id = %s",
        (row["id"],),
    )
    key = budget_key(row["merchant_id"], row["id"])
    first, second = DbDmBudget(api.app.deps.pool), DbDmBudget(api.app.deps.pool)

    async def send_all(budget: DbDmBudget) -> list[object]:
        async with budget.planned(key, 8):
            return await asyncio.gather(
                *(budget.acquire(key) for _ in range(8)), return_exceptions=True
            )

    results = [r for rs in await asyncio.gather(send_all(first), send_all(second)) for r in rs]
    assert sum(r is None for r in results) == 5
    assert all(isinstance(r, XRateLimited) for r in results if r is not None)
    assert await _w15(db, row["id"]) == 5


async def test_reserved_units_expire_and_are_handed_back(api, account, db):
    row, _, _ = account
    now = [0.0]
    budget = DbDmBudget(api.app.deps.pool, clock=lambda: now[0])
    key = budget_key(row["merchant_id"], row["id"])
    async with budget.planned(key, 6):
        await budget.acquire(key)
        assert await _w15(db, row["id"]) == 6
        now[0] += 60  # past the hold time: the five left are given back first
        await budget.acquire(key)
        assert await _w15(db, row["id"]) == 1 + 5
    assert await _w15(db, row["id"]) == 2
