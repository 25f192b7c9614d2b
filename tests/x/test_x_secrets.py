from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from xfixtures import oauth2_creds

from mktx_grpc.sandbox import SandboxServer
from mktx_grpc.x import (
    AppBearer,
    OAuth1Credentials,
    OAuth2Credentials,
    XAuthError,
    XBadRequest,
    XClient,
    XError,
    XOutcomeUnknown,
    new_pkce,
)


def test_reprs_hide_secrets(sandbox: SandboxServer) -> None:
    creds = OAuth1Credentials("tok-SECRET1", "sec-SECRET2", "ck-SECRET3", "cs-SECRET4")
    cfg = sandbox.x_config()
    text = " ".join(
        [
            repr(creds),
            repr(OAuth2Credentials("at-SECRET5")),
            repr(AppBearer("ab-SECRET6")),
            repr(cfg),
            repr(new_pkce()),
        ]
    )
    assert "SECRET" not in text
    for secret in (
        cfg.consumer_secret,
        cfg.consumer_key,
        cfg.oauth2_client_secret,
        cfg.app_bearer_token,
    ):
        assert secret and secret not in text


async def test_secrets_never_in_logs_or_errors(
    sandbox: SandboxServer,
    x: XClient,
    make_user: Callable[..., str],
    connect_oauth1: Callable[[str], Awaitable[OAuth1Credentials]],
    connect_oauth2: Callable[..., Awaitable[Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    uid = make_user()
    o1 = await connect_oauth1(uid)
    o2 = await connect_oauth2(uid)
    errors: list[XError] = []
    await x.as_user(o1).me()
    await x.as_user(oauth2_creds(o2)).me()
    sandbox.state.faults.error_next = 1
    with pytest.raises(XOutcomeUnknown) as lost:  # a 5xx on a DM is never retried
        await x.as_user(o1).send_dm(make_user(), text="hi")
    errors.append(lost.value)
    sandbox.state.revoke_user_tokens(uid)
    for call in (
        x.as_user(o1).me(),
        x.as_user(oauth2_creds(o2)).me(),
        x.oauth2_refresh(o2.refresh_token),
    ):
        try:
            await call
        except (XAuthError, XBadRequest) as exc:
            errors.append(exc)
    assert len(errors) == 4
    secrets = [
        o1.token,
        o1.token_secret,
        o2.access_token,
        o2.refresh_token,
        sandbox.config.consumer_secret,
        sandbox.config.oauth2_client_secret,
        sandbox.config.app_bearer_token,
    ]
    haystack = caplog.text + " ".join(str(e) + repr(e) for e in errors)
    assert "x GET /2/users/me" in caplog.text  # logs were captured at all
    for secret in secrets:
        assert secret not in haystack
    assert repr(x.as_user(o1)).count(o1.token) == 0
