"""Embeddings: deterministic unit vectors, float and base64, dimensions, errors."""

from __future__ import annotations

import math

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from mktx_grpc.ai_standin import AIStandinServer


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_similar_texts_are_near_and_unrelated_far(client: AsyncOpenAI) -> None:
    resp = await client.embeddings.create(
        model="text-embedding-3-small",
        input=["Where is my order?", "where is my order #123", "The quick brown fox jumps"],
    )
    assert resp.object == "list"
    assert [d.index for d in resp.data] == [0, 1, 2]
    a, b, c = (d.embedding for d in resp.data)
    assert len(a) == 1536
    for v in (a, b, c):
        assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-5)
    assert cosine(a, b) > 0.7
    assert cosine(a, c) < 0.3
    assert resp.usage.prompt_tokens == resp.usage.total_tokens > 0


async def test_vectors_are_the_same_across_servers_and_formats(
    client: AsyncOpenAI, standin: AIStandinServer
) -> None:
    # The openai client asks for base64 by default and decodes it.
    default = await client.embeddings.create(model="text-embedding-3-small", input="hello world")
    as_float = await client.embeddings.create(
        model="text-embedding-3-small", input="hello world", encoding_format="float"
    )
    for x, y in zip(default.data[0].embedding, as_float.data[0].embedding, strict=True):
        assert math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-7)
    with AIStandinServer() as other:
        async with other.client() as c2:
            again = await c2.embeddings.create(
                model="text-embedding-3-small", input="hello world", encoding_format="float"
            )
    assert again.data[0].embedding == as_float.data[0].embedding
    async with httpx.AsyncClient() as http:
        raw = await http.post(
            f"{standin.openai_base_url}/embeddings",
            json={
                "model": "text-embedding-3-small",
                "input": "hello world",
                "encoding_format": "base64",
            },
            headers={"Authorization": f"Bearer {standin.api_key}"},
        )
    assert isinstance(raw.json()["data"][0]["embedding"], str)


async def test_dimensions_and_token_inputs(client: AsyncOpenAI) -> None:
    small = await client.embeddings.create(
        model="text-embedding-3-large", input="hello", dimensions=64, encoding_format="float"
    )
    assert len(small.data[0].embedding) == 64
    large = await client.embeddings.create(model="text-embedding-3-large", input="hello")
    assert len(large.data[0].embedding) == 3072
    tokens = await client.embeddings.create(
        model="text-embedding-3-small", input=[[1, 2, 3], [1, 2, 4]], encoding_format="float"
    )
    assert len(tokens.data) == 2
    assert tokens.usage.prompt_tokens == 6
    assert cosine(tokens.data[0].embedding, tokens.data[1].embedding) > 0.3


async def test_embedding_errors(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        await client.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=8)
    assert err.value.param == "dimensions"
    with pytest.raises(openai.BadRequestError) as err:
        await client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=5000)
    assert err.value.param == "dimensions"
    with pytest.raises(openai.BadRequestError) as err:
        await client.embeddings.create(model="text-embedding-3-small", input="")
    assert err.value.param == "input"
    with pytest.raises(openai.BadRequestError) as err:
        await client.embeddings.create(model="text-embedding-3-small", input=[])
    assert err.value.param == "input"
    with pytest.raises(openai.BadRequestError) as err:
        await client.embeddings.create(model="gpt-4o-mini", input="x")
    assert err.value.param == "model"
    with pytest.raises(openai.NotFoundError) as nf:
        await client.embeddings.create(model="text-embedding-9", input="x")
    assert nf.value.code == "model_not_found"
