"""Helpers of the AI assistant tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from campaign_helpers import add_contacts, connect_account, lift_budget
from google.protobuf.field_mask_pb2 import FieldMask

from mktx.v1 import ai_pb2, ai_pb2_grpc
from mktx_grpc.ai_standin import AIStandinServer

__all__ = ["Conv", "admin", "ai", "conv", "enable_ai", "md", "world"]

A = ai_pb2


@dataclass
class Conv:
    account_id: uuid.UUID
    contact_id: uuid.UUID
    conversation_id: uuid.UUID
    owner: Any
    contact_user: Any


@pytest.fixture
def admin(standin: AIStandinServer) -> Iterator[Callable[..., Any]]:
    """``admin("POST", "/faults", {...})`` against the stand-in's admin API."""
    http = httpx.Client(base_url=f"{standin.base_url}/_standin")

    def call(method: str, path: str, body: Any = None) -> Any:
        resp = http.request(method, path, json=body)
        assert resp.status_code < 300, resp.text
        return resp.json()

    yield call
    http.close()


@pytest.fixture
def ai(api) -> Any:
    return ai_pb2_grpc.AIServiceStub(api.channel)


@pytest.fixture
def md(api, merchant) -> list[tuple[str, str]]:
    return api.auth(merchant)


@pytest.fixture
async def world(api, merchant, sandbox, db):
    """A connected account (budget lifted) and its sandbox owner."""
    row, owner = await connect_account(api, merchant, sandbox, db)
    await lift_budget(db, row["id"])
    return row, owner


async def open_conversation(db, merchant, account_id, contact_id) -> uuid.UUID:
    cid = uuid.uuid4()
    await db.execute(
        "INSERT INTO conversations (id, merchant_id, account_id, contact_id, status)"
        " VALUES (%s, %s, %s, %s, 'OPEN')",
        (cid, merchant, account_id, contact_id),
    )
    return cid


@pytest.fixture
async def conv(world, merchant, sandbox, db) -> Conv:
    row, owner = world
    ((contact_id, user),) = await add_contacts(
        db, sandbox, merchant, row["id"], 1, tags=["vip"], attributes={"plan": "gold"}
    )
    cid = await open_conversation(db, merchant, row["id"], contact_id)
    return Conv(row["id"], contact_id, cid, owner, user)


async def enable_ai(ai, md, **fields: Any) -> A.AISettings:
    """Turn the assistant on (moderation on), plus ``fields`` of AISettings."""
    settings = A.AISettings(enabled=True, **fields)
    paths = ["enabled", *fields]
    return await ai.UpdateAISettings(
        A.UpdateAISettingsRequest(settings=settings, update_mask=FieldMask(paths=paths)),
        metadata=md,
    )


async def set_account_settings(db, account_id, settings: dict[str, Any]) -> None:
    await db.execute(
        "UPDATE accounts SET settings = settings || %s::jsonb WHERE id = %s",
        (json.dumps(settings), account_id),
    )


def flag_nasty(admin) -> None:
    """Script the stand-in's moderation to flag any text containing "nasty"."""
    admin(
        "POST",
        "/scripts",
        {
            "route": "moderations",
            "match": {"contains": "nasty"},
            "repeat": True,
            "result": {"categories": ["harassment"], "flagged": True},
        },
    )
