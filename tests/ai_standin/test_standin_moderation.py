"""Moderations: OpenAI's categories, word lists per category, scripted results."""

from __future__ import annotations

import openai
import pytest
from openai import AsyncOpenAI
from standin_fixtures import Admin

from mktx_grpc.ai_standin.config import MODERATION_CATEGORIES


async def test_word_lists_flag_their_categories(client: AsyncOpenAI) -> None:
    resp = await client.moderations.create(
        model="omni-moderation-latest",
        input=["Thanks for the quick delivery!", "You idiot, I will find you"],
    )
    assert resp.id.startswith("modr-")
    assert resp.model == "omni-moderation-latest"
    clean, rude = resp.results
    assert clean.flagged is False
    assert not any(clean.categories.model_dump().values())
    assert max(clean.category_scores.model_dump().values()) < 0.01
    assert rude.flagged is True
    assert rude.categories.harassment is True
    assert rude.categories.harassment_threatening is True
    assert rude.categories.violence is False
    assert rude.category_scores.harassment >= 0.9
    dumped = rude.model_dump(by_alias=True)
    assert set(dumped["categories"]) == set(MODERATION_CATEGORIES)
    assert set(dumped["category_scores"]) == set(MODERATION_CATEGORIES)
    again = await client.moderations.create(input="Thanks for the quick delivery!")
    assert again.results[0].category_scores == clean.category_scores


async def test_word_lists_are_configurable(client: AsyncOpenAI, admin: Admin) -> None:
    assert (await client.moderations.create(input="buy cheap watches")).results[0].flagged is False
    admin("POST", "/config", {"moderation_words": {"illicit": ["cheap watches"]}})
    result = (await client.moderations.create(input="Buy CHEAP watches!")).results[0]
    assert result.flagged and result.categories.illicit
    admin("POST", "/config", {"moderation_words": {"not-a-category": ["x"]}}, expect=400)


async def test_scripted_results_override_by_substring(client: AsyncOpenAI, admin: Admin) -> None:
    admin(
        "POST",
        "/scripts",
        {
            "route": "moderations",
            "match": {"contains": "parcel"},
            "result": {"categories": ["hate"], "category_scores": {"hate": 0.77}},
        },
    )
    resp = await client.moderations.create(input=["hello", "my parcel is late"])
    hello, parcel = resp.results
    assert hello.flagged is False
    assert parcel.flagged is True
    assert parcel.categories.hate is True
    assert parcel.category_scores.hate == pytest.approx(0.77)
    later = await client.moderations.create(input="my parcel is late")
    assert later.results[0].flagged is False  # the script was used up
    admin(
        "POST", "/scripts", {"route": "moderations", "result": {"categories": ["gore"]}}, expect=400
    )


async def test_multimodal_input_gives_one_result(client: AsyncOpenAI) -> None:
    resp = await client.moderations.create(
        model="omni-moderation-latest",
        input=[
            {"type": "text", "text": "look at this gore"},
            {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
        ],
    )
    (result,) = resp.results
    assert result.categories.violence_graphic is True
    assert result.category_applied_input_types.violence == ["text", "image"]
    assert result.category_applied_input_types.harassment == ["text"]


async def test_moderation_errors(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        await client.moderations.create(input="x", model="moderation-9000")
    with pytest.raises(openai.BadRequestError) as err:
        await client.moderations.create(input="x", model="gpt-4o-mini")
    assert err.value.param == "model"
    with pytest.raises(openai.BadRequestError) as err:
        await client.moderations.create(input=[])
    assert err.value.param == "input"
