"""Connecting accounts through the X sandbox, shared by several test modules."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx

from mktx.v1 import accounts_pb2 as A

CALLBACK = "https://merchant.example/x/callback"


def new_x_user(sandbox, **extra):
    """A fresh fake X user in the sandbox."""
    uid = str(1_600_000_000_000_000_000 + secrets.randbelow(10**17))
    extra.setdefault("followers_count", 42)
    return sandbox.state.add_user(uid, f"shop{uid[-6:]}", "Test Shop", **extra)


def consent(authorization_url: str, user_id: str, *, deny: bool = False) -> dict[str, str]:
    """Play the merchant's browser: open the authorize page as ``user_id`` and return
    the callback's query parameters."""
    extra = f"&sandbox_user_id={user_id}" + ("&sandbox_deny=1" if deny else "")
    resp = httpx.get(authorization_url + extra, follow_redirects=False)
    assert resp.status_code in (302, 303), resp.text
    location = resp.headers["location"]
    assert location.startswith(CALLBACK)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def connect(stub, md, user, method=A.AUTH_METHOD_OAUTH2):
    started = await stub.StartConnection(
        A.StartConnectionRequest(auth_method=method, callback_uri=CALLBACK), metadata=md
    )
    cb = await asyncio.to_thread(consent, started.authorization_url, user.id)
    if method == A.AUTH_METHOD_OAUTH2:
        assert cb["state"] == started.state
        req = A.CompleteConnectionRequest(state=started.state, code=cb["code"])
    else:
        req = A.CompleteConnectionRequest(
            state=started.state, oauth_token=cb["oauth_token"], oauth_verifier=cb["oauth_verifier"]
        )
    return await stub.CompleteConnection(req, metadata=md)


@contextlib.contextmanager
def fault_rule(sandbox, **fields):
    """A per-route sandbox fault (``FaultRule`` fields: kind, route or path, count,
    status, reset_after, ...) for the block, removed afterwards."""
    from mktx_grpc.sandbox.faults import FaultRule

    rule = sandbox.state.add_fault_rule(FaultRule(id=secrets.token_hex(4), **fields))
    try:
        yield rule
    finally:
        with sandbox.state.lock:
            sandbox.state.fault_rules = [r for r in sandbox.state.fault_rules if r.id != rule.id]
