"""The X client and sandbox fixtures (see tests/xfixtures.py), plus raw-HTTP helpers
for checking the sandbox's wire behaviour byte for byte."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from sandbox_helpers import Bearer
from xfixtures import *  # noqa: F403 - pytest collects fixtures from this namespace

from mktx_grpc.sandbox import SandboxServer


@pytest.fixture
def bearer(connect_oauth2: Callable[..., Awaitable[object]]) -> Bearer:
    """Connect the fake user through OAuth 2.0 PKCE; returns request headers with
    their user-context bearer token."""

    async def make(user_id: str) -> dict[str, str]:
        token = await connect_oauth2(user_id)
        return {"Authorization": f"Bearer {token.access_token}"}  # type: ignore[attr-defined]

    return make


@pytest.fixture
async def http(sandbox: SandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client on the sandbox's base URL (no retries, no error mapping)."""
    async with httpx.AsyncClient(base_url=sandbox.base_url, timeout=10.0) as client:
        yield client


@pytest.fixture
def app_auth(sandbox: SandboxServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {sandbox.config.app_bearer_token}"}
