"""Template rules that need no I/O: placeholder syntax, validation and rendering.

Placeholders are ``{{name}}`` or ``{{name|fallback}}``. A name starts with a letter
and continues with letters, digits, ``_`` or ``.`` (``contact.display_name``), up to
64 characters. The fallback is literal text without ``{`` or ``}``, up to 200
characters. Anything else between ``{{`` and ``}}``, or a ``{{`` that is never
closed, is a malformed placeholder.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import FieldViolation

MAX_CONTENT = 10_000
MAX_NAME = 200
MAX_DESCRIPTION = 1_000
MAX_QUICK_REPLIES = 20
MAX_CARD_BUTTONS = 3
MAX_LABEL = 36
MAX_OPTION_DESCRIPTION = 72
MAX_METADATA = 1_000
MAX_TAGS = 20
MAX_TAG = 50

TYPE_TEXT = "TEXT"
TYPE_QUICK_REPLY = "QUICK_REPLY"
TYPE_CARD = "CARD"

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,63}$")
_FALLBACK_MAX = 200


@dataclass(frozen=True)
class Placeholder:
    name: str
    fallback: str | None


def parse_placeholders(text: str) -> tuple[list[Placeholder], list[str]]:
    """Return the placeholders in ``text`` and a description of each malformed one."""
    found: list[Placeholder] = []
    problems: list[str] = []
    for m in _PLACEHOLDER.finditer(text):
        inner = m.group(1)
        name, sep, fallback = inner.partition("|")
        name = name.strip()
        if not _NAME.match(name):
            problems.append(f"malformed placeholder {{{{{inner[:40]}}}}}: bad variable name")
            continue
        if sep and ("{" in fallback or "}" in fallback or len(fallback) > _FALLBACK_MAX):
            problems.append(f"malformed placeholder {{{{{inner[:40]}}}}}: bad fallback")
            continue
        found.append(Placeholder(name, fallback if sep else None))
    rest = _PLACEHOLDER.sub("", text)
    if "{{" in rest or "}}" in rest:
        problems.append("unbalanced '{{' or '}}'")
    return found, problems


@dataclass
class QuickReply:
    label: str
    description: str = ""
    metadata: str = ""


@dataclass
class Button:
    label: str
    url: str


@dataclass
class TemplateDraft:
    """The user-editable part of a template, as validated and stored."""

    name: str
    type: str
    content: str
    description: str = ""
    quick_replies: list[QuickReply] = field(default_factory=list)
    card_media_url: str = ""
    card_buttons: list[Button] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def text_fields(self) -> Iterable[tuple[str, str]]:
        """Every (field path, text) that may hold placeholders."""
        yield "content", self.content
        for i, qr in enumerate(self.quick_replies):
            yield f"quick_replies[{i}].label", qr.label
            yield f"quick_replies[{i}].description", qr.description
        yield "card_media_url", self.card_media_url
        for i, b in enumerate(self.card_buttons):
            yield f"card_buttons[{i}].label", b.label
            yield f"card_buttons[{i}].url", b.url

    def variables(self) -> list[str]:
        names = {p.name for _, text in self.text_fields() for p in parse_placeholders(text)[0]}
        return sorted(names)


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Lowercase, trim and de-duplicate, keeping first-seen order."""
    seen: dict[str, None] = {}
    for t in tags:
        t = t.strip().lower()
        if t:
            seen.setdefault(t, None)
    return list(seen)


def validate_template(d: TemplateDraft) -> list[FieldViolation]:
    """Every rule a stored template satisfies; paths are relative to the template."""
    v: list[FieldViolation] = []

    def check_len(path: str, value: str, limit: int, *, required: bool = False) -> None:
        if required and not value.strip():
            v.append(FieldViolation(path, "is required"))
        elif len(value) > limit:
            v.append(FieldViolation(path, f"must be at most {limit} characters"))

    check_len("name", d.name, MAX_NAME, required=True)
    check_len("description", d.description, MAX_DESCRIPTION)
    check_len("content", d.content, MAX_CONTENT, required=True)

    if d.type == TYPE_QUICK_REPLY:
        if not 1 <= len(d.quick_replies) <= MAX_QUICK_REPLIES:
            v.append(FieldViolation("quick_replies", f"needs 1 to {MAX_QUICK_REPLIES} options"))
        for i, qr in enumerate(d.quick_replies[:MAX_QUICK_REPLIES]):
            check_len(f"quick_replies[{i}].label", qr.label, MAX_LABEL, required=True)
            check_len(f"quick_replies[{i}].description", qr.description, MAX_OPTION_DESCRIPTION)
            check_len(f"quick_replies[{i}].metadata", qr.metadata, MAX_METADATA)
    elif d.quick_replies:
        v.append(FieldViolation("quick_replies", "only QUICK_REPLY templates have options"))

    if d.type == TYPE_CARD:
        if not d.card_media_url:
            v.append(FieldViolation("card_media_url", "is required for CARD templates"))
        elif not d.card_media_url.startswith("https://"):
            v.append(FieldViolation("card_media_url", "must be an https URL"))
        if not 1 <= len(d.card_buttons) <= MAX_CARD_BUTTONS:
            v.append(FieldViolation("card_buttons", f"needs 1 to {MAX_CARD_BUTTONS} buttons"))
        for i, b in enumerate(d.card_buttons[:MAX_CARD_BUTTONS]):
            check_len(f"card_buttons[{i}].label", b.label, MAX_LABEL, required=True)
            if not b.url.startswith("https://"):
                v.append(FieldViolation(f"card_buttons[{i}].url", "must be an https URL"))
    else:
        if d.card_media_url:
            v.append(FieldViolation("card_media_url", "only CARD templates have media"))
        if d.card_buttons:
            v.append(FieldViolation("card_buttons", "only CARD templates have buttons"))

    if len(d.tags) > MAX_TAGS:
        v.append(FieldViolation("tags", f"at most {MAX_TAGS} tags"))
    for i, t in enumerate(d.tags):
        if not t.strip() or len(t) > MAX_TAG:
            v.append(FieldViolation(f"tags[{i}]", f"must be 1 to {MAX_TAG} characters"))

    for path, text in d.text_fields():
        for problem in parse_placeholders(text)[1]:
            v.append(FieldViolation(path, problem))
    return v


@dataclass
class Rendered:
    content: str
    quick_replies: list[QuickReply]
    card_media_url: str
    card_buttons: list[Button]
    fallback_variables: list[str]


class MissingVariables(Exception):
    """Raised by :func:`render` with the sorted names that had no value nor fallback."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def render(d: TemplateDraft, values: Mapping[str, str]) -> Rendered:
    """Substitute ``values`` into every text field of the template.

    A variable whose value is missing or empty uses its ``|fallback`` when it has one.
    Missing without a fallback is collected, and :class:`MissingVariables` is raised
    naming all of them. An empty value without a fallback renders as empty text.
    """
    missing: set[str] = set()
    used_fallback: set[str] = set()

    def sub(text: str) -> str:
        def one(m: re.Match[str]) -> str:
            name, sep, fallback = m.group(1).partition("|")
            name = name.strip()
            value = values.get(name)
            if value:
                return value
            if sep:
                used_fallback.add(name)
                return fallback
            if value is None:
                missing.add(name)
            return ""

        return _PLACEHOLDER.sub(one, text)

    out = Rendered(
        content=sub(d.content),
        quick_replies=[
            QuickReply(sub(q.label), sub(q.description), q.metadata) for q in d.quick_replies
        ],
        card_media_url=sub(d.card_media_url),
        card_buttons=[Button(sub(b.label), sub(b.url)) for b in d.card_buttons],
        fallback_variables=sorted(used_fallback),
    )
    if missing:
        raise MissingVariables(sorted(missing))
    return out


# ------------------------------------------------------------------ contact variables

#: Characters a name may hold inside it besides letters, marks and digits
#: ("O'Brien", "Jean-Luc", "J.R.").
_NAME_JOINERS = frozenset("'’-.")


def _is_emoji_mark(ch: str) -> bool:
    """Variation selectors and the keycap mark: marks that dress emoji, not letters."""
    code = ord(ch)
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF or code == 0x20E3


def first_name_from(display_name: str) -> str:
    """The first name in an X display name: the first word that holds a letter, with
    emoji, symbols and punctuation around it stripped ("Alice Smith" -> "Alice",
    "🌸 Mia Chen" -> "Mia", "@bob!" -> "bob", "Jean-Luc Picard" -> "Jean-Luc"). A
    word ends at the first emoji or symbol inside it ("Mia🌸Chen" -> "Mia"). "" when
    no word holds a letter (a name of emoji only). Never raises."""
    for token in unicodedata.normalize("NFC", display_name).split():
        start = 0
        while start < len(token) and not token[start].isalpha():
            start += 1
        end = start
        while end < len(token) and (
            (unicodedata.category(token[end])[0] in "LMN" and not _is_emoji_mark(token[end]))
            or token[end] in _NAME_JOINERS
        ):
            end += 1
        word = token[start:end].rstrip("".join(_NAME_JOINERS))
        if word:
            return word
    return ""


def _attribute_text(value: Any) -> str | None:
    """A contact attribute as template text (None: not a scalar)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def contact_variables(contact: Mapping[str, Any]) -> dict[str, str]:
    """The template variables of one contact, the same for campaigns, SendMessage with
    a template, and flows. ``contact`` holds the contact's ``username``,
    ``display_name``, ``x_user_id`` and ``attributes`` (missing ones count as empty).

    - ``first_name``: the ``first_name`` attribute when it is set, else derived from
      the display name (:func:`first_name_from`);
    - ``display_name``, ``username``, ``x_user_id``;
    - ``attributes.<key>`` for each scalar attribute (booleans as "true"/"false",
      whole numbers without ".0"; objects and lists are left out);
    - each of these again under ``contact.`` (``contact.first_name``,
      ``contact.attributes.city``, ...).

    An empty value renders a placeholder's fallback (``{{first_name|there}}``)."""
    attrs = contact.get("attributes") or {}
    if not isinstance(attrs, Mapping):
        attrs = {}
    display_name = str(contact.get("display_name") or "")
    given = _attribute_text(attrs.get("first_name"))
    out = {
        "first_name": given.strip() if given and given.strip() else first_name_from(display_name),
        "display_name": display_name,
        "username": str(contact.get("username") or ""),
        "x_user_id": str(contact.get("x_user_id") or ""),
    }
    for key, value in attrs.items():
        text = _attribute_text(value)
        if text is not None:
            out[f"attributes.{key}"] = text
    out.update({f"contact.{name}": value for name, value in list(out.items())})
    return out
