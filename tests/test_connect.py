"""Connecting X accounts for real, against the X sandbox over HTTP.

OAuth 1.0a three-legged and OAuth 2.0 PKCE connects with simulated consent, token
refresh with rotation, revocation marking the account ERROR, webhook registration
(X's CRC answered by the real sidecar), disconnect revoking at X, and secrets kept
out of responses, storage and logs.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest
import xhelpers as xh
from helpers import expect_error

from mktx.v1 import accounts_pb2 as A
from mktx.v1 import accounts_pb2_grpc
from mktx_grpc.sandbox.receiver import WebhookReceiver

CALLBACK = xh.CALLBACK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
consent = xh.consent
connect = xh.connect


@pytest.fixture
def stub(api):
    return accounts_pb2_grpc.AccountsServiceStub(api.channel)


@pytest.fixture
def x_user(sandbox):
    """A fresh fake X user who will consent."""
    return xh.new_x_user(sandbox)


def sandbox_tokens(sandbox, user_id):
    st = sandbox.state
    with st.lock:
        t1 = [t for t in st.oauth1_tokens.values() if t.user_id == user_id and t.kind == "access"]
        t2 = [g for g in st.oauth2_grants.values() if g.user_id == user_id]
    return t1, t2


async def test_oauth2_pkce_connect(api, stub, merchant, x_user, sandbox, db, caplog):
    caplog.set_level(logging.DEBUG)
    md = api.auth(merchant)
    started = await stub.StartConnection(
        A.StartConnectionRequest(auth_method=A.AUTH_METHOD_OAUTH2, callback_uri=CALLBACK),
        metadata=md,
    )
    q = parse_qs(urlsplit(started.authorization_url).query)
    assert q["code_challenge_method"] == ["S256"] and q["state"] == [started.state]
    assert "offline.access" in q["scope"][0].split()
    cb = await asyncio.to_thread(consent, started.authorization_url, x_user.id)
    account = await stub.CompleteConnection(
        A.CompleteConnectionRequest(state=started.state, code=cb["code"]), metadata=md
    )
    assert account.status == A.ACCOUNT_STATUS_ACTIVE
    assert (account.x_user_id, account.username, account.display_name) == (
        x_user.id,
        x_user.username,
        "Test Shop",
    )
    assert account.followers_count == 42
    assert account.auth_method == A.AUTH_METHOD_OAUTH2 and "dm.write" in account.scopes
    assert account.token_expire_time.seconds > 0

    # Tokens are encrypted at rest and never in a response or a log line.
    _, grants = sandbox_tokens(sandbox, x_user.id)
    plain = [g.token for g in grants]
    assert len(plain) == 2
    row = await (
        await db.execute(
            "SELECT access_token_enc, refresh_token_enc FROM accounts WHERE id = %s", (account.id,)
        )
    ).fetchone()
    for blob in row:
        assert blob and not any(p.encode() in bytes(blob) for p in plain)
    wire = account.SerializeToString()
    logged = "\n".join(r.getMessage() + str(vars(r)) for r in caplog.records)
    for p in plain:
        assert p.encode() not in wire and p not in logged
    # The state is single use.
    await expect_error(
        stub.CompleteConnection(
            A.CompleteConnectionRequest(state=started.state, code=cb["code"]), metadata=md
        ),
        INVALID,
    )


async def test_oauth1_three_legged_connect(api, stub, merchant, x_user, sandbox, db):
    md = api.auth(merchant)
    account = await connect(stub, md, x_user, A.AUTH_METHOD_OAUTH1)
    assert account.auth_method == A.AUTH_METHOD_OAUTH1 and account.status == A.ACCOUNT_STATUS_ACTIVE
    assert not account.HasField("token_expire_time")
    t1, _ = sandbox_tokens(sandbox, x_user.id)
    row = await (
        await db.execute(
            "SELECT access_token_enc, token_secret_enc FROM accounts WHERE id = %s", (account.id,)
        )
    ).fetchone()
    assert all(row) and all(t.token.encode() not in bytes(row[0]) for t in t1)
    # The stored credentials work: re-verifying them succeeds.
    refreshed = await stub.RefreshAccountTokens(
        A.RefreshAccountTokensRequest(id=account.id), metadata=md
    )
    assert refreshed.status == A.ACCOUNT_STATUS_ACTIVE


async def test_same_x_user_twice_is_already_exists(api, stub, merchant, other_merchant, x_user):
    await connect(stub, api.auth(merchant), x_user)
    for who in (merchant, other_merchant):
        await expect_error(
            connect(stub, api.auth(who), x_user),
            grpc.StatusCode.ALREADY_EXISTS,
            "DUPLICATE_RESOURCE",
        )


async def test_connect_error_paths(api, stub, merchant, other_merchant, x_user, sandbox):
    md = api.auth(merchant)
    # Request validation, all fields at once.
    err = await expect_error(
        stub.StartConnection(
            A.StartConnectionRequest(callback_uri="ftp://x", scopes=["Bad Scope"]), metadata=md
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {"auth_method", "callback_uri", "scopes[0]"}
    err = await expect_error(
        stub.CompleteConnection(A.CompleteConnectionRequest(), metadata=md), INVALID
    )
    assert set(err.bad_fields) == {"state", "oauth_verifier"}
    # Unknown state; another merchant's state.
    err = await expect_error(
        stub.CompleteConnection(A.CompleteConnectionRequest(state="nope", code="c"), metadata=md),
        INVALID,
    )
    assert "state" in err.bad_fields
    started = await stub.StartConnection(
        A.StartConnectionRequest(auth_method=A.AUTH_METHOD_OAUTH2, callback_uri=CALLBACK),
        metadata=md,
    )
    await expect_error(
        stub.CompleteConnection(
            A.CompleteConnectionRequest(state=started.state, code="x"),
            metadata=api.auth(other_merchant),
        ),
        INVALID,
    )
    # A bad code is INVALID_ARGUMENT naming `code`.
    err = await expect_error(
        stub.CompleteConnection(
            A.CompleteConnectionRequest(state=started.state, code="not-a-real-code"), metadata=md
        ),
        INVALID,
    )
    assert "code" in err.bad_fields
    # A bad OAuth 1.0a verifier is INVALID_ARGUMENT naming `oauth_verifier`.
    s1 = await stub.StartConnection(
        A.StartConnectionRequest(auth_method=A.AUTH_METHOD_OAUTH1, callback_uri=CALLBACK),
        metadata=md,
    )
    cb = await asyncio.to_thread(consent, s1.authorization_url, x_user.id)
    err = await expect_error(
        stub.CompleteConnection(
            A.CompleteConnectionRequest(
                state=s1.state, oauth_token=cb["oauth_token"], oauth_verifier="wrong"
            ),
            metadata=md,
        ),
        INVALID,
    )
    assert "oauth_verifier" in err.bad_fields
    # A mismatched oauth_token is refused too.
    s2 = await stub.StartConnection(
        A.StartConnectionRequest(auth_method=A.AUTH_METHOD_OAUTH1, callback_uri=CALLBACK),
        metadata=md,
    )
    err = await expect_error(
        stub.CompleteConnection(
            A.CompleteConnectionRequest(state=s2.state, oauth_token="other", oauth_verifier="v"),
            metadata=md,
        ),
        INVALID,
    )
    assert "oauth_token" in err.bad_fields


async def test_x_unreachable_is_unavailable_and_retryable(api, stub, merchant, x_user, sandbox):
    md = api.auth(merchant)
    started = await stub.StartConnection(
        A.StartConnectionRequest(auth_method=A.AUTH_METHOD_OAUTH2, callback_uri=CALLBACK),
        metadata=md,
    )
    cb = await asyncio.to_thread(consent, started.authorization_url, x_user.id)
    faults = sandbox.state.faults
    try:
        with sandbox.state.lock:
            faults.error_next, faults.error_status = 3, 503  # every retry of the exchange fails
        await expect_error(
            stub.CompleteConnection(
                A.CompleteConnectionRequest(state=started.state, code=cb["code"]), metadata=md
            ),
            grpc.StatusCode.UNAVAILABLE,
            "TWITTER_API_ERROR",
        )
    finally:
        with sandbox.state.lock:
            faults.error_next = 0
    # The state survived the outage: the same completion now succeeds.
    account = await stub.CompleteConnection(
        A.CompleteConnectionRequest(state=started.state, code=cb["code"]), metadata=md
    )
    assert account.status == A.ACCOUNT_STATUS_ACTIVE
    # StartConnection with X down is UNAVAILABLE as well.
    try:
        with sandbox.state.lock:
            faults.error_next = 3
        await expect_error(
            stub.StartConnection(
                A.StartConnectionRequest(auth_method=A.AUTH_METHOD_OAUTH1, callback_uri=CALLBACK),
                metadata=md,
            ),
            grpc.StatusCode.UNAVAILABLE,
            "TWITTER_API_ERROR",
        )
    finally:
        with sandbox.state.lock:
            faults.error_next = 0


async def test_refresh_rotates_tokens(api, stub, merchant, x_user, sandbox, db):
    md = api.auth(merchant)
    account = await connect(stub, md, x_user)
    _, before = sandbox_tokens(sandbox, x_user.id)
    old_refresh = next(g.token for g in before if g.kind == "refresh")
    refreshed = await stub.RefreshAccountTokens(
        A.RefreshAccountTokensRequest(id=account.id), metadata=md
    )
    assert refreshed.status == A.ACCOUNT_STATUS_ACTIVE and refreshed.etag != account.etag
    # The old refresh token has been used up at X: rotation stored the new pair.
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            f"{sandbox.base_url}/2/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": old_refresh},
            auth=(sandbox.config.oauth2_client_id, sandbox.config.oauth2_client_secret),
        )
    assert resp.status_code == 400
    # A second refresh works with the rotated token (proving it was stored).
    again = await stub.RefreshAccountTokens(
        A.RefreshAccountTokensRequest(id=account.id), metadata=md
    )
    assert again.status == A.ACCOUNT_STATUS_ACTIVE


async def expire_soon(db, account_id):
    await db.execute(
        "UPDATE accounts SET token_expires_at = now() + interval '10 seconds' WHERE id = %s",
        (account_id,),
    )


async def load_row(db, account_id):
    from psycopg.rows import dict_row

    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM accounts WHERE id = %s", (account_id,))
        return await cur.fetchone()


async def test_expiring_token_is_refreshed_on_use(api, stub, merchant, x_user, db):
    md = api.auth(merchant)
    account = await connect(stub, md, x_user)
    await expire_soon(db, account.id)
    before = await load_row(db, account.id)
    me = await api.app.deps.xaccess.call(before, lambda u: u.me())
    assert me.id == x_user.id
    after = await load_row(db, account.id)
    assert after["token_expires_at"] > before["token_expires_at"]
    assert after["access_token_enc"] != before["access_token_enc"]


async def test_worker_refreshes_expiring_tokens(api, stub, merchant, x_user, db):
    from mktx_grpc.worker import refresh_expiring_tokens

    md = api.auth(merchant)
    account = await connect(stub, md, x_user)
    await expire_soon(db, account.id)
    before = await load_row(db, account.id)
    await refresh_expiring_tokens(api.app.deps)
    after = await load_row(db, account.id)
    assert after["token_expires_at"] > before["token_expires_at"]
    # An account whose refresh X refuses goes to ERROR; the loop keeps going.
    await expire_soon(db, account.id)
    await db.execute("UPDATE accounts SET refresh_token_enc = NULL WHERE id = %s", (account.id,))
    await refresh_expiring_tokens(api.app.deps)
    assert (await load_row(db, account.id))["status"] == "ERROR"


@pytest.mark.parametrize("method", [A.AUTH_METHOD_OAUTH1, A.AUTH_METHOD_OAUTH2])
async def test_revoked_token_marks_account_error_and_reconnect_recovers(
    api, stub, merchant, x_user, sandbox, method
):
    md = api.auth(merchant)
    account = await connect(stub, md, x_user, method)
    sandbox.state.revoke_user_tokens(x_user.id)
    err = await expect_error(
        stub.RefreshAccountTokens(A.RefreshAccountTokensRequest(id=account.id), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "ACCOUNT_AUTH_REVOKED",
    )
    assert err.info.metadata["account_id"] == account.id
    got = await stub.GetAccount(A.GetAccountRequest(id=account.id), metadata=md)
    assert got.status == A.ACCOUNT_STATUS_ERROR and "revoked" in got.status_reason
    # Reconnecting the same X user revives the same account.
    again = await connect(stub, md, x_user, method)
    assert again.id == account.id and again.status == A.ACCOUNT_STATUS_ACTIVE


@pytest.fixture
async def sidecar(serve_sidecar):
    """The real webhook sidecar on a loopback port (answers X's CRC)."""
    return (await serve_sidecar(lifespan="off")).webhook_url


async def test_register_webhook_runs_crc_and_subscribes(
    api, stub, merchant, x_user, sandbox, sidecar
):
    md = api.auth(merchant)
    account = await connect(stub, md, x_user)
    out = await stub.RegisterWebhook(
        A.RegisterWebhookRequest(id=account.id, url=sidecar), metadata=md
    )
    assert out.webhook.webhook_id and out.webhook.url == sidecar and out.webhook.subscribed
    assert out.webhook.validate_time.seconds > 0
    with sandbox.state.lock:
        assert x_user.id in sandbox.state.subscriptions[out.webhook.webhook_id]
    # Registering again reuses the webhook X already has for that URL.
    again = await stub.RegisterWebhook(
        A.RegisterWebhookRequest(id=account.id, url=sidecar), metadata=md
    )
    assert again.webhook.webhook_id == out.webhook.webhook_id


async def test_register_webhook_failures(api, stub, merchant, other_merchant, x_user, sandbox):
    md = api.auth(merchant)
    account = await connect(stub, md, x_user)
    wrong = WebhookReceiver(sandbox.config.consumer_secret, crc_mode="wrong").start()
    try:
        await expect_error(
            stub.RegisterWebhook(
                A.RegisterWebhookRequest(id=account.id, url=wrong.url), metadata=md
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "WEBHOOK_CRC_FAILED",
        )
    finally:
        wrong.stop()
    # Outside the sandbox with no public URL configured there is no default URL.
    api.app.deps.settings = api.settings.replace(x_sandbox=False)
    err = await expect_error(
        stub.RegisterWebhook(A.RegisterWebhookRequest(id=account.id), metadata=md), INVALID
    )
    assert "url" in err.bad_fields
    api.app.deps.settings = api.settings
    await expect_error(
        stub.RegisterWebhook(
            A.RegisterWebhookRequest(id=account.id, url="https://h.example/w"),
            metadata=api.auth(other_merchant),
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    err = await expect_error(
        stub.RegisterWebhook(A.RegisterWebhookRequest(id="x", url="notaurl"), metadata=md), INVALID
    )
    assert set(err.bad_fields) == {"id", "url"}


async def test_disconnect_revokes_at_x(api, stub, merchant, x_user, sandbox):
    md = api.auth(merchant)
    account = await connect(stub, md, x_user)
    _, grants = sandbox_tokens(sandbox, x_user.id)
    out = await stub.DisconnectAccount(A.DisconnectAccountRequest(id=account.id), metadata=md)
    assert out.status == A.ACCOUNT_STATUS_DISCONNECTED
    assert all(g.revoked for g in grants)
    # Disconnected accounts cannot be refreshed.
    await expect_error(
        stub.RefreshAccountTokens(A.RefreshAccountTokensRequest(id=account.id), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    # ...and the X user may be connected again, as a new account.
    again = await connect(stub, md, x_user)
    assert again.id != account.id


async def test_denied_consent_leaves_nothing(api, stub, merchant, x_user, db):
    md = api.auth(merchant)
    started = await stub.StartConnection(
        A.StartConnectionRequest(auth_method=A.AUTH_METHOD_OAUTH2, callback_uri=CALLBACK),
        metadata=md,
    )
    cb = await asyncio.to_thread(consent, started.authorization_url, x_user.id, deny=True)
    assert "code" not in cb
    count = await (
        await db.execute("SELECT count(*) FROM accounts WHERE merchant_id = %s", (merchant,))
    ).fetchone()
    assert count[0] == 0
