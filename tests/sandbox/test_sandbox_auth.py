"""The sandbox's server-side checks, exercised with hand-made requests."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import httpx

from mktx_grpc.sandbox import SandboxServer
from mktx_grpc.x import OAuth1Credentials, oauth1_authorization_header


def _signed(sandbox: SandboxServer, creds: OAuth1Credentials, url: str, **kw: str) -> str:
    return oauth1_authorization_header(
        "GET",
        url,
        consumer_key=sandbox.config.consumer_key,
        consumer_secret=kw.pop("consumer_secret", sandbox.config.consumer_secret),
        token=creds.token,
        token_secret=creds.token_secret,
        **kw,
    )


async def test_replayed_nonce_is_rejected(
    sandbox: SandboxServer,
    make_user: Callable[..., str],
    connect_oauth1: Callable[[str], Awaitable[OAuth1Credentials]],
) -> None:
    creds = await connect_oauth1(make_user())
    http = httpx.AsyncClient()  # closed by garbage collection; loopback only
    url = f"{sandbox.base_url}/2/users/me"
    header = _signed(sandbox, creds, url, nonce="fixed-nonce-1", timestamp=str(int(time.time())))
    first = await http.get(url, headers={"Authorization": header})
    again = await http.get(url, headers={"Authorization": header})
    assert first.status_code == 200
    assert again.status_code == 401
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["title"] == "Unauthorized"


async def test_stale_timestamp_and_bad_signature_are_rejected(
    sandbox: SandboxServer,
    make_user: Callable[..., str],
    connect_oauth1: Callable[[str], Awaitable[OAuth1Credentials]],
) -> None:
    creds = await connect_oauth1(make_user())
    http = httpx.AsyncClient()  # closed by garbage collection; loopback only
    url = f"{sandbox.base_url}/2/users/me"
    stale = _signed(sandbox, creds, url, timestamp=str(int(time.time()) - 3600))
    assert (await http.get(url, headers={"Authorization": stale})).status_code == 401
    wrong = _signed(sandbox, creds, url, consumer_secret="nope")
    assert (await http.get(url, headers={"Authorization": wrong})).status_code == 401
    # signed for one query, sent with another
    signed = _signed(sandbox, creds, url + "?user.fields=id")
    assert (
        await http.get(url + "?user.fields=name", headers={"Authorization": signed})
    ).status_code == 401
    ok = _signed(sandbox, creds, url + "?user.fields=id")
    assert (
        await http.get(url + "?user.fields=id", headers={"Authorization": ok})
    ).status_code == 200


def test_signature_base_is_the_url_the_client_addressed(
    sandbox: SandboxServer,
) -> None:
    """A proxy may forward https://api.x.com/... to the sandbox; the signed URL is
    the public one, carried by Host and X-Forwarded-Proto."""
    uid = next(iter(sandbox.state.users))
    tok = sandbox.state.new_access_token(uid)
    creds = OAuth1Credentials(tok.token, tok.secret)
    public = "https://api.x.com/2/users/me"
    header = _signed(sandbox, creds, public)
    resp = httpx.get(
        f"{sandbox.base_url}/2/users/me",
        headers={"Authorization": header, "Host": "api.x.com", "X-Forwarded-Proto": "https"},
    )
    assert resp.status_code == 200, resp.text
    plain = _signed(sandbox, creds, public)
    assert (
        httpx.get(f"{sandbox.base_url}/2/users/me", headers={"Authorization": plain}).status_code
        == 401
    )


def test_missing_auth_and_unknown_bearer(sandbox: SandboxServer) -> None:
    url = f"{sandbox.base_url}/2/users/me"
    assert httpx.get(url).status_code == 401
    resp = httpx.get(url, headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401
    assert resp.json() == {
        "title": "Unauthorized",
        "type": "about:blank",
        "status": 401,
        "detail": "Invalid or expired token.",
    }


def test_pkce_authorize_rejects_bad_requests(sandbox: SandboxServer) -> None:
    base = f"{sandbox.base_url}/i/oauth2/authorize"
    cid = sandbox.config.oauth2_client_id
    unknown = httpx.get(base, params={"client_id": "x", "redirect_uri": "https://a/cb"})
    assert unknown.status_code == 400
    denied = httpx.get(
        base,
        params={
            "response_type": "code",
            "client_id": cid,
            "redirect_uri": "https://a/cb",
            "state": "s",
            "code_challenge": "c",
            "code_challenge_method": "S256",
            "sandbox_deny": "1",
        },
    )
    assert denied.status_code == 302
    assert httpx.URL(denied.headers["location"]).params["error"] == "access_denied"
