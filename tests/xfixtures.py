"""Fixtures for the X client and sandbox tests (tests/x, tests/sandbox): a fresh
sandbox per test on a loopback port, a client pointed at it, a webhook receiver, and
helpers that connect fake users through the real OAuth flows. Both directories'
conftest.py import them from here."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mktx_grpc.sandbox import SandboxServer
from mktx_grpc.sandbox.receiver import WebhookReceiver
from mktx_grpc.x import OAuth1Credentials, OAuth2Credentials, XClient, new_pkce, new_state

__all__ = [
    "ALL_SCOPES",
    "admin",
    "connect_oauth1",
    "connect_oauth2",
    "make_user",
    "oauth2_creds",
    "receiver",
    "sandbox",
    "x",
]

ALL_SCOPES = (
    "tweet.read tweet.write users.read dm.read dm.write media.write offline.access follows.read"
).split()


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
async def x(sandbox: SandboxServer) -> AsyncIterator[XClient]:
    async with XClient(sandbox.x_config(backoff_base=0.01, default_deadline=10.0)) as client:
        yield client


@pytest.fixture
def receiver(sandbox: SandboxServer) -> Iterator[WebhookReceiver]:
    r = WebhookReceiver(sandbox.config.consumer_secret).start()
    yield r
    r.stop()


@pytest.fixture
def admin(sandbox: SandboxServer) -> Callable[..., Any]:
    """Call the sandbox admin API: ``admin("POST", "/users", {...})``."""

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        resp = httpx.request(method, f"{sandbox.base_url}/_sandbox{path}", json=body)
        assert resp.status_code < 400, resp.text
        return resp.json()

    return call


def _location(resp: httpx.Response) -> dict[str, str]:
    assert resp.status_code == 302, resp.text
    return {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["location"]).query).items()}


@pytest.fixture
def connect_oauth1(
    x: XClient,
) -> Callable[[str], Awaitable[OAuth1Credentials]]:
    """Run the full 3-legged flow as the given fake user; return their credentials."""

    async def run(user_id: str) -> OAuth1Credentials:
        rt = await x.oauth1_request_token("https://merchant.example/cb")
        url = x.oauth1_authorize_url(rt) + f"&sandbox_user_id={user_id}"
        async with httpx.AsyncClient() as browser:
            params = _location(await browser.get(url))
        at = await x.oauth1_access_token(rt, params["oauth_verifier"])
        return OAuth1Credentials(at.token, at.token_secret)

    return run


@pytest.fixture
def connect_oauth2(x: XClient) -> Callable[..., Awaitable[Any]]:
    """Run the PKCE flow as the given fake user; return the OAuth2Token."""

    async def run(user_id: str, scopes: tuple[str, ...] = tuple(ALL_SCOPES)) -> Any:
        pkce, state = new_pkce(), new_state()
        redirect = "https://merchant.example/oauth2/cb"
        url = x.oauth2_authorize_url(
            redirect_uri=redirect, scopes=scopes, state=state, code_challenge=pkce.challenge
        )
        async with httpx.AsyncClient() as browser:
            params = _location(await browser.get(url + f"&sandbox_user_id={user_id}"))
        assert params["state"] == state
        return await x.oauth2_exchange_code(
            code=params["code"], redirect_uri=redirect, code_verifier=pkce.verifier
        )

    return run


@pytest.fixture
def make_user(sandbox: SandboxServer) -> Callable[..., str]:
    """Create a fake X user with a unique name; returns its id."""
    counter = iter(range(1, 10_000))

    def make(name: str = "user", **extra: Any) -> str:
        n = next(counter)
        uid = str(1_700_000_000_000_000_000 + int(time.time_ns() % 10**9) * 10 + n)
        sandbox.state.add_user(uid, f"{name[:8]}_{n}", name, **extra)
        return uid

    return make


def oauth2_creds(token: Any) -> OAuth2Credentials:
    return OAuth2Credentials(token.access_token)
