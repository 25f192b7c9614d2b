"""Fixtures for the AI stand-in tests: a fresh stand-in per test on a loopback port,
an ``openai.AsyncOpenAI`` pointed at it (no retries unless a test asks), and a helper
for its admin API. conftest.py imports them from here; tests import the helpers
from here too, under a module name no other test directory uses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI

from mktx_grpc.ai_standin import AIStandinServer

__all__ = ["Admin", "admin", "client", "standin", "user"]

Admin = Callable[..., Any]


@pytest.fixture
def standin() -> Iterator[AIStandinServer]:
    with AIStandinServer() as server:
        yield server


@pytest.fixture
async def client(standin: AIStandinServer) -> AsyncIterator[AsyncOpenAI]:
    async with standin.client() as c:
        yield c


@pytest.fixture
def admin(standin: AIStandinServer) -> Iterator[Admin]:
    """``admin("POST", "/faults", {...})``: the decoded JSON; asserts a 2xx status
    unless ``expect`` names another."""
    http = httpx.Client(base_url=f"{standin.base_url}/_standin")

    def call(method: str, path: str, body: Any = None, *, expect: int | None = None) -> Any:
        resp = http.request(method, path, json=body)
        if expect is None:
            assert resp.status_code < 300, resp.text
        else:
            assert resp.status_code == expect, resp.text
        return resp.json()

    yield call
    http.close()


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]
