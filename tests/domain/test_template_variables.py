"""One set of template variables for a contact (domain.templates.contact_variables),
used by campaigns, SendMessage with a template, and flows."""

from __future__ import annotations

import pytest

from mktx_grpc.domain.campaigns import render_for_contact
from mktx_grpc.domain.templates import (
    TemplateDraft,
    contact_variables,
    first_name_from,
    render,
)


@pytest.mark.parametrize(
    ("display_name", "first"),
    [
        ("Alice Smith", "Alice"),
        ("🌸 Mia Chen", "Mia"),
        ("Mia🌸 Chen", "Mia"),
        ("Mia🌸Chen", "Mia"),
        ("👩🏽‍💻 Ana Souza", "Ana"),
        ("✨✨ ✨", ""),
        ("", ""),
        ("   ", ""),
        ("@bob!", "bob"),
        ("Bob, the builder", "Bob"),
        ("Jean-Luc Picard", "Jean-Luc"),
        ("O'Brien", "O'Brien"),
        ("J.R. Tolkien", "J.R"),
        ("Élodie Durand", "Élodie"),
        ("E\u0301lodie", "Élodie"),  # decomposed accent: normalised, kept
        ("सीता राम", "सीता"),  # vowel signs are part of the word
        ("李小龙", "李小龙"),
        ("2024 Sale Shop", "Sale"),
        ("🇳🇴 Ola", "Ola"),
        ("(Kim)", "Kim"),
        ("Zoë\ufe0f", "Zoë"),
    ],
)
def test_first_name_from_display_name(display_name: str, first: str) -> None:
    assert first_name_from(display_name) == first


def test_the_variable_set_of_a_contact() -> None:
    contact = {
        "username": "alice_s",
        "display_name": "Alice Smith",
        "x_user_id": "42",
        "attributes": {
            "city": "Oslo",
            "vip": True,
            "orders": 3.0,
            "ratio": 0.5,
            "nested": {"a": 1},
            "tags": ["x"],
            "none": None,
        },
    }
    v = contact_variables(contact)
    assert v == {
        "first_name": "Alice",
        "display_name": "Alice Smith",
        "username": "alice_s",
        "x_user_id": "42",
        "attributes.city": "Oslo",
        "attributes.vip": "true",
        "attributes.orders": "3",
        "attributes.ratio": "0.5",
        "contact.first_name": "Alice",
        "contact.display_name": "Alice Smith",
        "contact.username": "alice_s",
        "contact.x_user_id": "42",
        "contact.attributes.city": "Oslo",
        "contact.attributes.vip": "true",
        "contact.attributes.orders": "3",
        "contact.attributes.ratio": "0.5",
    }


def test_a_first_name_attribute_wins_over_the_display_name() -> None:
    v = contact_variables({"display_name": "Alice Smith", "attributes": {"first_name": "Ally"}})
    assert v["first_name"] == v["contact.first_name"] == "Ally"
    blank = contact_variables({"display_name": "Alice Smith", "attributes": {"first_name": " "}})
    assert blank["first_name"] == "Alice"


def test_missing_fields_are_empty_and_fall_back() -> None:
    v = contact_variables({"display_name": None, "attributes": None})
    assert v["first_name"] == v["username"] == v["display_name"] == ""
    t = TemplateDraft(name="t", type="TEXT", content="Hi {{first_name|there}}")
    assert render(t, v).content == "Hi there"


def test_campaign_rendering_uses_the_contact_set() -> None:
    """The bug of issue 9: "{{first_name|there}}" for Alice Smith said "Hi there"."""
    t = TemplateDraft(
        name="t",
        type="TEXT",
        content="Hi {{first_name|there}} from {{attributes.city|afar}} ({{contact.username}})",
    )
    alice = {"username": "alice_s", "display_name": "Alice Smith", "attributes": {}}
    mia = {"username": "mia", "display_name": "🌸 Mia Chen", "attributes": {"city": "Oslo"}}
    emoji = {"username": "z", "display_name": "🔥🔥", "attributes": {}}
    assert render_for_contact(t, alice, {}) == "Hi Alice from afar (alice_s)"
    assert render_for_contact(t, mia, {}) == "Hi Mia from Oslo (mia)"
    assert render_for_contact(t, emoji, {}) == "Hi there from afar (z)"
    # The contact's own values win over campaign variables of the same name.
    assert render_for_contact(t, alice, {"first_name": "X"}) == "Hi Alice from afar (alice_s)"
