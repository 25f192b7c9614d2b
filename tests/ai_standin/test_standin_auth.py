"""The bearer key: missing or wrong keys get OpenAI's 401 bodies; keys are configurable."""

from __future__ import annotations

import httpx
import openai
import pytest
from standin_fixtures import Admin, user

from mktx_grpc.ai_standin import AIStandinServer, StandinConfig


async def test_missing_key_is_401(standin: AIStandinServer) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            f"{standin.openai_base_url}/chat/completions",
            json={"model": "gpt-4o-mini", "messages": user("hi")},
        )
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "didn't provide an API key" in error["message"]
    assert set(error) == {"message", "type", "param", "code"}


async def test_wrong_key_is_401_invalid_api_key_without_echoing_it(
    standin: AIStandinServer,
) -> None:
    secret = "sk-proj-this-is-a-real-looking-secret-1234"
    async with standin.client(api_key=secret) as bad:
        with pytest.raises(openai.AuthenticationError) as err:
            await bad.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
        with pytest.raises(openai.AuthenticationError):
            await bad.embeddings.create(model="text-embedding-3-small", input="x")
        with pytest.raises(openai.AuthenticationError):
            await bad.models.list()
    assert err.value.status_code == 401
    assert err.value.code == "invalid_api_key"
    assert "this-is-a-real" not in err.value.message and "1234" not in err.value.message


async def test_auth_is_checked_before_faults_and_validation(
    standin: AIStandinServer, admin: Admin
) -> None:
    admin("POST", "/faults", {"kind": "error", "count": 1})
    async with standin.client(api_key="wrong") as bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.chat.completions.create(model="no-such-model", messages=[])
    assert admin("GET", "/faults")["data"][0]["fired"] == 0


async def test_keys_are_configurable(standin: AIStandinServer, admin: Admin) -> None:
    admin("POST", "/config", {"api_keys": ["sk-team-a", "sk-team-b"]})
    assert admin("GET", "/config")["api_key_count"] == 2
    assert "sk-team-a" not in str(admin("GET", "/config"))
    async with standin.client(api_key="sk-team-b") as team_b:
        resp = await team_b.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
        assert resp.choices[0].message.content
    async with standin.client(api_key="sk-standin-local") as old:
        with pytest.raises(openai.AuthenticationError):
            await old.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
    admin("POST", "/reset")
    async with standin.client() as default:
        assert (await default.models.list()).data


async def test_auth_can_be_turned_off() -> None:
    with AIStandinServer(StandinConfig(require_auth=False)) as open_standin:
        async with httpx.AsyncClient() as http:
            resp = await http.get(f"{open_standin.openai_base_url}/models")
        assert resp.status_code == 200
        assert resp.json()["object"] == "list"
