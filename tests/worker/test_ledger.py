"""The send ledger's source-independent parts (worker/ledger.py): outcome
classification, batch sending that stops on "not now", and resolving an unclear
send at X, against the X sandbox over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import xhelpers as xh
from campaign_helpers import account_row, sandbox_limits_lifted

from mktx.v1 import accounts_pb2_grpc
from mktx_grpc.core.errors import FailedPrecondition, QuotaExceeded, UpstreamError
from mktx_grpc.worker import ledger
from mktx_grpc.worker.ledger import Outcome, Resolution, SendOutcome
from mktx_grpc.x.access import UpstreamNotSent, UpstreamOutcomeUnknown

NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def account(api, merchant, sandbox, db):
    """A connected account (database row), its X user and a customer to DM."""
    stub = accounts_pb2_grpc.AccountsServiceStub(api.channel)
    owner = xh.new_x_user(sandbox)
    connected = await xh.connect(stub, api.auth(merchant), owner)
    return await account_row(db, connected.id), owner, xh.new_x_user(sandbox)


@pytest.fixture
def faults(sandbox):
    f = sandbox.state.faults
    try:
        yield f
    finally:
        with sandbox.state.lock:
            f.rate_limit_next = f.error_next = 0


def test_classification_of_every_send_error():
    budget = ledger.classify_send_error(
        QuotaExceeded("spent", retry_at=NOW + timedelta(minutes=9), reason="DM_BUDGET_SPENT"), NOW
    )
    assert budget == SendOutcome(
        Outcome.REQUEUE,
        f"waiting for DM budget until {(NOW + timedelta(minutes=9)).isoformat()}",
        NOW + timedelta(minutes=9),
    )
    limited = ledger.classify_send_error(QuotaExceeded("429", reason="RATE_LIMIT_EXCEEDED"), NOW)
    assert (limited.kind, limited.retry_at) == (Outcome.REQUEUE, NOW + ledger.ACCOUNT_PAUSE)
    assert limited.reason.startswith("X rate limit until")
    refused = ledger.classify_send_error(
        FailedPrecondition("X refused the request: no DMs", reason="TWITTER_FORBIDDEN"), NOW
    )
    assert refused == SendOutcome(
        Outcome.FAILED, "TWITTER_FORBIDDEN: X refused the request: no DMs"
    )
    rejected = ledger.classify_send_error(FailedPrecondition("x", reason="TWITTER_REJECTED"), NOW)
    assert rejected.kind is Outcome.FAILED
    revoked = ledger.classify_send_error(
        FailedPrecondition("tokens refused", reason="ACCOUNT_AUTH_REVOKED"), NOW
    )
    assert revoked == SendOutcome(
        Outcome.REQUEUE,
        "account cannot send: tokens refused",
        NOW + ledger.ACCOUNT_PAUSE,
        account=True,
    )
    assert ledger.classify_send_error(UpstreamError("down"), NOW).kind is Outcome.UNCLEAR
    lost = UpstreamOutcomeUnknown("lost")
    assert ledger.classify_send_error(lost, NOW).kind is Outcome.UNCLEAR
    reopens = NOW + timedelta(seconds=40)
    breaker = ledger.classify_send_error(
        UpstreamNotSent("open", retry_at=reopens, cause="BREAKER_OPEN"), NOW
    )
    assert breaker == SendOutcome(
        Outcome.REQUEUE, f"breaker open until {reopens.isoformat()}", reopens
    )
    unreachable = ledger.classify_send_error(UpstreamNotSent("no", cause="UNREACHABLE"), NOW)
    assert (unreachable.kind, unreachable.retry_at) == (
        Outcome.REQUEUE,
        NOW + ledger.NOT_SENT_PAUSE,
    )
    assert unreachable.reason.startswith("X unreachable (not sent) until ")
    assert ledger.classify_send_error(RuntimeError("bug"), NOW).kind is Outcome.UNCLEAR


async def test_send_dm_outcomes_over_http(api, account, sandbox, faults):
    row, owner, customer = account
    xa = api.app.deps.xaccess
    sent = await ledger.send_dm(xa, row, customer.id, "hello")
    assert sent.kind is Outcome.SENT and sent.at is not None
    assert [d.id for d in sandbox.state.sent_dms(owner.id)] == [sent.dm_event_id]
    closed = xh.new_x_user(sandbox, accepts_dms=False)
    refused = await ledger.send_dm(xa, row, closed.id, "hello")
    assert refused.kind is Outcome.FAILED and refused.reason.startswith("TWITTER_FORBIDDEN")
    with sandbox.state.lock:
        faults.error_next, faults.error_status = 10, 503
    unclear = await ledger.send_dm(xa, row, customer.id, "maybe")
    assert unclear.kind is Outcome.UNCLEAR


async def test_send_many_stops_at_the_first_not_now_and_requeues_the_rest(
    api, account, sandbox, faults
):
    row, owner, _ = account
    customers = [xh.new_x_user(sandbox) for _ in range(5)]
    recorded: list[list[tuple[str, SendOutcome]]] = []

    async def record(out):
        recorded.append([(u.id, o) for u, o in out])

    with sandbox_limits_lifted(sandbox):
        sent_ok = await ledger.send_many(
            api.app.deps.xaccess,
            row,
            customers[:3],
            to=lambda u: (u.id, f"hi {u.username}"),
            record=record,
            concurrency=2,
            flush_size=2,
        )
        assert sent_ok is None
        assert sorted(u for group in recorded for u, _ in group) == sorted(
            u.id for u in customers[:3]
        )
        assert all(o.kind is Outcome.SENT for group in recorded for _, o in group)
        recorded.clear()
        with sandbox.state.lock:
            faults.rate_limit_next, faults.rate_limit_reset_after = 5, 300
        stop = await ledger.send_many(
            api.app.deps.xaccess,
            row,
            customers,
            to=lambda u: (u.id, "again"),
            record=record,
            concurrency=1,
            flush_size=64,
        )
    assert stop is not None and stop.kind is Outcome.REQUEUE and stop.retry_at is not None
    assert stop.reason.startswith("X rate limit until")
    outcomes = [o for group in recorded for _, o in group]
    assert len(outcomes) == 5 and {o.kind for o in outcomes} == {Outcome.REQUEUE}
    assert all(o.retry_at == stop.retry_at for o in outcomes[1:])  # the rest wait with it
    assert len(sandbox.state.sent_dms(owner.id)) == 3  # nothing more went out


async def test_resolving_an_unclear_send_at_x(api, account, sandbox, db, faults):
    row, _, customer = account
    xa = api.app.deps.xaccess
    armed = datetime.now(UTC)
    first = await xa.send_dm(row, customer.id, text="Your code: 42")
    second = await xa.send_dm(row, customer.id, text="Your code: 42")
    await xa.send_dm(row, customer.id, text="something else")

    async def resolve(**kw):
        args = {"armed_at": armed, "known_event_ids": ()} | kw
        return await ledger.resolve_unclear_dm(xa, row, customer.id, " Your code: 42 ", **args)

    newest = await resolve()
    assert newest.kind is Resolution.FOUND and newest.event is not None
    assert newest.event.id == second.dm_event_id
    # A DM the ledger already holds is not taken for this one.
    older = await resolve(known_event_ids={second.dm_event_id})
    assert older.event is not None and older.event.id == first.dm_event_id
    assert (
        await resolve(known_event_ids={first.dm_event_id, second.dm_event_id})
    ).kind is Resolution.NOT_SENT
    # Sent before this message was armed (beyond the clock skew): not it.
    later = await resolve(armed_at=armed + ledger.LOOKUP_SKEW + timedelta(minutes=5))
    assert later.kind is Resolution.NOT_SENT
    with sandbox.state.lock:
        faults.error_next, faults.error_status = 10, 503
    assert (await resolve()).kind is Resolution.RETRY_LATER
    with sandbox.state.lock:
        faults.error_next = 0
    gone = dict(row, status="ERROR")
    unconfirmable = await ledger.resolve_unclear_dm(
        xa, gone, customer.id, "Your code: 42", armed_at=armed, known_event_ids=()
    )
    assert unconfirmable.kind is Resolution.UNCONFIRMABLE
    assert unconfirmable.reason.startswith("unconfirmed: ")
