"""Fixtures of the AI assistant tests: a fresh OpenAI-compatible stand-in per test
(over real HTTP), the service pointed at it, a connected account with a contact and
a live conversation, and helpers for the stand-in's admin API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ai_helpers import *  # noqa: F403 - pytest collects fixtures from this namespace

from mktx_grpc.ai_standin import AIStandinServer
from mktx_grpc.core.config import Settings


@pytest.fixture
def standin() -> Iterator[AIStandinServer]:
    with AIStandinServer() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, standin: AIStandinServer) -> Settings:
    """The root settings with the model client pointed at this test's stand-in (no
    client retries, so a fault is seen once per call)."""
    return settings.replace(
        ai_base_url=standin.openai_base_url,
        ai_api_key=standin.api_key,
        ai_max_retries=0,
        ai_timeout=5.0,
        ai_breaker_failures=3,
    )
