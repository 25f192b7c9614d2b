from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from xfixtures import ALL_SCOPES, oauth2_creds

from mktx_grpc.sandbox import SandboxServer
from mktx_grpc.x import XAuthError, XBadRequest, XClient, new_pkce, s256_challenge

REDIRECT = "https://merchant.example/oauth2/cb"


def test_s256_matches_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


async def _authorize(x: XClient, uid: str, challenge: str, state: str = "st-1") -> str:
    url = x.oauth2_authorize_url(
        redirect_uri=REDIRECT, scopes=ALL_SCOPES, state=state, code_challenge=challenge
    )
    assert "code_challenge_method=S256" in url
    async with httpx.AsyncClient() as browser:
        resp = await browser.get(url + f"&sandbox_user_id={uid}")
    assert resp.status_code == 302
    loc = httpx.URL(resp.headers["location"])
    assert loc.params["state"] == state
    return loc.params["code"]


async def test_pkce_flow_and_user_call(x: XClient, make_user: Callable[..., str]) -> None:
    uid = make_user("bob")
    pkce = new_pkce()
    code = await _authorize(x, uid, pkce.challenge)
    token = await x.oauth2_exchange_code(
        code=code, redirect_uri=REDIRECT, code_verifier=pkce.verifier
    )
    assert token.expires_in == 7200
    assert token.refresh_token
    assert "dm.write" in token.scope
    me = await x.as_user(oauth2_creds(token)).me()
    assert me.id == uid


async def test_bad_verifier_is_bad_request(x: XClient, make_user: Callable[..., str]) -> None:
    pkce = new_pkce()
    code = await _authorize(x, make_user(), pkce.challenge)
    with pytest.raises(XBadRequest) as err:
        await x.oauth2_exchange_code(
            code=code, redirect_uri=REDIRECT, code_verifier=new_pkce().verifier
        )
    assert err.value.status == 400
    assert err.value.reason == "invalid_request"


async def test_code_is_single_use(x: XClient, make_user: Callable[..., str]) -> None:
    pkce = new_pkce()
    code = await _authorize(x, make_user(), pkce.challenge)
    await x.oauth2_exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=pkce.verifier)
    with pytest.raises(XBadRequest):
        await x.oauth2_exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=pkce.verifier)


async def test_code_expires_after_30s(
    sandbox: SandboxServer, x: XClient, make_user: Callable[..., str]
) -> None:
    pkce = new_pkce()
    code = await _authorize(x, make_user(), pkce.challenge)
    sandbox.state.advance(31)
    with pytest.raises(XBadRequest):
        await x.oauth2_exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=pkce.verifier)


async def test_refresh_rotates_and_old_refresh_token_dies(
    x: XClient, make_user: Callable[..., str], connect_oauth2: Callable[..., Awaitable[Any]]
) -> None:
    first = await connect_oauth2(make_user())
    second = await x.oauth2_refresh(first.refresh_token)
    assert second.refresh_token and second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    await x.as_user(oauth2_creds(second)).me()
    with pytest.raises(XBadRequest):
        await x.oauth2_refresh(first.refresh_token)
    third = await x.oauth2_refresh(second.refresh_token)
    assert third.refresh_token not in (first.refresh_token, second.refresh_token)


async def test_no_refresh_token_without_offline_access(
    make_user: Callable[..., str], connect_oauth2: Callable[..., Awaitable[Any]]
) -> None:
    token = await connect_oauth2(make_user(), ("users.read", "dm.write"))
    assert token.refresh_token is None


async def test_revoked_access_token_is_revoked_auth_error(
    x: XClient, make_user: Callable[..., str], connect_oauth2: Callable[..., Awaitable[Any]]
) -> None:
    token = await connect_oauth2(make_user())
    await x.oauth2_revoke(token.access_token)
    with pytest.raises(XAuthError) as err:
        await x.as_user(oauth2_creds(token)).me()
    assert err.value.revoked is True


async def test_expired_access_token_is_not_reported_revoked(
    sandbox: SandboxServer,
    x: XClient,
    make_user: Callable[..., str],
    connect_oauth2: Callable[..., Awaitable[Any]],
) -> None:
    token = await connect_oauth2(make_user())
    sandbox.state.advance(7201)
    with pytest.raises(XAuthError) as err:
        await x.as_user(oauth2_creds(token)).me()
    assert err.value.revoked is False
    fresh = await x.oauth2_refresh(token.refresh_token)
    await x.as_user(oauth2_creds(fresh)).me()


async def test_public_client_sends_client_id_in_form(
    sandbox: SandboxServer, make_user: Callable[..., str]
) -> None:
    async with XClient(sandbox.x_config(oauth2_client_secret=None)) as public:
        pkce = new_pkce()
        code = await _authorize(public, make_user(), pkce.challenge)
        token = await public.oauth2_exchange_code(
            code=code, redirect_uri=REDIRECT, code_verifier=pkce.verifier
        )
        assert token.access_token


async def test_confidential_client_with_wrong_secret_fails(
    sandbox: SandboxServer, make_user: Callable[..., str]
) -> None:
    async with XClient(sandbox.x_config(oauth2_client_secret="wrong")) as bad:
        pkce = new_pkce()
        code = await _authorize(bad, make_user(), pkce.challenge)
        with pytest.raises(XAuthError):
            await bad.oauth2_exchange_code(
                code=code, redirect_uri=REDIRECT, code_verifier=pkce.verifier
            )
