from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from mktx_grpc.sandbox import SandboxServer
from mktx_grpc.x import (
    BreakerState,
    OAuth1Credentials,
    XBadRequest,
    XClient,
    XNotSent,
    XOutcomeUnknown,
    XRateLimited,
    XUnavailable,
    XUpstreamError,
)

Connect = Callable[[str], Awaitable[OAuth1Credentials]]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def calls_to(sandbox: SandboxServer, path: str) -> int:
    with sandbox.state.lock:
        return sum(1 for _, p in sandbox.state.request_log if p == path)


async def test_429_waits_for_reset_within_deadline(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    user = x.as_user(await connect_oauth1(make_user()))
    sandbox.state.faults.rate_limit_reset_after = 1.0
    sandbox.state.faults.rate_limit_next = 1
    before = calls_to(sandbox, "/2/users/me")
    started = time.time()
    me = await user.me(deadline=5.0)
    assert me.id
    assert calls_to(sandbox, "/2/users/me") == before + 2
    assert time.time() - started >= 0.5  # it really waited for the reset


async def test_429_beyond_deadline_raises_with_reset_at(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    user = x.as_user(await connect_oauth1(make_user()))
    sandbox.state.faults.rate_limit_reset_after = 30.0
    sandbox.state.faults.rate_limit_next = 1
    started = time.monotonic()
    with pytest.raises(XRateLimited) as err:
        await user.me(deadline=2.0)
    assert time.monotonic() - started < 1.0  # no pointless waiting
    assert err.value.reset_at is not None
    delta = (err.value.reset_at - datetime.now(tz=UTC)).total_seconds()
    assert 25 < delta < 35


async def test_real_dm_limit_gives_429_with_headers(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    sender, recipient = make_user(), make_user()
    sandbox.config.dm_limit_15min = 2
    user = x.as_user(await connect_oauth1(sender))
    await user.send_dm(recipient, text="one")
    await user.send_dm(recipient, text="two")
    with pytest.raises(XRateLimited) as err:
        await user.send_dm(recipient, text="three", deadline=1.0)
    assert err.value.reset_at is not None
    assert len(sandbox.state.sent_dms(sender)) == 2


async def test_5xx_is_retried_then_succeeds(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    user = x.as_user(await connect_oauth1(make_user()))
    sandbox.state.faults.error_next = 2
    before = calls_to(sandbox, "/2/users/me")
    assert (await user.me()).id
    assert calls_to(sandbox, "/2/users/me") == before + 3


async def test_5xx_after_all_attempts_raises_upstream_error(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    user = x.as_user(await connect_oauth1(make_user()))
    sandbox.state.faults.error_next = 3
    sandbox.state.faults.error_status = 502
    with pytest.raises(XUpstreamError) as err:
        await user.me()
    assert err.value.status == 502


async def test_5xx_on_a_dm_is_never_retried_and_the_outcome_is_unknown(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    sender, recipient = make_user(), make_user()
    user = x.as_user(await connect_oauth1(sender))
    path = f"/2/dm_conversations/with/{recipient}/messages"
    sandbox.state.faults.error_next, sandbox.state.faults.error_status = 3, 502
    try:
        with pytest.raises(XOutcomeUnknown) as err:
            await user.send_dm(recipient, text="maybe")
    finally:
        sandbox.state.faults.error_next = 0
    assert err.value.status == 502 and isinstance(err.value, XUnavailable)
    assert calls_to(sandbox, path) == 1  # one POST, never a second
    assert (await user.me()).id  # GETs still retry (2 errors were left): idempotent


async def test_oauth2_refresh_is_not_retried_blindly(
    sandbox: SandboxServer,
    x: XClient,
    make_user: Callable[..., str],
    connect_oauth2: Any,
    admin: Any,
) -> None:
    """A refresh token works once. A 5xx before X processed it leaves it usable; a
    5xx after X rotated the pair (the answer lost) leaves it refused, and only
    reconnecting helps: a retry could never have recovered the lost pair."""
    token = await connect_oauth2(make_user())
    sandbox.state.faults.error_next = 1
    with pytest.raises(XOutcomeUnknown):
        await x.oauth2_refresh(token.refresh_token)
    fresh = await x.oauth2_refresh(token.refresh_token)  # X had not taken it
    admin("POST", "/faults/rules", {"route": "POST /2/oauth2/token", "kind": "accept_then_error"})
    with pytest.raises(XOutcomeUnknown):
        await x.oauth2_refresh(fresh.refresh_token)
    with pytest.raises(XBadRequest):
        await x.oauth2_refresh(fresh.refresh_token)  # X rotated it: used once already


async def test_connect_error_on_a_dm_is_retried_and_not_sent() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    from mktx_grpc.x import XConfig

    cfg = XConfig(
        consumer_key="k",
        consumer_secret="s",
        api_base_url=f"http://127.0.0.1:{port}",
        backoff_base=0.01,
    )
    async with XClient(cfg) as client:
        user = client.as_user(OAuth1Credentials("t", "s"))
        with pytest.raises(XNotSent) as err:
            await user.send_dm("12345", text="hello")
    assert err.value.reason == "UNREACHABLE" and "after 3 attempt(s)" in str(err.value)


async def test_connect_error_is_unavailable() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    from mktx_grpc.x import XConfig

    cfg = XConfig(
        consumer_key="k",
        consumer_secret="s",
        api_base_url=f"http://127.0.0.1:{port}",
        backoff_base=0.01,
    )
    async with XClient(cfg) as client:
        with pytest.raises(XUnavailable):
            await client.oauth1_request_token("https://cb.example")
        assert client.breaker(f"127.0.0.1:{port}").state is BreakerState.CLOSED  # 3 < 5


async def test_read_timeout_on_a_get_is_retried_up_to_max_attempts(
    sandbox: SandboxServer, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    creds = await connect_oauth1(make_user())
    cfg = sandbox.x_config(request_timeout=0.25, backoff_base=0.01)
    async with XClient(cfg) as client:
        user = client.as_user(creds)
        sandbox.state.faults.latency = 1.5  # every answer comes after the client gave up
        before = calls_to(sandbox, "/2/users/me")
        with pytest.raises(XUnavailable) as err:
            await user.me()
    assert "ReadTimeout after 3 attempt(s)" in str(err.value)
    assert calls_to(sandbox, "/2/users/me") == before + 3


async def test_read_timeout_on_a_post_is_not_retried_and_the_outcome_is_unknown(
    sandbox: SandboxServer, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    sender, recipient = make_user(), make_user()
    creds = await connect_oauth1(sender)
    path = f"/2/dm_conversations/with/{recipient}/messages"
    cfg = sandbox.x_config(request_timeout=0.25, backoff_base=0.01)
    async with XClient(cfg) as client:
        user = client.as_user(creds)
        sandbox.state.faults.latency = 1.5
        with pytest.raises(XOutcomeUnknown) as err:
            await user.send_dm(recipient, text="once only")
    assert "ReadTimeout after the request left" in str(err.value)
    # Sent once, never again: the request had left, so X may have acted on it, and a
    # second POST could have delivered the DM twice. The caller must reconcile.
    assert calls_to(sandbox, path) == 1


async def test_breaker_opens_after_5_failures_and_closes_after_half_open_success(
    sandbox: SandboxServer, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    clock = FakeClock()
    cfg = sandbox.x_config(max_attempts=1, backoff_base=0.01, breaker_reset_timeout=60.0)
    async with XClient(cfg, clock=clock) as client:
        user_id = make_user()
        creds = await connect_oauth1(user_id)
        user = client.as_user(creds)
        breaker = client.breaker(cfg.api_base_url.removeprefix("http://"))
        sandbox.state.faults.error_next = 5
        for _ in range(5):
            with pytest.raises(XUpstreamError):
                await user.me()
        assert breaker.state is BreakerState.OPEN
        before = calls_to(sandbox, "/2/users/me")
        with pytest.raises(XNotSent) as refused:
            await user.me()
        assert calls_to(sandbox, "/2/users/me") == before  # failed fast, no request
        assert refused.value.reason == "BREAKER_OPEN" and refused.value.retry_at is not None
        ahead = (refused.value.retry_at - datetime.now(UTC)).total_seconds()
        assert 55 < ahead <= 61  # when the breaker lets a probe through
        clock.now += 59
        with pytest.raises(XNotSent):
            await user.send_dm(make_user(), text="not now")  # a DM is refused the same way
        assert sandbox.state.sent_dms(user_id) == []
        clock.now += 1
        assert breaker.state is BreakerState.HALF_OPEN
        assert (await user.me()).id  # the probe succeeds
        assert breaker.state is BreakerState.CLOSED


async def test_breaker_half_open_probe_failure_reopens(
    sandbox: SandboxServer, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    clock = FakeClock()
    cfg = sandbox.x_config(max_attempts=1, breaker_failure_threshold=2)
    async with XClient(cfg, clock=clock) as client:
        user = client.as_user(await connect_oauth1(make_user()))
        breaker = client.breaker(cfg.api_base_url.removeprefix("http://"))
        sandbox.state.faults.error_next = 3
        for _ in range(2):
            with pytest.raises(XUpstreamError):
                await user.me()
        clock.now += 60
        with pytest.raises(XUpstreamError):
            await user.me()  # the probe fails
        assert breaker.state is BreakerState.OPEN
        clock.now += 60
        assert (await user.me()).id
        assert breaker.state is BreakerState.CLOSED


class RecordingBudget:
    def __init__(self, allowance: int) -> None:
        self.allowance = allowance
        self.calls: list[str] = []

    async def acquire(self, account_key: str) -> None:
        self.calls.append(account_key)
        if self.allowance <= 0:
            raise XRateLimited("DM budget spent", reset_at=datetime.now(tz=UTC))
        self.allowance -= 1


async def test_dm_budget_is_acquired_before_every_send(
    sandbox: SandboxServer, make_user: Callable[..., str], connect_oauth1: Connect
) -> None:
    budget = RecordingBudget(allowance=1)
    sender, recipient = make_user(), make_user()
    async with XClient(sandbox.x_config(), dm_budget=budget) as client:
        creds = await _connect_with(client, sender)
        user = client.as_user(creds, account_key="acct-1")
        await user.send_dm(recipient, text="hi")
        with pytest.raises(XRateLimited):
            await user.send_dm(recipient, text="again")
    assert budget.calls == ["acct-1", "acct-1"]
    assert [d.text for d in sandbox.state.sent_dms(sender)] == ["hi"]


async def _connect_with(client: XClient, uid: str) -> OAuth1Credentials:
    import httpx

    rt = await client.oauth1_request_token("https://cb.example/")
    async with httpx.AsyncClient() as browser:
        resp = await browser.get(client.oauth1_authorize_url(rt) + f"&sandbox_user_id={uid}")
    at = await client.oauth1_access_token(
        rt, httpx.URL(resp.headers["location"]).params["oauth_verifier"]
    )
    return OAuth1Credentials(at.token, at.token_secret)
