from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from mktx_grpc.sandbox import SandboxServer
from mktx_grpc.x import (
    OAuth1Credentials,
    XAuthError,
    XClient,
    oauth1_authorization_header,
)

VECTOR_BODY = "status=Hello%20Ladies%20%2B%20Gentlemen%2C%20a%20signed%20OAuth%20request%21"


def test_published_signature_vector() -> None:
    header = oauth1_authorization_header(
        "POST",
        "https://api.x.com/1.1/statuses/update.json?include_entities=true",
        consumer_key="xvz1evFS4wEEPTGEFPHBog",
        consumer_secret="kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        token="370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        token_secret="LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        form_body=VECTOR_BODY,
        nonce="kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
        timestamp="1318622958",
    )
    assert 'oauth_signature="Ls93hJiZbQ3akF3HF3x1Bz8%2FzU4%3D"' in header
    assert header.startswith("OAuth ")
    assert 'oauth_signature_method="HMAC-SHA1"' in header


def test_json_bodies_are_not_signed_but_query_is() -> None:
    common = dict(
        consumer_key="ck",
        consumer_secret="cs",
        token="t",
        token_secret="ts",
        nonce="n",
        timestamp="1",
    )
    a = oauth1_authorization_header("GET", "https://api.x.com/2/x?a=1", **common)  # type: ignore[arg-type]
    b = oauth1_authorization_header("GET", "https://api.x.com/2/x?a=2", **common)  # type: ignore[arg-type]
    assert a != b


async def test_three_legged_flow_then_user_call(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str]
) -> None:
    uid = make_user("alice")
    rt = await x.oauth1_request_token("https://merchant.example/cb?m=1")
    assert rt.callback_confirmed
    async with httpx.AsyncClient() as browser:
        resp = await browser.get(x.oauth1_authorize_url(rt) + f"&sandbox_user_id={uid}")
    assert resp.status_code == 302
    location = httpx.URL(resp.headers["location"])
    assert location.host == "merchant.example"
    assert location.params["m"] == "1"
    assert location.params["oauth_token"] == rt.token
    at = await x.oauth1_access_token(rt, location.params["oauth_verifier"])
    assert at.user_id == uid
    assert at.screen_name.startswith("alice")
    me = await x.as_user(OAuth1Credentials(at.token, at.token_secret)).me()
    assert me.id == uid
    # the request token is single-use
    with pytest.raises(XAuthError):
        await x.oauth1_access_token(rt, location.params["oauth_verifier"])


async def test_wrong_verifier_is_refused(x: XClient, make_user: Callable[..., str]) -> None:
    uid = make_user()
    rt = await x.oauth1_request_token("https://merchant.example/cb")
    async with httpx.AsyncClient() as browser:
        await browser.get(x.oauth1_authorize_url(rt) + f"&sandbox_user_id={uid}")
    with pytest.raises(XAuthError) as err:
        await x.oauth1_access_token(rt, "not-the-verifier")
    assert err.value.status == 401
    assert not err.value.revoked


async def test_wrong_consumer_secret_is_401_not_revoked(
    sandbox: SandboxServer,
    make_user: Callable[..., str],
    connect_oauth1: Callable[[str], Awaitable[OAuth1Credentials]],
) -> None:
    creds = await connect_oauth1(make_user())
    async with XClient(sandbox.x_config(consumer_secret="wrong")) as bad:
        with pytest.raises(XAuthError) as err:
            await bad.as_user(creds).me()
    assert err.value.status == 401
    assert err.value.revoked is False
    with pytest.raises(XAuthError):
        async with XClient(sandbox.x_config(consumer_secret="wrong")) as bad:
            await bad.oauth1_request_token("https://merchant.example/cb")


async def test_wrong_token_secret_is_401(
    x: XClient,
    make_user: Callable[..., str],
    connect_oauth1: Callable[[str], Awaitable[OAuth1Credentials]],
) -> None:
    creds = await connect_oauth1(make_user())
    with pytest.raises(XAuthError) as err:
        await x.as_user(OAuth1Credentials(creds.token, "bogus-secret")).me()
    assert not err.value.revoked


async def test_revoked_oauth1_token_reports_revoked(
    sandbox: SandboxServer,
    x: XClient,
    make_user: Callable[..., str],
    connect_oauth1: Callable[[str], Awaitable[OAuth1Credentials]],
) -> None:
    uid = make_user()
    creds = await connect_oauth1(uid)
    await x.as_user(creds).me()
    sandbox.state.revoke_user_tokens(uid)
    with pytest.raises(XAuthError) as err:
        await x.as_user(creds).me()
    assert err.value.revoked is True
